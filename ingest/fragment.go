package ingest

import "net/netip"

// fragTableSize bounds the fragment table: the number of fragmented IP
// packets tracked at once. When full, the oldest entry is overwritten.
const fragTableSize = 64

// fragKeep is how many leading payload bytes of a fragmented packet are
// kept, enough for the headers nested inside it (tunnels, ICMP quotes).
const fragKeep = 192

// fragSpans bounds the disjoint byte ranges tracked per packet. Fragments
// arriving in order, or nearly so, need one or two; a packet whose
// fragments leave more holes than this at once is never completed.
const fragSpans = 16

// fragKey identifies the fragments of one IP packet (RFC 791/8200).
type fragKey struct {
	src, dst netip.Addr
	proto    uint8
	id       uint32
}

// fragSpan is a received byte range [lo, hi) of a packet's payload.
type fragSpan struct{ lo, hi uint32 }

// fragEntry tracks one fragmented packet: the first fragment's ports, the
// leading payload bytes from whichever fragments carry them, and which
// byte ranges have arrived, so that the frame completing it can decode
// what the packet carries — the frame where tshark, which reassembles,
// dissects it.
//
// As in Wireshark's reassembly, a duplicate or overlapping fragment adds
// nothing to the coverage, the first tail (last fragment) fixes the length,
// and where fragments overlap a byte comes from the fragment with the
// lowest offset covering it (the earliest of equal offsets).
type fragEntry struct {
	key      fragKey
	used     bool
	hasFirst bool // the first fragment was seen (its ports are sp, dp)
	hasTotal bool // the last fragment was seen; total is the length
	overflow bool // more than fragSpans holes: never completes
	sp, dp   uint16
	total    uint32
	nspan    int
	spans    [fragSpans]fragSpan // disjoint, sorted, not adjacent
	head     [fragKeep]byte
	// owner[i] is the offset of the fragment head[i] came from (offsets
	// below fragKeep fit a byte); 0xff: not received.
	owner [fragKeep]uint8
}

// fragTable is a fixed-size ring of fragment entries. Lookup is a linear
// scan over a small array: fragments are rare, and this never allocates.
type fragTable struct {
	entries [fragTableSize]fragEntry
	next    int
}

// get returns the entry for key, creating it (evicting the oldest) if
// needed.
func (t *fragTable) get(key fragKey) *fragEntry {
	if e := t.find(key); e != nil {
		return e
	}
	e := &t.entries[t.next]
	t.next = (t.next + 1) % fragTableSize
	e.key, e.used, e.hasFirst, e.hasTotal, e.overflow = key, true, false, false, false
	e.sp, e.dp, e.total, e.nspan = 0, 0, 0, 0
	for i := range e.owner {
		e.owner[i] = 0xff
	}
	return e
}

// find returns the entry for key, or nil.
func (t *fragTable) find(key fragKey) *fragEntry {
	for i := range t.entries {
		e := &t.entries[i]
		if e.key.id == key.id && e.used && e.key == key { // id first: cheap and selective
			return e
		}
	}
	return nil
}

// fragInfo describes one fragment as found in its IP header.
type fragInfo struct {
	key    fragKey
	offset int  // payload offset in bytes
	more   bool // more fragments follow
	length int  // payload length of this fragment (from the IP header)
	v6     bool // an IPv6 fragment header
}

// add records a whole fragment (payload holds at least f.length bytes). It
// returns the entry and whether this fragment completed the packet: the
// bytes received from offset 0 on reach the length the last fragment gave.
// Wireshark leaves fragments without payload out of reassembly.
func (t *fragTable) add(f fragInfo, payload []byte) (*fragEntry, bool) {
	e := t.get(f.key)
	if f.length <= 0 {
		return e, false
	}
	lo, hi := uint32(f.offset), uint32(f.offset+f.length)
	if !f.more && !e.hasTotal {
		e.hasTotal, e.total = true, hi
	}
	if f.offset == 0 {
		e.hasFirst = true
	}
	if f.offset < fragKeep {
		o := uint8(f.offset)
		for i, c := range payload[:min(f.length, fragKeep-f.offset)] {
			if j := f.offset + i; o < e.owner[j] {
				e.head[j], e.owner[j] = c, o
			}
		}
	}
	e.cover(lo, hi)
	done := e.hasTotal && !e.overflow && e.nspan > 0 && e.spans[0].lo == 0 && e.spans[0].hi >= e.total
	return e, done
}

// cover adds [lo, hi) to the received ranges, merging what it overlaps or
// touches.
func (e *fragEntry) cover(lo, hi uint32) {
	i := 0
	for i < e.nspan && e.spans[i].hi < lo {
		i++
	}
	j := i // spans[i:j] overlap or touch [lo, hi)
	for j < e.nspan && e.spans[j].lo <= hi {
		lo, hi = min(lo, e.spans[j].lo), max(hi, e.spans[j].hi)
		j++
	}
	if i == j { // a new span at i
		if e.nspan == fragSpans {
			e.overflow = true
			return
		}
		copy(e.spans[i+1:e.nspan+1], e.spans[i:e.nspan])
		e.nspan++
	} else { // spans[i:j] become one
		copy(e.spans[i+1:], e.spans[j:e.nspan])
		e.nspan -= j - i - 1
	}
	e.spans[i] = fragSpan{lo, hi}
}

// forget drops a completed entry, so a reused IP id starts afresh.
func (e *fragEntry) forget() { e.used = false }

package ingest

import "net/netip"

// fragTableSize bounds the fragment table: the number of fragmented IP
// packets tracked at once. When full, the oldest entry is overwritten.
const fragTableSize = 64

// fragKeep is how many bytes of a first fragment's payload are kept, enough
// for the headers nested inside it (tunnels, ICMP quotes).
const fragKeep = 192

// fragKey identifies the fragments of one IP packet (RFC 791/8200).
type fragKey struct {
	src, dst netip.Addr
	proto    uint8
	id       uint32
}

// fragEntry tracks one fragmented packet: the first fragment's ports and
// leading payload bytes, and how much of the packet has arrived, so that the
// frame completing it can decode what the packet carries — the frame where
// tshark, which reassembles, dissects it.
type fragEntry struct {
	key      fragKey
	used     bool
	hasFirst bool
	sp, dp   uint16
	got      int // payload bytes received (sum over fragments)
	total    int // payload length, known once the last fragment arrived
	n        int // bytes kept in head
	head     [fragKeep]byte
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
	e.key, e.used, e.hasFirst = key, true, false
	e.sp, e.dp, e.got, e.total, e.n = 0, 0, 0, 0, 0
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

// add records a fragment. first says it is the first fragment; payload is
// its captured payload. It returns the entry and whether this fragment
// completed the packet.
func (t *fragTable) add(f fragInfo, payload []byte) (*fragEntry, bool) {
	e := t.get(f.key)
	e.got += f.length
	if !f.more {
		e.total = f.offset + f.length
	}
	if f.offset == 0 {
		e.hasFirst = true
		e.n = copy(e.head[:], payload)
	}
	done := e.hasFirst && e.total > 0 && e.got >= e.total
	return e, done
}

// forget drops a completed entry, so a reused IP id starts afresh.
func (e *fragEntry) forget() { e.used = false }

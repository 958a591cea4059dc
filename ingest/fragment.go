package ingest

import "net/netip"

// fragTableSize bounds the fragment table: the number of fragmented IP
// packets whose first-fragment ports are remembered at once. When full, the
// oldest entry is overwritten.
const fragTableSize = 256

// fragKey identifies the fragments of one IP packet (RFC 791/8200).
type fragKey struct {
	src, dst netip.Addr
	proto    uint8
	id       uint32
}

// fragEntry remembers the ports of a first fragment.
type fragEntry struct {
	key    fragKey
	sp, dp uint16
	used   bool
}

// fragTable is a fixed-size ring of first-fragment ports. Lookup is a linear
// scan; fragments are rare and the table small, so this costs less than a
// map and never allocates.
type fragTable struct {
	entries [fragTableSize]fragEntry
	next    int
}

// store remembers the ports of key's first fragment, replacing an older
// entry for the same key or else the oldest entry.
func (t *fragTable) store(key fragKey, sp, dp uint16) {
	for i := range t.entries {
		e := &t.entries[i]
		if e.used && e.key == key {
			e.sp, e.dp = sp, dp
			return
		}
	}
	t.entries[t.next] = fragEntry{key: key, sp: sp, dp: dp, used: true}
	t.next = (t.next + 1) % fragTableSize
}

// lookup returns the ports remembered for key.
func (t *fragTable) lookup(key fragKey) (sp, dp uint16, ok bool) {
	for i := range t.entries {
		e := &t.entries[i]
		if e.used && e.key == key {
			return e.sp, e.dp, true
		}
	}
	return 0, 0, false
}

package analyze

import (
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"github.com/flowblame/flowblame/ingest"
)

// The hot per-flow state and the peak trackers are sized to whole cache
// lines (see flowEnt); a field added carelessly would silently cost a miss.
func TestHotStateSizes(t *testing.T) {
	if got := unsafe.Sizeof(flowEnt{}); got != 192 {
		t.Errorf("sizeof(flowEnt) = %d, want 192 (3 cache lines)", got)
	}
	if got := unsafe.Sizeof(arec{}); got != 40 {
		t.Errorf("sizeof(arec) = %d, want 40", got)
	}
	if got := unsafe.Sizeof(peakTracker{}); got != 64 {
		t.Errorf("sizeof(peakTracker) = %d, want 64", got)
	}
}

func TestPermute(t *testing.T) {
	s := []string{"a", "b", "c", "d", "e"}
	permute(s, []int32{2, 0, 4, 1, 3}) // a→2, b→0, c→4, d→1, e→3
	if got := strings.Join(s, ""); got != "bdaec" {
		t.Errorf("permute = %q, want bdaec", got)
	}
}

// fkey.compare (used to sort flows) must order exactly as compareFlowKey
// (used by Validate and SortRows).
func TestFkeyCompareMatchesFlowKey(t *testing.T) {
	addrs := []string{"198.51.100.1", "198.51.100.2", "203.0.113.1", "2001:db8::1", "2001:db8::2", "::ffff:198.51.100.1", "::1"}
	var keys []fkey
	for _, a := range addrs {
		for _, b := range addrs {
			pa, pb := netip.MustParseAddr(a), netip.MustParseAddr(b)
			if pa.Is4() != pb.Is4() {
				continue
			}
			for _, ports := range [][2]uint16{{1, 2}, {2, 1}} {
				for _, proto := range []uint8{ingest.ProtoTCP, ingest.ProtoUDP} {
					for _, fl := range []uint8{0, fOriented} {
						k := fkey{a: pa.As16(), b: pb.As16(), pa: ports[0], pb: ports[1], proto: proto, flags: fl}
						if pa.Is4() {
							k.flags |= fV4
						}
						keys = append(keys, k)
					}
				}
			}
		}
	}
	sign := func(c int) int { return max(-1, min(1, c)) }
	for i := range keys {
		for j := range keys {
			got := sign(keys[i].compare(&keys[j]))
			want := sign(compareFlowKey(keys[i].flowKey(), keys[j].flowKey()))
			if got != want {
				t.Fatalf("compare(%v, %v) = %d, compareFlowKey = %d", keys[i].flowKey(), keys[j].flowKey(), got, want)
			}
		}
	}
}

func TestFlowTableGrowAndLookup(t *testing.T) {
	ft := newFlowTable(0)
	const n = 5000
	mk := func(i int) fkey {
		k := fkey{pa: uint16(i), pb: uint16(i >> 16), proto: ingest.ProtoTCP, flags: fV4 | fOriented}
		k.a = netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 7)}).As16()
		k.b = netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 11)}).As16()
		return k
	}
	for i := range n {
		k := mk(i)
		idx, created := ft.lookup(&k, k.hash(), func() uint64 { _, h2 := k.hashes(); return h2 }())
		if !created || int(idx) != i {
			t.Fatalf("insert %d: idx %d created %v", i, idx, created)
		}
	}
	for i := range n {
		k := mk(i)
		idx, created := ft.lookup(&k, k.hash(), func() uint64 { _, h2 := k.hashes(); return h2 }())
		if created || int(idx) != i {
			t.Fatalf("lookup %d: idx %d created %v", i, idx, created)
		}
	}
}

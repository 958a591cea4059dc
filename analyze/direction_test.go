package analyze

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

func TestClassify(t *testing.T) {
	mac := func(b byte) [6]byte { return [6]byte{2, 0, 0, 0, 0, b} }
	base := Options{
		Local:      []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28"), netip.MustParsePrefix("2001:db8:1::/64")},
		IfaceAddrs: map[int][]netip.Prefix{1: {netip.MustParsePrefix("203.0.113.7/24")}},
		LocalMACs:  [][6]byte{mac(1)},
	}
	tests := []struct {
		name         string
		src, dst     string
		dir          ingest.Direction
		srcMAC       [6]byte
		dstMAC       [6]byte
		wantDir      uint8
		wantA, wantB string
		wantRev      uint8
	}{
		{"src in local prefix", "198.51.100.2:5000", "100.64.0.1:443", ingest.DirUnknown, mac(9), mac(9), dirOut, "198.51.100.2:5000", "100.64.0.1:443", 0},
		{"dst in local prefix", "100.64.0.1:443", "198.51.100.2:5000", ingest.DirUnknown, mac(9), mac(9), dirIn, "198.51.100.2:5000", "100.64.0.1:443", 1},
		{"interface host address only", "203.0.113.7:22", "203.0.113.8:40000", ingest.DirUnknown, mac(9), mac(9), dirOut, "203.0.113.7:22", "203.0.113.8:40000", 0},
		{"neighbour of interface address is not local", "203.0.113.8:1", "203.0.113.9:2", ingest.DirUnknown, mac(9), mac(9), dirUnknown, "203.0.113.8:1", "203.0.113.9:2", 0},
		{"v6 prefix", "[2001:db8:2::1]:53", "[2001:db8:1::5]:9999", ingest.DirUnknown, mac(9), mac(9), dirIn, "[2001:db8:1::5]:9999", "[2001:db8:2::1]:53", 1},
		{"v4-mapped v6 is not v4", "[::ffff:198.51.100.2]:1", "[2001:db8:9::1]:2", ingest.DirUnknown, mac(9), mac(9), dirUnknown, "[::ffff:198.51.100.2]:1", "[2001:db8:9::1]:2", 0},
		{"both local: capture direction decides", "198.51.100.2:1", "198.51.100.3:2", ingest.DirIn, mac(9), mac(9), dirIn, "198.51.100.3:2", "198.51.100.2:1", 1},
		{"neither local: capture direction", "100.64.0.1:1", "100.64.0.2:2", ingest.DirOut, mac(9), mac(9), dirOut, "100.64.0.1:1", "100.64.0.2:2", 0},
		{"neither local: source MAC", "100.64.0.9:1", "100.64.0.2:2", ingest.DirUnknown, mac(1), mac(9), dirOut, "100.64.0.9:1", "100.64.0.2:2", 0},
		{"neither local: destination MAC", "100.64.0.9:1", "100.64.0.2:2", ingest.DirUnknown, mac(9), mac(1), dirIn, "100.64.0.2:2", "100.64.0.9:1", 1},
		{"unknown: ordered endpoints", "100.64.0.9:1", "100.64.0.2:2", ingest.DirUnknown, mac(9), mac(8), dirUnknown, "100.64.0.2:2", "100.64.0.9:1", 1},
		{"unknown: same address, port order", "100.64.0.9:80", "100.64.0.9:79", ingest.DirUnknown, mac(9), mac(8), dirUnknown, "100.64.0.9:79", "100.64.0.9:80", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClassifier(base)
			p := ingest.Packet{Kind: ingest.KindIP, Dir: tt.dir, HasMAC: true, SrcMAC: tt.srcMAC, DstMAC: tt.dstMAC,
				Tuple: ingest.FiveTuple{Proto: ingest.ProtoTCP, Src: netip.MustParseAddrPort(tt.src), Dst: netip.MustParseAddrPort(tt.dst)}}
			var r rec
			c.classify(&p, &r)
			k := r.k.flowKey()
			if r.dir != tt.wantDir || k.A.String() != tt.wantA || k.B.String() != tt.wantB || r.rev != tt.wantRev {
				t.Errorf("got dir %d %v > %v rev %d; want dir %d %s > %s rev %d", r.dir, k.A, k.B, r.rev, tt.wantDir, tt.wantA, tt.wantB, tt.wantRev)
			}
			if k.Oriented != (tt.wantDir != dirUnknown) {
				t.Errorf("Oriented = %v for dir %d", k.Oriented, tt.wantDir)
			}
			if r.hash != r.k.hash() {
				t.Errorf("hash not set")
			}
		})
	}
}

// Addresses and MACs described by the capture's own interfaces count as
// local once the source has described them.
func TestClassifierRefresh(t *testing.T) {
	c := newClassifier(Options{})
	c.refresh([]ingest.Interface{{Name: "eth0", MAC: []byte{2, 0, 0, 0, 0, 5}, Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.9/24")}}})
	p := ingest.Packet{Kind: ingest.KindIP, Tuple: ingest.FiveTuple{Proto: ingest.ProtoUDP,
		Src: netip.MustParseAddrPort("100.64.0.1:53"), Dst: netip.MustParseAddrPort("198.51.100.9:5353")}}
	var r rec
	c.classify(&p, &r)
	if r.dir != dirIn {
		t.Errorf("dir = %d, want in (interface address)", r.dir)
	}
	nonIP := ingest.Packet{Kind: ingest.KindNonIP, HasMAC: true, SrcMAC: [6]byte{2, 0, 0, 0, 0, 5}}
	if d := c.frameDir(&nonIP); d != dirOut {
		t.Errorf("frameDir = %d, want out (interface MAC)", d)
	}
}

func TestPrefix16(t *testing.T) {
	tests := []struct {
		prefix, addr string
		want         bool
	}{
		{"198.51.100.0/24", "198.51.100.255", true},
		{"198.51.100.0/24", "198.51.101.0", false},
		{"0.0.0.0/0", "203.0.113.1", true},
		{"0.0.0.0/0", "2001:db8::1", false},
		{"2001:db8::/32", "2001:db8:ffff::1", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"2001:db8::1/128", "2001:db8::1", true},
		{"2001:db8::1/128", "2001:db8::2", false},
		{"2001:db8::/70", "2001:db8::3ff:ffff:ffff:ffff", true},
		{"2001:db8::/70", "2001:db8::400:0:0:0", false},
		{"::/0", "::1", true},
	}
	for _, tt := range tests {
		p := newPrefix16(netip.MustParsePrefix(tt.prefix))
		a := netip.MustParseAddr(tt.addr)
		a16 := a.As16()
		if got := p.contains(&a16, a.Is4()); got != tt.want {
			t.Errorf("%s contains %s = %v, want %v", tt.prefix, tt.addr, got, tt.want)
		}
	}
}

// TestFkeyPrefix: the prefix orders keys as compare does wherever it differs.
func TestFkeyPrefix(t *testing.T) {
	var keys []fkey
	for _, a := range []string{"198.51.100.1", "198.51.100.2", "203.0.113.9", "2001:db8::1", "2001:db8::2", "2001:db9::1", "::ffff:1.2.3.4"} {
		for _, b := range []string{"198.51.100.1", "203.0.113.250", "2001:db8::1", "2001:db8:ffff::1"} {
			aa, bb := netip.MustParseAddr(a), netip.MustParseAddr(b)
			if aa.Is4() != bb.Is4() {
				continue
			}
			for _, pa := range []uint16{0, 80, 65535} {
				for _, proto := range []uint8{1, 6, 17} {
					for _, fl := range []uint8{0, fOriented} {
						k := fkey{a: aa.As16(), b: bb.As16(), pa: pa, pb: 443, proto: proto, flags: fl}
						if aa.Is4() {
							k.flags |= fV4
						}
						keys = append(keys, k)
					}
				}
			}
		}
	}
	ties := 0
	for i := range keys {
		for j := range keys {
			pi1, pi2 := keys[i].prefix()
			pj1, pj2 := keys[j].prefix()
			pc := cmp.Or(cmp.Compare(pi1, pj1), cmp.Compare(pi2, pj2))
			c := keys[i].compare(&keys[j])
			if pc != 0 && pc != c {
				t.Fatalf("prefix %x,%x vs %x,%x but compare %d: %+v vs %+v", pi1, pi2, pj1, pj2, c, keys[i], keys[j])
			}
			if pc == 0 && c != 0 && keys[i].flags&fV4 != 0 && keys[i].flags&fOriented == keys[j].flags&fOriented {
				t.Errorf("IPv4 keys differing in more than Oriented tie on their prefixes: %+v vs %+v", keys[i], keys[j])
			}
			if pc == 0 && c != 0 {
				ties++
			}
		}
	}
	t.Logf("%d of %d ordered pairs left to compare", ties, len(keys)*len(keys))
}

// TestAddrPrefix: addrPrefix orders addresses as netip.Addr.Compare does
// wherever it differs; so does the pairs' 128-bit prefix (sortPairs).
func TestAddrPrefix(t *testing.T) {
	var as []netip.Addr
	for _, s := range []string{"0.0.0.0", "1.2.3.4", "198.51.100.1", "255.255.255.255", "::", "::1", "::ffff:1.2.3.4", "2001:db8::1", "2001:db8::2", "fe80::1", "ffff::1"} {
		as = append(as, netip.MustParseAddr(s))
	}
	as = append(as, netip.Addr{})
	for _, a := range as {
		for _, b := range as {
			pc, c := cmp.Compare(addrPrefix(a), addrPrefix(b)), a.Compare(b)
			if pc != 0 && pc != c {
				t.Errorf("%v vs %v: prefix %d, Compare %d", a, b, pc, c)
			}
			if pc == 0 && c != 0 && (a.Is4() || b.Is4()) {
				t.Errorf("%v vs %v: IPv4 addresses tie on their prefixes", a, b)
			}
		}
	}
	// Pairs that share a 62-bit IPv6 prefix of A but not A.
	var pairs []HostPair
	for _, a := range []string{"2001:db8::1", "2001:db8::2", "2001:db8::1:0:0:1", "198.51.100.1", "198.51.100.2"} {
		for _, b := range []string{"2001:db8::9", "::1", "203.0.113.1", "1.1.1.1"} {
			if A, B := netip.MustParseAddr(a), netip.MustParseAddr(b); A.Is4() == B.Is4() {
				pairs = append(pairs, HostPair{A: A, B: B}, HostPair{A: A, B: B, Oriented: true})
			}
		}
	}
	for i := range pairs {
		pairs[i].Traffic.Out.Wire = 100 // all tie on bytes
	}
	for seed := range 20 {
		rand.New(rand.NewPCG(uint64(seed), 1)).Shuffle(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
		sortPairs(pairs)
		if !slices.IsSortedFunc(pairs, comparePair) {
			t.Fatalf("sortPairs: %v", pairs)
		}
	}
}

func TestPut16(t *testing.T) {
	for _, s := range []string{"198.51.100.7", "0.0.0.0", "255.255.255.255", "2001:db8::1", "::ffff:198.51.100.7", "fe80::1%eth0", "::"} {
		a := netip.MustParseAddr(s)
		var got [16]byte
		for i := range got {
			got[i] = 0xaa // put16 must overwrite every byte
		}
		put16(&got, a)
		if want := a.As16(); got != want {
			t.Errorf("put16(%s) = % x, want % x", s, got, want)
		}
	}
}

package analyze

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowblame/flowblame/ingest"
)

// iftopPkts is a PacketSource over in-memory packets.
type iftopPkts struct {
	pkts []ingest.Packet
	i    int
	err  error // returned after the packets instead of io.EOF
}

func (s *iftopPkts) Next(p *ingest.Packet) error {
	if s.i >= len(s.pkts) {
		if s.err != nil {
			return s.err
		}
		return io.EOF
	}
	*p = s.pkts[s.i]
	s.i++
	return nil
}
func (s *iftopPkts) Interfaces() []ingest.Interface {
	return []ingest.Interface{{Name: "eth0"}, {Name: "lo"}, {}}
}
func (s *iftopPkts) Diagnostics() []ingest.Diagnostic { return nil }
func (s *iftopPkts) Stats() ingest.SourceStats        { return ingest.SourceStats{} }
func (s *iftopPkts) Close() error                     { return nil }

var (
	tMAC   = [6]byte{2, 0, 0, 0, 0, 1}
	tPeer  = [6]byte{2, 0, 0, 0, 0, 2}
	tOther = [6]byte{2, 0, 0, 0, 0, 3}
	tBcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// ipPkt is an Ethernet UDP packet at second sec (Unix seconds, may be
// fractional) with IP length n.
func ipPkt(sec float64, src, dst string, n int, smac, dmac [6]byte) ingest.Packet {
	return ingest.Packet{
		TS: int64(sec * 1e9), IPLen: n, WireLen: n + 14, CapLen: n + 14,
		Link: ingest.LinkEthernet, Kind: ingest.KindIP, HasMAC: true, SrcMAC: smac, DstMAC: dmac, SLLType: -1,
		Tuple: ingest.FiveTuple{Proto: ingest.ProtoUDP, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)},
	}
}

func TestIftopKeyHash(t *testing.T) {
	k := iftopKey{sport: 5000, dport: 6000}
	copy(k.src[:], []byte{198, 51, 100, 1})
	copy(k.dst[:], []byte{198, 51, 100, 2})
	// (198+51+100+1 + 5000) % 255 = 250; (250 + 351 + 6000) % 255 = 226
	if got := k.hash(); got != 226 {
		t.Errorf("hash = %d, want 226", got)
	}
	k6 := iftopKey{v6: true, src: netip.MustParseAddr("2001:db8::1").As16(), dst: netip.MustParseAddr("2001:db8::2").As16()}
	// Σsrc = 0x20+0x01+0x0d+0xb8+1 = 231; Σdst = 232; (231%255 + 232) % 255 = 208
	if got := k6.hash(); got != 208 {
		t.Errorf("v6 hash = %d, want 208", got)
	}
}

func TestInetNtop(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7":         "198.51.100.7",
		"2001:db8::1":          "2001:db8::1",
		"2001:db8:0:1:0:0:0:1": "2001:db8:0:1::1",
		"2001:0:0:1:0:0:0:1":   "2001:0:0:1::1",
		"2001:db8:1:0:1:1:1:1": "2001:db8:1:0:1:1:1:1",
		"::":                   "::",
		"::1":                  "::1",
		"::ffff:198.51.100.1":  "::ffff:198.51.100.1",
		"::198.51.100.1":       "::198.51.100.1",
		"fe80::":               "fe80::",
		"ff02::1:ff00:2":       "ff02::1:ff00:2",
	} {
		if got := InetNtop(netip.MustParseAddr(in)); got != want {
			t.Errorf("InetNtop(%s) = %q, want %q", in, got, want)
		}
	}
	// glibc takes the first of two equally long zero runs.
	if got := InetNtop(netip.MustParseAddr("1:0:0:1:0:0:1:1")); got != "1::1:0:0:1:1" {
		t.Errorf("equal runs: %q", got)
	}
}

func TestParseIftopNetFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"198.51.100.2/32", "198.51.100.2/32", false},
		{"198.51.100.7/24", "198.51.100.0/24", false},
		{"198.51.100.0/255.255.255.0", "198.51.100.0/24", false},
		{"198.51.100.9", "198.51.100.9/32", false},
		{"2001:db8::/32", "2001:db8::/32", false},
		{"2001:db8::1/64", "2001:db8::/64", false},
		{"198.51.100.0/255.0.255.0", "", true},
		{"198.51.100.0/33", "", true},
		{"2001:db8::/0", "", true},
		{"2001:db8::/255.0.0.0", "", true},
		{"nonsense", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := ParseIftopNetFilter(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseIftopNetFilter(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && got.String() != tc.want {
			t.Errorf("ParseIftopNetFilter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzParseIftopNetFilter(f *testing.F) {
	for _, s := range []string{"198.51.100.2/32", "198.51.100.0/255.255.255.0", "2001:db8::/48", "::ffff:1.2.3.4/120", "1.2.3.4/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseIftopNetFilter(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Masked() != p {
			t.Fatalf("ParseIftopNetFilter(%q) = %v: not a valid masked prefix", s, p)
		}
	})
}

func TestParseIftopOrder(t *testing.T) {
	for in, want := range map[string]IftopOrder{"2s": IftopOrder2s, "10s": IftopOrder10s, "": IftopOrder10s,
		"40s": IftopOrder40s, "source": IftopOrderSource, "destination": IftopOrderDestination} {
		if got, err := ParseIftopOrder(in); err != nil || got != want {
			t.Errorf("ParseIftopOrder(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseIftopOrder("5s"); err == nil {
		t.Error("ParseIftopOrder(5s): no error")
	}
}

// TestIftopDirection covers rules A1–A11, B and C of spec/iftop.md §1.3.
func TestIftopDirection(t *testing.T) {
	local4 := netip.MustParseAddr("198.51.100.1")
	local6 := netip.MustParseAddr("2001:db8:99::1")
	sll := func(p ingest.Packet, typ int8) ingest.Packet {
		p.Link, p.HasMAC, p.SLLType = ingest.LinkSLL, false, typ
		return p
	}
	raw := func(p ingest.Packet) ingest.Packet { p.Link, p.HasMAC = ingest.LinkRaw, false; return p }
	tests := []struct {
		name     string
		pkt      ingest.Packet
		opts     IftopOptions
		counted  bool
		src, dst string // key (local side first)
		sent     bool   // flow "=>" (sent) or "<=" (recv)
		out      bool   // interface totals: TX or RX
	}{
		{"A1 src MAC", ipPkt(1, "203.0.113.5:1", "203.0.113.6:2", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:]}, true, "203.0.113.5:1", "203.0.113.6:2", true, true},
		{"A2 dst MAC", ipPkt(1, "203.0.113.5:1", "203.0.113.6:2", 100, tPeer, tMAC), IftopOptions{LocalMAC: tMAC[:]}, true, "203.0.113.6:2", "203.0.113.5:1", false, false},
		{"A2 broadcast", ipPkt(1, "203.0.113.5:1", "203.0.113.255:2", 100, tPeer, tBcast), IftopOptions{LocalMAC: tMAC[:]}, true, "203.0.113.255:2", "203.0.113.5:1", false, false},
		{"A1 SLL outgoing", sll(ipPkt(1, "203.0.113.5:1", "203.0.113.6:2", 100, tOther, tOther), 4), IftopOptions{}, true, "203.0.113.5:1", "203.0.113.6:2", true, true},
		{"A2 SLL host", sll(ipPkt(1, "203.0.113.5:1", "203.0.113.6:2", 100, tOther, tOther), 0), IftopOptions{}, true, "203.0.113.6:2", "203.0.113.5:1", false, false},
		{"A3 local v4 src", raw(ipPkt(1, "198.51.100.1:1", "203.0.113.6:2", 100, tOther, tOther)), IftopOptions{LocalIPv4: local4}, true, "198.51.100.1:1", "203.0.113.6:2", true, true},
		{"A4 local v4 dst", raw(ipPkt(1, "203.0.113.6:2", "198.51.100.1:1", 100, tOther, tOther)), IftopOptions{LocalIPv4: local4}, true, "198.51.100.1:1", "203.0.113.6:2", false, false},
		{"A5 local v6 src", raw(ipPkt(1, "[2001:db8:99::1]:1", "[2001:db8:99::2]:2", 100, tOther, tOther)), IftopOptions{LocalIPv6: local6}, true, "[2001:db8:99::1]:1", "[2001:db8:99::2]:2", true, true},
		{"A6 local v6 dst", raw(ipPkt(1, "[2001:db8:99::2]:2", "[2001:db8:99::1]:1", 100, tOther, tOther)), IftopOptions{LocalIPv6: local6}, true, "[2001:db8:99::1]:1", "[2001:db8:99::2]:2", false, false},
		{"A7 LE multicast bug", ipPkt(1, "198.51.100.240:1111", "198.51.100.230:2222", 100, tOther, tPeer), IftopOptions{LocalMAC: tMAC[:]}, true, "198.51.100.230:2222", "198.51.100.240:1111", false, false},
		{"A7 real multicast missed", ipPkt(1, "198.51.100.240:3333", "224.0.0.9:4444", 100, tOther, tPeer), IftopOptions{LocalMAC: tMAC[:]}, true, "198.51.100.240:3333", "224.0.0.9:4444", true, false},
		{"A8 v6 multicast", ipPkt(1, "[2001:db8:99::5]:1", "[ff02::fb]:5353", 100, tOther, tPeer), IftopOptions{}, true, "[ff02::fb]:5353", "[2001:db8:99::5]:1", false, false},
		{"A10 LE compare flip", ipPkt(1, "198.51.100.9:1", "198.51.100.10:2", 100, tOther, tPeer), IftopOptions{}, true, "198.51.100.10:2", "198.51.100.9:1", false, false},
		{"A10 LE compare no flip", ipPkt(1, "198.51.100.10:1", "198.51.100.9:2", 100, tOther, tPeer), IftopOptions{}, true, "198.51.100.10:1", "198.51.100.9:2", true, false},
		{"A10 LE not BE", ipPkt(1, "203.0.113.1:1", "198.51.100.2:2", 100, tOther, tPeer), IftopOptions{}, true, "198.51.100.2:2", "203.0.113.1:1", false, false},
		{"A11 v6 undecided", ipPkt(1, "[2001:db8:99::5]:1", "[2001:db8:99::6]:2", 100, tOther, tPeer), IftopOptions{}, false, "", "", false, false},
		{"B out", ipPkt(1, "198.51.100.2:6000", "198.51.100.1:5000", 100, tPeer, tMAC), IftopOptions{LocalMAC: tMAC[:], NetFilter4: netip.MustParsePrefix("198.51.100.2/32")}, true, "198.51.100.2:6000", "198.51.100.1:5000", true, true},
		{"B in", ipPkt(1, "198.51.100.1:5000", "198.51.100.2:6000", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:], NetFilter4: netip.MustParsePrefix("198.51.100.2/32")}, true, "198.51.100.2:6000", "198.51.100.1:5000", false, false},
		{"B both in dropped", ipPkt(1, "198.51.100.1:5000", "198.51.100.2:6000", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:], NetFilter4: netip.MustParsePrefix("198.51.100.0/24")}, false, "", "", false, false},
		{"B v4 filter leaves v6 to A", ipPkt(1, "[2001:db8:99::5]:1", "[2001:db8:99::6]:2", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:], NetFilter4: netip.MustParsePrefix("198.51.100.0/24")}, true, "[2001:db8:99::5]:1", "[2001:db8:99::6]:2", true, true},
		{"B6", ipPkt(1, "[2001:db8:99::5]:1", "[2001:db8:aa::6]:2", 100, tOther, tPeer), IftopOptions{NetFilter6: netip.MustParsePrefix("2001:db8:aa::/48")}, true, "[2001:db8:aa::6]:2", "[2001:db8:99::5]:1", false, false},
		{"C link-local dropped", ipPkt(1, "[fe80::1]:1", "[2001:db8:99::6]:2", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:]}, false, "", "", false, false},
		{"C link-local kept with -l", ipPkt(1, "[fe80::1]:1", "[2001:db8:99::6]:2", 100, tMAC, tPeer), IftopOptions{LocalMAC: tMAC[:], LinkLocal: true}, true, "[fe80::1]:1", "[2001:db8:99::6]:2", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &iftopState{opts: tc.opts, hist: newIftopHash[*iftopHist](), hlen: 1}
			st.account(&tc.pkt)
			if !tc.counted {
				if len(st.hist.index) != 0 || st.cumSent+st.cumRecv != 0 {
					t.Fatalf("packet counted, want dropped")
				}
				return
			}
			if len(st.hist.index) != 1 {
				t.Fatalf("%d history entries, want 1", len(st.hist.index))
			}
			for k, h := range st.hist.index {
				v6 := k.v6
				got := [2]string{netip.AddrPortFrom(bytesAddr(v6, k.src), k.sport).String(), netip.AddrPortFrom(bytesAddr(v6, k.dst), k.dport).String()}
				if d := cmp.Diff([2]string{tc.src, tc.dst}, got); d != "" {
					t.Errorf("key (-want +got):\n%s", d)
				}
				if (h.totSent > 0) != tc.sent {
					t.Errorf("flow sent %d recv %d, want sent=%v", h.totSent, h.totRecv, tc.sent)
				}
			}
			if (st.cumSent > 0) != tc.out {
				t.Errorf("totals TX %d RX %d, want TX=%v", st.cumSent, st.cumRecv, tc.out)
			}
		})
	}
}

// TestIftopClock covers the packet-driven tick: one rotation per gap,
// elapsed-slot divisors, the trigger packet excluded, the block phase.
func TestIftopClock(t *testing.T) {
	base := float64(1_700_000_000)
	out := func(at float64, n int) ingest.Packet {
		return ipPkt(base+at, "198.51.100.1:5000", "198.51.100.2:6000", n, tMAC, tPeer)
	}
	opts := IftopOptions{At: 12, LocalMAC: tMAC[:], Start: int64(base * 1e9)}
	// 10000 B at +3.5; trigger at +12.6 (not counted); one rotation for the gap.
	src := &iftopPkts{pkts: []ingest.Packet{out(3.5, 10000), out(12.6, 777)}}
	scr, err := Iftop(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !scr.Reached || scr.Clock-scr.First != 12 || scr.CumSent != 10000 {
		t.Fatalf("Reached %v clock %d first %d cum %d", scr.Reached, scr.Clock, scr.First, scr.CumSent)
	}
	// history_len = 2: 2 s column /2, 10 s and 40 s columns /4.
	if want := [3]float32{5000, 2500, 2500}; scr.SentRate != want {
		t.Errorf("SentRate = %v, want %v", scr.SentRate, want)
	}
	if scr.PeakSent != 5000 || scr.Warning() != "" {
		t.Errorf("PeakSent = %d, warning %q", scr.PeakSent, scr.Warning())
	}

	// A malformed IPv4 frame passes "ip" and ticks, but is not counted;
	// a non-IP frame does neither.
	bad := ingest.Packet{TS: int64((base + 12.6) * 1e9), Kind: ingest.KindMalformed, EtherType: 0x0800, Link: ingest.LinkEthernet}
	arp := ingest.Packet{TS: int64((base + 12.5) * 1e9), Kind: ingest.KindNonIP, EtherType: 0x0806, Link: ingest.LinkEthernet}
	scr, err = Iftop(context.Background(), &iftopPkts{pkts: []ingest.Packet{out(3.5, 10000), arp, bad}}, opts)
	if err != nil || !scr.Reached || scr.Packets != 2 || scr.Counted != 1 {
		t.Errorf("malformed trigger: err %v Reached %v packets %d counted %d", err, scr.Reached, scr.Packets, scr.Counted)
	}

	// OnlyInterface drops packets of other named interfaces (index 1 "lo"),
	// keeps unnamed ones (index 2).
	onLo, unnamed := out(4.5, 300), out(4.6, 50)
	onLo.Iface, unnamed.Iface = 1, 2
	o2 := opts
	o2.OnlyInterface = "eth0"
	scr, err = Iftop(context.Background(), &iftopPkts{pkts: []ingest.Packet{out(3.5, 10000), onLo, unnamed, out(12.6, 1)}}, o2)
	if err != nil || scr.CumSent != 10050 {
		t.Errorf("OnlyInterface: err %v cum %d, want 10050", err, scr.CumSent)
	}

	// The capture ends before the tick: the state at the end, Reached false.
	src = &iftopPkts{pkts: []ingest.Packet{out(3.5, 10000), out(5.5, 100)}}
	scr, err = Iftop(context.Background(), src, opts)
	if err != nil {
		t.Fatal(err)
	}
	if scr.Reached || scr.CumSent != 10100 || scr.Warning() == "" {
		t.Errorf("end of capture: Reached %v cum %d warning %q", scr.Reached, scr.CumSent, scr.Warning())
	}

	// Timestamps that go backwards: the warning says so, not a negative span.
	src = &iftopPkts{pkts: []ingest.Packet{out(3.5, 10000), out(-2000.5, 100)}}
	o3 := opts
	o3.Start = 0 // the clock starts at the first packet
	if scr, err = Iftop(context.Background(), src, o3); err != nil {
		t.Fatal(err)
	}
	if w := scr.Warning(); scr.Reached || !strings.Contains(w, "go backwards (its last packet is 2004 s before its first)") {
		t.Errorf("backwards capture: Reached %v warning %q", scr.Reached, w)
	}

	// Block phase: a packet at +1.5 is processed at second 2 when φ < 0.5
	// (ticks), at second 1 otherwise (no tick).
	for _, tc := range []struct {
		phase float64
		want  int64
	}{{0.2, 2}, {0.7, 1}} {
		st := &iftopState{opts: IftopOptions{EmulateBlocks: true}}
		st.phaseNanos = int64(tc.phase * 1e9)
		if got := st.clock(int64((base+1.5)*1e9)) - int64(base); got != tc.want {
			t.Errorf("φ=%.1f: clock = +%d, want +%d", tc.phase, got, tc.want)
		}
	}

	// A source error is returned.
	boom := errors.New("boom")
	if _, err := Iftop(context.Background(), &iftopPkts{err: boom}, opts); !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
}

// TestIftopExpiry: a flow is deleted by the 20th rotation after its last
// write (history_rotate: last_write == new pos); totals never restart.
func TestIftopExpiry(t *testing.T) {
	st := &iftopState{opts: IftopOptions{LocalMAC: tMAC[:]}, hist: newIftopHash[*iftopHist](), hlen: 1}
	p := ipPkt(1, "198.51.100.1:5000", "198.51.100.2:6000", 100, tMAC, tPeer)
	st.account(&p)
	for i := 1; i <= 19; i++ {
		st.rotate()
	}
	if len(st.hist.index) != 1 {
		t.Fatalf("flow gone after 19 rotations")
	}
	st.rotate()
	if len(st.hist.index) != 0 || st.cumSent != 100 {
		t.Fatalf("after 20 rotations: %d flows, cum %d", len(st.hist.index), st.cumSent)
	}
}

// TestIftopPeakWraps: the peak is a C int; a slot above 2^31 bytes wraps.
func TestIftopPeakWraps(t *testing.T) {
	st := &iftopState{hist: newIftopHash[*iftopHist](), hlen: 1}
	st.totSent[19] = 1<<31 + 10 // slot 19 is compared last
	st.totRecv[3] = 3000
	scr := st.analyse()
	if scr.PeakSent != -(1<<31-10)/2 || scr.PeakRecv != 1500 || scr.PeakTotal != scr.PeakSent {
		t.Errorf("peaks %d %d %d", scr.PeakSent, scr.PeakRecv, scr.PeakTotal)
	}
}

// TestIftopOrder: stable descending insert in hash-bucket order, -o
// source, -L and the port-display aggregation.
func TestIftopOrder(t *testing.T) {
	base := float64(1_700_000_000)
	pk := func(src, dst string, n int) ingest.Packet { return ipPkt(base+0.5, src, dst, n, tMAC, tPeer) }
	pkts := []ingest.Packet{
		pk("198.51.100.1:1", "198.51.100.9:1", 100),
		pk("198.51.100.1:2", "198.51.100.8:1", 300),
		pk("198.51.100.1:3", "198.51.100.7:1", 100),
		pk("198.51.100.1:4", "198.51.100.9:2", 50),
	}
	run := func(o IftopOptions) []string {
		o.LocalMAC = tMAC[:]
		scr, err := Iftop(context.Background(), &iftopPkts{pkts: pkts}, o)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range scr.Lines {
			got = append(got, netip.AddrPortFrom(l.Dst, l.DstPort).String())
		}
		return got
	}
	// Ties (100 B) keep hash order: equal lines appear in ascending
	// bucket order.
	k9 := iftopKey{sport: 1, dport: 1}
	copy(k9.src[:], []byte{198, 51, 100, 1})
	copy(k9.dst[:], []byte{198, 51, 100, 9})
	k7 := k9
	k7.sport, k7.dst[3] = 3, 7
	first, second := "198.51.100.9:1", "198.51.100.7:1"
	if k7.hash() < k9.hash() {
		first, second = second, first
	}
	tests := []struct {
		name string
		opts IftopOptions
		want []string
	}{
		{"ports 10s", IftopOptions{PortDisplay: IftopPortsOn}, []string{"198.51.100.8:1", first, second, "198.51.100.9:2"}},
		{"host pairs", IftopOptions{}, []string{"198.51.100.8:0", "198.51.100.9:0", "198.51.100.7:0"}},
		{"-L 2", IftopOptions{PortDisplay: IftopPortsOn, Lines: 2}, []string{"198.51.100.8:1", first}},
		{"-L 0 pre4", IftopOptions{Lines: IftopNoLines}, nil},
		{"-L 0 git", IftopOptions{Lines: IftopNoLines, Variant: IftopGit2017}, []string{"198.51.100.8:0", "198.51.100.9:0", "198.51.100.7:0"}},
		{"-o destination", IftopOptions{Order: IftopOrderDestination}, []string{"198.51.100.7:0", "198.51.100.8:0", "198.51.100.9:0"}},
		{"src-only ports", IftopOptions{PortDisplay: IftopPortsSrc}, []string{"198.51.100.8:0", "198.51.100.9:0", "198.51.100.7:0", "198.51.100.9:0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := run(tc.opts)
			if tc.name == "src-only ports" {
				// sport kept, so .9 splits into two lines (100 and 50 B).
				if len(got) != 4 || got[0] != "198.51.100.8:0" {
					t.Errorf("got %v", got)
				}
				return
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("order (-want +got):\n%s", d)
			}
		})
	}
}

// TestIftopCorpus replays every capture of the shared corpus: no panic, and
// the counted packets never exceed the clock-driving ones.
func TestIftopCorpus(t *testing.T) {
	const dir = "../../shared/corpus"
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".pcap", ".pcapng", ".cap", ".gz", ".dmp", ".trace", ".pcapng0", "":
			if !d.IsDir() {
				files = append(files, path)
			}
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Skipf("corpus not available at %s: %v", dir, err)
	}
	opened := 0
	for _, f := range files {
		src, err := ingest.OpenCapture(f, ingest.Options{})
		if err != nil {
			continue // not a capture, or unreadable: ingest's business
		}
		opened++
		for _, o := range []IftopOptions{{At: 4, PortDisplay: IftopPortsOn, Lines: 100}, {At: 1 << 30, Order: IftopOrderSource, EmulateBlocks: true, Phase: 0.3}} {
			src, err := ingest.OpenCapture(f, ingest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			scr, err := Iftop(context.Background(), src, o)
			src.Close()
			if err != nil {
				continue // a fatal source error is returned, not a panic
			}
			if scr.Counted > scr.Packets || scr.CumSent < 0 || scr.CumRecv < 0 {
				t.Errorf("%s: counted %d of %d packets, cum %d/%d", f, scr.Counted, scr.Packets, scr.CumSent, scr.CumRecv)
			}
		}
		src.Close()
	}
	t.Logf("replayed %d of %d corpus files", opened, len(files))
}

// BenchmarkIftop replays 100k packets over 1000 flows and 60 s.
func BenchmarkIftop(b *testing.B) {
	pkts := make([]ingest.Packet, 100_000)
	for i := range pkts {
		flow := i % 1000
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, 1}), uint16(10000+flow))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(flow % 250)}), 443)
		p := ipPkt(1_700_000_000+float64(i)*60/float64(len(pkts)), src.String(), dst.String(), 100+flow, tMAC, tPeer)
		if i%3 == 0 {
			p.Tuple = p.Tuple.Reverse()
			p.SrcMAC, p.DstMAC = tPeer, tMAC
		}
		pkts[i] = p
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		scr, err := Iftop(context.Background(), &iftopPkts{pkts: pkts}, IftopOptions{At: 1 << 30, PortDisplay: IftopPortsOn, LocalMAC: tMAC[:]})
		if err != nil || scr.AllLines != 1000 {
			b.Fatalf("%v, %d lines", err, scr.AllLines)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(pkts)), "ns/packet")
}

// TestIftopSortIsInsertion: the screen list is sorted, not built by iftop's
// sorted_list_insert (quadratic), and must come out in the same order,
// ties (kept in insertion order) included.
func TestIftopSortIsInsertion(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	vals := []int64{0, 1, 2, 3, 1000, 1001, 1 << 40}
	hosts := []string{"10.0.0.1", "10.0.0.10", "10.0.0.2", "2001:db8::1"}
	for _, order := range []IftopOrder{IftopOrder10s, IftopOrder2s, IftopOrder40s, IftopOrderSource, IftopOrderDestination} {
		st := &iftopState{opts: IftopOptions{Order: order}}
		var lines []*screenLine
		for range 3000 {
			l := &screenLine{host: hosts[rng.IntN(len(hosts))]}
			for j := range l.both {
				// sums over divisors that make equal and nearly equal long doubles
				l.both[j] = ldAdd(ldQuo(vals[rng.IntN(len(vals))], 1+rng.IntN(3)), ldQuo(vals[rng.IntN(len(vals))], 40))
				l.bothKey[j] = ldKey(l.both[j])
			}
			lines = append(lines, l)
		}
		// sorted_list_insert: walk from the head past every item the new
		// line does not beat (screen_line_bandwidth_compare / host order).
		beats := func(a, b *screenLine) bool { // a goes before b
			start := map[IftopOrder]int{IftopOrder2s: 0, IftopOrder10s: 1, IftopOrder40s: 2}
			s, ok := start[order]
			if !ok {
				if a.host != b.host {
					return a.host < b.host
				}
				s = 2
			}
			for j := s; j < 3; j++ {
				if c := a.both[j].Cmp(b.both[j]); c != 0 {
					return c > 0
				}
			}
			return false
		}
		var want []*screenLine
		for _, l := range lines {
			i := 0
			for i < len(want) && !beats(l, want[i]) {
				i++
			}
			want = slices.Insert(want, i, l)
		}
		got := slices.Clone(lines)
		slices.SortStableFunc(got, st.compare)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("order %d: line %d differs from iftop's insertion", order, i)
			}
		}
	}
}

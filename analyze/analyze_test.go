package analyze

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowblame/flowblame/ingest"
)

// memSource is an in-memory PacketSource yielding hand-built packets.
type memSource struct {
	pkts []ingest.Packet
	ifs  []ingest.Interface
	err  error // returned after the packets instead of io.EOF
	i    int
}

func (m *memSource) Next(p *ingest.Packet) error {
	if m.i >= len(m.pkts) {
		if m.err != nil {
			return m.err
		}
		return io.EOF
	}
	*p = m.pkts[m.i]
	m.i++
	return nil
}
func (m *memSource) Interfaces() []ingest.Interface   { return m.ifs }
func (m *memSource) Diagnostics() []ingest.Diagnostic { return nil }
func (m *memSource) Stats() ingest.SourceStats {
	return ingest.SourceStats{Files: 1, Packets: int64(m.i)}
}
func (m *memSource) Close() error { return nil }

const t0 = int64(1_700_000_000) * nsPerSec // a whole second

// pkt builds an IP packet "proto src > dst" of wire length n at t0+sec
// seconds (fractional seconds allowed through ms).
func pkt(ms int64, proto uint8, src, dst string, n int) ingest.Packet {
	return ingest.Packet{
		TS: t0 + ms*1e6, WireLen: n, CapLen: min(n, 96), IPLen: n - 14, Kind: ingest.KindIP, SLLType: -1,
		Tuple: ingest.FiveTuple{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)},
	}
}

func run(t *testing.T, pkts []ingest.Packet, opts Options) *Result {
	t.Helper()
	res := map[bool]*Result{}
	for _, serial := range []bool{true, false} {
		o := opts
		o.Serial = serial
		r, err := Analyze(context.Background(), &memSource{pkts: pkts}, o)
		if err != nil {
			t.Fatalf("Analyze(serial=%v): %v", serial, err)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Validate(serial=%v): %v", serial, err)
		}
		res[serial] = r
	}
	if d := cmp.Diff(res[true], res[false], cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})); d != "" {
		t.Fatalf("serial and pipelined results differ (-serial +pipelined):\n%s", d)
	}
	return res[true]
}

var local24 = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}

func TestAnalyzeTotalsFlowsPairs(t *testing.T) {
	pkts := []ingest.Packet{
		pkt(0, ingest.ProtoTCP, "198.51.100.1:40000", "203.0.113.5:443", 1000),   // TX
		pkt(500, ingest.ProtoTCP, "203.0.113.5:443", "198.51.100.1:40000", 100),  // RX
		pkt(1200, ingest.ProtoTCP, "198.51.100.1:40001", "203.0.113.5:443", 400), // TX, 2nd flow same pair
		pkt(1300, ingest.ProtoUDP, "198.51.100.1:53", "203.0.113.9:5353", 200),   // TX other remote
		pkt(3100, ingest.ProtoUDP, "203.0.113.7:1", "203.0.113.8:2", 60),         // neither local: unknown
		{TS: t0 + 3200*1e6, WireLen: 42, CapLen: 42, Kind: ingest.KindNonIP, EtherType: 0x0806, SLLType: -1},
	}
	r := run(t, pkts, Options{Local: local24})
	wantAll := DirCounts{
		Out:     Counts{Packets: 3, Wire: 1600, IP: 1600 - 42, Captured: 96 + 96 + 96},
		In:      Counts{Packets: 1, Wire: 100, IP: 86, Captured: 96},
		Unknown: Counts{Packets: 2, Wire: 102, IP: 46, Captured: 60 + 42},
	}
	if d := cmp.Diff(wantAll, r.Totals.All); d != "" {
		t.Errorf("Totals.All (-want +got):\n%s", d)
	}
	if got := r.Totals.NonIP.Unknown.Packets; got != 1 {
		t.Errorf("NonIP.Unknown.Packets = %d, want 1", got)
	}
	if len(r.Flows) != 4 || len(r.Pairs) != 3 || len(r.Remotes) != 2 {
		t.Fatalf("got %d flows, %d pairs, %d remotes; want 4, 3, 2", len(r.Flows), len(r.Pairs), len(r.Remotes))
	}
	f := r.Flows[0]
	wantKey := FlowKey{Proto: ingest.ProtoTCP, A: netip.MustParseAddrPort("198.51.100.1:40000"), B: netip.MustParseAddrPort("203.0.113.5:443"), Oriented: true}
	if f.Key != wantKey || f.Traffic.Out.Wire != 1000 || f.Traffic.In.Wire != 100 {
		t.Errorf("top flow = %v out %d in %d, want %v 1000/100", f.Key, f.Traffic.Out.Wire, f.Traffic.In.Wire, wantKey)
	}
	p := r.Pairs[0]
	if p.A != netip.MustParseAddr("198.51.100.1") || p.B != netip.MustParseAddr("203.0.113.5") || p.Flows != 2 || p.Traffic.Out.Wire != 1400 {
		t.Errorf("top pair = %+v", p)
	}
	u := r.Flows[3]
	if u.Key.Oriented || u.Key.A != netip.MustParseAddrPort("203.0.113.7:1") || u.Traffic.Out.Wire != 60 {
		t.Errorf("unknown-direction flow = %+v", u)
	}
	wantUn := []UnattributedStat{
		{Cause: CauseNoSockets, Out: Counts{3, 1600, 1558, 288}, In: Counts{1, 100, 86, 96}, Flows: 3},
		{Cause: CauseUnknownDir, Unknown: Counts{1, 60, 46, 60}, Flows: 1},
		{Cause: CauseNonIP, Unknown: Counts{1, 42, 0, 42}},
	}
	if d := cmp.Diff(wantUn, r.Unattributed); d != "" {
		t.Errorf("Unattributed (-want +got):\n%s", d)
	}
	if r.Meta.At != t0+3200*1e6 || r.Meta.First != t0 || r.Meta.Duration != 3.2 {
		t.Errorf("Meta = %+v", r.Meta)
	}
}

// fakeAttributor owns 198.51.100.1:40000 by pid 10 until t0+2s, then by pid
// 20 (PID reuse: a different process), and nothing else.
type fakeAttributor struct{ calls int }

func (a *fakeAttributor) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	a.calls++
	if local.Port() != 40000 {
		return Attribution{Method: MethodNone, Cause: CauseNeverSeen}, ts, ts + 10*nsPerSec
	}
	if ts < t0+2*nsPerSec {
		return Attribution{Proc: ingest.ProcKey{PID: 10, Start: 1}, Comm: "curl", Method: MethodExact, Confidence: ConfHigh}, t0 - nsPerSec, t0 + 2*nsPerSec - 1
	}
	return Attribution{Proc: ingest.ProcKey{PID: 20, Start: 2}, Comm: "kdevtmpfsi", Method: MethodExactSlack, Confidence: ConfMedium}, t0 + 2*nsPerSec, t0 + 100*nsPerSec
}

func TestAnalyzeAttribution(t *testing.T) {
	var pkts []ingest.Packet
	for ms := int64(0); ms < 4000; ms += 250 {
		pkts = append(pkts, pkt(ms, ingest.ProtoTCP, "198.51.100.1:40000", "203.0.113.5:443", 100))
		pkts = append(pkts, pkt(ms, ingest.ProtoTCP, "203.0.113.5:443", "198.51.100.1:40000", 50))
	}
	pkts = append(pkts, pkt(3900, ingest.ProtoUDP, "198.51.100.1:53", "203.0.113.9:53", 80))
	fa := &fakeAttributor{}
	r := run(t, pkts, Options{Local: local24, Attributor: fa})
	if r.Meta.AttributorCalls != 3 {
		t.Errorf("AttributorCalls = %d, want 3 (one per flow, one on owner expiry)", r.Meta.AttributorCalls)
	}
	if len(r.Processes) != 2 {
		t.Fatalf("got %d processes, want 2", len(r.Processes))
	}
	// 8 packets each way per owner: 800 out, 400 in.
	for _, p := range r.Processes {
		if p.Traffic.Out.Wire != 800 || p.Traffic.In.Wire != 400 || p.Flows != 1 {
			t.Errorf("process %v: out %d in %d flows %d; want 800/400/1", p.Key, p.Traffic.Out.Wire, p.Traffic.In.Wire, p.Flows)
		}
	}
	if r.Processes[0].Key.PID != 10 || r.Processes[1].Comm != "kdevtmpfsi" {
		t.Errorf("process order: %v %v", r.Processes[0].Key, r.Processes[1].Key)
	}
	if got := r.Processes[1].ByMethod; len(got) != 1 || got[0].Method != MethodExactSlack {
		t.Errorf("ByMethod = %+v", got)
	}
	if n := len(r.Flows[0].Owners); n != 2 {
		t.Errorf("top flow has %d owners, want 2", n)
	}
	if r.Remotes[0].Processes[0].PID != 10 || len(r.Remotes[0].Processes) != 2 {
		t.Errorf("remote processes = %v", r.Remotes[0].Processes)
	}
	wantTX := 1600.0 / 1680
	if r.Coverage.TX != wantTX || r.Coverage.RX != 1 {
		t.Errorf("Coverage = %v/%v, want %v/1", r.Coverage.TX, r.Coverage.RX, wantTX)
	}
	// Per-process window rate at At (t0+3.9 s): pid 20 sent 400 B in second 3 → 2 s rate (400+400)/2.
	if got := r.Processes[1].Traffic.OutRate.S2; got != 400 {
		t.Errorf("pid 20 2 s out rate = %v, want 400", got)
	}
	// The unattributed UDP flow (80 B in second 3) has rates and a peak of
	// its own, not the totals' and not zero.
	u := r.UnattributedTraffic
	if u.Out.Wire != 80 || u.In.Wire != 0 || u.OutRate != (WindowRates{S2: 40, S10: 8, S40: 2}) || u.InRate != (WindowRates{}) ||
		u.Peak != (PeakRate{Rate: 40, At: t0 + 3*nsPerSec}) {
		t.Errorf("UnattributedTraffic = %+v", u)
	}
}

func TestAnalyzeWindowAndAt(t *testing.T) {
	pkts := []ingest.Packet{
		pkt(0, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 100),
		pkt(5000, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 200),
		pkt(9000, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 300),
		pkt(12000, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 400),
	}
	r := run(t, pkts, Options{Local: local24, Window: Window{From: t0 + 1*nsPerSec, To: t0 + 10*nsPerSec}, At: t0 + 9*nsPerSec + 5})
	if r.Meta.Packets != 2 || r.Meta.Outside.Packets != 2 || r.Meta.Outside.Wire != 500 {
		t.Errorf("Packets %d, Outside %+v; want 2 and 2/500", r.Meta.Packets, r.Meta.Outside)
	}
	want := WindowRates{S2: 150, S10: 50, S40: 12.5}
	if got := r.Flows[0].Traffic.OutRate; got != want {
		t.Errorf("flow OutRate = %+v, want %+v", got, want)
	}
	if got := r.Totals.Traffic.OutRate; got != want {
		t.Errorf("totals OutRate = %+v, want %+v", got, want)
	}
	if got, want := r.Flows[0].Traffic.Peak, (PeakRate{Rate: 150, At: t0 + 9*nsPerSec}); got != want {
		t.Errorf("flow Peak = %+v, want %+v", got, want)
	}
}

func TestAnalyzeSourceError(t *testing.T) {
	boom := errors.New("boom")
	src := &memSource{pkts: []ingest.Packet{pkt(0, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 100)}, err: boom}
	for _, serial := range []bool{true, false} {
		r, err := Analyze(context.Background(), src, Options{Serial: serial})
		if !errors.Is(err, boom) || r == nil || r.Meta.Packets != 1 {
			t.Errorf("serial=%v: err %v, result %v; want boom and the packet read", serial, err, r)
		}
		src.i = 0
	}
}

func TestAnalyzeCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, serial := range []bool{true, false} {
		_, err := Analyze(ctx, &memSource{}, Options{Serial: serial})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("serial=%v: err = %v, want context.Canceled", serial, err)
		}
	}
}

func TestAnalyzeEmpty(t *testing.T) {
	r := run(t, nil, Options{})
	if r.Meta.Packets != 0 || len(r.Flows) != 0 || r.Meta.At != 0 {
		t.Errorf("empty: %+v", r.Meta)
	}
}

func TestRows(t *testing.T) {
	pkts := []ingest.Packet{
		pkt(0, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 1000), // old big flow
		pkt(9000, ingest.ProtoTCP, "198.51.100.1:3", "203.0.113.6:4", 300),
		pkt(9500, ingest.ProtoTCP, "198.51.100.1:5", "203.0.113.6:6", 200),
	}
	r := run(t, pkts, Options{Local: local24})
	tests := []struct {
		name  string
		g     GroupBy
		s     SortBy
		n     int
		wantB []string
	}{
		{"flows by total", GroupFlow, SortTotal, 0, []string{"203.0.113.5:2", "203.0.113.6:4", "203.0.113.6:6"}},
		{"flows by 2s top2", GroupFlow, Sort2s, 2, []string{"203.0.113.6:4", "203.0.113.6:6"}},
		{"pairs by total", GroupPair, SortTotal, 0, []string{"203.0.113.5:0", "203.0.113.6:0"}},
		{"remotes by 2s", GroupRemote, Sort2s, 0, []string{"203.0.113.6:0", "203.0.113.5:0"}},
		{"remotes by 40s", GroupRemote, Sort40s, 1, []string{"203.0.113.5:0"}}, // second 0 is inside (At-40s, At]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, row := range r.Rows(tt.g, tt.s, tt.n) {
				got = append(got, row.Key.B.String())
			}
			if d := cmp.Diff(tt.wantB, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// bruteTraffic recomputes an entity's window rates and peaks from its
// packets by the documented definitions.
func bruteTraffic(t *testing.T, pkts []ingest.Packet, at int64, outOf func(p *ingest.Packet) (in bool, ok bool)) (WindowRates, WindowRates, PeakRate) {
	t.Helper()
	var s series
	for i := range pkts {
		in, ok := outOf(&pkts[i])
		if !ok {
			continue
		}
		d := uint8(dirOut)
		if in {
			d = dirIn
		}
		s.add(floorSec(pkts[i].TS), d, int64(pkts[i].WireLen))
	}
	ser := s.sorted()
	o, i, _ := WindowRatesAt(ser, at)
	_, _, both := peakOfOutIn(ser)
	return o, i, both
}

// Random traffic: every flow, pair and remote's rates and peaks equal a
// brute-force computation, in order and with flows joining pairs late.
func TestAnalyzeMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	locals := []string{"198.51.100.1", "198.51.100.2"}
	remotes := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}
	var pkts []ingest.Packet
	ms := int64(0)
	for range 3000 {
		ms += int64(rng.IntN(120))
		l := locals[rng.IntN(len(locals))]
		r := remotes[rng.IntN(len(remotes))]
		lp, rp := 1000+rng.IntN(4), 80+rng.IntN(2)
		src, dst := fmt.Sprintf("%s:%d", l, lp), fmt.Sprintf("%s:%d", r, rp)
		if rng.IntN(2) == 0 {
			src, dst = dst, src
		}
		pkts = append(pkts, pkt(ms, ingest.ProtoTCP, src, dst, 60+rng.IntN(1400)))
		if rng.IntN(50) == 0 { // a pair with a single flow
			pkts = append(pkts, pkt(ms, ingest.ProtoUDP, "198.51.100.3:53", "203.0.113.9:53", 60+rng.IntN(1400)))
		}
	}
	for _, at := range []int64{0, t0 + 100*nsPerSec + 3} {
		r := run(t, pkts, Options{Local: local24, At: at})
		at = r.Meta.At
		for _, f := range r.Flows {
			o, i, pk := bruteTraffic(t, pkts, at, func(p *ingest.Packet) (bool, bool) {
				if p.Tuple.Src == f.Key.A && p.Tuple.Dst == f.Key.B {
					return false, true
				}
				return true, p.Tuple.Src == f.Key.B && p.Tuple.Dst == f.Key.A
			})
			if d := cmp.Diff([]any{o, i, pk}, []any{f.Traffic.OutRate, f.Traffic.InRate, f.Traffic.Peak}); d != "" {
				t.Errorf("at %d flow %v (-brute +got):\n%s", at, f.Key, d)
			}
		}
		for _, h := range r.Pairs {
			o, i, pk := bruteTraffic(t, pkts, at, func(p *ingest.Packet) (bool, bool) {
				if p.Tuple.Src.Addr() == h.A && p.Tuple.Dst.Addr() == h.B {
					return false, true
				}
				return true, p.Tuple.Src.Addr() == h.B && p.Tuple.Dst.Addr() == h.A
			})
			if d := cmp.Diff([]any{o, i, pk}, []any{h.Traffic.OutRate, h.Traffic.InRate, h.Traffic.Peak}); d != "" {
				t.Errorf("at %d pair %v-%v (-brute +got):\n%s", at, h.A, h.B, d)
			}
		}
		for _, h := range r.Remotes {
			o, i, pk := bruteTraffic(t, pkts, at, func(p *ingest.Packet) (bool, bool) {
				return p.Tuple.Src.Addr() == h.Addr, p.Tuple.Src.Addr() == h.Addr || p.Tuple.Dst.Addr() == h.Addr
			})
			if d := cmp.Diff([]any{o, i, pk}, []any{h.Traffic.OutRate, h.Traffic.InRate, h.Traffic.Peak}); d != "" {
				t.Errorf("at %d remote %v (-brute +got):\n%s", at, h.Addr, d)
			}
		}
		if len(r.Pairs) != 7 || len(r.Remotes) != 4 || len(r.Flows) != 49 {
			t.Errorf("got %d pairs %d remotes %d flows, want 7, 4, 49", len(r.Pairs), len(r.Remotes), len(r.Flows))
		}
		// With flows folded into their pairs' aggregates (room for all 7),
		// pairs and remotes keep their exact traffic, rates and peaks.
		rf := run(t, pkts, Options{Local: local24, At: at, MaxFlows: 28})
		if rf.Meta.Folded == nil || rf.Meta.Folded.PortAggregates != 7 || rf.Meta.Folded.HostAggregates != 0 || len(rf.Flows) != 35 {
			t.Errorf("folded: %+v, %d flows", rf.Meta.Folded, len(rf.Flows))
		}
		pairs := func(ps []HostPair) []HostPair {
			out := slices.Clone(ps)
			for i := range out {
				out[i].Flows = 0
			}
			return out
		}
		remotes := func(hs []RemoteHost) []RemoteHost {
			out := slices.Clone(hs)
			for i := range out {
				out[i].Flows = 0
			}
			return out
		}
		opt := cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})
		if d := cmp.Diff(pairs(r.Pairs), pairs(rf.Pairs), opt); d != "" {
			t.Errorf("at %d: folding changed the pairs (-all +folded):\n%s", at, d)
		}
		if d := cmp.Diff(remotes(r.Remotes), remotes(rf.Remotes), opt); d != "" {
			t.Errorf("at %d: folding changed the remotes (-all +folded):\n%s", at, d)
		}
		if d := cmp.Diff(r.Totals, rf.Totals); d != "" {
			t.Errorf("at %d: folding changed the totals (-all +folded):\n%s", at, d)
		}
	}
}

// synthSource generates n packets over nflows flows between 100 local and
// nremotes remote IPv4 hosts (uniformly random flows, 600 s), like
// bench/gen, without holding them in memory.
type synthSource struct {
	memSource
	n, i  int
	rng   *rand.Rand
	flows [][2]netip.AddrPort
}

func newSynthSource(n, nflows, nremotes int) *synthSource {
	rng := rand.New(rand.NewPCG(3, 4))
	s := &synthSource{n: n, rng: rng, flows: make([][2]netip.AddrPort, nflows)}
	for i := range s.flows {
		l := netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + rng.IntN(100))})
		ri := rng.IntN(nremotes)
		r := netip.AddrFrom4([4]byte{172, 16 + byte(ri>>16), byte(ri >> 8), byte(ri)})
		s.flows[i] = [2]netip.AddrPort{netip.AddrPortFrom(l, uint16(32768+rng.IntN(28000))), netip.AddrPortFrom(r, 443)}
	}
	return s
}

func (s *synthSource) Next(p *ingest.Packet) error {
	if s.i >= s.n {
		return io.EOF
	}
	f := s.flows[s.rng.IntN(len(s.flows))]
	src, dst := f[0], f[1]
	if s.rng.IntN(2) == 0 {
		src, dst = dst, src
	}
	w := 62 + s.rng.IntN(1453)
	*p = ingest.Packet{TS: t0 + int64(s.i)*600*nsPerSec/int64(s.n), WireLen: w, CapLen: min(w, 96), IPLen: w - 14,
		Kind: ingest.KindIP, SLLType: -1, Tuple: ingest.FiveTuple{Proto: ingest.ProtoTCP, Src: src, Dst: dst}}
	s.i++
	return nil
}

// BenchmarkAnalyze measures the whole engine (classification, flow table,
// windows, peaks, result building) on a generated source; ns/packet is the
// figure to compare (generating a packet costs a few tens of ns).
func BenchmarkAnalyze(b *testing.B) {
	for _, bc := range []struct {
		name                 string
		pkts, flows, remotes int
	}{
		{"2M-pkts-200k-flows", 2_000_000, 200_000, 10_000},
		{"2M-pkts-20k-flows", 2_000_000, 20_000, 2_000},
	} {
		for _, serial := range []bool{true, false} {
			mode := "pipelined"
			if serial {
				mode = "serial"
			}
			b.Run(bc.name+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					src := newSynthSource(bc.pkts, bc.flows, bc.remotes)
					if _, err := Analyze(context.Background(), src, Options{Local: local24, Serial: serial}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.pkts), "ns/packet")
			})
		}
	}
}

// progressCalls returns an Options.Progress that records the packet counts
// it is called with, checking the times.
func progressCalls(t *testing.T, calls *[]int64) func(n, ts int64) {
	return func(n, ts int64) {
		*calls = append(*calls, n)
		if ts < t0 {
			t.Errorf("progress ts %d before the capture", ts)
		}
	}
}

func TestAnalyzeProgress(t *testing.T) {
	var calls []int64
	src := newSynthSource(progressEvery+10, 100, 10)
	r, err := Analyze(context.Background(), src, Options{Local: local24, Progress: progressCalls(t, &calls)})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] < progressEvery || calls[0] > progressEvery+chunkLen {
		t.Errorf("progress calls = %v, want one near %d", calls, progressEvery)
	}
	if err := r.Validate(); err != nil {
		t.Error(err)
	}
}

// FlowIntervals (export --flows) reports progress as Analyze does.
func TestFlowIntervalsProgress(t *testing.T) {
	var calls []int64
	src := newSynthSource(progressEvery+10, 100, 10)
	_, err := FlowIntervals(context.Background(), src, Options{Local: local24, Progress: progressCalls(t, &calls)},
		time.Minute, func([]FlowInterval) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] != progressEvery {
		t.Errorf("progress calls = %v, want one at %d", calls, progressEvery)
	}
}

const corpusDir = "../../shared/corpus"

// Every capture of the shared corpus that ingest can open analyses to a
// valid Result, identical with and without the pipeline; pair totals are
// compared with tshark's exact per-pair counts (CONV_EXACT.tsv) and the
// agreement is logged (tshark also counts tunnelled and ICMP-quoted IP
// headers as conversations, and decodes differently in places).
// nextOnly hides a source's NextSummaries: every frame is read by Next.
type nextOnly struct{ ingest.PacketSource }

func TestAnalyzeCorpus(t *testing.T) {
	mf, err := os.Open(filepath.Join(corpusDir, "MANIFEST.tsv"))
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	defer mf.Close()
	type pairKey struct {
		file string
		a, b netip.Addr
	}
	type pairVal struct{ frames, bytes int64 }
	oracle := map[pairKey]pairVal{}
	if cf, err := os.Open(filepath.Join(corpusDir, "CONV_EXACT.tsv")); err == nil {
		sc := bufio.NewScanner(cf)
		for sc.Scan() {
			f := strings.Split(sc.Text(), "\t")
			if len(f) < 8 || f[0] == "file" {
				continue
			}
			a, err1 := netip.ParseAddr(f[2])
			b, err2 := netip.ParseAddr(f[3])
			if err1 != nil || err2 != nil {
				continue
			}
			if b.Less(a) {
				a, b = b, a
			}
			n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
			k := pairKey{f[0], a, b}
			v := oracle[k]
			v.frames += n(f[4]) + n(f[6])
			v.bytes += n(f[5]) + n(f[7])
			oracle[k] = v
		}
		cf.Close()
	}
	var files, opened, pairs, agree int
	sc := bufio.NewScanner(mf)
	for sc.Scan() {
		name, _, _ := strings.Cut(sc.Text(), "\t")
		if name == "file" || name == "" {
			continue
		}
		files++
		// Serial, pipelined, and pipelined with every frame read by Next
		// (no Summaries).
		var results [3]*Result
		for i, serial := range []bool{true, false, false} {
			src, err := ingest.OpenCapture(filepath.Join(corpusDir, name), ingest.Options{})
			if err != nil {
				break
			}
			var in ingest.PacketSource = src
			if i == 2 {
				in = nextOnly{src}
			}
			r, err := Analyze(context.Background(), in, Options{Serial: serial})
			src.Close()
			if r == nil {
				t.Fatalf("%s: nil result (err %v)", name, err)
			}
			if verr := r.Validate(); verr != nil {
				t.Errorf("%s: %v", name, verr)
			}
			results[i] = r
		}
		if results[0] == nil || results[1] == nil || results[2] == nil {
			continue
		}
		opened++
		opts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{}), cmpopts.IgnoreFields(ingest.Diagnostic{}, "Err")}
		if d := cmp.Diff(results[0], results[1], opts...); d != "" {
			t.Errorf("%s: serial and pipelined differ:\n%s", name, d)
		}
		if d := cmp.Diff(results[2], results[1], opts...); d != "" {
			t.Errorf("%s: reading by Next and by Summaries differ:\n%s", name, d)
		}
		// Oriented pairs put the local address first; tshark's are by address.
		ours := map[pairKey]pairVal{}
		for _, p := range results[0].Pairs {
			a, b := p.A, p.B
			if b.Less(a) {
				a, b = b, a
			}
			k := pairKey{name, a, b}
			v := ours[k]
			v.frames += p.Traffic.Total().Packets
			v.bytes += p.Traffic.Total().Wire
			ours[k] = v
		}
		for k, v := range ours {
			pairs++
			if w, ok := oracle[k]; ok && w == v {
				agree++
			} else if os.Getenv("FLOWBLAME_CORPUS_DEBUG") != "" {
				t.Logf("%s %v-%v: ours %d frames/%d bytes, tshark %d/%d", name, k.a, k.b, v.frames, v.bytes, w.frames, w.bytes)
			}
		}
	}
	t.Logf("%d corpus files, %d opened; %d of %d host pairs match tshark's exact frame and byte counts", files, opened, agree, pairs)
	if opened == 0 {
		t.Fatal("no corpus file could be opened")
	}
}

// TestAnalyzeInterfaces: Options.Interfaces keeps frames of the named
// interfaces (and of unnamed ones) and counts the rest apart.
func TestAnalyzeInterfaces(t *testing.T) {
	on := func(p ingest.Packet, i int) ingest.Packet { p.Iface = i; return p }
	pkts := []ingest.Packet{
		on(pkt(0, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 100), 0),   // eth0
		on(pkt(100, ingest.ProtoTCP, "172.17.0.2:1", "203.0.113.5:2", 100), 1),   // docker0: the same traffic before NAT
		on(pkt(200, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 300), 0), // eth0
		on(pkt(300, ingest.ProtoUDP, "198.51.100.1:5", "203.0.113.6:6", 50), 2),  // unnamed
	}
	ifs := []ingest.Interface{{Name: "eth0"}, {Name: "docker0"}, {}}
	for _, serial := range []bool{true, false} {
		r, err := Analyze(context.Background(), &memSource{pkts: pkts, ifs: ifs}, Options{Local: local24, Interfaces: []string{"eth0"}, Serial: serial})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		if r.Meta.Packets != 3 || r.Meta.OtherInterfaces != (Counts{Packets: 1, Wire: 100, IP: 86, Captured: 96}) {
			t.Errorf("serial=%v: Packets %d, OtherInterfaces %+v", serial, r.Meta.Packets, r.Meta.OtherInterfaces)
		}
		if got := r.Totals.All.Out.Wire; got != 450 {
			t.Errorf("serial=%v: TX %d, want 450 (eth0 and the unnamed interface)", serial, got)
		}
		if !slices.Equal(r.Meta.OnlyInterfaces, []string{"eth0"}) {
			t.Errorf("OnlyInterfaces %v", r.Meta.OnlyInterfaces)
		}
	}
}

// TestAnalyzeMultiInterface: a flow seen on two interfaces of different
// names is reported; the same name twice (rotated files) is not.
func TestAnalyzeMultiInterface(t *testing.T) {
	on := func(p ingest.Packet, i int) ingest.Packet { p.Iface = i; return p }
	a := pkt(0, ingest.ProtoTCP, "198.51.100.1:1", "203.0.113.5:2", 100)
	b := pkt(1, ingest.ProtoUDP, "198.51.100.1:3", "203.0.113.5:4", 100)
	pkts := []ingest.Packet{on(a, 0), on(a, 1), on(a, 1), on(b, 0), on(b, 2), on(b, 3)}
	ifs := []ingest.Interface{{Name: "docker0"}, {Name: "veth1"}, {Name: "docker0"}, {}}
	for _, serial := range []bool{true, false} {
		r, err := Analyze(context.Background(), &memSource{pkts: pkts, ifs: ifs}, Options{Local: local24, Serial: serial})
		if err != nil {
			t.Fatal(err)
		}
		if r.Meta.MultiInterfaceFlows != 1 || r.Meta.MultiInterfacePackets != 2 {
			t.Errorf("serial=%v: MultiInterfaceFlows %d, packets %d; want 1, 2", serial, r.Meta.MultiInterfaceFlows, r.Meta.MultiInterfacePackets)
		}
	}
}

// TestAnalyzeMaxFlows checks folding past Options.MaxFlows: known flows stay
// exact, new ones go to their host pair's aggregate while there is room for
// those (MaxFlows/4), then to one aggregate per protocol, IP version and
// orientation; totals and the pair and remote tables still add up.
func TestAnalyzeMaxFlows(t *testing.T) {
	pkts := []ingest.Packet{
		pkt(0, 6, "198.51.100.10:1000", "203.0.113.1:80", 100),
		pkt(1, 6, "198.51.100.10:1001", "203.0.113.1:80", 100),
		pkt(2, 6, "198.51.100.10:1002", "203.0.113.2:443", 100),
		pkt(3, 17, "198.51.100.10:53", "203.0.113.3:53", 100),
		pkt(1000, 6, "198.51.100.10:1003", "203.0.113.1:80", 200),    // 5th flow: the pair's aggregate
		pkt(1001, 6, "203.0.113.1:80", "198.51.100.10:1004", 300),    // into it too (RX)
		pkt(1002, 6, "198.51.100.10:1005", "203.0.113.9:80", 400),    // no room for a 2nd pair aggregate
		pkt(1003, 17, "203.0.113.7:5000", "198.51.100.10:9999", 500), // RX, UDP
		pkt(1004, 6, "198.51.100.10:1000", "203.0.113.1:80", 600),    // a known flow stays exact
		pkt(1005, 6, "10.9.9.9:1", "10.9.9.8:2", 700),                // neither end local
		pkt(1006, 6, "10.9.9.8:2", "10.9.9.9:1", 800),                // its reply: the same aggregate, A→B
	}
	opts := Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, MaxFlows: 4}
	r := run(t, pkts, opts)
	byKey := map[string]Flow{}
	for _, f := range r.Flows {
		byKey[fmt.Sprintf("%d %s %s %v %s", f.Key.Proto, f.Key.A, f.Key.B, f.Key.Oriented, f.Key.Folded)] = f
	}
	want := map[string][2]int64{ // out, in wire bytes
		"6 198.51.100.10:1000 203.0.113.1:80 true ":  {700, 0},
		"6 198.51.100.10:1001 203.0.113.1:80 true ":  {100, 0},
		"6 198.51.100.10:1002 203.0.113.2:443 true ": {100, 0},
		"17 198.51.100.10:53 203.0.113.3:53 true ":   {100, 0},
		"6 198.51.100.10:0 203.0.113.1:0 true ports": {200, 300},
		"6 0.0.0.0:0 0.0.0.0:0 true hosts":           {400, 0},
		"17 0.0.0.0:0 0.0.0.0:0 true hosts":          {0, 500},
		"6 0.0.0.0:0 0.0.0.0:0 false hosts":          {1500, 0},
	}
	if len(byKey) != len(want) {
		t.Errorf("flows: %q", slices.Sorted(maps.Keys(byKey)))
	}
	for k, w := range want {
		f, ok := byKey[k]
		if !ok {
			t.Errorf("no flow %q", k)
			continue
		}
		if got := [2]int64{f.Traffic.Out.Wire, f.Traffic.In.Wire}; got != w {
			t.Errorf("flow %q: out/in %v, want %v", k, got, w)
		}
	}
	fs := r.Meta.Folded
	if fs == nil {
		t.Fatal("Meta.Folded is nil")
	}
	if fs.MaxFlows != 4 || fs.First != t0+1000*1e6 || fs.PortAggregates != 1 || fs.HostAggregates != 3 ||
		fs.Ports.Packets != 2 || fs.Ports.Wire != 500 || fs.Hosts.Packets != 4 || fs.Hosts.Wire != 2400 {
		t.Errorf("Meta.Folded = %+v", *fs)
	}
	var pair *HostPair
	folded := 0
	for i := range r.Pairs {
		p := &r.Pairs[i]
		if p.A == netip.MustParseAddr("198.51.100.10") && p.B == netip.MustParseAddr("203.0.113.1") {
			pair = p
		}
		if p.Folded {
			folded++
		}
	}
	if pair == nil || pair.Flows != 3 || pair.Traffic.Out.Wire != 1000 || pair.Traffic.In.Wire != 300 {
		t.Errorf("the aggregate does not count in its pair: %+v", pair)
	}
	if folded != 2 { // oriented (TCP and UDP share it) and unoriented
		t.Errorf("%d folded pairs, want 2", folded)
	}
	var fr []RemoteHost
	for _, h := range r.Remotes {
		if h.Folded {
			fr = append(fr, h)
		}
	}
	if len(fr) != 1 || fr[0].Traffic.Out.Wire != 400 || fr[0].Traffic.In.Wire != 500 || fr[0].Flows != 2 {
		t.Errorf("folded remotes %+v", fr)
	}
	var diag bool
	for _, d := range r.Diagnostics {
		diag = diag || (d.Where == "flows" && strings.Contains(d.Msg, "more than 4 flows") && d.Bytes == 2900)
	}
	if !diag {
		t.Errorf("no folding diagnostic in %+v", r.Diagnostics)
	}

	// With no limit, every flow is its own.
	opts.MaxFlows = 0
	if r := run(t, pkts, opts); len(r.Flows) != 9 || r.Meta.Folded != nil {
		t.Errorf("without MaxFlows: %d flows, Folded %+v", len(r.Flows), r.Meta.Folded)
	}
}

// TestFlowIntervalsStream: records come interval by interval, as soon as
// the capture is one interval past an interval's end; a packet later than
// that is a further record of its interval, counted as late.
func TestFlowIntervalsStream(t *testing.T) {
	a, b := "198.51.100.1:1000", "203.0.113.1:80"
	pkts := []ingest.Packet{
		pkt(0, 6, a, b, 100),    // interval 0
		pkt(500, 6, b, a, 200),  // interval 0, RX
		pkt(1500, 6, a, b, 300), // interval 1
		pkt(2100, 6, a, b, 400), // interval 2: interval 0 is now done
		pkt(900, 6, a, b, 50),   // late for interval 0 (already written)
		pkt(3200, 6, a, b, 500), // interval 3: intervals 1 and the late 0 are done
	}
	var batches [][]FlowInterval
	st, err := FlowIntervals(context.Background(), &memSource{pkts: pkts},
		Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, time.Second,
		func(ivs []FlowInterval) error { batches = append(batches, slices.Clone(ivs)); return nil })
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		start   int64
		out, in int64
	}
	var got [][]rec
	for _, b := range batches {
		var rs []rec
		for _, iv := range b {
			rs = append(rs, rec{(iv.Start - t0) / 1e9, iv.Out.Wire, iv.In.Wire})
		}
		got = append(got, rs)
	}
	want := [][]rec{{{0, 100, 200}}, {{0, 50, 0}, {1, 300, 0}}, {{2, 400, 0}, {3, 500, 0}}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(rec{})); d != "" {
		t.Errorf("batches (-want +got):\n%s", d)
	}
	if st.Late != 1 || st.Records != 5 {
		t.Errorf("stats %+v, want 1 late, 5 records", st)
	}
	// After a clock step back, the capture's later packets are aggregated
	// per flow and interval again, not written one record each.
	var stepped []ingest.Packet
	for i := range 40 {
		stepped = append(stepped, pkt(int64(i*100), 6, a, b, 100))
	}
	for i := range 40 { // one hour earlier
		stepped = append(stepped, pkt(int64(i*100)-3_600_000, 6, a, b, 100))
	}
	n := 0
	st, err = FlowIntervals(context.Background(), &memSource{pkts: stepped},
		Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}, time.Second,
		func(ivs []FlowInterval) error { n += len(ivs); return nil })
	if err != nil || n != 8 || st.Records != 8 || st.Late != 40 {
		t.Errorf("clock step: %d records, %+v, %v; want 8 (4 seconds before, 4 after), 40 late", n, st, err)
	}
	// An emit error stops the export.
	boom := errors.New("disk full")
	if _, err := FlowIntervals(context.Background(), &memSource{pkts: pkts}, Options{}, time.Second,
		func([]FlowInterval) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: got %v", err)
	}
}

// TestAnalyzeMaxFlowsRandom: with random traffic (IPv4 and IPv6, known and
// unknown direction, several protocols) and small limits, the result stays
// valid (totals, pairs and remotes add up), serial and pipelined agree, and
// folding never changes the totals.
func TestAnalyzeMaxFlowsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	addrs := []string{"198.51.100.1", "198.51.100.2", "203.0.113.1", "203.0.113.2", "203.0.113.3", "10.0.0.1", "[2001:db8::1]", "[2001:db8:1::2]"}
	var pkts []ingest.Packet
	for i := range 4000 {
		src, dst := addrs[rng.IntN(len(addrs))], addrs[rng.IntN(len(addrs))]
		if (src[0] == '[') != (dst[0] == '[') {
			continue
		}
		proto := []uint8{6, 17, 1, 47}[rng.IntN(4)]
		pkts = append(pkts, pkt(int64(i*7), proto, fmt.Sprintf("%s:%d", src, 1+rng.IntN(40)), fmt.Sprintf("%s:%d", dst, 1+rng.IntN(3)), 60+rng.IntN(1400)))
	}
	local := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/64")}
	all := run(t, pkts, Options{Local: local})
	for _, lim := range []int{1, 2, 3, 7, 50, 400} {
		r := run(t, pkts, Options{Local: local, MaxFlows: lim})
		if d := cmp.Diff(all.Totals, r.Totals); d != "" {
			t.Errorf("MaxFlows %d changed the totals:\n%s", lim, d)
		}
		if r.Meta.Folded == nil || r.Meta.Folded.PortAggregates > max(lim/4, 1) || len(r.Flows) > lim+max(lim/4, 1)+16 {
			t.Errorf("MaxFlows %d: %d flows, %+v", lim, len(r.Flows), r.Meta.Folded)
		}
	}
}

// TestTimeJumpDiagnostics: the largest step forward and back of a day or
// more between consecutive frames are reported; smaller ones are not.
func TestTimeJumpDiagnostics(t *testing.T) {
	const day = 24 * 3600 * 1000 // ms
	pkts := []ingest.Packet{
		pkt(0, ingest.ProtoUDP, "198.51.100.1:1", "203.0.113.5:2", 100),
		pkt(2*day, ingest.ProtoUDP, "198.51.100.1:1", "203.0.113.5:2", 100),          // forward 2 days
		pkt(5*day, ingest.ProtoUDP, "198.51.100.1:1", "203.0.113.5:2", 100),          // forward 3 days: the largest
		pkt(5*day-3600_000, ingest.ProtoUDP, "198.51.100.1:1", "203.0.113.5:2", 100), // back an hour: not reported
	}
	jumps := func(what string) []string {
		var got []string
		for _, d := range run(t, pkts, Options{Local: local24}).Diagnostics {
			if strings.Contains(d.Msg, "capture time jumps "+what) {
				got = append(got, d.Where+": "+d.Msg[:strings.Index(d.Msg, " (")])
			}
		}
		return got
	}
	if got, want := jumps(""), []string{"frame 3: capture time jumps forward by 3.0 days"}; !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
	pkts = append(pkts, pkt(-400*day, ingest.ProtoUDP, "198.51.100.1:1", "203.0.113.5:2", 100)) // back 405 days
	if got, want := jumps("back"), []string{"frame 5: capture time jumps back by 1.1 years"}; !slices.Equal(got, want) {
		t.Errorf("diagnostics %q, want %q", got, want)
	}
}

// portOwners owns each listed local port by a process; other ports are
// never seen.
type portOwners map[uint16]int

func (o portOwners) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	if pid, ok := o[local.Port()]; ok {
		return Attribution{Proc: ingest.ProcKey{PID: pid, Start: 1}, Comm: fmt.Sprint("p", pid), Method: MethodExact, Confidence: ConfHigh}, ts - nsPerSec, ts + 100*nsPerSec
	}
	return Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNeverSeen}, ts, ts + 100*nsPerSec
}

// TestFoldedPairOwner: an aggregate of a host pair's flows past MaxFlows is
// charged to the one process that owned the pair's earlier flows (method
// folded-pair, low confidence); with two processes, or none, it stays
// unattributed (cause folded).
func TestFoldedPairOwner(t *testing.T) {
	owners := portOwners{}
	var pkts []ingest.Packet
	flow := func(ms int64, lport int, remote string, pid, n int) {
		if pid > 0 {
			owners[uint16(lport)] = pid
		}
		pkts = append(pkts, pkt(ms, ingest.ProtoUDP, fmt.Sprintf("198.51.100.10:%d", lport), remote, n))
	}
	for i := range 6 { // a flood bot: a new flow per packet to 203.0.113.1
		flow(int64(i), 1000+i, fmt.Sprintf("203.0.113.1:%d", 7000+i), 66, 100)
	}
	for i := range 4 { // two programs talk to 203.0.113.2
		flow(int64(10+i), 2000+i, fmt.Sprintf("203.0.113.2:%d", 80+i), 7+i%2, 100)
	}
	for i := range 2 { // nobody known talks to 203.0.113.3
		flow(int64(20+i), 3000+i, fmt.Sprintf("203.0.113.3:%d", 80+i), 0, 100)
	}
	// Past 12 flows: one new flow of each pair (the aggregates), the bot's twice.
	flow(1000, 1100, "203.0.113.1:9000", 66, 1000)
	flow(1001, 1101, "203.0.113.1:9001", 66, 1000)
	flow(1002, 2100, "203.0.113.2:90", 7, 1000)
	flow(1003, 3100, "203.0.113.3:90", 0, 1000)
	r := run(t, pkts, Options{Local: local24, Attributor: owners, MaxFlows: 12})
	if fs := r.Meta.Folded; fs == nil || fs.PortAggregates != 3 || fs.HostAggregates != 0 {
		t.Fatalf("Meta.Folded = %+v, want 3 aggregates by host pair", fs)
	}
	got := map[string]string{}
	for _, f := range r.Flows {
		if f.Key.Folded == "" {
			continue
		}
		if len(f.Owners) != 1 {
			t.Fatalf("aggregate %v has %d owners", f.Key, len(f.Owners))
		}
		o := f.Owners[0].Owner
		got[f.Key.B.Addr().String()] = fmt.Sprintf("%d %s %s %s %d", o.Proc.PID, o.Method, o.Confidence, o.Cause, f.Owners[0].Traffic.Wire)
	}
	want := map[string]string{
		"203.0.113.1": "66 folded-pair low  2000",
		"203.0.113.2": "0 none none folded 1000",
		"203.0.113.3": "0 none none folded 1000",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("aggregate owners (-want +got):\n%s", d)
	}
	for _, p := range r.Processes {
		if p.Key.PID == 66 && (p.Traffic.Out.Wire != 2600 || len(p.ByMethod) != 2) {
			t.Errorf("the bot: %d B out, by method %+v; want 2600 B, exact and folded-pair", p.Traffic.Out.Wire, p.ByMethod)
		}
	}
}

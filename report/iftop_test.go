package report

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

var update = flag.Bool("update", false, "rewrite golden files under fixtures/")

// iftopFixtures is fixtures/iftop relative to this package.
const iftopFixtures = "../fixtures/iftop"

// memSource is a PacketSource over packets held in memory.
type memSource struct {
	pkts []ingest.Packet
	i    int
	name string
}

func (m *memSource) Next(p *ingest.Packet) error {
	if m.i >= len(m.pkts) {
		return io.EOF
	}
	*p = m.pkts[m.i]
	m.i++
	return nil
}
func (m *memSource) Interfaces() []ingest.Interface {
	return []ingest.Interface{{Name: m.name, Link: ingest.LinkEthernet}}
}
func (m *memSource) Diagnostics() []ingest.Diagnostic { return nil }
func (m *memSource) Stats() ingest.SourceStats        { return ingest.SourceStats{} }
func (m *memSource) Close() error                     { return nil }

var (
	macA     = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB     = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	macC     = [6]byte{0x02, 0, 0, 0, 0, 0x0c}
	macD     = [6]byte{0x02, 0, 0, 0, 0, 0x0d}
	ifaceV4  = netip.MustParseAddr("198.51.100.1")
	ifaceV6  = netip.MustParseAddr("2001:db8:99::1")
	baseTime = int64(1_700_000_000) * 1e9
)

// gen describes n packets of one stream: the first at second At, then one
// every Every seconds. IPLen is the IP length iftop counts.
type gen struct {
	At, Every float64
	N         int
	Src, Dst  string // "addr:port" or bare addresses (ports 0)
	Proto     uint8
	IPLen     int
	SrcMAC    [6]byte
	DstMAC    [6]byte
}

func parseEnd(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap
	}
	return netip.AddrPortFrom(netip.MustParseAddr(s), 0)
}

// build expands streams into ingest packets sorted by time (stable).
func build(t *testing.T, gens []gen) []ingest.Packet {
	t.Helper()
	var out []ingest.Packet
	for _, g := range gens {
		proto := g.Proto
		if proto == 0 {
			proto = ingest.ProtoUDP
		}
		for i := 0; i < g.N; i++ {
			ts := baseTime + int64((g.At+float64(i)*g.Every)*1e9)
			out = append(out, ingest.Packet{
				TS: ts, WireLen: g.IPLen + 14, CapLen: g.IPLen + 14, IPLen: g.IPLen,
				Link: ingest.LinkEthernet, Kind: ingest.KindIP, HasMAC: true,
				SrcMAC: g.SrcMAC, DstMAC: g.DstMAC, SLLType: -1,
				Tuple: ingest.FiveTuple{Proto: proto, Src: parseEnd(t, g.Src), Dst: parseEnd(t, g.Dst)},
			})
		}
	}
	// insertion sort keeps generation order for equal times
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].TS < out[j-1].TS; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func out4(at, every float64, n int, sp, dp string, l int) gen {
	return gen{At: at, Every: every, N: n, Src: "198.51.100.1:" + sp, Dst: "198.51.100.2:" + dp, IPLen: l, SrcMAC: macA, DstMAC: macB}
}

func in4(at, every float64, n int, sp, dp string, l int) gen {
	return gen{At: at, Every: every, N: n, Src: "198.51.100.2:" + sp, Dst: "198.51.100.1:" + dp, IPLen: l, SrcMAC: macB, DstMAC: macA}
}

// Scenarios of spec/iftop.md §1.11 (A burst, B steady, C IPv6, E foreign).
func iftopScenarios(t *testing.T) map[string][]ingest.Packet {
	return map[string][]ingest.Packet{
		// A: at +3.5 s 10×1000 B out and 5×500 B in, trigger at +12.6 s.
		"burst": build(t, []gen{
			out4(3.5, 0.01, 10, "5000", "6000", 1000),
			in4(3.55, 0.01, 5, "6001", "5001", 500),
			in4(12.6, 0, 1, "6001", "5001", 100),
		}),
		// B: 100 pps×1000 B out, 50 pps×500 B in, 20 pps×200 B out for
		// 6 s; the first packet of second 12 triggers the print.
		"steady": build(t, []gen{
			out4(0.305, 0.01, 1200, "5000", "6000", 1000),
			in4(0.31, 0.02, 600, "6000", "5000", 500),
			out4(4.3, 0.05, 120, "5002", "6002", 200),
		}),
		// C: IPv6 UDP plen 960 out ×8, plen 460 in ×4, NS/NA (72 B) without
		// ports; trigger at +6.4 s.
		"ipv6": build(t, []gen{
			{At: 2.5, Every: 0.01, N: 8, Src: "[2001:db8:99::1]:5000", Dst: "[2001:db8:99::2]:6000", IPLen: 1000, SrcMAC: macA, DstMAC: macB},
			{At: 2.6, Every: 0.01, N: 4, Src: "[2001:db8:99::2]:6000", Dst: "[2001:db8:99::1]:5000", IPLen: 500, SrcMAC: macB, DstMAC: macA},
			{At: 2.45, N: 1, Src: "2001:db8:99::1", Dst: "ff02::1:ff00:2", Proto: ingest.ProtoICMPv6, IPLen: 72, SrcMAC: macA, DstMAC: [6]byte{0x33, 0x33, 0xff, 0, 0, 2}},
			{At: 2.46, N: 1, Src: "2001:db8:99::2", Dst: "2001:db8:99::1", Proto: ingest.ProtoICMPv6, IPLen: 72, SrcMAC: macB, DstMAC: macA},
			{At: 2.47, N: 1, Src: "fe80::1", Dst: "ff02::2", Proto: ingest.ProtoICMPv6, IPLen: 56, SrcMAC: macA, DstMAC: [6]byte{0x33, 0x33, 0, 0, 0, 2}},
			{At: 6.4, N: 1, Src: "[2001:db8:99::2]:6000", Dst: "[2001:db8:99::1]:5000", IPLen: 100, SrcMAC: macB, DstMAC: macA},
		}),
		// E: frames between two other hosts (MACs not ours): the
		// little-endian IN_MULTICAST test and the LE uint32 compare.
		"foreign": build(t, []gen{
			{At: 2.5, Every: 0.01, N: 2, Src: "198.51.100.240:3333", Dst: "224.0.0.9:4444", IPLen: 100, SrcMAC: macC, DstMAC: [6]byte{1, 0, 0x5e, 0, 0, 9}},
			{At: 2.6, Every: 0.01, N: 1, Src: "198.51.100.240:1111", Dst: "198.51.100.230:2222", IPLen: 100, SrcMAC: macC, DstMAC: macD},
			in4(4.5, 0, 1, "6000", "5000", 100),
		}),
	}
}

func TestRenderIftopGolden(t *testing.T) {
	scen := iftopScenarios(t)
	base := analyze.IftopOptions{LocalIPv4: ifaceV4, LocalIPv6: ifaceV6, LocalMAC: macA[:], Start: baseTime, Lines: 100, Interface: "veth-a"}
	with := func(f func(o *analyze.IftopOptions)) analyze.IftopOptions { o := base; f(&o); return o }
	tests := []struct {
		golden   string
		scenario string
		opts     analyze.IftopOptions
		reached  bool
		contains []string // hand-verified against spec/iftop.md §1.11
	}{
		{"burst.P.s12", "burst", with(func(o *analyze.IftopOptions) { o.At = 12; o.PortDisplay = analyze.IftopPortsOn }), true, []string{
			"   1 198.51.100.1:5000                        =>     39.1Kb     19.5Kb     19.5Kb     9.77KB\n",
			"Total receive rate:                                  9.77Kb     4.88Kb     4.88Kb\n",
			"Peak rate (sent/received/total):                     39.1Kb     9.77Kb     48.8Kb\n",
			"Cumulative (sent/received/total):                    9.77KB     2.44KB     12.2KB\n",
		}},
		{"burst.s12", "burst", with(func(o *analyze.IftopOptions) { o.At = 12 }), true, []string{
			"   1 198.51.100.1                             =>     39.1Kb     19.5Kb     19.5Kb     9.77KB\n",
			"     198.51.100.2                             <=     9.77Kb     4.88Kb     4.88Kb     2.44KB\n",
		}},
		{"burst.s20.end", "burst", with(func(o *analyze.IftopOptions) { o.At = 20 }), false, nil},
		{"steady.P.s12", "steady", with(func(o *analyze.IftopOptions) { o.At = 12; o.PortDisplay = analyze.IftopPortsOn }), true, []string{
			"   1 198.51.100.1:5000                        =>      781Kb      781Kb", // 100000 B/s
		}},
		{"steady.B.s12", "steady", with(func(o *analyze.IftopOptions) { o.At = 12; o.Bytes = true }), true, []string{
			"   1 198.51.100.1                             =>     98.2KB      100KB", // (200000+1200)/2 B/s; 1024000/10 B/s
		}},
		{"steady.F.s12", "steady", with(func(o *analyze.IftopOptions) {
			o.At = 12
			o.PortDisplay = analyze.IftopPortsOn
			o.NetFilter4 = netip.MustParsePrefix("198.51.100.2/32")
		}), true, []string{
			"   1 198.51.100.2:6000                        =>",
			"     198.51.100.1:5000                        <=      781Kb",
		}},
		{"steady.P.o2s.L1.s12", "steady", with(func(o *analyze.IftopOptions) {
			o.At = 12
			o.PortDisplay = analyze.IftopPortsOn
			o.Order = analyze.IftopOrder2s
			o.Lines = 1
		}), true, nil},
		{"steady.odest.s12", "steady", with(func(o *analyze.IftopOptions) { o.At = 12; o.Order = analyze.IftopOrderDestination }), true, nil},
		{"ipv6.P.s6", "ipv6", with(func(o *analyze.IftopOptions) { o.At = 6; o.PortDisplay = analyze.IftopPortsOn }), true, []string{
			"[2001:db8:99::1]:5000                    =>     31.2Kb     15.6Kb     15.6Kb     7.81KB\n",
			"     ff02::1:ff00:2                           <=         0b         0b         0b         0B\n",
		}},
		{"ipv6.P.l.s6", "ipv6", with(func(o *analyze.IftopOptions) { o.At = 6; o.PortDisplay = analyze.IftopPortsOn; o.LinkLocal = true }), true, []string{
			"fe80::1",
		}},
		{"foreign.P.s4", "foreign", with(func(o *analyze.IftopOptions) { o.At = 4; o.PortDisplay = analyze.IftopPortsOn }), true, []string{
			"198.51.100.240:3333                      =>       800b",
			"     224.0.0.9:4444                           <=         0b",
			"198.51.100.230:2222                      =>         0b",
			"     198.51.100.240:1111                      <=       400b",
			"Total send rate:                                         0b",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			src := &memSource{pkts: scen[tc.scenario], name: "veth-a"}
			scr, err := analyze.Iftop(context.Background(), src, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if scr.Reached != tc.reached {
				t.Errorf("Reached = %v, want %v (warning %q)", scr.Reached, tc.reached, scr.Warning())
			}
			var buf bytes.Buffer
			if err := RenderIftop(&buf, scr); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			for _, c := range tc.contains {
				if !strings.Contains(got, c) {
					t.Errorf("output lacks %q", c)
				}
			}
			for _, line := range strings.Split(strings.TrimSuffix(got, "\n\n"), "\n")[1:] {
				want := 92
				if strings.HasPrefix(line, "Total") || strings.HasPrefix(line, "Peak") || strings.HasPrefix(line, "Cumulative") {
					want = 81
				}
				if len(line) != want {
					t.Errorf("line has %d columns, want %d: %q", len(line), want, line)
				}
			}
			checkGolden(t, filepath.Join(iftopFixtures, tc.golden+".txt"), got)
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

func TestIftopSize(t *testing.T) {
	tests := []struct {
		n     float32
		bytes bool
		want  string
	}{
		{0, false, "    0b"},
		{0, true, "    0B"},
		{124.95, false, " 1000b"}, // 999.6 b rounds up in %4.0f
		{125, false, " 0.98Kb"},
		{1280, false, " 10.0Kb"},    // 10240 b
		{1279.9, false, " 10.00Kb"}, // just under 10240 b
		{5000, false, " 39.1Kb"},
		{15.625 * 1024 / 8, false, " 15.6Kb"}, // ties to even
		{31.25 * 1024 / 8, false, " 31.2Kb"},
		{100000, false, "  781Kb"},
		{100000, true, " 97.7KB"},
		{12800, true, " 12.5KB"},
		{1 << 30, true, " 1.00GB"},
		{200 * (1 << 30), true, "  200GB"},
		{1e12, true, "  931GB"},
		{-3, false, "  -24b"},
	}
	for _, tc := range tests {
		if got := iftopSize(tc.n, tc.bytes); got != tc.want {
			t.Errorf("iftopSize(%v, %v) = %q, want %q", tc.n, tc.bytes, got, tc.want)
		}
	}
}

func TestIftopHost(t *testing.T) {
	tests := []struct {
		name string
		v6   bool
		host string
		port uint16
		want string
	}{
		{"v4", false, "198.51.100.1", 0, "198.51.100.1" + strings.Repeat(" ", 28)},
		{"v4 port", false, "198.51.100.1", 5000, "198.51.100.1:5000" + strings.Repeat(" ", 23)},
		{"v6 port", true, "2001:db8::1", 443, "[2001:db8::1]:443" + strings.Repeat(" ", 23)},
		{"v6 no port", true, "2001:db8::1", 0, "2001:db8::1" + strings.Repeat(" ", 29)},
		{"v6 long port", true, "2001:db8:1111:2222:3333:4444:5555:6666", 65535,
			"[2001:db8:1111:2222:3333:4444:5555:65535"},
		{"v6 too long", true, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", 0,
			"ffff:ffff:ffff:ffff:ffff:ffff:255.255.25"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := iftopHost(tc.v6, tc.host, tc.port)
			if got != tc.want || len(got) != 40 {
				t.Errorf("iftopHost = %q (len %d), want %q", got, len(got), tc.want)
			}
		})
	}
}

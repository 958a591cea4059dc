package analyze

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/internal/dnsmsg"
)

// dnsQuery and dnsResponse build DNS messages (internal/dnsmsg).
var dnsQuery, dnsResponse = dnsmsg.Query, dnsmsg.Response

func TestDNSQuestion(t *testing.T) {
	resp := dnsQuery(1, "www.example.com")
	resp[2] |= 0x80
	two := dnsQuery(1, "www.example.com")
	two[5] = 2
	ptr := dnsQuery(1, "www.example.com")[:12]
	ptr = append(ptr, 0xc0, 0x0c)
	for _, tc := range []struct {
		name        string
		msg         []byte
		first, zone string
		ok          bool
	}{
		{"plain", dnsQuery(1, "WWW.Example.COM"), "www", "example.com", true},
		{"deep", dnsQuery(1, "a8fk2l.cdn.eu.example.com"), "a8fk2l", "example.com", true},
		{"second-level ccTLD", dnsQuery(1, "x1.shop.example.co.uk"), "x1", "example.co.uk", true},
		{"two labels", dnsQuery(1, "abc.com"), "abc", "com", true},
		{"root label only after first", dnsQuery(1, "localhost"), "localhost", ".", true},
		{"cut by the snaplen", dnsQuery(1, "qqqqqqqqqqqqqqq.example.com")[:30], "qqqqqqqqqqqqqqq", "", true},
		{"first label cut", dnsQuery(1, "qqqqqqqqqqqqqqq.example.com")[:20], "", "", false},
		{"response", resp, "", "", false},
		{"two questions", two, "", "", false},
		{"pointer", ptr, "", "", false},
		{"short", []byte{1, 2, 3}, "", "", false},
	} {
		var buf dnsNameBuf
		first, zone, ok := dnsQuestion(tc.msg, &buf)
		if string(first) != tc.first || string(zone) != tc.zone || ok != tc.ok {
			t.Errorf("%s: %q %q %v, want %q %q %v", tc.name, first, zone, ok, tc.first, tc.zone, tc.ok)
		}
	}
}

func FuzzDNSQuestion(f *testing.F) {
	f.Add(dnsQuery(1, "www.example.com"))
	f.Add(dnsQuery(7, "a.b.c.d.e.f.co.uk")[:25])
	f.Fuzz(func(t *testing.T, b []byte) {
		var buf dnsNameBuf
		first, zone, ok := dnsQuestion(b, &buf)
		if ok != (len(first) > 0) || len(first) > 63 || len(zone) > len(b) {
			t.Fatalf("%q %q %v", first, zone, ok)
		}
	})
}

// TestRandomSubdomainFlood: 20 resolvers relay 1,000 queries a second for
// random names under example.com to the host, which answers each: an
// inbound DDoS named for what it is. The same rate of queries for a few
// names, reverse lookups, or random names from two addresses are not.
func TestRandomSubdomainFlood(t *testing.T) {
	queries := func(n, sources int, name func(i int) string) []ingest.Packet {
		var ps []ingest.Packet
		for i := range n {
			src := fmt.Sprintf("203.0.113.%d:%d", 10+i%sources, 1024+i%60000)
			q := pkt(int64(i), ingest.ProtoUDP, src, "198.51.100.7:53", 90)
			q.Payload = dnsQuery(uint16(i), name(i))
			ps = append(ps, q, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:53", src, 150))
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	random := func(i int) string { return fmt.Sprintf("%08x.example.com", uint32(i)*2654435761) }
	for _, tc := range []struct {
		name string
		pkts []ingest.Packet
		want string // "" = no ddos-target
	}{
		{"water torture", queries(8000, 20, random),
			"a random-subdomain (water torture) DNS flood (1000 queries/s for random names under example.com from 20 addresses)"},
		{"busy authoritative", queries(8000, 20, func(i int) string {
			return []string{"www", "mail", "api", "cdn", "img"}[i%5] + ".example.com"
		}), ""},
		{"reverse lookups", queries(8000, 20, func(i int) string { return fmt.Sprintf("%d.%d.113.203.in-addr.arpa", i%256, i/256%256) }), ""},
		{"two clients", queries(8000, 2, random), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := findingsOf(t, tc.pkts, nil, nil)
			var got *Finding
			for i := range fs {
				t.Logf("%s %s: %s %q", fs[i].Severity, fs[i].ID, fs[i].Summary, fs[i].Evidence)
				if fs[i].ID == RuleDDoSTarget {
					got = &fs[i]
				}
			}
			if tc.want == "" {
				if got != nil {
					t.Errorf("unexpected %s: %s", got.ID, got.Summary)
				}
				return
			}
			if got == nil || got.Severity != SevHigh || !strings.Contains(got.Summary, tc.want) ||
				!strings.Contains(got.Next, "response rate limiting") || !strings.Contains(strings.Join(got.Evidence, " "), "8000 of them for a first label not asked for before") {
				t.Fatalf("want a high %s with %q, got %s", RuleDDoSTarget, tc.want, ids(fs))
			}
		})
	}
}

// TestRandomSubdomainFromCapture reads the flood from a headers-only
// capture (snaplen 96, as collect writes): over IPv4 the names fit; over
// IPv6 the 40-byte header leaves 22 bytes of the name, so the zone is cut
// and the finding says so.
func TestRandomSubdomainFromCapture(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var buf bytes.Buffer
		w := pcapgo.NewWriterNanos(&buf)
		if err := w.WriteFileHeader(96, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		for i := range 6000 {
			eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
			udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + i), DstPort: 53}
			var ip gopacket.SerializableLayer
			if v6 {
				eth.EthernetType = layers.EthernetTypeIPv6
				ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
					SrcIP: net.ParseIP(fmt.Sprintf("2001:db8:5::%x", 1+i%12)), DstIP: net.ParseIP("2001:db8:1::7")}
				udp.SetNetworkLayerForChecksum(ip6)
				ip = ip6
			} else {
				ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
					SrcIP: net.IPv4(203, 0, 113, byte(10+i%12)), DstIP: net.IPv4(198, 51, 100, 7)}
				udp.SetNetworkLayerForChecksum(ip4)
				ip = ip4
			}
			sb := gopacket.NewSerializeBuffer()
			q := dnsQuery(uint16(i), fmt.Sprintf("%012x.victim-shop.example", uint64(i)*0x9e3779b97f4a7c15>>16))
			if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(q)); err != nil {
				t.Fatal(err)
			}
			frame := sb.Bytes()
			ci := gopacket.CaptureInfo{Timestamp: time.Unix(1_767_225_600, int64(i)*500_000), CaptureLength: min(len(frame), 96), Length: len(frame)}
			if err := w.WritePacket(ci, frame[:ci.CaptureLength]); err != nil {
				t.Fatal(err)
			}
		}
		src, err := ingest.NewReader(&buf, "dns.pcap", ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		local := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
		sig := NewSignalSource(src, local, nil)
		res, err := Analyze(context.Background(), sig, Options{Local: local})
		if err != nil {
			t.Fatal(err)
		}
		want := "(2000 queries/s for random names under victim-shop.example from 12 addresses)"
		if v6 {
			want = "(2000 queries/s for random names (the capture cut the names before their zone) from 12 addresses)"
		}
		fs := Findings(FindingInput{Result: res, Signals: sig.Signals()})
		if !hasFinding(fs, RuleDDoSTarget, SevHigh) || !strings.Contains(fs[0].Summary, want) {
			for _, f := range fs {
				t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
			}
			t.Errorf("v6=%v: want a high %s with %q", v6, RuleDDoSTarget, want)
		}
	}
}

// TestRandomSubdomainFloodOut: a process on the host asking its resolver
// for 1,000 random names a second under one zone is a bot taking part in a
// water-torture attack; a resolver on the host relaying such names from
// its clients is abused (medium, and no inbound DDoS of its own); a mail
// server's blocklist lookups and a crawler resolving many domains are
// neither.
func TestRandomSubdomainFloodOut(t *testing.T) {
	out := func(n int, name func(i int) string) []ingest.Packet {
		var ps []ingest.Packet
		for i := range n {
			l := fmt.Sprintf("198.51.100.7:%d", 20000+i%30000)
			q := pkt(int64(i), ingest.ProtoUDP, l, "203.0.113.53:53", 90)
			q.Payload = dnsQuery(uint16(i), name(i))
			ps = append(ps, q, pkt(int64(i), ingest.ProtoUDP, "203.0.113.53:53", l, 150))
		}
		return ps
	}
	random := func(i int) string { return fmt.Sprintf("%08x.victim.example", uint32(i)*2654435761) }
	relay := out(8000, random)
	for i := range 8000 { // the clients' queries the resolver relays
		src := fmt.Sprintf("203.0.113.%d:%d", 100+i%40, 1024+i)
		q := pkt(int64(i), ingest.ProtoUDP, src, "198.51.100.7:53", 90)
		q.Payload = dnsQuery(uint16(i), random(i))
		relay = append(relay, q, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:53", src, 150))
	}
	slices.SortStableFunc(relay, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
	for _, tc := range []struct {
		name, comm string
		pkts       []ingest.Packet
		sev        Severity
		want       string
	}{
		{"bot", "worker", out(8000, random), SevHigh, "DDoS participation: worker[77] (uid 0, /usr/sbin/worker) sends a random-subdomain (water torture) DNS flood, 1000 queries/s for random names under victim.example"},
		{"resolver relaying", "unbound", relay, SevMedium, "the DNS resolver unbound[77] (uid 0, /usr/sbin/unbound) relays a random-subdomain flood against the servers of victim.example: 1000 queries/s for random names, asked by 40 clients"},
		{"local resolver passing a local bot's names on", "systemd-resolve", out(8000, random), SevHigh, "DDoS participation: a random-subdomain (water torture) DNS flood leaves through the local resolver systemd-resolve[77] (uid 0, /usr/sbin/systemd-resolve), 1000 queries/s for random names under victim.example, asked by a process on this host"},
		{"blocklist lookups", "smtpd", out(8000, func(i int) string { return fmt.Sprintf("%d.%d.0.11.zen.spamhaus.org", i%256, i/256%256) }), "", ""},
		{"crawler", "crawler", out(8000, func(i int) string { return fmt.Sprintf("site%d.com", i) }), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := oneProcFindings(t, tc.pkts, tc.comm, "/usr/sbin/"+tc.comm)
			got := pick(t, fs, RuleUDPFlood, RuleDDoSTarget)
			if tc.want == "" {
				if got != nil {
					t.Errorf("unexpected %s", got.Summary)
				}
				return
			}
			if got == nil || got.Severity != tc.sev || got.Summary != tc.want {
				t.Errorf("want %s %q, got %s", tc.sev, tc.want, ids(fs))
			}
		})
	}
}

func BenchmarkCheckDNS(b *testing.B) {
	s := NewSignalSource(nil, local24, nil)
	msgs := make([][]byte, 4096)
	for i := range msgs {
		msgs[i] = dnsQuery(uint16(i), fmt.Sprintf("%08x.www.Example.co.uk", uint32(i)*2654435761))
	}
	src, dst := netip.MustParseAddrPort("203.0.113.9:4000"), netip.MustParseAddrPort("198.51.100.7:53")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.checkDNS(src, dst, int64(i), msgs[i%len(msgs)])
	}
}

// TestDNSWindow: the window counts the last 10 seconds, whatever their
// sign, and forgets what slid out of it.
func TestDNSWindow(t *testing.T) {
	for _, base := range []int64{1_767_225_600, 0, -25} {
		var w dnsWin
		for s := base; s < base+10; s++ {
			w.add(s, true)
		}
		if q, n := w.add(base+9, false); q != 11 || n != 10 {
			t.Errorf("base %d: %d queries, %d new in the window, want 11 and 10", base, q, n)
		}
		if q, n := w.add(base+14, true); q != 7 || n != 6 { // seconds base+5 … base+14
			t.Errorf("base %d: after sliding: %d, %d; want 7 and 6", base, q, n)
		}
		if q, n := w.add(base+2, true); q != 7 || n != 6 { // behind the window: not counted
			t.Errorf("base %d: a late query changed the window: %d, %d", base, q, n)
		}
		if got := w.active(); got != 6 {
			t.Errorf("base %d: %d active seconds, want 6", base, got)
		}
	}
}

// byPortAttributor charges a flow to the process listed for its local port
// (pid 100+index), else to pid 99 (postfix's master).
type byPortAttributor map[uint16]string

func (a byPortAttributor) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	if comm, ok := a[local.Port()]; ok {
		return Attribution{Proc: ingest.ProcKey{PID: 100, Start: 1}, Comm: comm, Method: MethodExact, Confidence: ConfHigh}, ts - nsPerSec, ts + 100*nsPerSec
	}
	return Attribution{Proc: ingest.ProcKey{PID: 99, Start: 1}, Comm: "master", Method: MethodExact, Confidence: ConfHigh}, ts - nsPerSec, ts + 100*nsPerSec
}

// TestRandomSubdomainSender: the flood is charged to the process whose
// sockets sent the random names, not to a busier DNS client of the host
// (a mail server resolving many ordinary names).
func TestRandomSubdomainSender(t *testing.T) {
	var ps []ingest.Packet
	for i := range 20000 { // postfix: ordinary lookups from many ports
		l := fmt.Sprintf("198.51.100.7:%d", 20000+i%20000)
		q := pkt(int64(i/2), ingest.ProtoUDP, l, "203.0.113.53:53", 90)
		q.Payload = dnsQuery(uint16(i), []string{"mx1", "mx2", "www"}[i%3]+fmt.Sprintf(".site%d.example", i%40))
		ps = append(ps, q, pkt(int64(i/2), ingest.ProtoUDP, "203.0.113.53:53", l, 150))
	}
	for i := range 8000 { // the bot: one socket, random names
		q := pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:5353", "203.0.113.53:53", 90)
		q.Payload = dnsQuery(uint16(i), fmt.Sprintf("%08x.victim.example", uint32(i)*2654435761))
		ps = append(ps, q, pkt(int64(i), ingest.ProtoUDP, "203.0.113.53:53", "198.51.100.7:5353", 150))
	}
	slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
	sig := NewSignalSource(&memSource{pkts: ps}, local24, nil)
	res, err := Analyze(context.Background(), sig, Options{Local: local24, Attributor: byPortAttributor{5353: "kthreadd-x"}})
	if err != nil {
		t.Fatal(err)
	}
	procs := map[ingest.ProcKey]ingest.ProcessInfo{
		{PID: 99, Start: 1}:  {PID: 99, PPID: 1, Start: 1, Comm: "master", Exe: "/usr/lib/postfix/sbin/master"},
		{PID: 100, Start: 1}: {PID: 100, PPID: 1, Start: 1, Comm: "kthreadd-x", Exe: "/usr/local/bin/kthreadd-x"},
	}
	fs := Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs})
	for _, f := range fs {
		t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
		if f.ID == RuleUDPFlood && !strings.HasPrefix(f.Summary, "DDoS participation: kthreadd-x[100]") {
			t.Errorf("the flood is charged to the wrong process: %s", f.Summary)
		}
	}
	if !hasFinding(fs, RuleUDPFlood, SevHigh) {
		t.Errorf("no high %s: %s", RuleUDPFlood, ids(fs))
	}
}

func TestDNSAnswers(t *testing.T) {
	collect := func(p []byte) []string {
		var out []string
		dnsAnswers(p, func(name string, a netip.Addr) { out = append(out, name+"="+a.String()) })
		return out
	}
	full := dnsResponse(7, "Pool.SupportXMR.example", "lb.supportxmr.example", "45.9.148.21", "2001:db8::1")
	servfail := slices.Clone(full)
	servfail[3] = 0x82
	for _, tc := range []struct {
		name string
		msg  []byte
		want []string
	}{
		{"cname and two addresses", full, []string{"pool.supportxmr.example=45.9.148.21", "pool.supportxmr.example=2001:db8::1"}},
		{"cut in the last record", full[:len(full)-3], []string{"pool.supportxmr.example=45.9.148.21"}},
		{"servfail", servfail, nil},
		{"query", dnsQuery(1, "www.example.com"), nil},
		{"pointer loop", append(dnsQuery(1, "a.example")[:12], 0xc0, 12, 0, 1, 0, 1), nil},
	} {
		if got := collect(tc.msg); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzDNSAnswers(f *testing.F) {
	f.Add(dnsResponse(7, "pool.example", "lb.example", "192.0.2.1", "2001:db8::1"))
	f.Add(dnsResponse(7, "a.b.c", "", "198.51.100.9")[:30])
	f.Fuzz(func(t *testing.T, b []byte) {
		dnsAnswers(b, func(name string, a netip.Addr) {
			if name == "" || len(name) > 255 || !a.IsValid() {
				t.Fatalf("%q %v", name, a)
			}
		})
	})
}

// TestFindingsNameRemotes: a finding's evidence names the remote host by
// the DNS answer the capture holds, as the report's where column does.
func TestFindingsNameRemotes(t *testing.T) {
	q := pkt(0, ingest.ProtoUDP, "198.51.100.7:40000", "203.0.113.53:53", 90)
	q.Payload = dnsQuery(7, "pool.supportxmr.example")
	a := pkt(1, ingest.ProtoUDP, "203.0.113.53:53", "198.51.100.7:40000", 120)
	a.Payload = dnsResponse(7, "pool.supportxmr.example", "", "11.9.148.21")
	st := pkt(10, ingest.ProtoTCP, "198.51.100.7:45000", "11.9.148.21:3333", 200)
	st.Payload = []byte(`{"id":1,"method":"mining.subscribe","params":[]}`)
	fs := findingsOf(t, []ingest.Packet{q, a, st, pkt(100, ingest.ProtoTCP, "11.9.148.21:3333", "198.51.100.7:45000", 200)}, nil, nil)
	m := pick(t, fs, RuleMining, "")
	if m == nil || !strings.Contains(m.Summary, "to 11.9.148.21:3333 in pool.supportxmr.example") {
		t.Errorf("the mining finding does not name the pool: %s", ids(fs))
	}
}

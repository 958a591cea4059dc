package analyze

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

// findingsOf analyses pkts (local 198.51.100.0/24) with signals and returns
// the findings.
func findingsOf(t *testing.T, pkts []ingest.Packet, man *ingest.Manifest, pol *Policy) []Finding {
	t.Helper()
	sig := NewSignalSource(&memSource{pkts: pkts}, local24, nil)
	res, err := Analyze(context.Background(), sig, Options{Local: local24})
	if err != nil {
		t.Fatal(err)
	}
	return Findings(FindingInput{Result: res, Signals: sig.Signals(), Manifest: man, Policy: pol})
}

func hasFinding(fs []Finding, id string, sev Severity) bool {
	for _, f := range fs {
		if f.ID == id && (sev == "" || f.Severity == sev) {
			return true
		}
	}
	return false
}

func ids(fs []Finding) string {
	var s []string
	for _, f := range fs {
		s = append(s, string(f.Severity)+":"+f.ID)
	}
	return strings.Join(s, " ")
}

func withFlags(p ingest.Packet, flags uint8) ingest.Packet { p.TCPFlags = flags; return p }

func TestFindingRules(t *testing.T) {
	var scan, brute, syn, spoof, udp, web, stratum []ingest.Packet
	for i := 0; i < 150; i++ { // outbound probes to 150 ports, 60 B each
		scan = append(scan, withFlags(pkt(int64(i*10), ingest.ProtoTCP, "198.51.100.7:40000", fmt.Sprintf("203.0.113.9:%d", 1+i), 60), 0x02))
	}
	for i := 0; i < 30; i++ { // 30 short SSH connections from one source
		src := fmt.Sprintf("203.0.113.66:%d", 50000+i)
		brute = append(brute, pkt(int64(i*500), ingest.ProtoTCP, src, "198.51.100.7:22", 120), pkt(int64(i*500+5), ingest.ProtoTCP, "198.51.100.7:22", src, 300))
	}
	for i := 0; i < 1000; i++ { // 1000 SYNs/s for 1 s to one target
		syn = append(syn, withFlags(pkt(int64(i), ingest.ProtoTCP, fmt.Sprintf("198.51.100.7:%d", 10000+i), "203.0.113.10:80", 60), 0x02))
	}
	for i := 0; i < 200; i++ { // outgoing frames with forged sources
		p := pkt(int64(i), ingest.ProtoUDP, fmt.Sprintf("11.0.%d.%d:1234", i/250, i%250+1), "203.0.113.11:53", 80)
		p.Dir = ingest.DirOut
		spoof = append(spoof, p)
	}
	for i := 0; i < 3000; i++ { // 1000 small UDP datagrams per second for 3 s
		udp = append(udp, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:40001", "203.0.113.12:80", 60))
	}
	for i := 0; i < 400; i++ { // a web server answering 40 clients
		c := fmt.Sprintf("203.0.113.%d:4%04d", 20+i%40, i%40)
		web = append(web, pkt(int64(i*50), ingest.ProtoTCP, c, "198.51.100.7:443", 80), pkt(int64(i*50+1), ingest.ProtoTCP, "198.51.100.7:443", c, 1500))
	}
	var synIn, healthChecks, reflection, dnsClient []ingest.Packet
	for i := 0; i < 800; i++ { // 800 spoofed SYNs to :443 in 8 s, each answered by 5 SYN-ACKs
		src := fmt.Sprintf("%d.%d.%d.%d:%d", 11+i%200, i/200, i%7, 1+i%250, 1024+i)
		synIn = append(synIn, withFlags(pkt(int64(i*10), ingest.ProtoTCP, src, "198.51.100.7:443", 60), 0x02))
		for r := range 5 {
			synIn = append(synIn, withFlags(pkt(int64(i*10+1+r*1000), ingest.ProtoTCP, "198.51.100.7:443", src, 74), 0x12))
		}
	}
	for i := 0; i < 800; i++ { // TCP health checks from 80 nodes: SYN, ACK, RST; the host's SYN-ACK
		src := fmt.Sprintf("203.0.113.%d:%d", 100+i%80, 30000+i)
		healthChecks = append(healthChecks, withFlags(pkt(int64(i*10), ingest.ProtoTCP, src, "198.51.100.7:443", 60), 0x02),
			withFlags(pkt(int64(i*10+1), ingest.ProtoTCP, "198.51.100.7:443", src, 60), 0x12),
			withFlags(pkt(int64(i*10+2), ingest.ProtoTCP, src, "198.51.100.7:443", 54), 0x10),
			withFlags(pkt(int64(i*10+3), ingest.ProtoTCP, src, "198.51.100.7:443", 54), 0x04))
	}
	for i := 0; i < 1200; i++ { // NTP replies from 60 reflectors, 1.2 Mb/s, never asked for
		reflection = append(reflection, pkt(int64(i*5), ingest.ProtoUDP, fmt.Sprintf("203.0.113.%d:123", 1+i%60), "198.51.100.7:3000", 482))
	}
	for i := 0; i < 1200; i++ { // a resolver's answers to its own queries
		srv := fmt.Sprintf("203.0.113.%d:53", 1+i%60)
		cl := fmt.Sprintf("198.51.100.7:%d", 20000+i%60)
		dnsClient = append(dnsClient, pkt(int64(i*5), ingest.ProtoUDP, cl, srv, 80), pkt(int64(i*5+1), ingest.ProtoUDP, srv, cl, 482))
	}
	var openResolver, dnsServer []ingest.Packet
	for i := 0; i < 1000; i++ { // spoofed ANY queries in a victim's name, 1500-byte answers
		victim := fmt.Sprintf("203.0.113.50:%d", 1024+i)
		openResolver = append(openResolver, pkt(int64(i*10), ingest.ProtoUDP, victim, "198.51.100.7:53", 70),
			pkt(int64(i*10+1), ingest.ProtoUDP, "198.51.100.7:53", victim, 1500))
	}
	for i := 0; i < 1000; i++ { // an authoritative server answering 100 resolvers
		cl := fmt.Sprintf("203.0.113.%d:%d", 100+i%100, 30000+i)
		dnsServer = append(dnsServer, pkt(int64(i*10), ingest.ProtoUDP, cl, "198.51.100.7:53", 90),
			pkt(int64(i*10+1), ingest.ProtoUDP, "198.51.100.7:53", cl, 300))
	}
	var synHighPort, masscan []ingest.Packet
	for i := 0; i < 800; i++ { // a SYN flood on a game server's port: half the sources' ports are lower
		src := fmt.Sprintf("%d.%d.%d.%d:%d", 11+i%200, i/200, 9, 1+i%250, 1024+(i*977)%64000)
		synHighPort = append(synHighPort, withFlags(pkt(int64(i*10), ingest.ProtoTCP, src, "198.51.100.7:27015", 60), 0x02),
			withFlags(pkt(int64(i*10+1), ingest.ProtoTCP, "198.51.100.7:27015", src, 74), 0x12))
	}
	for i := 0; i < 800; i++ { // an outbound scan from one fixed source port, answered with RSTs
		dst := fmt.Sprintf("%d.%d.%d.%d:80", 11+i%200, i/200, 9, 1+i%250)
		masscan = append(masscan, withFlags(pkt(int64(i*10), ingest.ProtoTCP, "198.51.100.7:61000", dst, 60), 0x02),
			withFlags(pkt(int64(i*10+1), ingest.ProtoTCP, dst, "198.51.100.7:61000", 60), 0x14))
	}
	var icmpIn, icmpOut, monitoring []ingest.Packet
	for i := 0; i < 6000; i++ { // 2000 ICMP messages/s from 300 spoofed sources, unanswered
		icmpIn = append(icmpIn, pkt(int64(i/2), ingest.ProtoICMP, fmt.Sprintf("%d.%d.%d.%d:0", 11+i%100, i%3, 7, 1+i%250), "198.51.100.7:0", 98))
	}
	for i := 0; i < 3000; i++ { // 1500 pings/s to one target
		icmpOut = append(icmpOut, pkt(int64(i*2/3), ingest.ProtoICMP, "198.51.100.7:0", "203.0.113.14:0", 98))
	}
	for i := 0; i < 6000; i++ { // pinging 100 hosts once a second, each answered
		h := fmt.Sprintf("203.0.113.%d:0", 100+i%100)
		monitoring = append(monitoring, pkt(int64(i*10), ingest.ProtoICMP, "198.51.100.7:0", h, 98), pkt(int64(i*10+1), ingest.ProtoICMP, h, "198.51.100.7:0", 98))
	}
	echo := func(p ingest.Packet, typ byte) ingest.Packet { p.Payload = []byte{typ, 0, 0, 0, 0, 1, 0, 1}; return p }
	var pingFlood, pinged []ingest.Packet
	for i := 0; i < 8000; i++ { // 2000 echo requests/s from 3 hosts for 4 s, each answered
		src := fmt.Sprintf("203.0.113.%d:0", 30+i%3)
		pingFlood = append(pingFlood, echo(pkt(int64(i/2), ingest.ProtoICMP, src, "198.51.100.7:0", 98), 8),
			echo(pkt(int64(i/2), ingest.ProtoICMP, "198.51.100.7:0", src, 98), 0))
	}
	var pingOut []ingest.Packet
	for i := 0; i < 3000; i++ { // the host pings one target 1500 times a second; the target answers
		pingOut = append(pingOut, echo(pkt(int64(i*2/3), ingest.ProtoICMP, "198.51.100.7:0", "203.0.113.14:0", 98), 8),
			echo(pkt(int64(i*2/3), ingest.ProtoICMP, "203.0.113.14:0", "198.51.100.7:0", 98), 0))
	}
	for i := 0; i < 6000; i++ { // 100 monitoring nodes ping the host once a second each, answered
		src := fmt.Sprintf("203.0.113.%d:0", 100+i%100)
		pinged = append(pinged, echo(pkt(int64(i*10), ingest.ProtoICMP, src, "198.51.100.7:0", 98), 8),
			echo(pkt(int64(i*10+1), ingest.ProtoICMP, "198.51.100.7:0", src, 98), 0))
	}
	st := pkt(0, ingest.ProtoTCP, "198.51.100.7:45000", "203.0.113.13:3333", 200)
	st.Payload = []byte(`{"id":1,"method":"mining.subscribe","params":[]}`)
	stratum = append(stratum, st, pkt(100, ingest.ProtoTCP, "203.0.113.13:3333", "198.51.100.7:45000", 200))

	tests := []struct {
		name string
		pkts []ingest.Packet
		want string
		sev  Severity
		not  []string
	}{
		{"scan", scan, RuleScanning, SevHigh, nil},
		{"brute force", brute, RuleBruteForce, SevMedium, []string{RuleScanning}},
		{"syn flood", syn, RuleSYNFlood, SevHigh, nil},
		{"spoofed", spoof, RuleSpoofed, SevHigh, nil},
		{"udp flood", udp, RuleUDPFlood, SevHigh, nil},
		{"stratum", stratum, RuleMining, SevCritical, nil},
		{"inbound syn flood", synIn, RuleDDoSTarget, SevHigh, []string{RuleScanning, RuleSYNFlood}},
		{"inbound reflection", reflection, RuleDDoSTarget, SevHigh, []string{RuleScanning}},
		{"health checks", healthChecks, "", "", []string{RuleDDoSTarget, RuleScanning}},
		{"dns client", dnsClient, "", "", []string{RuleDDoSTarget, RuleScanning}},
		{"syn flood on a high port", synHighPort, RuleDDoSTarget, SevHigh, []string{RuleScanning}},
		{"outbound scan from a fixed port", masscan, RuleScanning, SevHigh, []string{RuleDDoSTarget}},
		{"inbound icmp flood", icmpIn, RuleDDoSTarget, SevHigh, []string{RuleICMPFlood, RuleScanning}},
		{"outbound icmp flood", icmpOut, RuleICMPFlood, SevHigh, []string{RuleDDoSTarget, RuleUDPFlood}},
		{"monitoring pings", monitoring, "", "", []string{RuleDDoSTarget, RuleICMPFlood, RuleScanning}},
		{"answered ping flood", pingFlood, RuleDDoSTarget, SevHigh, []string{RuleICMPFlood, RuleScanning}},
		{"outbound ping flood, answered", pingOut, RuleICMPFlood, SevHigh, []string{RuleDDoSTarget}},
		{"pinged by monitoring", pinged, "", "", []string{RuleDDoSTarget, RuleICMPFlood, RuleScanning}},
		{"open resolver", openResolver, RuleReflector, SevHigh, []string{RuleUDPFlood, RuleDDoSTarget, RuleScanning}},
		{"dns server", dnsServer, "", "", []string{RuleReflector, RuleUDPFlood, RuleDDoSTarget}},
		{"web server", web, "", "", []string{RuleScanning, RuleBruteForce, RuleUDPFlood, RuleExfiltration, RuleSYNFlood}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := findingsOf(t, tc.pkts, nil, nil)
			if tc.want != "" && !hasFinding(fs, tc.want, tc.sev) {
				t.Errorf("want %s %s, got %s", tc.sev, tc.want, ids(fs))
			}
			for _, id := range tc.not {
				if hasFinding(fs, id, "") {
					t.Errorf("unexpected %s in %s", id, ids(fs))
				}
			}
			for _, f := range fs {
				t.Logf("%s %s: %s %q", f.Severity, f.ID, f.Summary, f.Evidence)
				if f.Summary == "" || f.Next == "" {
					t.Errorf("%s lacks a summary or a next step", f.ID)
				}
				if sevRank(f.Severity) >= sevRank(SevHigh) && len(f.Evidence) == 0 {
					t.Errorf("%s has no evidence", f.ID)
				}
			}
			if tc.name == "web server" {
				for _, f := range fs {
					if sevRank(f.Severity) >= sevRank(SevHigh) {
						t.Errorf("a normal web server must not get %s %s", f.Severity, f.ID)
					}
				}
			}
		})
	}
}

func TestBlindSpotFromManifest(t *testing.T) {
	man := &ingest.Manifest{Interfaces: []ingest.IfaceInfo{{Name: "eth0", Captured: true, CaptureDropped: 1234,
		CountersStart: &ingest.IfaceCounters{TxBytes: 0}, CountersEnd: &ingest.IfaceCounters{TxBytes: 50_000_000}}}}
	fs := findingsOf(t, []ingest.Packet{pkt(0, ingest.ProtoUDP, "198.51.100.7:1", "203.0.113.1:2", 1000)}, man, nil)
	if !hasFinding(fs, RuleBlindSpot, SevMedium) {
		t.Fatalf("want a medium capture-blind-spot, got %s", ids(fs))
	}
}

func TestPolicyRules(t *testing.T) {
	pol, err := ParsePolicy(strings.NewReader(`{"max_tx_bps": 1000, "ignore_findings": ["ddos-udp-flood"], "severity": "medium"}`))
	if err != nil {
		t.Fatal(err)
	}
	var udp []ingest.Packet
	for i := 0; i < 3000; i++ {
		udp = append(udp, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:40001", "203.0.113.12:80", 60))
	}
	fs := pol.Filter(findingsOf(t, udp, nil, pol))
	if !hasFinding(fs, RulePolicy, SevMedium) || hasFinding(fs, RuleUDPFlood, "") {
		t.Fatalf("want a policy violation and no (ignored) udp flood, got %s", ids(fs))
	}
	for _, bad := range []string{`{"allow_processes": ["["]}`, `{"severity": "urgent"}`, `{"max_tx": 1}`, `not json`} {
		if _, err := ParsePolicy(strings.NewReader(bad)); err == nil {
			t.Errorf("ParsePolicy(%s) accepted a bad policy", bad)
		}
	}
}

func TestSortFindingsVerdictFirst(t *testing.T) {
	fs := []Finding{{ID: RuleBandwidthHog, Severity: SevHigh, Summary: "b"}, {ID: RuleCloudAgent, Severity: SevInfo},
		{ID: RuleUDPFlood, Severity: SevHigh, Summary: "a"}, {ID: RuleMining, Severity: SevCritical}}
	SortFindings(fs)
	if got := ids(fs); got != "critical:crypto-mining high:ddos-udp-flood high:bandwidth-hog info:cloud-agent" {
		t.Fatalf("order %s", got)
	}
}

// TestBlindSpotIgnoresFilteredTraffic: with a capture filter the counters
// hold what it kept out on purpose; kernel drops still count.
func TestBlindSpotIgnoresFilteredTraffic(t *testing.T) {
	man := &ingest.Manifest{Capture: ingest.CaptureParams{Filter: "not port 22"}, Interfaces: []ingest.IfaceInfo{{Name: "eth0", Captured: true,
		CountersStart: &ingest.IfaceCounters{TxBytes: 0}, CountersEnd: &ingest.IfaceCounters{TxBytes: 50_000_000}}}}
	pkts := []ingest.Packet{pkt(0, ingest.ProtoUDP, "198.51.100.7:1", "203.0.113.1:2", 1000)}
	if fs := findingsOf(t, pkts, man, nil); hasFinding(fs, RuleBlindSpot, "") {
		t.Errorf("filtered capture: %s", ids(fs))
	}
	man.Interfaces[0].CaptureDropped = 10
	if fs := findingsOf(t, pkts, man, nil); !hasFinding(fs, RuleBlindSpot, SevMedium) {
		t.Errorf("drops with a filter: %s", ids(fs))
	}
}

func TestBlindSpotIgnoresLoopbackCounters(t *testing.T) {
	man := &ingest.Manifest{Interfaces: []ingest.IfaceInfo{{Name: "lo", Flags: []string{"up", "loopback"}, Captured: true,
		CountersStart: &ingest.IfaceCounters{}, CountersEnd: &ingest.IfaceCounters{TxBytes: 2_000_000, RxBytes: 2_000_000}}}}
	var pkts []ingest.Packet
	for i := 0; i < 2000; i++ {
		pkts = append(pkts, pkt(int64(i), ingest.ProtoTCP, "198.51.100.7:80", "198.51.100.8:5000", 1000))
	}
	if fs := findingsOf(t, pkts, man, nil); hasFinding(fs, RuleBlindSpot, "") {
		t.Fatalf("loopback counters count each frame twice; no blind spot expected, got %s", ids(fs))
	}
}

// FuzzParsePolicy: any input either fails to parse or gives a policy whose
// checks run without panicking.
func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"allow_processes": ["nginx", "/usr/sbin/*"], "allow_countries": ["DE"], "allow_asns": [1], "max_tx_bps": 10, "severity": "low"}`)
	f.Add(`{"ignore_findings": ["cloud-agent"]}`)
	f.Add(`{}`)
	f.Add(`[`)
	var udp []ingest.Packet
	for i := 0; i < 50; i++ {
		udp = append(udp, pkt(int64(i*100), ingest.ProtoUDP, "198.51.100.7:40001", "203.0.113.12:80", 600))
	}
	f.Fuzz(func(t *testing.T, in string) {
		pol, err := ParsePolicy(strings.NewReader(in))
		if err != nil {
			return
		}
		fs := pol.Filter(findingsOf(t, udp, nil, pol))
		for _, x := range fs {
			if x.ID == "" || x.Severity == "" {
				t.Fatalf("finding without id or severity: %+v", x)
			}
		}
	})
}

// commAttributor owns every flow of the host with one process.
type commAttributor struct{ comm string }

func (a commAttributor) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	return Attribution{Proc: ingest.ProcKey{PID: 77, Start: 1}, Comm: a.comm, Method: MethodExact, Confidence: ConfHigh}, ts - nsPerSec, ts + 100*nsPerSec
}

// pick logs fs and returns the last finding with rule id (nil if none),
// failing the test for any finding with rule forbid.
func pick(t *testing.T, fs []Finding, id, forbid string) *Finding {
	t.Helper()
	var got *Finding
	for i := range fs {
		t.Logf("%s %s: %s %q", fs[i].Severity, fs[i].ID, fs[i].Summary, fs[i].Evidence)
		switch fs[i].ID {
		case id:
			got = &fs[i]
		case forbid:
			t.Errorf("unexpected %s: %s", fs[i].ID, fs[i].Summary)
		}
	}
	return got
}

// oneProcFindings analyses pkts with every flow charged to one process,
// pid 77 (comm, exe, started by init), and returns the findings.
func oneProcFindings(t *testing.T, pkts []ingest.Packet, comm, exe string) []Finding {
	t.Helper()
	sig := NewSignalSource(&memSource{pkts: pkts}, local24, nil)
	res, err := Analyze(context.Background(), sig, Options{Local: local24, Attributor: commAttributor{comm}})
	if err != nil {
		t.Fatal(err)
	}
	procs := map[ingest.ProcKey]ingest.ProcessInfo{{PID: 77, Start: 1}: {PID: 77, PPID: 1, Start: 1, Comm: comm, Exe: exe}}
	return Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs})
}

// TestSpam: SMTP delivery to many mail servers is spam from anything but a
// mail server, outbound mail (low) from one; few servers, or mail coming
// in, is nothing.
func TestSpam(t *testing.T) {
	mail := func(servers int, inbound bool) []ingest.Packet {
		var pkts []ingest.Packet
		for i := range 60 {
			local := fmt.Sprintf("198.51.100.7:%d", 40000+i)
			mx := fmt.Sprintf("203.0.113.%d:25", 1+i%servers)
			if inbound {
				local, mx = "198.51.100.7:25", fmt.Sprintf("203.0.113.%d:%d", 1+i%servers, 40000+i)
			}
			for j := range 5 {
				pkts = append(pkts, pkt(int64(i*100+j*10), ingest.ProtoTCP, local, mx, 1200), pkt(int64(i*100+j*10+5), ingest.ProtoTCP, mx, local, 80))
			}
		}
		return pkts
	}
	run := func(pkts []ingest.Packet, comm, exe string) []Finding {
		opts := Options{Local: local24}
		var procs map[ingest.ProcKey]ingest.ProcessInfo
		if comm != "" {
			opts.Attributor = commAttributor{comm}
			procs = map[ingest.ProcKey]ingest.ProcessInfo{{PID: 77, Start: 1}: {Comm: comm, Exe: exe, UID: 0}}
		}
		sig := NewSignalSource(&memSource{pkts: pkts}, local24, nil)
		res, err := Analyze(context.Background(), sig, opts)
		if err != nil {
			t.Fatal(err)
		}
		return Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs})
	}
	for _, tc := range []struct {
		name      string
		pkts      []ingest.Packet
		comm, exe string
		sev       Severity // "" for no spam finding
	}{
		{"bot", mail(40, false), "kworker", "/tmp/.x/kworker", SevHigh},
		{"unattributed", mail(40, false), "", "", SevHigh},
		{"postfix", mail(40, false), "smtp", "/usr/lib/postfix/sbin/smtp", SevLow},
		{"exim by exe", mail(40, false), "exim-worker", "/usr/sbin/exim4", SevLow},
		{"few servers", mail(5, false), "php-fpm", "/usr/sbin/php-fpm8.2", ""},
		{"mail coming in", mail(40, true), "smtpd", "/usr/lib/postfix/sbin/smtpd", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := run(tc.pkts, tc.comm, tc.exe)
			if got := hasFinding(fs, RuleSpam, tc.sev); tc.sev != "" && !got {
				t.Errorf("want %s spam, got %s", tc.sev, ids(fs))
			}
			if tc.sev == "" && hasFinding(fs, RuleSpam, "") {
				t.Errorf("unexpected spam in %s", ids(fs))
			}
			for _, f := range fs {
				t.Logf("%s %s: %s %q", f.Severity, f.ID, f.Summary, f.Evidence)
			}
		})
	}
}

// conn returns the packets of one short TCP connection from client to
// server at ms: the handshake, a request of req bytes, a response of resp
// bytes in full-size frames, the close; dur is its length in ms.
func conn(ms, dur int64, client, server string, req, resp int) []ingest.Packet {
	ps := []ingest.Packet{
		withFlags(pkt(ms, ingest.ProtoTCP, client, server, 74), 0x02),
		withFlags(pkt(ms+1, ingest.ProtoTCP, server, client, 74), 0x12),
		withFlags(pkt(ms+2, ingest.ProtoTCP, client, server, 66), 0x10),
		withFlags(pkt(ms+3, ingest.ProtoTCP, client, server, req), 0x18),
	}
	for ; resp > 0; resp -= 1514 {
		ps = append(ps, withFlags(pkt(ms+4, ingest.ProtoTCP, server, client, min(resp, 1514)), 0x10))
	}
	return append(ps, withFlags(pkt(ms+dur, ingest.ProtoTCP, client, server, 66), 0x11),
		withFlags(pkt(ms+dur, ingest.ProtoTCP, server, client, 66), 0x11))
}

func TestConnectionFlood(t *testing.T) {
	// byTime orders packets by time, as a capture has them.
	byTime := func(ps []ingest.Packet) []ingest.Packet {
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	var flood, visitors, keepAlive, internal, fewSources, burst []ingest.Packet
	for i := range 3000 { // 200 bots, 15 connections each over 60 s, one request per connection
		c := fmt.Sprintf("11.%d.%d.%d:%d", i%200/50, i%50, 1+i%200, 20000+i)
		flood = append(flood, conn(int64(i*20), 150, c, "198.51.100.7:443", 400, 9000)...)
	}
	for i := range 3000 { // as many connections from 2,000 visitors, one or two each
		c := fmt.Sprintf("11.%d.%d.%d:%d", i%2000/250, i%250, 1+i%250, 20000+i)
		visitors = append(visitors, conn(int64(i*20), 150, c, "198.51.100.7:443", 400, 9000)...)
	}
	for i := range 1200 { // 100 clients with keep-alive connections of 30 s
		c := fmt.Sprintf("11.1.%d.%d:%d", i%100/50, 1+i%100, 20000+i)
		keepAlive = append(keepAlive, conn(int64(i*50), 30_000, c, "198.51.100.7:443", 400, 9000)...)
	}
	for i := range 3000 { // the host's own clients on the private network, no keep-alive
		c := fmt.Sprintf("10.0.%d.%d:%d", i%200/100, 1+i%100, 20000+i)
		internal = append(internal, conn(int64(i*20), 150, c, "198.51.100.7:8080", 400, 9000)...)
	}
	for i := range 3000 { // a load test from 5 machines
		c := fmt.Sprintf("11.2.0.%d:%d", 1+i%5, 20000+i)
		fewSources = append(fewSources, conn(int64(i*20), 150, c, "198.51.100.7:443", 400, 9000)...)
	}
	burst = slices.Clone(visitors)
	for i := range 1000 { // 10 s of 100 connections/s from 50 bots amid the visitors
		c := fmt.Sprintf("11.9.%d.%d:%d", i%50/25, 1+i%25, 20000+i)
		burst = append(burst, conn(20_000+int64(i*10), 150, c, "198.51.100.7:443", 400, 9000)...)
	}
	type want struct{ summary, evidence []string }
	for _, tc := range []struct {
		name string
		pkts []ingest.Packet
		want *want
	}{
		{"flood", flood, &want{[]string{"an HTTP flood on port 443 (50 short connections/s from 200 addresses)"},
			[]string{"3000 completed connections, 50/s, 22:13:20Z–22:14:20Z, from 200 public addresses that connected 10 times or more each",
				"most: 11.0.0.1 (15), 11.0.1.2 (15)", "median connection 150ms long, 606 B in and 9.1 kB out each on average\n",
				"an unattributed socket (no-socket-data) answered it with 27.4 MB, 100% of the host's TX"}}},
		{"flood amid visitors", burst, &want{[]string{"an HTTP flood on port 443 (99 short connections/s from 50 addresses)"},
			[]string{"1000 completed connections, 99/s, 22:13:40Z–22:13:50Z, from 50 public addresses", "most: 11.9.0.1 (20)",
				"other public addresses made 3000 connections to the port", "answered it with 9.1 MB, 25% of the host's TX"}}},
		{"visitors", visitors, nil},
		{"keep-alive", keepAlive, nil},
		{"internal clients", internal, nil},
		{"load test from few sources", fewSources, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := findingsOf(t, byTime(tc.pkts), nil, nil)
			var got *Finding
			for i := range fs {
				if fs[i].ID == RuleDDoSTarget {
					got = &fs[i]
				}
			}
			if (got != nil) != (tc.want != nil) {
				t.Fatalf("ddos-target: got %v, want %v (%s)", got != nil, tc.want != nil, ids(fs))
			}
			if hasFinding(fs, RuleScanning, "") || hasFinding(fs, RuleSYNFlood, "") {
				t.Errorf("unexpected findings: %s", ids(fs))
			}
			if got == nil {
				return
			}
			t.Logf("%s\n%s\n%s", got.Summary, strings.Join(got.Evidence, "\n"), got.Next)
			for _, w := range tc.want.summary {
				if !strings.Contains(got.Summary, w) {
					t.Errorf("summary %q lacks %q", got.Summary, w)
				}
			}
			ev := strings.Join(got.Evidence, "\n") + "\n"
			for _, w := range tc.want.evidence {
				if !strings.Contains(ev, w) {
					t.Errorf("evidence lacks %q:\n%s", w, ev)
				}
			}
			if strings.Contains(got.Next, "SYN cookies") || strings.Contains(got.Next, "cannot free a saturated link") {
				t.Errorf("advice for another kind of flood: %s", got.Next)
			}
			if !strings.Contains(got.Next, "limit_req") {
				t.Errorf("next step lacks the rate limit: %s", got.Next)
			}
		})
	}
}

// TestOutboundConnectionChurn: a client that opens a new connection per
// request is not a SYN flood: to a private server (an application without
// connection pooling) nothing is reported; to a public one it is a
// medium "connection flood" that names the process, not a high SYN flood.
func TestOutboundConnectionChurn(t *testing.T) {
	var toDB, toWeb []ingest.Packet
	for i := range 1500 { // 150 connections/s for 10 s
		c := fmt.Sprintf("198.51.100.7:%d", 20000+i)
		toDB = append(toDB, conn(int64(i*20/3), 5, "10.0.0.5:3306", c, 300, 2000)...)
		toWeb = append(toWeb, conn(int64(i*20/3), 5, "11.1.2.3:443", c, 300, 2000)...)
	}
	for _, ps := range [][]ingest.Packet{toDB, toWeb} { // the host is the client: swap the roles conn gave
		for i := range ps {
			ps[i].Tuple.Src, ps[i].Tuple.Dst = ps[i].Tuple.Dst, ps[i].Tuple.Src
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
	}
	fs := findingsOf(t, toDB, nil, nil)
	if len(fs) > 0 && sevRank(fs[0].Severity) >= sevRank(SevMedium) {
		t.Errorf("connections to a private database: %s: %s", ids(fs), fs[0].Summary)
	}
	fs = findingsOf(t, toWeb, nil, nil)
	var got *Finding
	for i := range fs {
		if fs[i].ID == RuleSYNFlood {
			got = &fs[i]
		}
	}
	if got == nil || got.Severity != SevMedium || !strings.Contains(got.Summary, "connection flood from this host to 11.1.2.3") ||
		!strings.Contains(strings.Join(got.Evidence, "\n"), "1500 of them completed") {
		t.Errorf("connections to a public server: %s: %+v", ids(fs), got)
	}
}

// TestManyEndpointsAnswered: a client of many servers that answer (a
// recursive DNS resolver, a monitoring system polling its hosts) is not a
// scanner; probes that go unanswered or are refused are.
func TestManyEndpointsAnswered(t *testing.T) {
	var resolver, monitor, refused []ingest.Packet
	for i := range 300 { // queries to 300 authoritative servers, each answered
		srv := fmt.Sprintf("11.%d.%d.53:53", i/250, 1+i%250)
		cl := fmt.Sprintf("198.51.100.7:%d", 30000+i)
		resolver = append(resolver, pkt(int64(i*10), ingest.ProtoUDP, cl, srv, 80), pkt(int64(i*10+3), ingest.ProtoUDP, srv, cl, 300))
	}
	for i := range 150 { // polling 150 hosts' exporters over short connections
		c := fmt.Sprintf("198.51.100.7:%d", 40000+i)
		monitor = append(monitor, conn(int64(i*20), 5, c, fmt.Sprintf("11.9.%d.%d:9100", i/250, 1+i%250), 200, 1200)...)
	}
	for i := range 150 { // SYNs to 150 hosts' port 22, every one refused with a RST
		c := fmt.Sprintf("198.51.100.7:%d", 40000+i)
		h := fmt.Sprintf("11.9.%d.%d:22", i/250, 1+i%250)
		refused = append(refused, withFlags(pkt(int64(i*20), ingest.ProtoTCP, c, h, 60), 0x02), withFlags(pkt(int64(i*20+1), ingest.ProtoTCP, h, c, 60), 0x14))
	}
	for _, tc := range []struct {
		name string
		pkts []ingest.Packet
		scan bool
	}{{"resolver", resolver, false}, {"monitoring", monitor, false}, {"refused", refused, true}} {
		fs := findingsOf(t, tc.pkts, nil, nil)
		if hasFinding(fs, RuleScanning, SevHigh) != tc.scan {
			t.Errorf("%s: scanning %v, want %v: %s", tc.name, !tc.scan, tc.scan, ids(fs))
		}
	}
}

// TestUDPClientsAreNoFlood: small UDP packets to one target at a high rate
// are a flood only when the target does not answer: a DNS forwarder's
// queries to its upstream, the ACKs of an HTTP/3 (QUIC) download and RTP
// streams to a media gateway all get as much or more back. One-way
// streams to a private address (metrics, logs) are at most medium.
func TestUDPClientsAreNoFlood(t *testing.T) {
	var forwarder, quic, rtp, statsd []ingest.Packet
	for i := range 6000 { // 600 queries/s to the upstream resolver, each answered
		cl := fmt.Sprintf("198.51.100.7:%d", 20000+i%500)
		forwarder = append(forwarder, pkt(int64(i*10/6), ingest.ProtoUDP, cl, "11.8.8.8:53", 80), pkt(int64(i*10/6+1), ingest.ProtoUDP, "11.8.8.8:53", cl, 200))
	}
	for i := range 8000 { // 2000 packets/s of QUIC data in, an ACK out for every second one
		quic = append(quic, pkt(int64(i/2), ingest.ProtoUDP, "11.2.3.4:443", "198.51.100.7:50000", 1392))
		if i%2 == 1 {
			quic = append(quic, pkt(int64(i/2), ingest.ProtoUDP, "198.51.100.7:50000", "11.2.3.4:443", 76))
		}
	}
	for i := range 6000 { // 12 calls' RTP to and from one gateway, 50 packets/s each way
		l, r := fmt.Sprintf("198.51.100.7:%d", 16000+2*(i%12)), fmt.Sprintf("11.5.5.5:%d", 30000+2*(i%12))
		rtp = append(rtp, pkt(int64(i*5/3), ingest.ProtoUDP, l, r, 214), pkt(int64(i*5/3+1), ingest.ProtoUDP, r, l, 214))
	}
	for i := range 5000 { // 1000 statsd packets/s to the metrics relay, never answered
		statsd = append(statsd, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:41000", "10.0.0.9:8125", 120))
	}
	for _, tc := range []struct {
		name string
		pkts []ingest.Packet
		max  Severity // the most severe finding allowed
	}{{"dns forwarder", forwarder, SevLow}, {"quic download", quic, SevLow}, {"rtp", rtp, SevLow}, {"statsd", statsd, SevMedium}} {
		fs := findingsOf(t, tc.pkts, nil, nil)
		for _, f := range fs {
			if sevRank(f.Severity) > sevRank(tc.max) {
				t.Errorf("%s: %s %s: %s", tc.name, f.Severity, f.ID, f.Summary)
			}
		}
	}
}

// countryGeo places every address in one country.
type countryGeo string

func (g countryGeo) Lookup(netip.Addr) (Location, bool) { return Location{Country: string(g)}, true }
func (countryGeo) CountrySource() string                { return "test" }
func (countryGeo) ASNSource() string                    { return "" }

// TestBackupUpload: a sustained upload to one foreign host is high
// "possible exfiltration" from an unknown program, medium from a backup or
// sync tool (an off-site backup is the usual story), and high again from
// a backup tool with risk facts.
func TestBackupUpload(t *testing.T) {
	var pkts []ingest.Packet
	for i := range 1000 { // 50 s, 30 kB/s up
		pkts = append(pkts, pkt(int64(i*50), ingest.ProtoTCP, "198.51.100.7:40000", "11.4.4.4:443", 1514))
		if i%10 == 0 {
			pkts = append(pkts, pkt(int64(i*50+1), ingest.ProtoTCP, "11.4.4.4:443", "198.51.100.7:40000", 66))
		}
	}
	// A replica pulling a base backup from the local PostgreSQL: the
	// remote opened the connection (its SYN came in to port 5432).
	served := []ingest.Packet{withFlags(pkt(0, ingest.ProtoTCP, "11.4.4.4:40000", "198.51.100.7:5432", 74), 0x02)}
	for i := range pkts {
		p := pkts[i]
		if p.Tuple.Src.Port() == 40000 {
			p.Tuple.Src = netip.MustParseAddrPort("198.51.100.7:5432")
			p.Tuple.Dst = netip.MustParseAddrPort("11.4.4.4:40000")
		} else {
			p.Tuple.Src = netip.MustParseAddrPort("11.4.4.4:40000")
			p.Tuple.Dst = netip.MustParseAddrPort("198.51.100.7:5432")
		}
		served = append(served, p)
	}
	for _, tc := range []struct {
		comm, exe string
		pkts      []ingest.Packet
		sev       Severity
		summary   string
		parent    string // the comm of its parent, pid 76
	}{
		{"python3", "/usr/bin/python3.11", pkts, SevHigh, "possible exfiltration: python3", ""},
		{"ssh", "/usr/bin/ssh", pkts, SevMedium, "large upload by the backup/sync tool rsync through ssh (rsync[76] started it)", "rsync"},
		{"ssh", "/usr/bin/ssh", pkts, SevMedium, "large upload by the image/repository push git through ssh (git[76] started it)", "git"},
		{"ssh", "/usr/bin/ssh", pkts, SevMedium, "large upload by the file transfer tool scp through ssh (scp[76] started it)", "scp"},
		{"ssh", "/usr/bin/ssh", pkts, SevHigh, "possible exfiltration: ssh", "bash"}, // tar c / | ssh …
		{"curl", "/usr/bin/curl", pkts, SevHigh, "possible exfiltration: curl", ""},
		{"prometheus", "/usr/bin/prometheus", pkts, SevMedium, "large upload by the log/metrics shipper prometheus", ""}, // remote write
		{"s5cmd", "/usr/local/bin/s5cmd", pkts, SevMedium, "large upload by the backup/sync tool s5cmd", ""},
		{"restic", "/usr/bin/restic", pkts, SevMedium, "large upload by the backup/sync tool restic", ""},
		{"filebeat", "/usr/share/filebeat/bin/filebeat", pkts, SevMedium, "large upload by the log/metrics shipper filebeat", ""},
		{"dockerd", "/usr/bin/dockerd", pkts, SevMedium, "large upload by the image/repository push dockerd", ""},
		{"rclone", "/tmp/.x/rclone", pkts, SevHigh, "possible exfiltration: rclone", ""},
		{"postgres", "/usr/lib/postgresql/16/bin/postgres", served, SevMedium, "large download from a local service: postgres[77] (uid 0, /usr/lib/postgresql/16/bin/postgres) served 1.5 MB to 11.4.4.4", ""},
	} {
		sig := NewSignalSource(&memSource{pkts: tc.pkts}, local24, nil)
		res, err := Analyze(context.Background(), sig, Options{Local: local24, Attributor: commAttributor{tc.comm}})
		if err != nil {
			t.Fatal(err)
		}
		procs := map[ingest.ProcKey]ingest.ProcessInfo{{PID: 77, Start: 1}: {PID: 77, PPID: 76, Start: 1, Comm: tc.comm, Exe: tc.exe}}
		if tc.parent != "" {
			procs[ingest.ProcKey{PID: 76, Start: 1}] = ingest.ProcessInfo{PID: 76, PPID: 1, Start: 1, Comm: tc.parent, Exe: "/usr/bin/" + tc.parent}
		}
		fs := Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs, Geo: countryGeo("NL"), HomeCountry: "US"})
		var got *Finding
		for i := range fs {
			if fs[i].ID == RuleExfiltration {
				got = &fs[i]
			}
		}
		if got == nil || got.Severity != tc.sev || !strings.HasPrefix(got.Summary, tc.summary) {
			t.Errorf("%s: %s; want %s %q", tc.comm, ids(fs), tc.sev, tc.summary)
			if got != nil {
				t.Log(got.Summary)
			}
		}
	}
}

// TestForwardedIsNotSpoofed: a host that forwards other addresses' traffic
// (a Kubernetes node with routed pod addresses, a VPN gateway, a NAT
// instance without masquerade) sends packets with sources that are not its
// own, and their replies come back through it; spoofed packets' replies go
// to the real owners of the forged addresses, never back here.
func TestForwardedIsNotSpoofed(t *testing.T) {
	var pods, spoofed []ingest.Packet
	for i := range 600 {
		src, dst := fmt.Sprintf("10.244.1.%d:%d", 5+i%3, 40000+i%50), fmt.Sprintf("10.244.2.%d:8080", 7+i%4)
		out := pkt(int64(i*10), ingest.ProtoTCP, src, dst, 200)
		out.Dir = ingest.DirOut
		in := pkt(int64(i*10+2), ingest.ProtoTCP, dst, src, 900)
		in.Dir = ingest.DirIn
		pods = append(pods, out, in)
		p := pkt(int64(i*10), ingest.ProtoTCP, fmt.Sprintf("11.%d.%d.%d:%d", i%7, i%11, 1+i%250, 1024+i), "11.9.9.9:80", 60)
		p.Dir = ingest.DirOut
		spoofed = append(spoofed, p)
	}
	if fs := findingsOf(t, pods, nil, nil); hasFinding(fs, RuleSpoofed, "") {
		t.Errorf("forwarded pod traffic: %s", ids(fs))
	}
	sig := NewSignalSource(&memSource{pkts: append(slices.Clone(pods), spoofed...)}, local24, nil)
	if _, err := Analyze(context.Background(), sig, Options{Local: local24}); err != nil {
		t.Fatal(err)
	}
	if a, b := sig.Signals(), sig.Signals(); a.Spoofed != 600 || a.Forwarded != 600 || a.Spoofed != b.Spoofed || a.Forwarded != b.Forwarded || a.SpoofedSources != b.SpoofedSources {
		t.Errorf("Signals twice: %d/%d/%d then %d/%d/%d (spoofed/forwarded/sources)", a.Spoofed, a.Forwarded, a.SpoofedSources, b.Spoofed, b.Forwarded, b.SpoofedSources)
	}
	if fs := findingsOf(t, spoofed, nil, nil); !hasFinding(fs, RuleSpoofed, SevHigh) {
		t.Errorf("spoofed packets: %s", ids(fs))
	}
	// Both at once: the spoofed packets are still found.
	fs := findingsOf(t, append(slices.Clone(pods), spoofed...), nil, nil)
	for _, f := range fs {
		if f.ID == RuleSpoofed && (!strings.HasPrefix(f.Summary, "DDoS participation: 600 packets left this host with forged source addresses (600 distinct)") ||
			!strings.Contains(strings.Join(f.Evidence, "\n"), "not counted: 600 packets whose sources are not the host's either but were answered through it")) {
			t.Errorf("spoofed among forwarded: %s %q", f.Summary, f.Evidence)
		}
	}
	if !hasFinding(fs, RuleSpoofed, SevHigh) {
		t.Errorf("spoofed packets among forwarded ones: %s", ids(fs))
	}
}

// TestVerdictSkipsBackground: on a busy web server an SSH brute force
// (medium) and an inbound port scan (low) are findings, but the verdict is
// the bandwidth answer; a high finding is the verdict whatever its rule.
func TestVerdictSkipsBackground(t *testing.T) {
	var pkts []ingest.Packet
	for i := range 2000 { // nginx serving 40 clients
		c := fmt.Sprintf("203.0.113.%d:4%04d", 20+i%40, i%40)
		pkts = append(pkts, pkt(int64(i*20), ingest.ProtoTCP, c, "198.51.100.7:443", 80), pkt(int64(i*20+1), ingest.ProtoTCP, "198.51.100.7:443", c, 1500))
	}
	for i := range 30 { // 30 short SSH connections from one source
		src := fmt.Sprintf("203.0.113.66:%d", 50000+i)
		pkts = append(pkts, pkt(int64(i*500), ingest.ProtoTCP, src, "198.51.100.7:22", 120), pkt(int64(i*500+5), ingest.ProtoTCP, "198.51.100.7:22", src, 300))
	}
	for i := range 150 { // SYNs to 150 ports from one scanner
		pkts = append(pkts, withFlags(pkt(int64(i*10), ingest.ProtoTCP, "203.0.113.99:40000", fmt.Sprintf("198.51.100.7:%d", 1000+i), 60), 0x02))
	}
	slices.SortStableFunc(pkts, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
	sig := NewSignalSource(&memSource{pkts: pkts}, local24, nil)
	res, err := Analyze(context.Background(), sig, Options{Local: local24, Attributor: commAttributor{"nginx"}})
	if err != nil {
		t.Fatal(err)
	}
	procs := map[ingest.ProcKey]ingest.ProcessInfo{{PID: 77, Start: 1}: {PID: 77, Start: 1, Comm: "nginx", Exe: "/usr/sbin/nginx"}}
	fs := Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs})
	if !hasFinding(fs, RuleBruteForce, SevMedium) || !hasFinding(fs, RuleScanning, SevLow) {
		t.Fatalf("findings %s", ids(fs))
	}
	i := VerdictIndex(fs)
	if i < 0 || fs[i].ID != RuleBandwidthHog {
		t.Errorf("verdict %d of %s, want the bandwidth finding", i, ids(fs))
	}
	fs = append(fs, Finding{ID: RuleBruteForce, Severity: SevHigh})
	SortFindings(fs)
	if i := VerdictIndex(fs); fs[i].ID != RuleBruteForce || fs[i].Severity != SevHigh {
		t.Errorf("a high finding must be the verdict: %s", ids(fs))
	}
	if VerdictIndex(nil) != -1 || VerdictIndex([]Finding{{ID: RuleBlindSpot, Severity: SevMedium}}) != 0 {
		t.Error("VerdictIndex of no findings or only background ones")
	}
}

// TestCollectorIsNoFloodTarget: a NetFlow or syslog collector receives a
// one-way UDP stream from hundreds of exporters; that is its job, not an
// inbound UDP flood. The same traffic to another port is one.
func TestCollectorIsNoFloodTarget(t *testing.T) {
	stream := func(port int) []ingest.Packet {
		var ps []ingest.Packet
		for i := range 12000 { // 300 exporters, 1400-byte datagrams, 12 Mb/s for 10 s
			ps = append(ps, pkt(int64(i*10/12), ingest.ProtoUDP, fmt.Sprintf("11.%d.%d.1:%d", i%300/250, 1+i%250, 40000+i%300), fmt.Sprintf("198.51.100.7:%d", port), 1400))
		}
		return ps
	}
	if fs := findingsOf(t, stream(2055), nil, nil); hasFinding(fs, RuleDDoSTarget, "") {
		t.Errorf("NetFlow collector: %s", ids(fs))
	}
	if fs := findingsOf(t, stream(514), nil, nil); hasFinding(fs, RuleDDoSTarget, "") {
		t.Errorf("syslog collector: %s", ids(fs))
	}
	if fs := findingsOf(t, stream(27015), nil, nil); !hasFinding(fs, RuleDDoSTarget, SevHigh) {
		t.Errorf("the same to a game port: %s", ids(fs))
	}
}

// TestPoolPortNeedsOutbound: a long-lived, low-rate connection to a
// mining-pool port is suspicious when the host opened it to the Internet;
// a client of a local service whose ephemeral port happens to be 45560 is
// not, nor is an internal service on such a port.
func TestPoolPortNeedsOutbound(t *testing.T) {
	conn := func(local, remote string, open string) []ingest.Packet {
		var ps []ingest.Packet
		syn := withFlags(pkt(0, ingest.ProtoTCP, remote, local, 74), 0x02) // the client's SYN
		if open == "out" {
			syn = withFlags(pkt(0, ingest.ProtoTCP, local, remote, 74), 0x02)
		}
		ps = append(ps, syn)
		for i := range 60 { // a minute of keep-alive traffic
			ps = append(ps, pkt(int64(1000+i*1000), ingest.ProtoTCP, local, remote, 200), pkt(int64(1000+i*1000+5), ingest.ProtoTCP, remote, local, 300))
		}
		return ps
	}
	if fs := findingsOf(t, conn("198.51.100.7:5432", "11.2.3.4:45560", "in"), nil, nil); hasFinding(fs, RuleMiningPorts, "") {
		t.Errorf("a database client from port 45560: %s", ids(fs))
	}
	if fs := findingsOf(t, conn("198.51.100.7:40000", "11.2.3.4:3333", "out"), nil, nil); !hasFinding(fs, RuleMiningPorts, SevMedium) {
		t.Errorf("the host's connection to a pool port: %s", ids(fs))
	}
	if fs := findingsOf(t, conn("198.51.100.7:40000", "10.0.0.5:8888", "out"), nil, nil); hasFinding(fs, RuleMiningPorts, "") {
		t.Errorf("a connection to an internal service on 8888: %s", ids(fs))
	}
}

// TestLinkScopedIsNotSpoofed: neighbour discovery from the host's IPv6
// link-local address, DHCP from 0.0.0.0 and mDNS to a multicast group are
// not forged sources, even when --local names only the IPv4 address.
func TestLinkScopedIsNotSpoofed(t *testing.T) {
	var ps []ingest.Packet
	for i := range 150 {
		for _, p := range []ingest.Packet{pkt(int64(i*100), ingest.ProtoICMPv6, "[fe80::1]:0", "[ff02::1:ff00:1]:0", 86),
			pkt(int64(i*100), ingest.ProtoUDP, "0.0.0.0:68", "255.255.255.255:67", 342),
			pkt(int64(i*100), ingest.ProtoUDP, "[fe80::1]:546", "[ff02::1:2]:547", 120),
			pkt(int64(i*100), ingest.ProtoUDP, "10.9.9.9:5353", "224.0.0.251:5353", 100)} {
			p.Dir = ingest.DirOut
			ps = append(ps, p)
		}
	}
	if fs := findingsOf(t, ps, nil, nil); hasFinding(fs, RuleSpoofed, "") {
		t.Errorf("link-scoped traffic: %s", ids(fs))
	}
}

// TestMulticastStreamIsNoFlood: small UDP packets to a multicast group at a
// high rate (a market-data feed) are no DDoS: multicast stays inside the
// network.
func TestMulticastStreamIsNoFlood(t *testing.T) {
	var ps []ingest.Packet
	for i := range 5000 { // 1000 packets/s of 120 bytes to 239.1.2.3
		ps = append(ps, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:40000", "239.1.2.3:30001", 120))
	}
	if fs := findingsOf(t, ps, nil, nil); hasFinding(fs, RuleUDPFlood, "") {
		t.Errorf("multicast feed: %s", ids(fs))
	}
}

// TestConnectionFloodNamesWhere: the reconnecting addresses come with
// where they are (with an ASN database, a CDN's or a carrier's AS).
func TestConnectionFloodNamesWhere(t *testing.T) {
	a := &connAgg{perSource: map[netip.Addr]int{}}
	for i := range 1200 {
		src := netip.AddrFrom4([4]byte{11, 0, byte(i % 40), 1})
		fl := &Flow{Key: FlowKey{Proto: ingest.ProtoTCP, A: netip.MustParseAddrPort("198.51.100.7:443"), B: netip.AddrPortFrom(src, uint16(20000+i)), Oriented: true},
			Traffic: Traffic{First: t0 + int64(i)*20e6, Last: t0 + int64(i)*20e6 + 1e8}}
		a.add(fl)
	}
	_, _, ev, ok := a.flood(443, func(netip.Addr) string { return "US AS13335 Cloudflare" })
	if !ok || !strings.Contains(strings.Join(ev, "\n"), "most: 11.0.0.1 (30, US AS13335 Cloudflare)") {
		t.Errorf("flood %v, evidence %q", ok, ev)
	}
}

// TestReflectorLookalikes: big UDP answers to one client are reflection only
// when the client cannot be a real one. An authoritative server's DNSSEC
// answers to a busy resolver are a medium finding at most; a resolver that
// also retries over TCP, and a private SNMP poller's GetBulk walks, are none.
// Spoofed ANY queries with fragment-sized answers stay high.
func TestReflectorLookalikes(t *testing.T) {
	dnssec := func(tcp bool) []ingest.Packet {
		var ps []ingest.Packet
		for i := 0; i < 1000; i++ { // a resolver, new source port per query, 1.2 KB signed answers
			cl := fmt.Sprintf("203.0.113.60:%d", 20000+(i*7919)%40000)
			ps = append(ps, pkt(int64(i*50), ingest.ProtoUDP, cl, "198.51.100.7:53", 90),
				pkt(int64(i*50+1), ingest.ProtoUDP, "198.51.100.7:53", cl, 1200))
		}
		for i := 0; i < 500; i++ { // 99 other resolvers
			cl := fmt.Sprintf("203.0.113.%d:%d", 100+i%99, 30000+i)
			ps = append(ps, pkt(int64(i*100), ingest.ProtoUDP, cl, "198.51.100.7:53", 90),
				pkt(int64(i*100+1), ingest.ProtoUDP, "198.51.100.7:53", cl, 600))
		}
		if tcp { // the same resolver retries a truncated answer over TCP
			cl := "203.0.113.60:41000"
			ps = append(ps, withFlags(pkt(100, ingest.ProtoTCP, cl, "198.51.100.7:53", 74), 0x02),
				withFlags(pkt(101, ingest.ProtoTCP, "198.51.100.7:53", cl, 74), 0x12),
				withFlags(pkt(102, ingest.ProtoTCP, cl, "198.51.100.7:53", 66), 0x10),
				withFlags(pkt(103, ingest.ProtoTCP, cl, "198.51.100.7:53", 120), 0x18),
				withFlags(pkt(104, ingest.ProtoTCP, "198.51.100.7:53", cl, 3000), 0x18))
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	var poller, anyQueries []ingest.Packet
	for i := 0; i < 1000; i++ { // a monitoring host's SNMP GetBulk walks
		cl := fmt.Sprintf("10.0.0.5:%d", 40000+i%20)
		poller = append(poller, pkt(int64(i*50), ingest.ProtoUDP, cl, "198.51.100.7:161", 80),
			pkt(int64(i*50+1), ingest.ProtoUDP, "198.51.100.7:161", cl, 1400))
	}
	for i := 0; i < 1000; i++ { // spoofed ANY queries: 4 KB answers leave as three fragments
		victim := fmt.Sprintf("203.0.113.50:%d", 1024+i)
		anyQueries = append(anyQueries, pkt(int64(i*10), ingest.ProtoUDP, victim, "198.51.100.7:53", 80),
			pkt(int64(i*10+1), ingest.ProtoUDP, "198.51.100.7:53", victim, 1514),
			pkt(int64(i*10+1), ingest.ProtoUDP, "198.51.100.7:53", victim, 1514),
			pkt(int64(i*10+1), ingest.ProtoUDP, "198.51.100.7:53", victim, 1200))
	}
	var spoofedSYNs []ingest.Packet // SYNs in the victim's name: the host's SYN-ACKs go unanswered
	for i := int64(0); i < 3; i++ {
		spoofedSYNs = append(spoofedSYNs, withFlags(pkt(10000+i*1000, ingest.ProtoTCP, "203.0.113.50:5000", "198.51.100.7:53", 74), 0x02))
	}
	for i := int64(0); i < 5; i++ {
		spoofedSYNs = append(spoofedSYNs, withFlags(pkt(10001+i*1000, ingest.ProtoTCP, "198.51.100.7:53", "203.0.113.50:5000", 74), 0x12))
	}
	for _, tc := range []struct {
		name string
		pkts []ingest.Packet
		sev  Severity // "" = no reflector finding
	}{
		{"dnssec answers to a busy resolver", dnssec(false), SevMedium},
		{"resolver that retries over tcp", dnssec(true), ""},
		{"private snmp poller", poller, ""},
		{"spoofed any queries", anyQueries, SevHigh},
		{"spoofed any queries and syns", append(slices.Clone(anyQueries), spoofedSYNs...), SevHigh},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := findingsOf(t, tc.pkts, nil, nil)
			for _, f := range fs {
				t.Logf("%s %s: %s %q", f.Severity, f.ID, f.Summary, f.Evidence)
				if sevRank(f.Severity) >= sevRank(SevHigh) && f.ID != RuleReflector {
					t.Errorf("unexpected %s %s", f.Severity, f.ID)
				}
			}
			if tc.sev == "" {
				if hasFinding(fs, RuleReflector, "") {
					t.Errorf("unexpected %s in %s", RuleReflector, ids(fs))
				}
				return
			}
			if !hasFinding(fs, RuleReflector, tc.sev) || hasFinding(fs, RuleReflector, SevHigh) != (tc.sev == SevHigh) {
				t.Errorf("want %s %s, got %s", tc.sev, RuleReflector, ids(fs))
			}
		})
	}
}

// TestSlowRequestAttack: 8 addresses each hold 25 connections to the web
// server, sending a header line every 10 s that the server only ACKs
// (Slowloris), in plain HTTP and after a TLS handshake: an inbound DDoS
// with host-side advice. The same connections sending one-byte keepalive
// probes, or getting answers, are no attack.
func TestSlowRequestAttack(t *testing.T) {
	const (
		slowloris = iota
		overTLS
		keepalive
		answered
	)
	conns := func(kind int) []ingest.Packet {
		var ps []ingest.Packet
		for i := 0; i < 200; i++ {
			cl := fmt.Sprintf("203.0.113.%d:%d", 10+i%8, 40000+i)
			srv := "198.51.100.7:80"
			if kind == overTLS {
				srv = "198.51.100.7:443"
			}
			ms := int64(i * 20)
			ps = append(ps, withFlags(pkt(ms, ingest.ProtoTCP, cl, srv, 74), 0x02),
				withFlags(pkt(ms+1, ingest.ProtoTCP, srv, cl, 74), 0x12),
				withFlags(pkt(ms+2, ingest.ProtoTCP, cl, srv, 66), 0x10))
			switch kind {
			case overTLS:
				ps = append(ps, withFlags(pkt(ms+3, ingest.ProtoTCP, cl, srv, 66+517), 0x18),
					withFlags(pkt(ms+4, ingest.ProtoTCP, srv, cl, 1514), 0x10),
					withFlags(pkt(ms+4, ingest.ProtoTCP, srv, cl, 1514), 0x10),
					withFlags(pkt(ms+4, ingest.ProtoTCP, srv, cl, 1200), 0x18),
					withFlags(pkt(ms+5, ingest.ProtoTCP, cl, srv, 66+80), 0x18))
			case slowloris, answered:
				ps = append(ps, withFlags(pkt(ms+3, ingest.ProtoTCP, cl, srv, 66+120), 0x18))
			}
			for k := int64(1); k <= 6; k++ {
				at := ms + k*10_000
				switch kind {
				case keepalive:
					ps = append(ps, withFlags(pkt(at, ingest.ProtoTCP, cl, srv, 67), 0x10))
				case answered:
					ps = append(ps, withFlags(pkt(at, ingest.ProtoTCP, cl, srv, 66+200), 0x18),
						withFlags(pkt(at+1, ingest.ProtoTCP, srv, cl, 1514), 0x10),
						withFlags(pkt(at+1, ingest.ProtoTCP, srv, cl, 900), 0x18))
				default:
					ps = append(ps, withFlags(pkt(at, ingest.ProtoTCP, cl, srv, 66+15), 0x18))
				}
				ps = append(ps, withFlags(pkt(at+2, ingest.ProtoTCP, srv, cl, 66), 0x10))
			}
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	for _, tc := range []struct {
		name   string
		kind   int
		attack bool
	}{
		{"slowloris", slowloris, true},
		{"slowloris over tls", overTLS, true},
		{"idle connections with keepalive probes", keepalive, false},
		{"keep-alive clients getting answers", answered, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := findingsOf(t, conns(tc.kind), nil, nil)
			var got *Finding
			for i, f := range fs {
				t.Logf("%s %s: %s %q", f.Severity, f.ID, f.Summary, f.Evidence)
				if f.ID == RuleDDoSTarget {
					got = &fs[i]
				}
				if f.ID != RuleDDoSTarget && sevRank(f.Severity) >= sevRank(SevHigh) {
					t.Errorf("unexpected %s %s", f.Severity, f.ID)
				}
			}
			if !tc.attack {
				if got != nil {
					t.Errorf("unexpected %s: %s", got.ID, got.Summary)
				}
				return
			}
			// Over TLS the server sent a handshake: a WebSocket or a long
			// poll that idles after its first answer looks the same.
			sev, want := SevHigh, "inbound DDoS: this host is the target of a slow-request (Slowloris) attack on port 80 (200 connections held open from 8 addresses, none answered)"
			if tc.kind == overTLS {
				sev, want = SevMedium, "possible slow-request (Slowloris) attack on port 443: 200 connections held open from 8 addresses got no more back than a TLS handshake, or they are idle long-lived connections (WebSockets, long polling) from busy NAT gateways"
			}
			if got == nil || got.Severity != sev || got.Summary != want {
				t.Fatalf("want %s %q, got %s", sev, want, ids(fs))
			}
			if !strings.Contains(got.Next, "client_header_timeout") || strings.Contains(got.Next, "scrubbing") {
				t.Errorf("want host-side advice, got %q", got.Next)
			}
			if tls := strings.Contains(strings.Join(got.Evidence, " "), "TLS handshake"); tls != (tc.kind == overTLS) {
				t.Errorf("TLS handshake mentioned: %v, want %v", tls, tc.kind == overTLS)
			}
		})
	}
}

// TestPeerDiscoveryIsNoScan: a BitTorrent client's DHT asks thousands of
// peers over UDP and most do not answer, as a scan's probes go unanswered;
// from a known peer-to-peer program installed where such software is, it
// is a low "peer discovery" finding, not a high scan. The same traffic
// from a program with risk facts, or from an unknown one, stays a scan.
func TestPeerDiscoveryIsNoScan(t *testing.T) {
	var dht []ingest.Packet
	for i := range 2000 {
		r := fmt.Sprintf("%d.%d.%d.%d:%d", 20+i%150, i%200, i%7, 1+i%250, 1024+(i*7919)%40000)
		dht = append(dht, pkt(int64(i*25), ingest.ProtoUDP, "198.51.100.7:51413", r, 140))
		if i%5 < 2 {
			dht = append(dht, pkt(int64(i*25+10), ingest.ProtoUDP, r, "198.51.100.7:51413", 380))
		}
	}
	for _, tc := range []struct {
		comm, exe string
		sev       Severity
		summary   string
	}{
		{"transmission-da", "/usr/bin/transmission-daemon", SevLow, "peer discovery by the BitTorrent client transmission-da: transmission-da[77]"},
		{"geth", "/usr/local/bin/geth", SevLow, "peer discovery by the blockchain node geth: geth[77]"},
		{"geth", "/tmp/geth", SevHigh, "scanning: geth[77]"},
		{"worker", "/opt/app/worker", SevHigh, "scanning: worker[77]"},
	} {
		fs := oneProcFindings(t, dht, tc.comm, tc.exe)
		var got *Finding
		for i := range fs {
			if fs[i].ID == RuleScanning {
				got = &fs[i]
			}
		}
		if got == nil || got.Severity != tc.sev || !strings.HasPrefix(got.Summary, tc.summary) {
			t.Errorf("%s at %s: %s; want %s %q", tc.comm, tc.exe, ids(fs), tc.sev, tc.summary)
			if got != nil {
				t.Log(got.Summary)
			}
		}
		if tc.sev == SevLow { // the bandwidth finding says what the program is
			if hog := pick(t, fs, RuleBandwidthHog, ""); hog == nil || !strings.Contains(hog.Summary, ", peer-to-peer traffic") {
				t.Errorf("%s: the bandwidth finding does not name peer-to-peer traffic: %s", tc.comm, ids(fs))
			}
		}
	}
}

// TestLogStreamIsNoFlood: one-way UDP from a log, metrics or flow shipper
// (rsyslogd to a hosted syslog intake on a high port) is a low "one-way
// UDP stream", wherever the collector is; to a collector's well-known port
// without a known sender, a medium; from anything else to a public
// address, or from a shipper's name with risk facts, DDoS participation.
func TestLogStreamIsNoFlood(t *testing.T) {
	stream := func(port int) []ingest.Packet {
		var ps []ingest.Packet
		for i := range 3000 { // 1000 lines a second
			ps = append(ps, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:41000", fmt.Sprintf("11.5.5.5:%d", port), 200))
		}
		return ps
	}
	for _, tc := range []struct {
		name, comm, exe string
		port            int
		sev             Severity
		summary         string
	}{
		{"rsyslogd to a hosted intake", "rsyslogd", "/usr/sbin/rsyslogd", 41234, SevLow, "one-way UDP stream: rsyslogd[77]"},
		{"softflowd to a collector", "softflowd", "/usr/sbin/softflowd", 2055, SevLow, "one-way UDP stream: softflowd[77]"},
		{"unknown sender to syslog's port", "", "", 514, SevMedium, "possible DDoS participation: unattributed sockets"},
		{"a worker to a high port", "worker", "/opt/app/worker", 41234, SevHigh, "DDoS participation: worker[77]"},
		{"rsyslogd from /tmp", "rsyslogd", "/tmp/rsyslogd", 41234, SevHigh, "DDoS participation: rsyslogd[77]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := NewSignalSource(&memSource{pkts: stream(tc.port)}, local24, nil)
			opts := Options{Local: local24}
			procs := map[ingest.ProcKey]ingest.ProcessInfo{}
			if tc.comm != "" {
				opts.Attributor = commAttributor{tc.comm}
				procs[ingest.ProcKey{PID: 77, Start: 1}] = ingest.ProcessInfo{PID: 77, PPID: 1, Start: 1, Comm: tc.comm, Exe: tc.exe}
			}
			res, err := Analyze(context.Background(), sig, opts)
			if err != nil {
				t.Fatal(err)
			}
			fs := Findings(FindingInput{Result: res, Signals: sig.Signals(), Procs: procs})
			var got *Finding
			for i := range fs {
				if fs[i].ID == RuleUDPFlood {
					got = &fs[i]
				}
			}
			if got == nil || got.Severity != tc.sev || !strings.HasPrefix(got.Summary, tc.summary) {
				t.Errorf("%s; want %s %q", ids(fs), tc.sev, tc.summary)
				if got != nil {
					t.Log(got.Summary)
				}
			}
		})
	}
}

// TestSlowlorisFromHost: the host holding 200 slow requests open to one
// web server is a Slowloris bot (high ddos-syn-flood, charged to the
// process); one long-lived connection trickling log lines to a collector
// is not.
func TestSlowlorisFromHost(t *testing.T) {
	trickle := func(n int, target string) []ingest.Packet {
		var ps []ingest.Packet
		for i := range n {
			l := fmt.Sprintf("198.51.100.7:%d", 30000+i)
			ms := int64(i * 20)
			ps = append(ps, withFlags(pkt(ms, ingest.ProtoTCP, l, target, 74), 0x02),
				withFlags(pkt(ms+1, ingest.ProtoTCP, target, l, 74), 0x12),
				withFlags(pkt(ms+2, ingest.ProtoTCP, l, target, 66), 0x10),
				withFlags(pkt(ms+3, ingest.ProtoTCP, l, target, 66+120), 0x18))
			for k := int64(1); k <= 6; k++ {
				ps = append(ps, withFlags(pkt(ms+k*10_000, ingest.ProtoTCP, l, target, 66+15), 0x18),
					withFlags(pkt(ms+k*10_000+2, ingest.ProtoTCP, target, l, 66), 0x10))
			}
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	for _, tc := range []struct {
		name, comm string
		pkts       []ingest.Packet
		want       string
	}{
		{"slowloris bot", "perl", trickle(200, "203.0.113.80:80"), "DDoS participation: perl[77] (uid 0, /usr/bin/perl) holds 200 slow requests (Slowloris) open to 203.0.113.80:80"},
		{"log shipper", "rsyslogd", trickle(1, "203.0.113.80:6514"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := oneProcFindings(t, tc.pkts, tc.comm, "/usr/bin/"+tc.comm)
			got := pick(t, fs, RuleSYNFlood, RuleDDoSTarget) // (the host's own connections are no attack on it)
			if tc.want == "" {
				if got != nil {
					t.Errorf("unexpected %s", got.Summary)
				}
				return
			}
			if got == nil || got.Severity != SevHigh || !strings.HasPrefix(got.Summary, tc.want) {
				t.Errorf("want high %q, got %s", tc.want, ids(fs))
			}
		})
	}
}

// TestLowFindingFlagsNoProcess: a log shipper's one-way UDP stream (a low
// finding) does not make the process abnormal: its large TCP upload to a
// log intake stays the medium "large upload by the log/metrics shipper".
func TestLowFindingFlagsNoProcess(t *testing.T) {
	var ps []ingest.Packet
	for i := range 3000 {
		ps = append(ps, pkt(int64(i), ingest.ProtoUDP, "198.51.100.7:41000", "11.5.5.5:41234", 200))
	}
	for i := range 1000 { // 50 s, 30 kB/s up
		ps = append(ps, pkt(int64(i*50), ingest.ProtoTCP, "198.51.100.7:40000", "11.4.4.4:443", 1514))
		if i%10 == 0 {
			ps = append(ps, pkt(int64(i*50+1), ingest.ProtoTCP, "11.4.4.4:443", "198.51.100.7:40000", 66))
		}
	}
	slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
	fs := oneProcFindings(t, ps, "rsyslogd", "/usr/sbin/rsyslogd")
	if !hasFinding(fs, RuleUDPFlood, SevLow) || !hasFinding(fs, RuleExfiltration, SevMedium) || hasFinding(fs, RuleExfiltration, SevHigh) {
		t.Errorf("want a low one-way stream and a medium upload, got %s", ids(fs))
	}
}

// TestInboundScans: a scan from the Internet is background (low); one from
// an internal address is worth a look (medium: lateral movement, or the
// organisation's scanner). A scanner's repeated probes of the RDP port are
// part of its scan, not a brute force.
func TestInboundScans(t *testing.T) {
	scan := func(src string) []ingest.Packet {
		var ps []ingest.Packet
		for p := range 150 {
			ps = append(ps, withFlags(pkt(int64(p*10), ingest.ProtoTCP, src+":40000", fmt.Sprintf("198.51.100.7:%d", 1+p), 60), 0x02))
		}
		for i := range 25 { // service detection on RDP: short connections
			ps = append(ps, conn(int64(2000+i*100), 50, fmt.Sprintf("%s:%d", src, 41000+i), "198.51.100.7:3389", 120, 300)...)
		}
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	for _, tc := range []struct {
		src string
		sev Severity
	}{{"11.2.3.4", SevLow}, {"10.0.0.66", SevMedium}} {
		fs := findingsOf(t, scan(tc.src), nil, nil)
		if !hasFinding(fs, RuleScanning, tc.sev) || hasFinding(fs, RuleBruteForce, "") {
			t.Errorf("scan from %s: %s; want a %s scan and no brute force", tc.src, ids(fs), tc.sev)
		}
	}
}

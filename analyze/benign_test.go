package analyze

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

// TestBenignServices: ordinary servers and clients whose traffic resembles
// an attack in one respect (many peers, many connections, high packet
// rates, one-way UDP) must get no finding of medium or higher severity. A
// site behind Cloudflare sees every visitor's short connection come from a
// few dozen Cloudflare addresses: at most a low ddos-target that says not
// to block them, while bots flooding the same port directly are still an
// HTTP flood.
func TestBenignServices(t *testing.T) {
	byTime := func(ps []ingest.Packet) []ingest.Packet {
		slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
		return ps
	}
	sc := benignScenarios()
	cdnAndBots := slices.Clone(sc["cdn origin"])
	for i := range 1500 { // 30 bots, 50 connections each, straight to the origin
		c := fmt.Sprintf("11.3.%d.%d:%d", i%30/10, 1+i%10, 40000+i)
		cdnAndBots = append(cdnAndBots, conn(int64(i*40), 150, c, "198.51.100.7:443", 400, 9000)...)
	}
	for _, name := range slices.Sorted(maps.Keys(sc)) {
		t.Run(name, func(t *testing.T) {
			fs := findingsOf(t, byTime(sc[name]), nil, nil)
			for _, f := range fs {
				t.Logf("%s %s: %s %q", f.Severity, f.ID, f.Summary, f.Evidence)
				if sevRank(f.Severity) >= sevRank(SevMedium) {
					t.Errorf("unexpected %s %s", f.Severity, f.ID)
				}
			}
			if name != "cdn origin" {
				return
			}
			if len(fs) != 1 || fs[0].ID != RuleDDoSTarget || fs[0].Severity != SevLow ||
				!strings.Contains(fs[0].Summary, "heavy connection churn through Cloudflare on port 443 (27 short connections/s from 40 of its addresses)") ||
				!strings.HasPrefix(fs[0].Next, "Do not block these addresses: they are Cloudflare's") {
				t.Errorf("want one low %s naming Cloudflare, got %s", RuleDDoSTarget, ids(fs))
			}
		})
	}
	t.Run("bots amid cdn traffic", func(t *testing.T) {
		fs := findingsOf(t, byTime(cdnAndBots), nil, nil)
		if !hasFinding(fs, RuleDDoSTarget, SevHigh) || !hasFinding(fs, RuleDDoSTarget, SevLow) {
			t.Fatalf("want a high HTTP flood by the bots and the low Cloudflare churn, got %s", ids(fs))
		}
		for _, f := range fs {
			if f.Severity == SevHigh && (!strings.Contains(f.Summary, "from 30 addresses") || strings.Contains(strings.Join(f.Evidence, " "), "162.158.")) {
				t.Errorf("the flood must count the 30 bots alone: %s %q", f.Summary, f.Evidence)
			}
		}
	})
}

// benignScenarios are ordinary services' traffic on 198.51.100.7, by name:
// a site behind Cloudflare, a DHT node, a recursive resolver, a WireGuard
// server, a game server, blackbox probes, an NTP server, a mail server, a
// Tor relay and a SIP registrar. Packets are in no particular order.
func benignScenarios() map[string][]ingest.Packet {
	sc := map[string][]ingest.Packet{}
	var ps []ingest.Packet
	for i := range 1600 { // CDN origin: 40 Cloudflare edge addresses, short connections
		c := fmt.Sprintf("162.158.%d.%d:%d", i%40/10, 1+i%10, 20000+i)
		ps = append(ps, conn(int64(i*37), 150, c, "198.51.100.7:443", 600, 20000)...)
	}
	sc["cdn origin"] = ps
	ps = nil
	for i := range 3000 { // DHT node
		r := fmt.Sprintf("%d.%d.%d.%d:%d", 20+i%150, i%200, i%7, 1+i%250, 10000+(i*7919)%50000)
		ps = append(ps, pkt(int64(i*20), ingest.ProtoUDP, "198.51.100.7:6881", r, 140))
		if i%5 < 2 {
			ps = append(ps, pkt(int64(i*20+30), ingest.ProtoUDP, r, "198.51.100.7:6881", 380))
		}
	}
	sc["dht"] = ps
	ps = nil
	for i := range 4000 { // recursive resolver
		r := fmt.Sprintf("%d.%d.%d.%d:53", 20+i%120, i%160, 3, 1+i%200)
		l := fmt.Sprintf("198.51.100.7:%d", 10000+(i*7919)%50000)
		ps = append(ps, pkt(int64(i*15), ingest.ProtoUDP, l, r, 90))
		if i%20 != 0 {
			ps = append(ps, pkt(int64(i*15+20), ingest.ProtoUDP, r, l, 300))
		}
		cl := fmt.Sprintf("10.0.0.%d:%d", 1+i%50, 30000+i)
		ps = append(ps, pkt(int64(i*15+1), ingest.ProtoUDP, cl, "198.51.100.7:53", 80), pkt(int64(i*15+25), ingest.ProtoUDP, "198.51.100.7:53", cl, 200))
	}
	sc["resolver"] = ps
	ps = nil
	for i := range 60 * 200 { // wireguard: 60 peers
		cl := fmt.Sprintf("%d.%d.5.%d:%d", 30+i%60, 7, 1+i%60, 40000+i%60)
		ps = append(ps, pkt(int64(i*5), ingest.ProtoUDP, cl, "198.51.100.7:51820", 148), pkt(int64(i*5+1), ingest.ProtoUDP, "198.51.100.7:51820", cl, 1442))
	}
	sc["wireguard"] = ps
	ps = nil
	for i := range 300 * 40 { // game server: 300 clients
		cl := fmt.Sprintf("%d.%d.9.%d:%d", 30+i%150, 8, 1+i%300/150, 27005)
		ps = append(ps, pkt(int64(i*5), ingest.ProtoUDP, cl, "198.51.100.7:27015", 90), pkt(int64(i*5+1), ingest.ProtoUDP, "198.51.100.7:27015", cl, 160))
	}
	sc["game"] = ps
	ps = nil
	for i := range 1200 { // blackbox: 300 public https endpoints every 15 s
		r := fmt.Sprintf("%d.%d.4.%d:443", 40+i%300/50, 9, 1+i%50)
		l := fmt.Sprintf("198.51.100.7:%d", 30000+i)
		ps = append(ps, conn(int64(i*50), 200, l, r, 500, 4000)...)
	}
	sc["blackbox"] = ps
	ps = nil
	for i := range 5000 { // ntp server
		cl := fmt.Sprintf("%d.%d.%d.%d:123", 30+i%100, i%50, 2, 1+i%200)
		ps = append(ps, pkt(int64(i*12), ingest.ProtoUDP, cl, "198.51.100.7:123", 90), pkt(int64(i*12+1), ingest.ProtoUDP, "198.51.100.7:123", cl, 90))
	}
	sc["ntp server"] = ps
	ps = nil
	for i := range 2000 { // MX: 30 big senders 20 conns each + others
		var c string
		if i < 600 {
			c = fmt.Sprintf("209.85.%d.%d:%d", i%30/10, 1+i%10, 30000+i)
		} else {
			c = fmt.Sprintf("%d.%d.7.%d:%d", 30+i%200, i%7, 1+i%250, 30000+i)
		}
		ps = append(ps, conn(int64(i*30), 2000, c, "198.51.100.7:25", 8000, 600)...)
	}
	sc["mx"] = ps
	ps = nil
	for i := range 2000 { // tor relay
		r := fmt.Sprintf("%d.%d.6.%d:9001", 30+i%200, i%9, 1+i%250)
		l := fmt.Sprintf("198.51.100.7:%d", 30000+i)
		for k := range 10 {
			ps = append(ps, pkt(int64(i*30+k*100), ingest.ProtoTCP, l, r, 600), pkt(int64(i*30+k*100+5), ingest.ProtoTCP, r, l, 600))
		}
	}
	sc["tor"] = ps
	ps = nil
	for i := range 3000 { // sip registrar
		cl := fmt.Sprintf("%d.%d.8.%d:5060", 30+i%100, i%30, 1+i%200)
		ps = append(ps, pkt(int64(i*20), ingest.ProtoUDP, cl, "198.51.100.7:5060", 600), pkt(int64(i*20+2), ingest.ProtoUDP, "198.51.100.7:5060", cl, 500))
	}
	sc["sip"] = ps
	return sc
}

func TestReverseProxy(t *testing.T) {
	for _, tc := range []struct {
		addr string
		asn  uint
		want string
	}{
		{"162.158.1.2", 0, "Cloudflare"},
		{"2606:4700::6810:84e5", 0, "Cloudflare"},
		{"::ffff:104.16.0.1", 0, "Cloudflare"},
		{"151.101.1.69", 0, "Fastly"},
		{"2a04:4e42::1", 0, "Fastly"},
		{"35.191.10.1", 0, "Google Cloud load balancer"},
		{"130.211.2.9", 0, "Google Cloud load balancer"},
		{"23.50.1.1", 20940, "Akamai"},
		{"8.8.8.8", 15169, ""},
		{"1.1.1.1", 0, ""}, // Cloudflare's resolver, not an origin-facing range
	} {
		if got := ReverseProxy(netip.MustParseAddr(tc.addr), tc.asn); got != tc.want {
			t.Errorf("ReverseProxy(%s, %d) = %q, want %q", tc.addr, tc.asn, got, tc.want)
		}
	}
	for _, tc := range []struct {
		l    Location
		want string
	}{
		{Location{Country: "US", Proxy: "Cloudflare"}, "US (Cloudflare)"},
		{Location{Country: "US", ASN: 13335, ASOrg: "CLOUDFLARENET", Proxy: "Cloudflare"}, "US AS13335 CLOUDFLARENET"},
		{Location{Country: "US", ASN: 16509, ASOrg: "AMAZON-02", Proxy: "your proxy 130.176.0.0/16"}, "US AS16509 AMAZON-02 (your proxy 130.176.0.0/16)"},
		{Location{Country: "US", ASN: 54113, ASOrg: "Fastly, Inc.", Proxy: "Fastly"}, "US AS54113 Fastly, Inc."},
		{Location{Proxy: "Google Cloud load balancer"}, "Google Cloud load balancer"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.l, got, tc.want)
		}
	}
}

// TestBenignServicesWithProcesses: the same services, their traffic owned
// by the programs that serve it, get no finding of medium or higher
// severity either (the site behind Cloudflare keeps its low churn note).
func TestBenignServicesWithProcesses(t *testing.T) {
	procs := map[string][2]string{"resolver": {"unbound", "/usr/sbin/unbound"}, "dht": {"transmission-da", "/usr/bin/transmission-daemon"},
		"game": {"cs2", "/home/steam/cs2/game/bin/linuxsteamrt64/cs2"}, "ntp server": {"chronyd", "/usr/sbin/chronyd"},
		"mx": {"master", "/usr/lib/postfix/sbin/master"}, "tor": {"tor", "/usr/bin/tor"}, "sip": {"asterisk", "/usr/sbin/asterisk"},
		"blackbox": {"blackbox_export", "/usr/local/bin/blackbox_exporter"}, "cdn origin": {"nginx", "/usr/sbin/nginx"},
		"wireguard": {"wireguard-go", "/usr/bin/wireguard-go"}}
	sc := benignScenarios()
	for _, name := range slices.Sorted(maps.Keys(sc)) {
		t.Run(name, func(t *testing.T) {
			ps := sc[name]
			slices.SortStableFunc(ps, func(a, b ingest.Packet) int { return cmp.Compare(a.TS, b.TS) })
			p, ok := procs[name]
			if !ok {
				t.Fatalf("no process for %s", name)
			}
			for _, f := range oneProcFindings(t, ps, p[0], p[1]) {
				t.Logf("%s %s: %s", f.Severity, f.ID, f.Summary)
				if sevRank(f.Severity) >= sevRank(SevMedium) {
					t.Errorf("unexpected %s %s", f.Severity, f.ID)
				}
			}
		})
	}
}

// TestMediumFactsStayMedium: the top talker with only a medium risk fact
// (its name differs from its executable's) gets a medium bandwidth finding
// pointing at it, not a high "abnormal process" with "treat the host as
// compromised".
func TestMediumFactsStayMedium(t *testing.T) {
	var ps []ingest.Packet
	for i := range 600 {
		ps = append(ps, pkt(int64(i*50), ingest.ProtoTCP, "198.51.100.7:40000", "203.0.113.9:443", 1514),
			pkt(int64(i*50+1), ingest.ProtoTCP, "203.0.113.9:443", "198.51.100.7:40000", 1514))
	}
	fs := oneProcFindings(t, ps, "nginx", "/opt/app/server")
	hog := pick(t, fs, RuleBandwidthHog, "")
	if !hasFinding(fs, RuleSuspiciousProc, SevMedium) || hog == nil || hog.Severity != SevMedium || !strings.HasSuffix(hog.Summary, ": see "+RuleSuspiciousProc) {
		t.Errorf("want a medium suspicious process and a medium bandwidth finding pointing at it, got %s", ids(fs))
	}
}

package analyze

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// FindingInput is what the finding rules look at.
type FindingInput struct {
	Result   *Result
	Procs    map[ingest.ProcKey]ingest.ProcessInfo
	Manifest *ingest.Manifest // nil for bare captures
	Signals  Signals
	Geo      GeoLookup // nil: special ranges only
	// HomeCountry is the ISO code of the host's country; destinations
	// elsewhere are "foreign". Empty: taken from the host's own public
	// address when it has one, else unknown.
	HomeCountry string
	Policy      *Policy // allow-lists; nil = none
}

// Rule IDs (stable; documented in README "Findings").
const (
	RuleBandwidthHog   = "bandwidth-hog"
	RuleMining         = "crypto-mining"
	RuleMiningPorts    = "mining-pool-port"
	RuleUDPFlood       = "ddos-udp-flood"
	RuleICMPFlood      = "ddos-icmp-flood"
	RuleSYNFlood       = "ddos-syn-flood"
	RuleSpoofed        = "spoofed-source"
	RuleDDoSTarget     = "ddos-target"
	RuleReflector      = "ddos-reflector"
	RuleExfiltration   = "exfiltration"
	RuleSuspiciousProc = "suspicious-process"
	RuleCloudAgent     = "cloud-agent"
	RuleScanning       = "scanning"
	RuleBruteForce     = "brute-force"
	RuleSpam           = "spam"
	RuleBlindSpot      = "capture-blind-spot"
	RuleUnattributed   = "unattributed-traffic"
	RulePolicy         = "policy-violation"
	RuleTunnels        = "tunnel-traffic"
)

// Next steps, following the runbook (DESIGN.md §1).
const (
	nextCapacity          = "The process is an expected service: this is a capacity problem. Check whether the load is legitimate (access logs, a CDN, rate limits) and scale the bandwidth or the service."
	nextContain           = "Treat the host as compromised: isolate it (security group / firewall the remote addresses), keep this bundle as evidence, back up data, then rebuild from a clean image and rotate credentials; do not just kill the process."
	nextContainTail       = "isolate it, keep this bundle as evidence, back up data, rebuild from a clean image and rotate credentials."
	nextVendor            = "This is the cloud vendor's own agent: open a ticket with the vendor, attaching this report; stopping the agent may break monitoring or security services."
	nextDDoSTarget        = "This is an attack on the host, not a process to stop: ask the cloud provider for DDoS protection or scrubbing (or put the service behind a CDN, or move it to a new address), and drop the traffic upstream with a security group or network ACL; a firewall on the host cannot free a saturated link. Keep this bundle as evidence for the provider."
	nextConnFlood         = "Check whether the process is expected to call this address this often (a crawler, an API client without connection reuse); if not, it is a bot flooding the target: " + nextContainTail
	adviceRateLimit       = "rate-limit new connections and requests per client address (nginx limit_req/limit_conn, a WAF or CDN rate rule, or hashlimit/connlimit in the firewall) and block the addresses that reconnect most (the evidence lists them)"
	nextConnFloodTarget   = "This is an attack on the service, not a process to stop: " + adviceRateLimit + "; the service's answers are what fill the uplink, so limiting them on the host helps. If it persists, put the service behind a CDN or the provider's DDoS/WAF protection. Keep this bundle as evidence."
	adviceSlowRequest     = "cut slow clients off with request timeouts (nginx client_header_timeout/client_body_timeout, Apache mod_reqtimeout, HAProxy timeout http-request, Go http.Server ReadHeaderTimeout) and a per-address connection limit (nginx limit_conn, connlimit in the firewall), then block the addresses that hold most (the evidence lists them)"
	nextSlowRequestTarget = "This is an attack on the service's connection slots, not on the link: " + adviceSlowRequest + ". A proxy or CDN that buffers whole requests before passing them on (nginx in front of Apache, a cloud load balancer) also stops it. Keep this bundle as evidence."
	adviceWaterTorture    = "turn on response rate limiting in the DNS server (NSD rrl, BIND rate-limit, Knot RRL, PowerDNS dnsdist) and, on a resolver, aggressive use of the DNSSEC-validated cache (RFC 8198) and per-client query limits; the resolvers that relay the flood are victims too, do not block them wholesale"
	nextWaterTorture      = "This is an attack on the DNS service, not a process to stop: " + adviceWaterTorture + ". If the queries fill the link or the server cannot keep up, ask the DNS or cloud provider for DDoS protection (an anycast DNS service absorbs such floods). Keep this bundle as evidence."
	nextOneWay            = "Check what the process sends to this address: one-way UDP inside the network is usually metrics or logs (statsd, syslog); if the process should not, it floods the target: " + nextContainTail
	nextCapture           = "The capture missed traffic: re-collect with a larger ring (fewer interfaces, a --filter) or trust the interface counters for totals."
)

type findCtx struct {
	in      FindingInput
	r       *Result
	names   map[ingest.ProcKey]string
	home    string
	out     []Finding
	flagged map[ingest.ProcKey]bool
	// flood is, per process, the traffic of a SYN flood's half-open
	// connections charged to it through its listening socket (ddosTarget):
	// not the process's doing, so bandwidthHog leaves it out.
	flood    map[ingest.ProcKey][2]int64     // out, in wire bytes
	remotes  map[ingest.ProcKey][]procRemote // remotesOf's index
	synPorts map[uint16]bool                 // local ports bare SYNs came in to (remoteOpened)
	proxies  map[netip.Addr]string           // proxyOf's cache
}

// Findings runs every rule and returns the findings, most severe first
// (ties by rule ID, then summary): deterministic.
func Findings(in FindingInput) []Finding {
	r := in.Result
	if r == nil {
		return nil
	}
	c := &findCtx{in: in, r: r, names: map[ingest.ProcKey]string{}, flagged: map[ingest.ProcKey]bool{}}
	for _, p := range r.Processes {
		c.names[p.Key] = fmt.Sprintf("%s[%d]", p.Comm, p.Key.PID)
	}
	c.home = strings.ToUpper(in.HomeCountry)
	if c.home == "" && in.Manifest != nil && in.Geo != nil {
		for _, i := range in.Manifest.Interfaces {
			for _, a := range i.Addrs {
				if p, err := netip.ParsePrefix(a); err == nil {
					if l := Locate(in.Geo, p.Addr()); l.Country != "" && c.home == "" {
						c.home = l.Country
					}
				}
			}
		}
	}
	c.mining()
	c.floods()
	c.waterTortureOut()
	c.slowOut()
	c.ddosTarget()
	c.reflector()
	c.suspicious()
	c.exfiltration()
	c.scanning()
	c.bruteForce()
	c.spam()
	c.bandwidthHog()
	c.tunnels()
	c.cloudAgents()
	c.blindSpots()
	c.policy()
	SortFindings(c.out)
	return c.out
}

// rulePriority orders findings of equal severity: specific threats before
// the generic bandwidth finding, so the first finding that is not
// Background is the verdict.
var rulePriority = []string{RuleMining, RuleSYNFlood, RuleUDPFlood, RuleICMPFlood, RuleSpoofed, RuleReflector, RuleDDoSTarget, RuleSuspiciousProc, RuleExfiltration,
	RuleScanning, RuleSpam, RuleBruteForce, RuleMiningPorts, RuleBandwidthHog, RuleCloudAgent, RulePolicy, RuleBlindSpot, RuleTunnels, RuleUnattributed}

func rulePrio(id string) int {
	if i := slices.Index(rulePriority, id); i >= 0 {
		return i
	}
	return len(rulePriority)
}

// Background reports whether a finding of rule id at severity sev is
// background rather than an answer to "what is using the bandwidth": an
// SSH brute force, an inbound port scan, outbound mail from a mail server,
// and notes on the capture itself (blind spots, unattributed traffic,
// tunnels) carry little of the traffic. They stay findings, but the
// verdict is the first finding that is not background (VerdictIndex).
func Background(id string, sev Severity) bool {
	switch id {
	case RuleBruteForce, RuleBlindSpot, RuleUnattributed, RuleTunnels:
		return true
	case RuleScanning, RuleSpam:
		return sevRank(sev) <= sevRank(SevLow) // inbound scans, an MTA's mail
	}
	return false
}

// VerdictIndex returns the index of the finding that is the report's
// verdict in fs, sorted by SortFindings: the first one of high severity or
// above, else the first that is not Background, else the first; -1 when fs
// is empty.
func VerdictIndex(fs []Finding) int {
	for i, f := range fs {
		if sevRank(f.Severity) >= sevRank(SevHigh) || !Background(f.ID, f.Severity) {
			return i
		}
	}
	if len(fs) > 0 {
		return 0
	}
	return -1
}

// SortFindings orders findings most severe first, then by rule priority
// (specific threats before generic ones), then by summary; VerdictIndex
// picks the report's verdict from them.
func SortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		if x := cmp.Compare(sevRank(b.Severity), sevRank(a.Severity)); x != 0 {
			return x
		}
		if x := cmp.Compare(rulePrio(a.ID), rulePrio(b.ID)); x != 0 {
			return x
		}
		if x := cmp.Compare(a.ID, b.ID); x != 0 {
			return x
		}
		return cmp.Compare(a.Summary, b.Summary)
	})
}

func sevRank(s Severity) int {
	return slices.Index([]Severity{SevInfo, SevLow, SevMedium, SevHigh, SevCritical}, s) + 1
}

func (c *findCtx) add(f Finding) { c.out = append(c.out, f) }

func human(b int64) string {
	v := float64(b)
	for _, u := range []string{"B", "kB", "MB", "GB", "TB"} {
		if v < 999.95 || u == "TB" {
			if u == "B" {
				return fmt.Sprintf("%.0f %s", v, u)
			}
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= 1000
	}
	return ""
}

func humanRate(bps float64) string { return strings.Replace(human(int64(bps*8)), "B", "b", 1) + "/s" }

func pct(x float64) string { return fmt.Sprintf("%.0f%%", x*100) }

func tsStr(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05Z") }

// where says where a is, after the name a DNS answer in the capture gave it
// ("pool.supportxmr.example · NL"), as the report's where column does.
func (c *findCtx) where(a netip.Addr) string {
	l := Locate(c.in.Geo, a)
	s := l.String()
	if c.home != "" && l.Country != "" && l.Country != c.home {
		s += " (foreign)"
	}
	return WithName(c.in.Signals.Names[a.Unmap()], s)
}

// proxyOf names the reverse proxy (CDN, cloud load balancer) a belongs to,
// or "" (Location.Proxy).
func (c *findCtx) proxyOf(a netip.Addr) string {
	p, ok := c.proxies[a]
	if !ok {
		if c.proxies == nil {
			c.proxies = map[netip.Addr]string{}
		}
		p = Locate(c.in.Geo, a).Proxy
		c.proxies[a] = p
	}
	return p
}

func (c *findCtx) foreign(a netip.Addr) bool {
	l := Locate(c.in.Geo, a)
	return c.home != "" && l.Country != "" && l.Country != c.home
}

func (c *findCtx) proc(k ingest.ProcKey) (ingest.ProcessInfo, bool) {
	p, ok := c.in.Procs[k]
	return p, ok
}

func (c *findCtx) procDesc(k ingest.ProcKey) string {
	name := c.names[k]
	if name == "" {
		name = fmt.Sprintf("pid %d", k.PID)
	}
	if p, ok := c.proc(k); ok {
		var facts []string
		if p.User != "" {
			facts = append(facts, "user "+p.User)
		} else if p.UID >= 0 {
			facts = append(facts, fmt.Sprintf("uid %d", p.UID))
		}
		if p.Exe != "" {
			facts = append(facts, p.ExeLabel())
		}
		if len(facts) > 0 {
			name += " (" + strings.Join(facts, ", ") + ")"
		}
	}
	return name
}

func (c *findCtx) parent(p ingest.ProcessInfo) *ingest.ProcessInfo {
	var best *ingest.ProcessInfo
	for k, q := range c.in.Procs {
		if k.PID == p.PPID && p.PPID != 0 && q.Start <= p.Start {
			q := q
			if best == nil || q.Start > best.Start {
				best = &q
			}
		}
	}
	return best
}

// procRemote is one remote host of a process with the process's wire bytes
// to it.
type procRemote struct {
	addr    netip.Addr
	out, in int64
	served  int64 // of out, what went on connections the remote opened (remoteOpened)
	flows   int
}

// remoteOpened reports whether the remote end opened flow f: a TCP
// connection to a local port bare SYNs came in to (or, with no SYNs seen
// at all, to the lower port), or UDP to a local port below 1024.
func (c *findCtx) remoteOpened(f *Flow) bool {
	k := &f.Key
	if !k.Oriented {
		return false
	}
	if k.Proto != ingest.ProtoTCP {
		return k.A.Port() < 1024 && k.A.Port() < k.B.Port()
	}
	if c.synTo(k.A.Port()) {
		return true
	}
	return len(c.synPorts) == 0 && k.A.Port() < k.B.Port() // no SYNs seen at all: the server's port is the lower

}

// synTo reports whether bare SYNs came in to local port p (the signals'
// busiest ports): its connections were opened by the remote ends.
func (c *findCtx) synTo(p uint16) bool {
	if c.synPorts == nil {
		c.synPorts = map[uint16]bool{}
		for _, s := range c.in.Signals.SYNInPorts {
			c.synPorts[s.Port] = true
		}
	}
	return c.synPorts[p]
}

// remotesOf returns a process's remote hosts, biggest first. All processes'
// lists are built in one pass over the flows the first time it is called.
func (c *findCtx) remotesOf(k ingest.ProcKey) []procRemote {
	if c.remotes == nil {
		c.remotes = map[ingest.ProcKey][]procRemote{}
		type key struct {
			p ingest.ProcKey
			a netip.Addr
		}
		idx := map[key]int{}
		for _, f := range c.r.Flows {
			a := f.Key.B.Addr()
			var seen []ingest.ProcKey // processes this flow was already counted for
			for _, o := range f.Owners {
				if !o.Owner.Attributed() {
					continue
				}
				p := o.Owner.Proc
				kk := key{p, a}
				i, ok := idx[kk]
				if !ok {
					i = len(c.remotes[p])
					idx[kk] = i
					c.remotes[p] = append(c.remotes[p], procRemote{addr: a})
				}
				r := &c.remotes[p][i]
				r.out += o.Out.Wire
				r.in += o.In.Wire
				if c.remoteOpened(&f) {
					r.served += o.Out.Wire
				}
				if !slices.Contains(seen, p) {
					seen = append(seen, p)
					r.flows++
				}
			}
		}
		for _, rs := range c.remotes {
			slices.SortStableFunc(rs, func(a, b procRemote) int {
				if x := cmp.Compare(b.out+b.in, a.out+a.in); x != 0 {
					return x
				}
				return a.addr.Compare(b.addr)
			})
		}
	}
	return c.remotes[k]
}

// ownerOf returns the owner that carried most of a flow's bytes (the first
// such; the zero Attribution for a flow without owners).
func ownerOf(f *Flow) Attribution {
	var best OwnerShare
	for _, o := range f.Owners {
		if o.Traffic.Wire > best.Traffic.Wire {
			best = o
		}
	}
	return best.Owner
}

func (c *findCtx) ownerName(f *Flow) (string, ingest.ProcKey) {
	o := ownerOf(f)
	if !o.Attributed() {
		if o.Cause != "" {
			return "an unattributed socket (" + string(o.Cause) + ")", ingest.ProcKey{}
		}
		return "an unattributed socket", ingest.ProcKey{}
	}
	return c.procDesc(o.Proc), o.Proc
}

func (c *findCtx) flowFor(t ingest.FiveTuple) (*Flow, bool) {
	for i := range c.r.Flows {
		f := &c.r.Flows[i]
		if f.Key.Proto != t.Proto {
			continue
		}
		if (f.Key.A == t.Src && f.Key.B == t.Dst) || (f.Key.A == t.Dst && f.Key.B == t.Src) {
			return f, true
		}
	}
	return nil, false
}

var poolPorts = map[uint16]bool{3333: true, 3334: true, 3357: true, 4444: true, 5555: true, 5730: true, 6666: true, 7777: true,
	8888: true, 9999: true, 10128: true, 13333: true, 14433: true, 14444: true, 20535: true, 45560: true, 45700: true}

func (c *findCtx) mining() {
	done := map[ingest.ProcKey]bool{}
	for _, h := range c.in.Signals.Stratum {
		fk, ok := c.flowFor(h.Tuple)
		if !ok {
			continue
		}
		k := fk.Key
		who, pk := c.ownerName(fk)
		if done[pk] && pk != (ingest.ProcKey{}) {
			continue
		}
		done[pk] = true
		c.flagged[pk] = true
		remote := k.B
		f := Finding{ID: RuleMining, Severity: SevCritical, Flows: []FlowKey{k},
			Summary: fmt.Sprintf("crypto mining: %s speaks the Stratum mining protocol (%s) to %s in %s", who, h.Method, remote, c.where(remote.Addr())),
			Next:    nextContain}
		if pk != (ingest.ProcKey{}) {
			f.Procs = []ingest.ProcKey{pk}
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("%s at %s: payload %q", h.Tuple, tsStr(h.TS), h.Excerpt))
		for i := range c.r.Flows {
			fl := &c.r.Flows[i]
			if pk != (ingest.ProcKey{}) && ownerOf(fl).Proc == pk {
				d := time.Duration(fl.Traffic.Last - fl.Traffic.First).Round(time.Second)
				f.Evidence = append(f.Evidence, fmt.Sprintf("flow %s → %s (%s)%s: %s out, %s in over %s, long-lived and steady",
					fl.Key.A, fl.Key.B, c.where(fl.Key.B.Addr()), natNote(fl), human(fl.Traffic.Out.Wire), human(fl.Traffic.In.Wire), d))
			}
		}
		c.add(f)
	}
	// Without payload evidence: long-lived, low-rate TCP flows to pool ports.
	byProc := map[ingest.ProcKey][]Flow{}
	for _, fl := range c.r.Flows {
		if fl.Key.Proto != ingest.ProtoTCP || !fl.Key.Oriented || !poolPorts[fl.Key.B.Port()] || c.remoteOpened(&fl) ||
			!publicAddr(fl.Key.B.Addr()) {
			continue // (a client of a local service whose ephemeral port is 45560 is no pool; pools are on the Internet, not on 10.0.0.5:8888)
		}
		d := float64(fl.Traffic.Last-fl.Traffic.First) / 1e9
		if d < 30 || float64(fl.Traffic.Out.Wire+fl.Traffic.In.Wire)/d > 20000 {
			continue
		}
		o := ownerOf(&fl)
		if done[o.Proc] && o.Attributed() {
			continue
		}
		byProc[o.Proc] = append(byProc[o.Proc], fl)
	}
	keys := make([]ingest.ProcKey, 0, len(byProc))
	for k := range byProc {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b ingest.ProcKey) int { return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Start, b.Start)) })
	for _, k := range keys {
		fls := byProc[k]
		who, _ := c.ownerName(&fls[0])
		f := Finding{ID: RuleMiningPorts, Severity: SevMedium, Next: "Look at the process and its binary; if it is not a known service, treat the host as compromised: " + nextContainTail,
			Summary: fmt.Sprintf("possible crypto mining: %s keeps long-lived, low-rate connections to mining-pool port(s)", who)}
		for _, fl := range fls {
			f.Flows = append(f.Flows, fl.Key)
			f.Evidence = append(f.Evidence, fmt.Sprintf("%s → %s (%s)%s port %d for %s, %s total",
				fl.Key.A, fl.Key.B.Addr(), c.where(fl.Key.B.Addr()), natNote(&fl), fl.Key.B.Port(), time.Duration(fl.Traffic.Last-fl.Traffic.First).Round(time.Second), human(fl.Traffic.Out.Wire+fl.Traffic.In.Wire)))
		}
		c.add(f)
	}
}

func (c *findCtx) floods() {
	// UDP floods: many small outgoing datagrams to one target.
	type agg struct {
		pkts, bytes int64
		back        int64 // packets the target sent back
		first, last int64
		procs       map[ingest.ProcKey]bool
		ports       map[uint16]bool
	}
	type target struct {
		icmp bool
		addr netip.Addr
	}
	udp := map[target]*agg{}
	var targets []target
	for _, fl := range c.r.Flows {
		icmp := fl.Key.Proto == ingest.ProtoICMP || fl.Key.Proto == ingest.ProtoICMPv6
		if (fl.Key.Proto != ingest.ProtoUDP && !icmp) || !fl.Key.Oriented || fl.Key.Folded == FoldedHosts {
			continue // an aggregate by protocol has no target
		}
		if groupAddr(fl.Key.B.Addr()) {
			continue // a multicast stream (market data, IPTV) or a broadcast stays on the network
		}
		if _, svc := reflectorPorts[fl.Key.A.Port()]; svc && !icmp && fl.Traffic.In.Packets > 0 {
			continue // a service's replies to requests (reflector() judges those)
		}
		tg := target{icmp, fl.Key.B.Addr()}
		a := udp[tg]
		if a == nil {
			a = &agg{first: fl.Traffic.First, procs: map[ingest.ProcKey]bool{}, ports: map[uint16]bool{}}
			udp[tg] = a
			targets = append(targets, tg)
		}
		a.pkts += fl.Traffic.Out.Packets
		a.bytes += fl.Traffic.Out.Wire
		a.back += fl.Traffic.In.Packets
		a.first = min(a.first, fl.Traffic.First)
		a.last = max(a.last, fl.Traffic.Last)
		a.ports[fl.Key.B.Port()] = true
		if o := ownerOf(&fl); o.Attributed() {
			a.procs[o.Proc] = true
		}
	}
	slices.SortFunc(targets, func(x, y target) int { return cmp.Or(cmp.Compare(b2i(x.icmp), b2i(y.icmp)), x.addr.Compare(y.addr)) })
	for _, tg := range targets {
		a, t := udp[tg], tg.addr
		d := max(float64(a.last-a.first)/1e9, 1)
		pps := float64(a.pkts) / d
		if a.pkts < 1000 || pps < 500 || a.bytes/a.pkts > 300 {
			continue
		}
		if tg.icmp && 2*c.in.Signals.EchoRepliesTo[t] >= a.pkts {
			continue // mostly echo replies: the host answers t's pings (ddosTarget judges those)
		}
		if !tg.icmp && 2*a.back >= a.pkts {
			continue // the target answers: a client (a DNS forwarder's queries, QUIC ACKs, RTP), not a flood
		}
		sev, next, what := SevHigh, nextContain, "DDoS participation"
		shipper := c.shipperStream(a.procs)
		switch {
		case tg.icmp:
		case shipper != "":
			// rsyslogd to a hosted syslog intake, softflowd to a flow
			// collector: a stream by design, wherever the collector is.
			sev, next, what = SevLow, nextOneWay, "one-way UDP stream"
		case !publicAddr(t) || allIn(a.ports, collectorPorts):
			// One-way UDP inside the network, or to a collector's port,
			// is mostly metrics and logs.
			sev, next, what = SevMedium, nextOneWay, "possible DDoS participation"
		}
		id, proto, unit, ports := RuleUDPFlood, "UDP", "UDP packets", fmt.Sprintf(" on %d port(s)", len(a.ports))
		if tg.icmp {
			id, proto, unit, ports = RuleICMPFlood, "ICMP", "ICMP messages", ""
		}
		who := "unattributed sockets"
		var pks []ingest.ProcKey
		for k := range a.procs {
			pks = append(pks, k)
		}
		slices.SortFunc(pks, func(x, y ingest.ProcKey) int { return cmp.Compare(x.PID, y.PID) })
		if len(pks) > 0 {
			who = c.procDesc(pks[0])
			if sev == SevHigh { // (a possible flood or a log stream marks no process as abnormal)
				c.flagged[pks[0]] = true
			}
		}
		summary := fmt.Sprintf("%s: %s floods %s (%s) with small %s packets, %.0f packets/s", what, who, t, c.where(t), proto, pps)
		if sev == SevLow {
			summary = fmt.Sprintf("%s: %s, a %s, sends %s (%s) %.0f small UDP packets/s that get no answer: logs or metrics, a flood only if the collector is not yours", what, who, shipper, t, c.where(t), pps)
		}
		c.add(Finding{ID: id, Severity: sev, Procs: pks, Next: next,
			Summary: summary,
			Evidence: []string{fmt.Sprintf("%d %s (%s, %d B average) to %s%s between %s and %s; %s",
				a.pkts, unit, human(a.bytes), a.bytes/a.pkts, t, ports, tsStr(a.first), tsStr(a.last), cameBack(a.back))}})
	}
	for _, s := range c.in.Signals.SYNOut {
		d := max(float64(s.Last-s.First)/1e9, 1)
		if s.SYNs < 500 || float64(s.SYNs)/d < 100 {
			continue
		}
		if ch := c.connsTo(s.Addr); ch.completed*2 >= ch.conns && ch.conns > 0 {
			// The target answered and the connections carried data: a
			// client opening a connection per request, not a SYN flood.
			if !publicAddr(s.Addr) {
				continue // an application without connection pooling (a database, a cache)
			}
			who := "unattributed sockets"
			if len(ch.procs) > 0 {
				who = c.procDesc(ch.procs[0])
			}
			c.add(Finding{ID: RuleSYNFlood, Severity: SevMedium, Procs: ch.procs, Next: nextConnFlood,
				Summary: fmt.Sprintf("possible DDoS participation: connection flood from this host to %s (%s), %.0f new connections/s by %s", s.Addr, c.where(s.Addr), float64(s.SYNs)/d, who),
				Evidence: []string{fmt.Sprintf("%d SYNs to %s on %d port(s), %s–%s; of %d connections, %d of them completed (the target answered and data flowed): an HTTP flood, or a client that opens a connection per request",
					s.SYNs, s.Addr, s.Ports, tsStr(s.First), tsStr(s.Last), ch.conns, ch.completed)}})
			continue
		}
		c.add(Finding{ID: RuleSYNFlood, Severity: SevHigh, Next: nextContain,
			Summary: fmt.Sprintf("DDoS participation: SYN flood from this host to %s (%s), %.0f SYNs/s", s.Addr, c.where(s.Addr), float64(s.SYNs)/d),
			Evidence: []string{fmt.Sprintf("%d bare SYNs to %s on %d port(s) from %d source address(es), %s–%s",
				s.SYNs, s.Addr, s.Ports, s.Peers, tsStr(s.First), tsStr(s.Last))}})
	}
	if sp := c.in.Signals; sp.Spoofed >= 100 {
		var tg []string
		for _, a := range sp.SpoofedTargets {
			tg = append(tg, a.String())
		}
		var sm []string
		for _, a := range sp.SpoofedSample {
			sm = append(sm, a.String())
		}
		f := Finding{ID: RuleSpoofed, Severity: SevHigh, Next: nextContain + " Spoofing needs raw sockets: look for processes running as root with CAP_NET_RAW.",
			Summary: fmt.Sprintf("DDoS participation: %d packets left this host with forged source addresses (%d distinct)", sp.Spoofed, sp.SpoofedSources),
			Evidence: []string{"targets: " + strings.Join(tg, ", "), "forged sources, e.g.: " + strings.Join(sm, ", "),
				"no local socket can own these packets, so they stay unattributed (cause " + string(CauseNotLocal) + ")"}}
		if sp.Forwarded > 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("not counted: %d packets whose sources are not the host's either but were answered through it (forwarded for routed pods, VPN or NAT clients)", sp.Forwarded))
		}
		c.add(f)
	}
}

// collectorPorts are local UDP ports where collectors receive one-way
// streams from many senders: syslog, SNMP traps, NetFlow/IPFIX/sFlow
// exports, statsd/collectd metrics, Graylog GELF.
var collectorPorts = map[uint16]string{514: "syslog", 5140: "syslog", 162: "SNMP trap", 2055: "NetFlow", 9995: "NetFlow", 9996: "NetFlow",
	4739: "IPFIX", 6343: "sFlow", 8125: "statsd", 25826: "collectd", 12201: "GELF"}

// reflectorPorts are the UDP source ports of reflection/amplification
// attacks: services that answer a small spoofed request with a big reply.
var reflectorPorts = map[uint16]string{19: "chargen", 53: "DNS", 111: "portmap", 123: "NTP", 137: "NetBIOS", 161: "SNMP",
	389: "CLDAP", 1900: "SSDP", 3283: "ARD", 3702: "WS-Discovery", 5683: "CoAP", 10001: "Ubiquiti discovery",
	11211: "memcached", 37810: "DVR discovery"}

// ddosTarget finds floods against this host: a SYN flood (many half-open
// connections to one local port from many addresses), UDP the host never
// asked for (reflection from amplification services, or from many
// sources) and mostly unanswered ICMP. Aggregates past MaxFlows are not
// looked at: the flows before them show the attack.
func (c *findCtx) ddosTarget() {
	type agg struct {
		flows, pkts, bytes int64
		first, last        int64
		remotes            map[netip.Addr]struct{}
	}
	newAgg := func() *agg {
		return &agg{first: math.MaxInt64, last: math.MinInt64, remotes: map[netip.Addr]struct{}{}}
	}
	get := func(m map[uint16]*agg, k uint16) *agg {
		a := m[k]
		if a == nil {
			a = newAgg()
			m[k] = a
		}
		return a
	}
	add := func(a *agg, fl *Flow) {
		a.flows++
		a.pkts += fl.Traffic.In.Packets
		a.bytes += fl.Traffic.In.Wire
		a.first, a.last = min(a.first, fl.Traffic.First), max(a.last, fl.Traffic.Last)
		if len(a.remotes) < 1<<16 {
			a.remotes[fl.Key.B.Addr()] = struct{}{}
		}
	}
	synIn := map[uint16]SYNPort{} // bare SYNs that came in, by local port
	for _, p := range c.in.Signals.SYNInPorts {
		synIn[p.Port] = p
	}
	// halfOpen: the remote sent a SYN or two and nothing else (a TCP
	// health check also ACKs); the host answered with at most a SYN-ACK and
	// its retransmissions (5 by default) or a RST. That the remote opened
	// it, the signals say (bare SYNs came in to that port); without them,
	// the server's port is taken to be the lower one.
	halfOpen := func(fl *Flow) bool {
		k, t := &fl.Key, &fl.Traffic
		return k.Proto == ingest.ProtoTCP && k.Oriented && k.Folded == "" && c.remoteOpened(fl) &&
			t.In.Packets >= 1 && t.In.Packets <= 2 && t.In.Wire <= 200 && t.Out.Packets <= 6 && t.Out.Wire <= 6*90
	}
	syn := map[uint16]*agg{}         // half-open connections by local port
	refl := map[uint16]*agg{}        // unsolicited UDP by source port, 0 for other ports
	var icmp *agg                    // inbound ICMP
	conns := map[uint16]*connAgg{}   // completed connections from public addresses, by local port
	slow := map[uint16]*slowAgg{}    // stalled connections from public addresses, by local port
	proxied := map[uint16]*connAgg{} // completed connections from reverse proxies, by local port
	proxyNames := map[uint16]map[string]int{}
	for i := range c.r.Flows {
		fl := &c.r.Flows[i]
		k, t := &fl.Key, &fl.Traffic
		if !k.Oriented || k.Folded != "" || t.In.Packets == 0 {
			continue
		}
		switch k.Proto {
		case ingest.ProtoTCP:
			if halfOpen(fl) {
				add(get(syn, k.A.Port()), fl)
			} else if c.remoteOpened(fl) &&
				t.In.Packets >= 2 && t.Out.Packets >= 1 && publicAddr(k.B.Addr()) {
				// A reverse proxy's connections carry many visitors: they
				// are no flooding clients, nor slow ones (proxies buffer
				// requests), and are judged apart (proxyChurn).
				by, proxy := conns, c.proxyOf(k.B.Addr())
				if proxy != "" {
					by = proxied
					if proxyNames[k.A.Port()] == nil {
						proxyNames[k.A.Port()] = map[string]int{}
					}
					proxyNames[k.A.Port()][proxy]++
				}
				a := by[k.A.Port()]
				if a == nil {
					a = &connAgg{perSource: map[netip.Addr]int{}}
					by[k.A.Port()] = a
				}
				a.add(fl)
				if proxy != "" {
					continue
				}
				if stalled(fl) {
					s := slow[k.A.Port()]
					if s == nil {
						s = &slowAgg{perSource: map[netip.Addr]int{}}
						slow[k.A.Port()] = s
					}
					s.add(fl)
				}
			}
		case ingest.ProtoICMP, ingest.ProtoICMPv6:
			// Mostly unanswered; a ping flood the host answers one for one
			// is told from the signals' echo counts (flows carry no ICMP
			// type), below.
			if t.In.Packets > 2*t.Out.Packets {
				if icmp == nil {
					icmp = newAgg()
				}
				add(icmp, fl)
			}
		case ingest.ProtoUDP:
			if t.Out.Packets == 0 { // the host never sent to it: unsolicited
				port := k.B.Port()
				_, fromReflector := reflectorPorts[port]
				if _, collector := collectorPorts[k.A.Port()]; collector && !fromReflector {
					continue // syslog, traps, flow exports, metrics: sent one way to a collector by design
				}
				if !fromReflector {
					port = 0
				}
				add(get(refl, port), fl)
			}
		}
	}
	rate := func(a *agg, n int64) float64 { return float64(n) / max(float64(a.last-a.first)/1e9, 1) }
	var parts, ev []string
	var total int64
	floodPorts := map[uint16]bool{} // the ports a SYN flood was found on
	for _, port := range slices.Sorted(maps.Keys(syn)) {
		a := syn[port]
		if a.flows < 500 || len(a.remotes) < 50 || rate(a, a.flows) < 50 {
			continue
		}
		total += a.bytes
		floodPorts[port] = true
		parts = append(parts, fmt.Sprintf("a SYN flood on port %d (%.0f half-open connections/s from %s addresses)", port, rate(a, a.flows), atLeast(len(a.remotes))))
		ev = append(ev, fmt.Sprintf("SYN flood on local port %d: %d half-open connections (the remote sent only a SYN), %d packets, %s, from %s addresses, %s–%s",
			port, a.flows, a.pkts, human(a.bytes), atLeast(len(a.remotes)), tsStr(a.first), tsStr(a.last)))
		if p, ok := synIn[port]; ok {
			ev = append(ev, fmt.Sprintf("%d bare SYNs came in to port %d from %s source addresses, %s–%s", p.SYNs, port, atLeast(p.Sources), tsStr(p.First), tsStr(p.Last)))
		}
	}
	var connPorts []uint16 // the ports a connection flood was found on
	for _, port := range slices.Sorted(maps.Keys(proxied)) {
		c.proxyChurn(port, proxied[port], proxyNames[port])
	}
	for _, port := range slices.Sorted(maps.Keys(conns)) {
		fl, part, evs, ok := conns[port].flood(port, c.where)
		if !ok {
			continue
		}
		total += fl.in
		connPorts = append(connPorts, port)
		parts = append(parts, part)
		ev = append(ev, evs...)
		ev = append(ev, c.connFloodService(port, fl))
	}
	var slowPorts []uint16 // the ports a slow-request attack was found on
	for _, port := range slices.Sorted(maps.Keys(slow)) {
		part, evs, in, quiet, ok := slow[port].attack(port, c.where)
		if !ok {
			continue
		}
		holder, _, _ := c.portServer(ingest.ProtoTCP, port)
		evs = append(evs, fmt.Sprintf("%s holds the connections on port %d", holder, port))
		if !quiet {
			// The server sent a few kB on them: a TLS handshake, or the
			// start of WebSockets or long polls that then idle.
			c.add(Finding{ID: RuleDDoSTarget, Severity: SevMedium,
				Next:     "Count the server's open connections per client address (ss -tn state established '( sport = :" + fmt.Sprint(port) + " )') and look at their requests in its log: if they never complete, " + adviceSlowRequest + "; if they are WebSockets or long polls of real users behind a few NAT gateways, this is load, not an attack.",
				Summary:  "possible " + part + ", or they are idle long-lived connections (WebSockets, long polling) from busy NAT gateways",
				Evidence: evs})
			continue
		}
		total += in
		slowPorts = append(slowPorts, port)
		parts = append(parts, part)
		ev = append(ev, evs...)
	}
	var svcs, reflPorts []string
	var reflBytes int64
	reflRemotes := 0
	for _, port := range slices.Sorted(maps.Keys(refl)) {
		a := refl[port]
		name, ok := reflectorPorts[port]
		need := struct {
			pkts    int64
			remotes int
			bps     float64 // bytes/s
		}{500, 20, 62_500} // reflection (≥ 500 kb/s): a service that does not talk to the host unasked
		if !ok {
			name, need.pkts, need.remotes, need.bps = "other ports", 5000, 100, 625_000 // a plain UDP flood
		}
		if a.pkts < need.pkts || len(a.remotes) < need.remotes || rate(a, a.bytes) < need.bps {
			continue
		}
		total += a.bytes
		reflBytes += a.bytes
		reflRemotes += len(a.remotes)
		what := fmt.Sprintf("%s (%d)", name, port)
		if !ok {
			what = name
		} else {
			reflPorts = append(reflPorts, fmt.Sprint(port))
		}
		svcs = append(svcs, what)
		ev = append(ev, fmt.Sprintf("unsolicited UDP from %s: %d packets, %s (%s average), from %s addresses the host never sent to, %s, %s–%s",
			what, a.pkts, human(a.bytes), human(a.bytes/a.pkts), atLeast(len(a.remotes)), humanRate(rate(a, a.bytes)), tsStr(a.first), tsStr(a.last)))
	}
	if a := icmp; a != nil && a.pkts >= 5000 && rate(a, a.pkts) >= 1000 {
		total += a.bytes
		parts = append(parts, fmt.Sprintf("an ICMP flood (%.0f messages/s from %s addresses)", rate(a, a.pkts), atLeast(len(a.remotes))))
		ev = append(ev, fmt.Sprintf("ICMP flood: %d messages, %s, from %s addresses, %s, %s–%s",
			a.pkts, human(a.bytes), atLeast(len(a.remotes)), humanRate(rate(a, a.bytes)), tsStr(a.first), tsStr(a.last)))
	} else if e := c.in.Signals.EchoIn; e.Requests >= 5000 {
		// A ping flood the host answers: as many echo requests a second as
		// the unanswered ICMP above; monitoring pings a few a second.
		a := &agg{pkts: e.Requests, bytes: e.Bytes, first: e.First, last: e.Last}
		if r := rate(a, a.pkts); r >= 1000 {
			total += a.bytes
			parts = append(parts, fmt.Sprintf("a ping flood the host answers (%.0f echo requests/s from %s addresses)", r, atLeast(e.Sources)))
			ev = append(ev, fmt.Sprintf("ping flood: %d ICMP echo requests came in, %s, from %s addresses, %s, %s–%s; the host sent %d echo replies (rate-limit or drop them: net.ipv4.icmp_echo_ignore_all, a firewall rule)",
				e.Requests, human(e.Bytes), atLeast(e.Sources), humanRate(rate(a, a.bytes)), tsStr(e.First), tsStr(e.Last), c.in.Signals.EchoRepliesOut))
		}
	}
	waterTorture := false
	relayed := c.relayedZones()
	for _, z := range c.in.Signals.DNSIn {
		part, evs, ok := randomSubdomains(z)
		if !ok || relayed[z.Zone] {
			continue // (a resolver relaying the flood to the zone's servers: waterTortureOut's)
		}
		waterTorture = true
		parts = append(parts, part)
		ev = append(ev, evs...)
		ev = append(ev, c.dnsService())
	}
	if len(svcs) > 0 {
		kind := "a UDP reflection flood from " + joinAnd(svcs)
		if len(svcs) == 1 && svcs[0] == "other ports" {
			kind = "a UDP flood"
		}
		parts = append(parts, fmt.Sprintf("%s (%s from %s addresses)", kind, human(reflBytes), atLeast(reflRemotes)))
	}
	if len(parts) == 0 {
		return
	}
	if len(floodPorts) > 0 { // what the listeners were charged with
		c.flood = map[ingest.ProcKey][2]int64{}
		for i := range c.r.Flows {
			fl := &c.r.Flows[i]
			if !floodPorts[fl.Key.A.Port()] || !halfOpen(fl) {
				continue
			}
			for _, o := range fl.Owners {
				if o.Owner.Attributed() {
					f := c.flood[o.Owner.Proc]
					f[0] += o.Out.Wire
					f[1] += o.In.Wire
					c.flood[o.Owner.Proc] = f
				}
			}
		}
	}
	rx := c.r.Totals.All.In.Wire
	if total > 0 { // (a random-subdomain flood's bytes are not told from the zone's other queries)
		last := fmt.Sprintf("%s received in all, %s of the host's RX; no local process sends it", human(total), pct(share(total, rx)))
		if len(floodPorts) > 0 {
			last += fmt.Sprintf(" (the half-open connections are charged to the listening process, method %s)", MethodListener)
		}
		ev = append(ev, last)
	}
	if fs := c.r.Meta.Folded; fs != nil {
		n := fs.Ports
		n.Add(fs.Hosts)
		ev = append(ev, fmt.Sprintf("%s more is in %d aggregates of the flows past --max-flows %d, not told apart (most likely more of the same: a flood makes a flow per packet)",
			human(n.Wire), fs.PortAggregates+fs.HostAggregates, fs.MaxFlows))
	}
	next := nextDDoSTarget
	onlyConn := len(connPorts) > 0 && len(connPorts)+len(slowPorts) == len(parts)
	switch {
	case onlyConn:
		// Only a connection flood: the service's answers fill the uplink,
		// so limiting the clients on the host does help.
		next = nextConnFloodTarget
		if len(slowPorts) > 0 {
			next += " Against the held connections, " + adviceSlowRequest + "."
		}
	case len(slowPorts) == len(parts):
		// Only held connections: they take the service's connection slots,
		// not the link; the host can cut them off itself.
		next = nextSlowRequestTarget
	case len(slowPorts) > 0:
		next += " Against the held connections, " + adviceSlowRequest + "."
	}
	if len(floodPorts) > 0 {
		next += " Against the SYN flood keep SYN cookies on (net.ipv4.tcp_syncookies=1)."
	}
	if len(connPorts) > 0 && !onlyConn {
		next += " Against the connection flood, " + adviceRateLimit + "."
	}
	switch {
	case waterTorture && len(parts) == 1:
		next = nextWaterTorture
	case waterTorture:
		next += " Against the random-subdomain flood, " + adviceWaterTorture + "."
	}
	if len(reflPorts) > 0 {
		next += fmt.Sprintf(" The reflected part can be dropped upstream by its source port: UDP from port(s) %s (replies the host never asked for).", joinAnd(reflPorts))
	}
	c.add(Finding{ID: RuleDDoSTarget, Severity: SevHigh, Next: next,
		Summary:  "inbound DDoS: this host is the target of " + strings.Join(parts, " and "),
		Evidence: ev})
}

// Random-subdomain (water torture) thresholds: dnsFloodMin queries or more
// for names under one zone asking for a first label not asked for before,
// dnsFloodRate×dnsWindow of them within some dnsWindow seconds, where
// they were at least dnsFloodNew of the zone's queries, from
// dnsFloodSources addresses or more (the resolvers that relay the flood).
// A zone's ordinary clients ask for a few names again and again; a reverse
// zone's first labels are octets.
const (
	dnsFloodMin     = 5000
	dnsFloodRate    = 500
	dnsFloodNew     = 0.5
	dnsFloodSources = 5
)

// randomNames reports whether the queries for names under z have a
// random-subdomain flood's volume, rate and share of new names, with the
// rate and how to say where the names are. The flood is on one domain: a
// top-level domain's names (site123.com) or the zones past dnsMaxZones are
// many domains, as a crawler or a mail server resolving its senders asks
// for; a zone the snaplen cut counts only when cut may be true (queries
// that came in to the host, the server of a few zones).
func randomNames(z DNSZone, cut bool) (rate float64, under string, ok bool) {
	rate = float64(z.PeakNew) / float64(max(z.PeakSecs, 1)) // the flood's own rate
	if z.Distinct < dnsFloodMin || z.PeakNew < dnsFloodRate*dnsWindow || float64(z.PeakNew) < dnsFloodNew*float64(z.PeakQueries) ||
		z.Zone == dnsOther || z.Zone == "." || (z.Zone != "" && !strings.Contains(z.Zone, ".")) || (z.Zone == "" && !cut) {
		return rate, "", false
	}
	under = "under " + z.Zone
	if z.Zone == "" {
		under = "(the capture cut the names before their zone)"
	}
	return rate, under, true
}

// randomSubdomains reports whether the queries for names under z are a
// random-subdomain flood, with the summary part and the evidence.
func randomSubdomains(z DNSZone) (part string, ev []string, ok bool) {
	rate, under, ok := randomNames(z, true)
	if !ok || z.Sources < dnsFloodSources {
		return "", nil, false
	}
	part = fmt.Sprintf("a random-subdomain (water torture) DNS flood (%.0f queries/s for random names %s from %s addresses)", rate, under, atLeast(z.Sources))
	ev = []string{dnsEvidence(z, under, "from "+atLeast(z.Sources)+" addresses") +
		": every one misses the resolvers' caches and reaches the authoritative server, which answers it, so the flows look like busy clients"}
	return part, ev, true
}

// dnsService says who answered the DNS queries that came in (UDP to local
// port 53) and what that took.
func (c *findCtx) dnsService() string {
	name, in, out := c.portServer(ingest.ProtoUDP, 53)
	if name == "" {
		return "no DNS server answered on port 53 in the capture"
	}
	return fmt.Sprintf("%s answered on port 53: %s of queries in and %s of answers out, %s of the host's RX and %s of its TX",
		name, human(in), human(out), pct(share(in, c.r.Totals.All.In.Wire)), pct(share(out, c.r.Totals.All.Out.Wire)))
}

// dnsEvidence describes the queries for names under z (randomNames), sent
// between the host and peers.
func dnsEvidence(z DNSZone, under, peers string) string {
	return fmt.Sprintf("%d DNS queries for names %s %s, %s–%s, %d of them for a first label not asked for before (e.g. %s); in the %d s to %s, %d of %d queries asked for a new one (%.0f/s over the %d s they came in)",
		z.Queries, under, peers, tsStr(z.First), tsStr(z.Last), z.Distinct, strings.Join(z.Sample, ", "),
		dnsWindow, tsStr((z.PeakAt+1)*nsPerSec), z.PeakNew, z.PeakQueries, float64(z.PeakNew)/float64(max(z.PeakSecs, 1)), z.PeakSecs)
}

// waterTortureOut finds the host sending a random-subdomain flood: DNS
// queries for new random names under one zone at a flood's rate. A
// resolver on the host relaying such a flood from its clients (the same
// zone's random names came in) is abused, a medium; anything else sending
// it is a bot (high ddos-udp-flood). The queries are answered, so the UDP
// flood rule does not see them.
func (c *findCtx) waterTortureOut() {
	in := map[string]DNSZone{}
	for _, z := range c.in.Signals.DNSIn {
		in[z.Zone] = z
	}
	relayed := c.relayedZones()
	for _, z := range c.in.Signals.DNSOut {
		rate, under, ok := randomNames(z, false)
		if !ok {
			continue
		}
		pks := c.dnsSenders(z)
		who := "unattributed sockets"
		if len(pks) > 0 {
			who = c.procDesc(pks[0])
		}
		ev := []string{dnsEvidence(z, under, "to "+atLeast(z.Sources)+" server(s)")}
		if relayed[z.Zone] {
			iz := in[z.Zone]
			c.add(Finding{ID: RuleUDPFlood, Severity: SevMedium, Procs: pks[:min(1, len(pks))],
				Next:     "The resolver is used to attack the zone's servers: if it answers the Internet, restrict it to your own networks (an open resolver is abused this way); limit queries per client (unbound ratelimit, BIND rate-limit, dnsdist) and find the clients that send the random names (the evidence counts them).",
				Summary:  fmt.Sprintf("the DNS resolver %s relays a random-subdomain flood against the servers of %s: %.0f queries/s for random names, asked by %s clients", who, strings.TrimPrefix(under, "under "), rate, atLeast(iz.Sources)),
				Evidence: append(ev, fmt.Sprintf("%d queries for random names %s came in from %s addresses", iz.Queries, under, atLeast(iz.Sources)))})
			continue
		}
		ev = append(ev, "every query for a new random name misses the resolvers' caches and lands on the zone's authoritative servers: the attack is on them, relayed by the resolvers")
		if len(pks) > 0 {
			if info, ok := c.proc(pks[0]); ok {
				if name, _, isResolver := programIn(localResolvers, info.Comm, info.Exe); isResolver {
					// The host's own resolver sends what a local process
					// asks it over the loopback: the bot is that process.
					c.add(Finding{ID: RuleUDPFlood, Severity: SevHigh, Procs: pks[:1],
						Next: fmt.Sprintf("A process on this host sends the random names to its local resolver %s, which passes them on: find it (%s, or the resolver's query log) and then %s", name, "ss -uap 'dport = 53' on the loopback", nextContainTail),
						Summary: fmt.Sprintf("DDoS participation: a random-subdomain (water torture) DNS flood leaves through the local resolver %s, %.0f queries/s for random names %s, asked by a process on this host",
							who, rate, under),
						Evidence: append(ev, fmt.Sprintf("no such queries came in from other hosts: they reach %s on the loopback or a local socket, which the capture on the uplink does not show", name))})
					continue
				}
			}
			c.flagged[pks[0]] = true
		}
		c.add(Finding{ID: RuleUDPFlood, Severity: SevHigh, Procs: pks[:min(1, len(pks))], Next: nextContain,
			Summary:  fmt.Sprintf("DDoS participation: %s sends a random-subdomain (water torture) DNS flood, %.0f queries/s for random names %s", who, rate, under),
			Evidence: ev})
	}
}

// relayedZones returns the zones whose random names the host both received
// and sent on, as many in as half those out or more: a resolver on the host
// relaying a random-subdomain flood from its clients.
func (c *findCtx) relayedZones() map[string]bool {
	in := map[string]DNSZone{}
	for _, z := range c.in.Signals.DNSIn {
		in[z.Zone] = z
	}
	relayed := map[string]bool{}
	for _, z := range c.in.Signals.DNSOut {
		iz, ok := in[z.Zone]
		if !ok || 2*iz.Queries < z.Queries {
			continue
		}
		_, _, randomOut := randomNames(z, false)
		_, _, randomIn := randomNames(iz, true)
		relayed[z.Zone] = randomOut && randomIn
	}
	return relayed
}

// localResolvers are caching DNS resolvers and forwarders that run on a
// host for its own processes.
var localResolvers = map[string]bool{"systemd-resolve": true, "systemd-resolved": true, "dnsmasq": true, "unbound": true,
	"named": true, "pdns_recursor": true, "kresd": true, "coredns": true, "nscd": true, "dnscrypt-proxy": true, "stubby": true,
	"cloudflared": true, "resolved": true}

// dnsSenders returns the processes that sent z's burst queries (the
// owners of their flows, most such flows first), else those that sent DNS
// queries at all (UDP to port 53), most packets first.
func (c *findCtx) dnsSenders(z DNSZone) []ingest.ProcKey {
	by := map[ingest.ProcKey]int64{}
	for _, e := range z.Senders {
		if fl, ok := c.flowFor(ingest.FiveTuple{Proto: ingest.ProtoUDP, Src: e[0], Dst: e[1]}); ok {
			if o := ownerOf(fl); o.Attributed() {
				by[o.Proc]++
			}
		}
	}
	found := len(by) > 0
	for i := 0; i < len(c.r.Flows) && !found; i++ {
		fl := &c.r.Flows[i]
		if fl.Key.Proto != ingest.ProtoUDP || !fl.Key.Oriented || fl.Key.B.Port() != 53 {
			continue
		}
		if o := ownerOf(fl); o.Attributed() {
			by[o.Proc] += fl.Traffic.Out.Packets
		}
	}
	return slices.SortedFunc(maps.Keys(by), func(x, y ingest.ProcKey) int {
		return cmp.Or(cmp.Compare(by[y], by[x]), cmp.Compare(x.PID, y.PID), cmp.Compare(x.Start, y.Start))
	})
}

// connChurn counts the TCP connections this host opened to one address.
type connChurn struct {
	conns, completed int64            // completed: the target answered and data flowed both ways
	procs            []ingest.ProcKey // their processes, most connections first
}

// connsTo counts the TCP connections from this host to a.
func (c *findCtx) connsTo(a netip.Addr) connChurn {
	var ch connChurn
	by := map[ingest.ProcKey]int{}
	for i := range c.r.Flows {
		fl := &c.r.Flows[i]
		k := &fl.Key
		if k.Proto != ingest.ProtoTCP || !k.Oriented || k.Folded != "" || k.B.Addr() != a {
			continue
		}
		ch.conns++
		if answeredFlow(fl) {
			ch.completed++
		}
		if o := ownerOf(fl); o.Attributed() {
			by[o.Proc]++
		}
	}
	ch.procs = slices.SortedFunc(maps.Keys(by), func(x, y ingest.ProcKey) int {
		return cmp.Or(cmp.Compare(by[y], by[x]), cmp.Compare(x.PID, y.PID), cmp.Compare(x.Start, y.Start))
	})
	return ch
}

// connAgg holds the completed TCP connections that public addresses made
// to one local port (ddosTarget's connection flood).
type connAgg struct {
	conns     []connRec
	perSource map[netip.Addr]int // connections per remote address
}

// connRec is one connection of a connAgg.
type connRec struct {
	src         netip.Addr
	first, last int64
	in, out     int64 // wire bytes
	served      int64 // payload bytes the host sent (slowAgg)
}

func (a *connAgg) add(fl *Flow) {
	t := &fl.Traffic
	src := fl.Key.B.Addr()
	a.conns = append(a.conns, connRec{src: src, first: t.First, last: t.Last, in: t.In.Wire, out: t.Out.Wire})
	a.perSource[src]++
}

// Connection-flood thresholds: addresses that each connected to one local
// port connFloodRepeat times or more (bots and flood tools open a
// connection per request; browsers keep their few connections open and
// reuse them) are the flood when there are at least connFloodSources of
// them, with at least connFloodMin connections in all at connFloodRate a
// second or more over their own time span, and their median connection
// lasted at most connFloodShort. Other clients of the service, before,
// during or after the flood, do not dilute it.
const (
	connFloodMin     = 1000
	connFloodRate    = 20
	connFloodSources = 20
	connFloodRepeat  = 10
	connFloodShort   = 5 * nsPerSec
)

// connFlood is what flood found.
type connFlood struct {
	conns, in, out int64 // the repeating addresses' connections and their wire bytes
	sources        int   // the repeating addresses
	first, last    int64
	rate           float64 // connections a second
	median         int64   // connection length (ns)
}

// stats sums the connections of the addresses that made repeat or more.
func (a *connAgg) stats(repeat int) (fl connFlood) {
	var durs []int64
	fl.first, fl.last = math.MaxInt64, math.MinInt64
	for _, c := range a.conns {
		if a.perSource[c.src] < repeat {
			continue
		}
		fl.conns++
		fl.in += c.in
		fl.out += c.out
		fl.first, fl.last = min(fl.first, c.first), max(fl.last, c.last)
		durs = append(durs, c.last-c.first)
	}
	for _, n := range a.perSource {
		if n >= repeat {
			fl.sources++
		}
	}
	if fl.conns > 0 {
		fl.rate = float64(fl.conns) / max(float64(fl.last-fl.first)/1e9, 1)
		slices.Sort(durs)
		fl.median = durs[len(durs)/2]
	}
	return fl
}

// churning reports whether fl has the volume, rate and shortness of a
// connection flood.
func (fl *connFlood) churning() bool {
	return fl.conns >= connFloodMin && fl.rate >= connFloodRate && fl.median <= connFloodShort
}

// flood reports whether the connections to port are a connection (HTTP)
// flood, with the summary part and the evidence.
func (a *connAgg) flood(port uint16, where func(netip.Addr) string) (fl connFlood, part string, ev []string, ok bool) {
	fl = a.stats(connFloodRepeat)
	if fl.sources < connFloodSources || !fl.churning() {
		return fl, "", nil, false
	}
	what := "a connection flood"
	if port == 80 || port == 443 || port == 8080 || port == 8443 {
		what = "an HTTP flood"
	}
	sources := atLeast(fl.sources)
	part = fmt.Sprintf("%s on port %d (%.0f short connections/s from %s addresses)", what, port, fl.rate, sources)
	names := topSources(a.perSource, where)
	ev = append(ev, fmt.Sprintf("connection flood on local port %d: %d completed connections, %.0f/s, %s–%s, from %s public addresses that connected %d times or more each (a browser reuses a few connections); most: %s",
		port, fl.conns, fl.rate, tsStr(fl.first), tsStr(fl.last), sources, connFloodRepeat, strings.Join(names, ", ")),
		fmt.Sprintf("median connection %s long, %s in and %s out each on average", roundDur(time.Duration(fl.median)), human(fl.in/fl.conns), human(fl.out/fl.conns)))
	if n := int64(len(a.conns)) - fl.conns; n > 0 {
		ev[len(ev)-1] += fmt.Sprintf("; other public addresses made %d connections to the port", n)
	}
	ev = append(ev, "check the addresses before blocking: carrier-grade NAT gateways, proxies or partners' servers also reconnect often, and their traffic is load, not an attack")
	return fl, part, ev, true
}

// A stalled connection (stalled) lasted stallMin or more, the remote end
// sending small pieces of a request, the host nothing back but ACKs and at
// most a TLS handshake (stallServed bytes of payload): it waits for the
// rest of a request that never ends. That is Slowloris (a header line every
// few seconds) and slow POST (a body byte at a time). A slow-request attack
// on a port is slowMin or more such connections from addresses that each
// held slowRepeat or more at some time in the capture (slowloris.py opens
// 150 from one address; a browser keeps a few connections and gets answers
// on them). Idle keep-alive connections send nothing, or TCP keepalive
// probes of at most one byte, which stalled does not count. A server that
// sent nothing, or only the error it answers when it gives up or the client
// leaves (stallQuiet), waits; one that sent a few kB may have completed a
// TLS handshake, or answered a WebSocket upgrade or a long poll and then
// idled, which sizes cannot tell apart.
const (
	stallMin    = 20 * nsPerSec
	stallServed = 6000 // a TLS handshake with a certificate chain
	stallQuiet  = 600  // payload bytes of a server that answered nothing but an error when it gave up or the client left (400, 408)
	stallIn     = 8192 // request bytes sent in all, headers and a trickled body
	slowMin     = 150
	slowRepeat  = 20
)

// stalled reports whether fl, a TCP connection the remote end opened, is
// held open by a slow request (see stallMin).
func stalled(fl *Flow) bool {
	return trickles(fl, fl.Traffic.In, fl.Traffic.Out)
}

// trickles reports whether the client side of fl (counts client, the
// server's counts server) held it open with a slow request: stallMin or
// more, data in most of its packets but little in all, and no more than a
// TLS handshake back.
func trickles(fl *Flow, client, server Counts) bool {
	sent := payload(fl, client)
	return fl.Traffic.Last-fl.Traffic.First >= stallMin && client.Packets >= 3 &&
		sent >= 8*client.Packets && sent <= stallIn && // data in most packets, not keepalive probes
		payload(fl, server) <= stallServed
}

// slowOut finds the host holding slow requests open to one target
// (slowMin or more connections it opened, each trickling a request the
// target never answered beyond a TLS handshake): a Slowloris bot.
func (c *findCtx) slowOut() {
	type target struct {
		addr netip.Addr
		port uint16
	}
	type agg struct {
		conns       int
		first, last int64
		out         int64
		procs       map[ingest.ProcKey]int
	}
	m := map[target]*agg{}
	for i := range c.r.Flows {
		fl := &c.r.Flows[i]
		k := &fl.Key
		if k.Proto != ingest.ProtoTCP || !k.Oriented || k.Folded != "" || c.remoteOpened(fl) || !trickles(fl, fl.Traffic.Out, fl.Traffic.In) {
			continue
		}
		tg := target{k.B.Addr(), k.B.Port()}
		a := m[tg]
		if a == nil {
			a = &agg{first: math.MaxInt64, last: math.MinInt64, procs: map[ingest.ProcKey]int{}}
			m[tg] = a
		}
		a.conns++
		a.out += fl.Traffic.Out.Wire
		a.first, a.last = min(a.first, fl.Traffic.First), max(a.last, fl.Traffic.Last)
		if o := ownerOf(fl); o.Attributed() {
			a.procs[o.Proc]++
		}
	}
	for _, tg := range slices.SortedFunc(maps.Keys(m), func(x, y target) int { return cmp.Or(x.addr.Compare(y.addr), cmp.Compare(x.port, y.port)) }) {
		a := m[tg]
		if a.conns < slowMin {
			continue
		}
		pks := slices.SortedFunc(maps.Keys(a.procs), func(x, y ingest.ProcKey) int {
			return cmp.Or(cmp.Compare(a.procs[y], a.procs[x]), cmp.Compare(x.PID, y.PID), cmp.Compare(x.Start, y.Start))
		})
		who := "unattributed sockets"
		if len(pks) > 0 {
			who = c.procDesc(pks[0])
			c.flagged[pks[0]] = true
		}
		c.add(Finding{ID: RuleSYNFlood, Severity: SevHigh, Procs: pks, Next: nextContain,
			Summary: fmt.Sprintf("DDoS participation: %s holds %d slow requests (Slowloris) open to %s (%s), trickling each without ever finishing it",
				who, a.conns, netip.AddrPortFrom(tg.addr, tg.port), c.where(tg.addr)),
			Evidence: []string{fmt.Sprintf("%d connections the host opened to %s, %s–%s, each lasting %s or more with a few bytes at a time (%s sent on average) and nothing back but ACKs or a TLS handshake: the target's connection slots stay taken",
				a.conns, netip.AddrPortFrom(tg.addr, tg.port), tsStr(a.first), tsStr(a.last), roundDur(time.Duration(stallMin)), human(a.out/int64(a.conns)))}})
	}
}

// slowAgg holds the stalled connections public addresses made to one local
// port.
type slowAgg struct {
	conns     []connRec
	perSource map[netip.Addr]int
}

func (a *slowAgg) add(fl *Flow) {
	t := &fl.Traffic
	src := fl.Key.B.Addr()
	a.conns = append(a.conns, connRec{src: src, first: t.First, last: t.Last, in: t.In.Wire, out: t.Out.Wire, served: payload(fl, t.Out)})
	a.perSource[src]++
}

// payload estimates the TCP payload bytes in c, one side of fl, from its IP
// bytes (headers with timestamps, bareTCP).
func payload(fl *Flow, c Counts) int64 {
	return max(c.IP-c.Packets*bareTCP(fl), 0)
}

// bareTCP is the IP length of a segment of fl, a TCP connection, without
// payload: the IP and TCP headers with the timestamps option Linux uses, 52
// bytes over IPv4 and 72 over IPv6.
func bareTCP(fl *Flow) int64 {
	if a := fl.Key.A.Addr(); a.Is6() && !a.Is4In6() {
		return 72
	}
	return 52
}

// attack reports whether the stalled connections to port are a
// slow-request attack, with the summary part, the evidence and the wire
// bytes they brought in; quiet when the server sent nothing on nine in ten
// of them or more (stallQuiet), where a TLS handshake, or a WebSocket or a
// long poll that idles after its first answer, cannot be told from a slow
// request otherwise.
func (a *slowAgg) attack(port uint16, where func(netip.Addr) string) (part string, ev []string, in int64, quiet bool, ok bool) {
	var n, sources, out, nQuiet int64
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	var durs []int64
	for _, c := range a.conns {
		if a.perSource[c.src] < slowRepeat {
			continue
		}
		n++
		in += c.in
		out += c.out
		if c.served <= stallQuiet {
			nQuiet++
		}
		first, last = min(first, c.first), max(last, c.last)
		durs = append(durs, c.last-c.first)
	}
	for _, k := range a.perSource {
		if k >= slowRepeat {
			sources++
		}
	}
	if n < slowMin {
		return "", nil, 0, false, false
	}
	slices.Sort(durs)
	names := topSources(a.perSource, where)
	got := "nothing back but ACKs"
	if out/n > 1000 {
		got += " and a TLS handshake"
	}
	quiet = 10*nQuiet >= 9*n
	part = fmt.Sprintf("a slow-request (Slowloris) attack on port %d (%d connections held open from %d addresses, none answered)", port, n, sources)
	if !quiet {
		part = fmt.Sprintf("slow-request (Slowloris) attack on port %d: %d connections held open from %d addresses got no more back than a TLS handshake", port, n, sources)
	}
	ev = append(ev, fmt.Sprintf("slow requests on local port %d: %d connections from %d public addresses that held %d or more each, %s–%s; each sent a request a few bytes at a time (%s in on average) for %s (median) and got %s; most: %s",
		port, n, sources, slowRepeat, tsStr(first), tsStr(last), human(in/n), roundDur(time.Duration(durs[len(durs)/2])),
		got, strings.Join(names, ", ")))
	if k := int64(len(a.conns)) - n; k > 0 {
		ev[0] += fmt.Sprintf("; other public addresses held %d such connections", k)
	}
	ev = append(ev, "each held connection takes one of the server's connection slots (Apache's MaxRequestWorkers, a thread or a file descriptor) until the server gives up waiting; the users of one NAT gateway on a very slow link can look alike, check the addresses before blocking")
	return part, ev, in, quiet, true
}

// topSources lists the 5 addresses with the most connections, as
// "address (count, where)": a CDN's or a carrier's AS shows there.
func topSources(perSource map[netip.Addr]int, where func(netip.Addr) string) []string {
	top := slices.SortedFunc(maps.Keys(perSource), func(x, y netip.Addr) int {
		return cmp.Or(cmp.Compare(perSource[y], perSource[x]), x.Compare(y))
	})
	var names []string
	for _, s := range top[:min(5, len(top))] {
		name := fmt.Sprintf("%s (%d", s, perSource[s])
		if loc := where(s); loc != "?" {
			name += ", " + loc
		}
		names = append(names, name+")")
	}
	return names
}

// proxyChurn reports connection-flood volumes that came through reverse
// proxies (a CDN, a cloud load balancer) to port: an HTTP flood passing
// through the proxy looks like its ordinary traffic from here, and the
// proxy's addresses carry every visitor, so this is a low finding whose
// advice is to look behind the proxy, never to block its addresses.
func (c *findCtx) proxyChurn(port uint16, a *connAgg, names map[string]int) {
	fl := a.stats(1)
	if !fl.churning() {
		return
	}
	proxies := slices.SortedFunc(maps.Keys(names), func(x, y string) int { return cmp.Or(cmp.Compare(names[y], names[x]), cmp.Compare(x, y)) })
	via := joinAnd(proxies)
	c.add(Finding{ID: RuleDDoSTarget, Severity: SevLow,
		Next: fmt.Sprintf("Do not block these addresses: they are %s's and carry every visitor. If the load is a problem, find the real clients in the access log (CF-Connecting-IP, Fastly-Client-IP or X-Forwarded-For) and rate-limit or block them at the proxy (Cloudflare rate limiting rules or Under Attack mode, Fastly rate limiting, Cloud Armor); accept connections to port %d from the proxy's ranges only, so that nobody goes around it.", via, port),
		Summary: fmt.Sprintf("heavy connection churn through %s on port %d (%.0f short connections/s from %d of its addresses): an HTTP flood passing through the proxy, or its ordinary traffic",
			via, port, fl.rate, fl.sources),
		Evidence: []string{
			fmt.Sprintf("%d completed connections to local port %d from %s addresses, %.0f/s, %s–%s; median %s long, %s in and %s out each on average",
				fl.conns, port, via, fl.rate, tsStr(fl.first), tsStr(fl.last), roundDur(time.Duration(fl.median)), human(fl.in/fl.conns), human(fl.out/fl.conns)),
			fmt.Sprintf("most: %s", strings.Join(topSources(a.perSource, c.where), ", ")),
			c.connFloodService(port, fl)}})
}

// roundDur rounds d to milliseconds, or to microseconds below one.
func roundDur(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// connFloodService says who answered a connection flood on port and what
// it sent back.
func (c *findCtx) connFloodService(port uint16, fl connFlood) string {
	tx := c.r.Totals.All.Out.Wire
	server, _, _ := c.portServer(ingest.ProtoTCP, port)
	return fmt.Sprintf("%s answered it with %s, %s of the host's TX", server, human(fl.out), pct(share(fl.out, tx)))
}

// portServer names what served local port (of proto): the owner of the
// flows on it that sent the most ("" when there are none), with the wire
// bytes they received and sent.
func (c *findCtx) portServer(proto uint8, port uint16) (name string, in, out int64) {
	who := map[string]int64{}
	for i := range c.r.Flows {
		f := &c.r.Flows[i]
		if f.Key.Proto != proto || !f.Key.Oriented || f.Key.Folded != "" || f.Key.A.Port() != port {
			continue
		}
		n, _ := c.ownerName(f)
		who[n] += f.Traffic.Out.Wire
		in, out = in+f.Traffic.In.Wire, out+f.Traffic.Out.Wire
	}
	if len(who) == 0 {
		return "", 0, 0
	}
	names := slices.SortedFunc(maps.Keys(who), func(x, y string) int { return cmp.Or(cmp.Compare(who[y], who[x]), cmp.Compare(x, y)) })
	return names[0], in, out
}

// publicAddr reports whether a is a public unicast address: not private,
// shared (CGNAT), loopback, link-local or multicast. Connections from a
// private network are the host's own clients, not a flood from outside.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !cgnat.Contains(a)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// reflector finds a local UDP service on an amplification port (an open
// DNS resolver, NTP with monlist, memcached, SSDP, ...) answering spoofed
// requests: big replies to one address that asked with small ones, many
// times more bytes out than in. The host is not compromised but
// misconfigured, and its outbound bandwidth is spent on someone else's
// DDoS.
//
// Real clients get big replies too, so three shapes are not reflection:
// a private (or CGNAT, link-local) client, whose requests come from the
// host's own networks, not from a spoofer on the Internet (an SNMP poller's
// GetBulk walks, an internal resolver); a client that also completed TCP
// connections to the same service (a resolver retrying truncated answers
// over TCP: a spoofed address cannot do a handshake); and for DNS, answers
// that fit the EDNS buffer resolvers have used since DNS Flag Day 2020
// (dnsSafeReply) with an amplification below reflection's usual 30× or
// more: the DNSSEC answers an authoritative server gives a busy resolver.
// The last stays a medium finding (reflection with modest answers looks
// the same); the others are no finding.
func (c *findCtx) reflector() {
	type key struct {
		port   uint16
		target netip.Addr
	}
	type agg struct {
		flows       int
		out, in     Counts
		first, last int64
		procs       map[ingest.ProcKey]bool
		local       netip.Addr
	}
	m := map[key]*agg{}
	var keys []key
	portOut := map[uint16]int64{}   // reply bytes of each service, to all clients
	portClients := map[uint16]int{} // its clients
	tcpClients := map[key]bool{}    // clients that completed TCP connections to the port
	for i := range c.r.Flows {
		fl := &c.r.Flows[i]
		k := &fl.Key
		if !k.Oriented || k.Folded != "" || fl.Traffic.Out.Packets == 0 {
			continue
		}
		if _, ok := reflectorPorts[k.A.Port()]; !ok {
			continue
		}
		kk := key{k.A.Port(), k.B.Addr()}
		if k.Proto == ingest.ProtoTCP {
			if tcpServed(fl) {
				tcpClients[kk] = true
			}
			continue
		}
		if k.Proto != ingest.ProtoUDP {
			continue
		}
		a := m[kk]
		if a == nil {
			a = &agg{first: math.MaxInt64, last: math.MinInt64, procs: map[ingest.ProcKey]bool{}, local: k.A.Addr()}
			m[kk] = a
			keys = append(keys, kk)
			portClients[kk.port]++
		}
		a.flows++
		a.out.Add(fl.Traffic.Out)
		a.in.Add(fl.Traffic.In)
		portOut[kk.port] += fl.Traffic.Out.Wire
		a.first, a.last = min(a.first, fl.Traffic.First), max(a.last, fl.Traffic.Last)
		if o := ownerOf(fl); o.Attributed() {
			a.procs[o.Proc] = true
		}
	}
	slices.SortFunc(keys, func(x, y key) int { return cmp.Or(cmp.Compare(x.port, y.port), x.target.Compare(y.target)) })
	for _, kk := range keys {
		a := m[kk]
		amp := float64(a.out.Wire) / float64(max(a.in.Wire, 1))
		if a.out.Wire < 1_000_000 || a.out.Packets < 500 || a.in.Packets == 0 || amp < 10 {
			continue // (replies to no request seen are the UDP flood rule's)
		}
		if !publicAddr(kk.target) || tcpClients[kk] {
			continue
		}
		meanReply := a.out.Wire / a.out.Packets
		modest := kk.port == 53 && amp < 30 && meanReply <= dnsSafeReply
		d := max(float64(a.last-a.first)/1e9, 1)
		svc := reflectorPorts[kk.port]
		who := fmt.Sprintf("the %s service on port %d", svc, kk.port)
		pks := slices.SortedFunc(maps.Keys(a.procs), func(x, y ingest.ProcKey) int { return cmp.Compare(x.PID, y.PID) })
		if len(pks) > 0 {
			who = fmt.Sprintf("%s (%s service on port %d)", c.procDesc(pks[0]), svc, kk.port)
		}
		ev := []string{
			fmt.Sprintf("%d replies (%s, %s average) from %s:%d to %s over %d flow(s), against %d requests (%s, %s average), %s–%s",
				a.out.Packets, human(a.out.Wire), human(meanReply), a.local, kk.port, kk.target, a.flows,
				a.in.Packets, human(a.in.Wire), human(a.in.Wire/max(a.in.Packets, 1)), tsStr(a.first), tsStr(a.last)),
			fmt.Sprintf("%s of the port's reply bytes went to %s; the port answered %d client(s) in all",
				pct(share(a.out.Wire, portOut[kk.port])), kk.target, portClients[kk.port]),
		}
		if modest {
			c.add(Finding{ID: RuleReflector, Severity: SevMedium, Procs: pks,
				Next: fmt.Sprintf("If this host is an authoritative DNS server and %s is a known resolver (its network is above), these are DNSSEC answers and normal. If the host is a resolver, it must not answer the Internet: allow recursion for your own networks only (or block port 53 in the security group) and check the traffic stops.", kk.target),
				Summary: fmt.Sprintf("Large DNS answers to one client: %s sent %s to %s (%s), %.0f× its queries, %s: a busy resolver of an authoritative server, or reflection with modest answers",
					who, human(a.out.Wire), kk.target, c.where(kk.target), amp, humanRate(float64(a.out.Wire)/d)),
				Evidence: append(ev, fmt.Sprintf("the answers average %s, within the %d-byte EDNS buffer resolvers use, and %.0f× is below the 30× or more reflection usually gets; no TCP connection from %s to port 53 was seen (a real resolver retries truncated answers over TCP)",
					human(meanReply), dnsEDNSBuffer, amp, kk.target))})
			continue
		}
		c.add(Finding{ID: RuleReflector, Severity: SevHigh, Procs: pks,
			Next: "The host is being abused, not (necessarily) compromised: the service answers anyone on the Internet. Restrict it (DNS: recursion for your own networks only; NTP: disable monlist / use a current ntpd; memcached: bind to localhost, disable UDP; SSDP/SNMP/CLDAP: block from the Internet), or block the port in the security group, then check the traffic stops.",
			Summary: fmt.Sprintf("DDoS reflection: %s answers spoofed requests in the name of %s (%s): %s sent, %.0f× the requests, %s",
				who, kk.target, c.where(kk.target), human(a.out.Wire), amp, humanRate(float64(a.out.Wire)/d)),
			Evidence: append(ev,
				fmt.Sprintf("an amplification of %.0f× on %s (port %d) is what reflection attacks look for; %s is the victim, the requests only carry its address",
					amp, svc, kk.port, kk.target))})
	}
}

// tcpServed reports whether a TCP flow to a local service carried data back
// to the remote end, which therefore completed the handshake (a spoofed
// address cannot): more IP bytes out than the largest SYN-ACKs would make
// (8 bytes of options more than a bare segment: 60 in IPv4, 80 in IPv6),
// after at least three packets in. Retransmitted SYN-ACKs to a spoofed SYN
// are no more than that.
func tcpServed(fl *Flow) bool {
	t := &fl.Traffic
	return t.In.Packets >= 3 && t.Out.Packets >= 2 && t.Out.IP > t.Out.Packets*(bareTCP(fl)+8)
}

// dnsEDNSBuffer is the EDNS UDP buffer size resolvers have advertised since
// DNS Flag Day 2020 (larger answers are truncated and retried over TCP);
// dnsSafeReply is the largest frame such an answer makes on the wire (UDP,
// IPv6 and an 802.1Q-tagged Ethernet header on top). Reflection asks for
// 4,096-byte answers, which leave as fragments up to the MTU.
const (
	dnsEDNSBuffer = 1232
	dnsSafeReply  = dnsEDNSBuffer + 8 + 40 + 18
)

// atLeast formats a distinct count that stops at 65,536.
func atLeast(n int) string {
	if n >= 1<<16 {
		return fmt.Sprintf("≥ %d", n)
	}
	return fmt.Sprint(n)
}

func (c *findCtx) suspicious() {
	for _, p := range c.r.Processes {
		info, ok := c.proc(p.Key)
		if !ok {
			continue
		}
		facts := ProcessRisk(info, c.parent(info))
		sev := SevInfo
		var ev []string
		headline := ""
		for _, f := range facts {
			switch f.Severity {
			case RiskHigh:
				sev = SevHigh
			case RiskMedium:
				if sev != SevHigh {
					sev = SevMedium
				}
			default:
				continue
			}
			if headline == "" {
				headline = f.Text
			}
			ev = append(ev, f.Text)
		}
		if sev == SevInfo {
			continue
		}
		c.flagged[p.Key] = true
		ev = append(ev, fmt.Sprintf("traffic: %s sent, %s received over %d flow(s)", human(p.Traffic.Out.Wire), human(p.Traffic.In.Wire), p.Flows))
		ev = append(ev, c.remoteEvidence(p.Key, 3, "to ")...)
		if info.ExeSHA256 != "" {
			ev = append(ev, "exe sha256 "+info.ExeSHA256)
		}
		summary := fmt.Sprintf("suspicious process: %s — %s", c.procDesc(p.Key), headline)
		if rs := c.remotesOf(p.Key); len(rs) > 0 {
			summary += fmt.Sprintf("; it sent %s and received %s, mostly with %s (%s)", human(p.Traffic.Out.Wire), human(p.Traffic.In.Wire), rs[0].addr, c.where(rs[0].addr))
		}
		c.add(Finding{ID: RuleSuspiciousProc, Severity: sev, Procs: []ingest.ProcKey{p.Key}, Evidence: ev, Next: nextContain, Summary: summary})
	}
}

func (c *findCtx) exfiltration() {
	for _, p := range c.r.Processes {
		if info, ok := c.proc(p.Key); ok {
			if _, vendor := VendorAgent(info); vendor {
				continue
			}
		}
		tx, rx := p.Traffic.Out.Wire, p.Traffic.In.Wire
		if tx < 1_000_000 || tx < 10*rx {
			continue
		}
		rs := c.remotesOf(p.Key)
		if len(rs) == 0 || rs[0].out*2 < tx {
			continue // spread over many peers: a server, not a drop point
		}
		r := rs[0]
		if _, special := SpecialRange(r.addr); special {
			continue
		}
		d := float64(p.Traffic.Last-p.Traffic.First) / 1e9
		if d < 20 {
			continue
		}
		sev, what := SevMedium, "possible exfiltration"
		info, _ := c.proc(p.Key)
		tool, kind, via := c.uploaderOf(info)
		verb := "uploaded"
		next := "Find what the process read (its cwd, open files, cmdline) and whether the destination is a known backup or sync target; if it is not, treat the host as compromised: " + nextContainTail
		switch {
		case c.flagged[p.Key]:
			sev = SevHigh
		case r.served*2 > r.out:
			// The remote opened the connections to a local service and
			// pulled the data: a replica, a client downloading a file, or
			// someone dumping data through the service.
			what, verb = "large download from a local service", "served"
			next = "Check in the service's logs who the client is (a replica, a mirror, a user downloading a file) and what it fetched; if it is not expected, block the address and find how it got access; if data was taken, " + nextContainTail
		case tool != "":
			// A nightly off-site backup or a log shipper is the usual
			// story (often to another region or country); attackers use
			// rclone too, so it stays a finding to confirm.
			what = fmt.Sprintf("large upload by the %s %s%s (confirm it is expected: attackers exfiltrate with these too)", kind, tool, via)
		case c.foreign(r.addr):
			sev = SevHigh
		}
		c.add(Finding{ID: RuleExfiltration, Severity: sev, Procs: []ingest.ProcKey{p.Key}, Next: next,
			Summary: fmt.Sprintf("%s: %s %s %s to %s (%s), %.0f× more than it received", what, c.procDesc(p.Key), verb, human(r.out), r.addr, c.where(r.addr), float64(r.out)/float64(max(r.in, 1))),
			Evidence: []string{fmt.Sprintf("sustained for %.0f s at %s on average (peak %s at %s)", d, humanRate(float64(tx)/d), humanRate(p.Traffic.Peak.Rate), tsStr(p.Traffic.Peak.At)),
				fmt.Sprintf("%s of the process's TX went to this one host over %d flow(s)", pct(float64(r.out)/float64(tx)), r.flows)}})
	}
}

func (c *findCtx) scanning() {
	type key struct{ k ingest.ProcKey }
	remotes := map[ingest.ProcKey]map[netip.Addr]bool{}
	ports := map[ingest.ProcKey]map[netip.AddrPort]bool{}
	bytes := map[ingest.ProcKey]int64{}
	answered := map[ingest.ProcKey]map[netip.AddrPort]bool{} // endpoints that answered (answeredFlow)
	for _, fl := range c.r.Flows {
		if !fl.Key.Oriented || fl.Key.Proto == ingest.ProtoICMP || fl.Key.A.Port() <= fl.Key.B.Port() || fl.Traffic.Out.Packets == 0 ||
			(fl.Key.Proto == ingest.ProtoTCP && c.synTo(fl.Key.A.Port())) { // SYNs came in: the remotes' connections
			continue // server side of a connection, ICMP, or traffic the host never sent on (a flood against it)
		}
		o := ownerOf(&fl)
		if remotes[o.Proc] == nil {
			remotes[o.Proc] = map[netip.Addr]bool{}
			ports[o.Proc] = map[netip.AddrPort]bool{}
			answered[o.Proc] = map[netip.AddrPort]bool{}
		}
		remotes[o.Proc][fl.Key.B.Addr()] = true
		ports[o.Proc][fl.Key.B] = true
		if answeredFlow(&fl) {
			answered[o.Proc][fl.Key.B] = true
		}
		bytes[o.Proc] += fl.Traffic.Out.Wire + fl.Traffic.In.Wire
	}
	var ks []ingest.ProcKey
	for k := range remotes {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b ingest.ProcKey) int { return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.Start, b.Start)) })
	for _, k := range ks {
		n, np, na := len(remotes[k]), len(ports[k]), len(answered[k])
		if np < 100 || bytes[k]/int64(np) > 2000 || na*2 >= np {
			continue // few endpoints, real exchanges, or most answered: a client of many servers (a resolver, monitoring)
		}
		who := "unattributed sockets"
		if k != (ingest.ProcKey{}) {
			who = c.procDesc(k)
		}
		info, _ := c.proc(k)
		if name, kind, ok := programIn(p2pPrograms, info.Comm, info.Exe); ok && !c.flagged[k] {
			// Peer discovery: a DHT or a blockchain node asks thousands of
			// peers, many gone or behind NAT, and they do not answer.
			c.add(Finding{ID: RuleScanning, Severity: SevLow, Procs: []ingest.ProcKey{k},
				Next:    fmt.Sprintf("Peer-to-peer software, not an attack: if %s is not supposed to run on this host, stop it and find who installed it; if it is, its peer traffic is expected (limit its bandwidth or peer count in its settings if it is the bandwidth hog).", name),
				Summary: fmt.Sprintf("peer discovery by the %s %s: %s contacted %d remote endpoints on %s, %d of them answered", kind, name, who, np, hostsOf(n), na),
				Evidence: []string{fmt.Sprintf("%d distinct remote hosts, %d distinct host:port endpoints, %s in all, %s on average each; %d of the endpoints answered (peers that left or sit behind NAT do not)", n, np, human(bytes[k]), human(bytes[k]/int64(np)), na),
					fmt.Sprintf("%s has no risk facts (its executable %s is where such software is installed)", c.procDesc(k), firstNonEmpty(info.Exe, "?"))}})
			continue
		}
		c.add(Finding{ID: RuleScanning, Severity: SevHigh, Procs: []ingest.ProcKey{k}, Next: nextContain,
			Summary:  fmt.Sprintf("scanning: %s contacted %d remote endpoints on %s with %s on average each", who, np, hostsOf(n), human(bytes[k]/int64(np))),
			Evidence: []string{fmt.Sprintf("%d distinct remote hosts, %d distinct host:port endpoints, %s in all; %d of the endpoints answered (the rest were silent or refused)", n, np, human(bytes[k]), na)}})
	}
	for _, s := range c.in.Signals.SYNIn {
		if s.Ports < 100 {
			continue
		}
		if !publicAddr(s.Addr) {
			// From inside the network: lateral movement after a
			// compromise, or the organisation's own scanner.
			c.add(Finding{ID: RuleScanning, Severity: SevMedium,
				Next:    fmt.Sprintf("A host on the internal network scans this one: find out whether %s is a sanctioned vulnerability scanner; if not, it may be compromised and looking for its next target: check it.", s.Addr),
				Summary: fmt.Sprintf("inbound port scan from the internal address %s (%s): SYNs to %d ports", s.Addr, c.where(s.Addr), s.Ports)})
			continue
		}
		c.add(Finding{ID: RuleScanning, Severity: SevLow, Next: "Inbound scans are background noise on public hosts; make sure only intended ports are open.",
			Summary: fmt.Sprintf("inbound port scan from %s (%s): SYNs to %d ports", s.Addr, c.where(s.Addr), s.Ports)})
	}
}

// p2pPrograms are peer-to-peer programs, by kind, whose peer discovery
// contacts many hosts that mostly do not answer: BitTorrent clients, and
// blockchain and overlay network nodes.
var p2pPrograms = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"transmission-da", "transmission-daemon", "qbittorrent-nox", "qbittorrent", "deluged", "rtorrent",
		"aria2c", "ktorrent", "btfs"} {
		m[n] = "BitTorrent client"
	}
	for _, n := range []string{"bitcoind", "bitcoin-qt", "geth", "erigon", "nethermind", "Nethermind.Runn", "besu", "reth", "lighthouse",
		"prysm", "beacon-chain", "teku", "nimbus_beacon_n", "lodestar", "monerod", "solana-validator", "agave-validator", "litecoind",
		"dogecoind", "zcashd", "cardano-node", "polkadot", "cosmovisor", "gaiad", "avalanchego", "bor", "heimdalld", "op-node"} {
		m[n] = "blockchain node"
	}
	for _, n := range []string{"ipfs", "kubo", "syncthing", "i2pd", "i2prouter", "yggdrasil", "zerotier-one", "tailscaled"} {
		m[n] = "peer-to-peer network node"
	}
	return m
}()

// hostsOf says "1 host" or "N hosts" (a port scan of one host has many
// endpoints on it).
func hostsOf(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}

// uploadTools are the comms (and executable names) of programs whose job
// is uploading a lot to one place, by kind: backup and sync tools, log and
// metrics shippers, and container-image and repository pushes.
var uploadTools = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"restic", "borg", "rclone", "rsync", "duplicity", "kopia", "aws", "s3cmd", "gsutil", "azcopy", "mc",
		"pgbackrest", "pg_basebackup", "barman", "wal-g", "xtrabackup", "mariabackup", "bacula-fd", "bareos-fd", "velero", "zrepl",
		"syncoid", "rdiff-backup", "duplicati", "restic-rest", "s5cmd", "b2", "vmbackup", "clickhouse-backup", "etcdctl",
		"s3fs", "goofys", "mount-s3", "gcsfuse", "blobfuse2", "syncthing", "dropbox", "onedrive", "nextcloudcmd", "owncloudcmd"} {
		m[n] = "backup/sync tool"
	}
	for _, n := range []string{"filebeat", "metricbeat", "auditbeat", "packetbeat", "elastic-agent", "fluent-bit", "fluentd", "td-agent",
		"td-agent-bit", "vector", "promtail", "grafana-agent", "alloy", "telegraf", "otelcol", "otelcol-contrib", "splunkd",
		"newrelic-infra", "datadog-agent", "trace-agent", "process-agent", "logstash", "nxlog", "rsyslogd", "syslog-ng",
		"vmagent", "node_exporter", "falcon-sensor", "wazuh-agentd", "ossec-agentd", "osqueryd",
		"softflowd", "pmacctd", "sfacctd", "nfacctd", "fprobe", "hsflowd", "goflow2", "ntopng", "nprobe", "statsd", "collectd", "journald-remote",
		// Remote write and object-storage uploads of monitoring back ends.
		"prometheus", "thanos", "loki", "tempo", "mimir", "cortex", "victoria-metrics"} {
		m[n] = "log/metrics shipper"
	}
	for _, n := range []string{"dockerd", "containerd", "buildkitd", "buildah", "podman", "skopeo", "crane", "git", "git-remote-http",
		"git-remote-https", "git-lfs", "jfrog", "oras"} {
		m[n] = "image/repository push" // docker push from a build machine, git push
	}
	for _, n := range []string{"scp", "sftp", "lftp"} {
		m[n] = "file transfer tool"
	}
	return m
}()

// uploadTool returns the name and kind of the upload tool p runs, by comm
// or executable name, or "".
func uploadTool(p ingest.ProcessInfo) (name, kind string) {
	name, kind, _ = programIn(uploadTools, p.Comm, p.Exe)
	return name, kind
}

// transports carry another program's data: rsync, borg, scp and git start
// ssh and hand it what they send.
var transports = map[string]bool{"ssh": true, "dbclient": true, "plink": true}

// uploaderOf returns the upload tool p runs (uploadTool), or, when p is an
// ssh client, the one that started it, with "through ssh" in via.
func (c *findCtx) uploaderOf(p ingest.ProcessInfo) (name, kind, via string) {
	if name, kind = uploadTool(p); name != "" {
		return name, kind, ""
	}
	if t, _, ok := programIn(transports, p.Comm, p.Exe); ok {
		if parent := c.parent(p); parent != nil {
			if name, kind = uploadTool(*parent); name != "" {
				return name, kind, fmt.Sprintf(" through %s (%s[%d] started it)", t, parent.Comm, parent.PID)
			}
		}
	}
	return "", "", ""
}

// programIn looks a program up in m by its comm, then by its executable's
// name, and returns the name that matched.
func programIn[V any](m map[string]V, comm, exe string) (name string, v V, ok bool) {
	for _, n := range []string{comm, path.Base(exe)} {
		if v, ok := m[n]; ok && n != "" {
			return n, v, true
		}
	}
	return "", v, false
}

// shipperStream says "log/metrics shipper" when every sender of a one-way
// UDP stream is one (uploadTools) without medium or high risk facts, and
// "" otherwise.
func (c *findCtx) shipperStream(procs map[ingest.ProcKey]bool) string {
	for k := range procs {
		info, ok := c.proc(k)
		if !ok || c.flagged[k] {
			return ""
		}
		if _, kind := uploadTool(info); kind != "log/metrics shipper" {
			return ""
		}
		for _, f := range ProcessRisk(info, c.parent(info)) {
			if f.Severity == RiskHigh || f.Severity == RiskMedium {
				return ""
			}
		}
	}
	if len(procs) == 0 {
		return ""
	}
	return "log/metrics shipper"
}

// allIn reports whether every key of set is in m.
func allIn[V any](set map[uint16]bool, m map[uint16]V) bool {
	for k := range set {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return len(set) > 0
}

// cameBack says how many packets a flood's target sent back.
func cameBack(n int64) string {
	if n == 0 {
		return "nothing came back"
	}
	return fmt.Sprintf("only %d packets came back", n)
}

// answeredFlow reports whether the remote end of fl answered as a server
// does: a TCP connection that completed with data (the host sent SYN, ACK
// and more; the remote a SYN-ACK and more, not just a RST), or any reply
// for other protocols. Probes of a scan mostly go unanswered or refused.
func answeredFlow(fl *Flow) bool {
	t := &fl.Traffic
	if fl.Key.Proto == ingest.ProtoTCP {
		return t.Out.Packets >= 3 && t.In.Packets >= 2
	}
	return t.In.Packets > 0
}

// mailers are the comms (and executable names) of mail transfer agents:
// delivering to many mail servers is their job.
var mailers = map[string]bool{"master": true, "smtp": true, "qmgr": true, "postfix": true, "exim": true, "exim4": true,
	"sendmail": true, "opensmtpd": true, "smtpd": true, "qmail-remote": true, "nullmailer-send": true, "msmtp": true,
	"ssmtp": true, "haraka": true}

// spam finds SMTP delivery (TCP port 25) from this host to many mail
// servers: a spam bot's signature when the sender is not a mail server.
func (c *findCtx) spam() {
	type agg struct {
		flows   int
		bytes   int64
		first   int64
		last    int64
		remotes map[netip.Addr]bool
		comm    string
	}
	m := map[ingest.ProcKey]*agg{}
	for _, fl := range c.r.Flows {
		k, t := &fl.Key, &fl.Traffic
		if !k.Oriented || k.Proto != ingest.ProtoTCP || k.Folded != "" || k.B.Port() != 25 || k.A.Port() == 25 || t.Out.Packets == 0 {
			continue
		}
		o := ownerOf(&fl)
		a := m[o.Proc]
		if a == nil {
			a = &agg{first: t.First, last: t.Last, remotes: map[netip.Addr]bool{}, comm: o.Comm}
			m[o.Proc] = a
		}
		a.flows++
		a.bytes += t.Out.Wire
		a.first, a.last = min(a.first, t.First), max(a.last, t.Last)
		if len(a.remotes) < 1<<16 {
			a.remotes[k.B.Addr()] = true
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(m), compareProcKey) {
		a := m[k]
		if a.flows < 20 || len(a.remotes) < 20 {
			continue
		}
		p, _ := c.proc(k)
		_, _, mta := programIn(mailers, a.comm, p.Exe)
		who := "unattributed sockets"
		if k != (ingest.ProcKey{}) {
			who = c.procDesc(k)
		}
		ev := fmt.Sprintf("%d SMTP connections (port 25) to %s mail servers, %s sent, %s–%s", a.flows, atLeast(len(a.remotes)), human(a.bytes), tsStr(a.first), tsStr(a.last))
		f := Finding{ID: RuleSpam, Severity: SevHigh, Procs: []ingest.ProcKey{k}, Evidence: []string{ev},
			Summary: fmt.Sprintf("spam: %s sent mail to %s mail servers directly (SMTP, port 25)", who, atLeast(len(a.remotes))),
			Next:    "A host that is not a mail server talking SMTP to many mail servers is a spam bot: block outbound TCP 25 (most clouds do unless asked), then " + nextContainTail}
		if mta {
			f.Severity = SevLow
			f.Summary = fmt.Sprintf("outbound mail: the mail server %s delivered to %s mail servers", who, atLeast(len(a.remotes)))
			f.Next = "A mail server delivering to many servers is its job; if the volume is unexpected, check the queue and logs for spam (an open relay, a compromised account or web form) and rate-limit outbound mail."
		} else if k != (ingest.ProcKey{}) {
			c.flagged[k] = true
		}
		c.add(f)
	}
}

func (c *findCtx) bruteForce() {
	type agg struct {
		flows int
		bytes int64
		port  uint16
	}
	m := map[netip.Addr]*agg{}
	for _, fl := range c.r.Flows {
		p := fl.Key.A.Port()
		if !fl.Key.Oriented || fl.Key.Proto != ingest.ProtoTCP || (p != 22 && p != 3389 && p != 23 && p != 5900) {
			continue
		}
		a := m[fl.Key.B.Addr()]
		if a == nil {
			a = &agg{port: p}
			m[fl.Key.B.Addr()] = a
		}
		a.flows++
		a.bytes += fl.Traffic.Out.Wire + fl.Traffic.In.Wire
	}
	scanners := map[netip.Addr]bool{} // sources that sent SYNs to many ports: a scan (the scanning rule's), not a login attempt
	for _, s := range c.in.Signals.SYNIn {
		if s.Ports >= 100 {
			scanners[s.Addr] = true
		}
	}
	for _, a := range sortedAddrs(m) {
		g := m[a]
		if g.flows < 20 || g.bytes/int64(g.flows) > 20000 || scanners[a] {
			continue
		}
		svc := map[uint16]string{22: "SSH", 3389: "RDP", 23: "telnet", 5900: "VNC"}[g.port]
		c.add(Finding{ID: RuleBruteForce, Severity: SevMedium,
			Next:     "Block the source, allow " + svc + " only from known addresses, disable password logins, and check the auth log for a successful login.",
			Summary:  fmt.Sprintf("brute force against %s: %d short connections from %s (%s)", svc, g.flows, a, c.where(a)),
			Evidence: []string{fmt.Sprintf("%d connections to port %d, %s on average each", g.flows, g.port, human(g.bytes/int64(g.flows)))}})
	}
}

func (c *findCtx) bandwidthHog() {
	tx, rx := c.r.Totals.All.Out.Wire, c.r.Totals.All.In.Wire
	if tx+rx == 0 {
		return
	}
	var un Counts
	for _, u := range c.r.Unattributed {
		un.Add(u.Out)
		un.Add(u.In)
	}
	// A process's own traffic: without the half-open connections of a SYN
	// flood its listener was charged with (ddosTarget).
	own := func(p *ProcessStat) (out, in int64) {
		f := c.flood[p.Key]
		return p.Traffic.Out.Wire - f[0], p.Traffic.In.Wire - f[1]
	}
	var top *ProcessStat
	var topOut, topIn int64
	for i := range c.r.Processes {
		p := &c.r.Processes[i]
		if o, in := own(p); top == nil || o+in > topOut+topIn {
			top, topOut, topIn = p, o, in
		}
	}
	share := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	if top == nil || un.Wire > topOut+topIn {
		if share(un.Wire, tx+rx) >= 0.5 && c.r.Meta.Attributed {
			c.add(Finding{ID: RuleUnattributed, Severity: SevLow, Next: "See the coverage section for why; re-collect with a shorter --interval if sockets were too short-lived.",
				Summary: fmt.Sprintf("most traffic (%s of %s) could not be joined to a process", human(un.Wire), human(tx+rx))})
		}
		return
	}
	st, sr := share(topOut, tx), share(topIn, rx)
	if st < 0.5 && sr < 0.5 {
		return
	}
	dir, s := "sent", st
	if sr > st {
		dir, s = "received", sr
	}
	what := "TX"
	if dir == "received" {
		what = "RX"
	}
	ev := c.remoteEvidence(top.Key, 3, "")
	if n := len(c.remotesOf(top.Key)); n > 3 {
		ev = append(ev, fmt.Sprintf("… and %d more remote hosts", n-3))
	}
	ev = append(ev, fmt.Sprintf("peak %s at %s; %s of TX, %s of RX", humanRate(top.Traffic.Peak.Rate), tsStr(top.Traffic.Peak.At), pct(st), pct(sr)))
	if f := c.flood[top.Key]; f[0]+f[1] > 0 {
		ev = append(ev, fmt.Sprintf("not counting %s received and %s sent on half-open connections of the SYN flood (ddos-target), charged to it through its listening socket",
			human(f[1]), human(f[0])))
	}
	base := fmt.Sprintf("%s %s %s of the host's %s (%s sent, %s received)", c.procDesc(top.Key), dir, pct(s), what, human(topOut), human(topIn))
	f := Finding{ID: RuleBandwidthHog, Procs: []ingest.ProcKey{top.Key}, Evidence: ev, Summary: base}
	info, _ := c.proc(top.Key)
	var other *Finding
	for i := range c.out {
		if slices.Contains(c.out[i].Procs, top.Key) && (other == nil || sevRank(c.out[i].Severity) > sevRank(other.Severity)) {
			other = &c.out[i]
		}
	}
	switch vendor, isVendor := VendorAgent(info); {
	case c.flagged[top.Key] && (other == nil || sevRank(other.Severity) >= sevRank(SevHigh)):
		f.Severity, f.Next = SevHigh, nextContain
		f.Summary += ": an abnormal process"
	case other != nil:
		f.Severity, f.Next = other.Severity, other.Next
		f.Summary += ": see " + other.ID
	case isVendor:
		f.Severity, f.Next = SevMedium, nextVendor
		f.Summary += ": the cloud vendor's agent (" + vendor + ")"
	default:
		f.Severity, f.Next = SevInfo, nextCapacity
		f.Summary += ": a normal service, nothing suspicious found"
	}
	if name, kind, p2p := programIn(p2pPrograms, info.Comm, info.Exe); p2p && !c.flagged[top.Key] && (other == nil || sevRank(other.Severity) <= sevRank(SevLow)) {
		// Its peer discovery is at most the low finding it links to.
		f.Summary = fmt.Sprintf("%s: the %s %s, peer-to-peer traffic", base, kind, name)
		f.Next = fmt.Sprintf("Peer-to-peer software uses what bandwidth it gets: if %s should not run on this host, stop it and find who installed it; if it should, cap its upload and download rates and peer count in its settings.", name)
	}
	c.add(f)
}

// tunnels reports when most of the traffic is tunnelled (an overlay node,
// a VPN gateway): the outer flows then belong to the kernel's tunnel
// device, and the inner flows, with their owners, are what matter.
func (c *findCtx) tunnels() {
	all := c.r.Totals.All.Sum().Wire
	var in int64
	for i := range c.r.Tunnels {
		in += c.r.Tunnels[i].Total().Wire
	}
	if all == 0 || float64(in) < 0.5*float64(all) {
		return
	}
	var ev []string
	for i := range TopN(c.r.Tunnels, 3) {
		t := &c.r.Tunnels[i]
		line := fmt.Sprintf("%s %v ⇄ %v in %s %v ⇄ %v: %s", ingest.ProtoName(t.Inner.Proto), t.Inner.A, t.Inner.B,
			TunnelName(t.Outer), t.Outer.A, t.Outer.B, human(t.Total().Wire))
		if o := t.Owner; o != nil {
			line += fmt.Sprintf(", owned by %s[%d] (%s)", o.Comm, o.Proc.PID, o.Method)
		}
		ev = append(ev, line)
	}
	t := &c.r.Tunnels[0]
	summary := fmt.Sprintf("%s of the traffic (%s) is inside tunnels (%s); the biggest inner flow is %s %v ⇄ %v",
		pct(float64(in)/float64(all)), human(in), TunnelName(t.Outer), ingest.ProtoName(t.Inner.Proto), t.Inner.A, t.Inner.B)
	var procs []ingest.ProcKey
	if o := t.Owner; o != nil {
		summary += fmt.Sprintf(" of %s[%d]", o.Comm, o.Proc.PID)
		procs = []ingest.ProcKey{o.Proc}
	}
	c.add(Finding{ID: RuleTunnels, Severity: SevLow, Procs: procs, Evidence: ev, Summary: summary,
		Next: "Read the report's \"Inside tunnels\" section: the outer flows belong to the kernel's tunnel device (VXLAN, Geneve, GRE, ...); the inner flows name the pods or hosts, and with socket data their processes."})
}

func (c *findCtx) cloudAgents() {
	for _, p := range c.r.Processes {
		info, ok := c.proc(p.Key)
		if !ok {
			continue
		}
		vendor, isVendor := VendorAgent(info)
		if !isVendor || p.Traffic.Out.Wire+p.Traffic.In.Wire == 0 {
			continue
		}
		ev := c.remoteEvidence(p.Key, 3, "")
		c.add(Finding{ID: RuleCloudAgent, Severity: SevInfo, Procs: []ingest.ProcKey{p.Key}, Evidence: ev, Next: nextVendor,
			Summary: fmt.Sprintf("cloud vendor agent: %s is %s; it sent %s and received %s", c.procDesc(p.Key), vendor, human(p.Traffic.Out.Wire), human(p.Traffic.In.Wire))})
	}
}

func (c *findCtx) blindSpots() {
	var dropped, received uint64
	for _, i := range c.r.Meta.Interfaces {
		dropped += i.Dropped
		received += i.Received
	}
	var ctx, crx int64
	filter := ""
	if m := c.in.Manifest; m != nil {
		filter = m.Capture.Filter
		var md uint64
		for _, i := range m.Interfaces {
			md += i.CaptureDropped
			// Counters cover the whole capture on every interface: compare
			// them only with a whole-capture analysis of those interfaces.
			if only := c.r.Meta.OnlyInterfaces; c.r.Meta.Window != (Window{}) || len(only) > 0 && !slices.Contains(only, i.Name) {
				continue
			}
			// Loopback counts every frame as both sent and received, while the
			// capture keeps one copy: its counters cannot be compared.
			if tx, rx, ok := i.CounterBytes(); ok && i.Captured && i.Name != "lo" && !slices.Contains(i.Flags, "loopback") {
				ctx += tx
				crx += rx
			}
		}
		dropped = max(dropped, md)
	}
	var ev []string
	sev := Severity("")
	if dropped > 0 {
		sev = SevMedium
		ev = append(ev, fmt.Sprintf("the kernel dropped %d packets the capture should have seen", dropped))
	}
	capTX, capRX := c.r.Totals.All.Out.Wire, c.r.Totals.All.In.Wire
	// With a capture filter the counters also hold what the filter kept
	// out on purpose: no blind spot.
	if filter == "" && ctx+crx > 1_000_000 && float64(capTX+capRX) < 0.8*float64(ctx+crx) {
		sev = SevMedium
		ev = append(ev, fmt.Sprintf("the capture holds %s but the interface counters moved %s (%s missing)",
			human(capTX+capRX), human(ctx+crx), pct(1-float64(capTX+capRX)/float64(ctx+crx))))
	}
	all := c.r.Totals.All.Sum().Wire
	for _, u := range c.r.Unattributed {
		b := u.Out.Wire + u.In.Wire + u.Unknown.Wire
		if u.Cause == CauseNoSnapshot && all > 0 && float64(b) > 0.05*float64(all) {
			if sev == "" {
				sev = SevLow
			}
			ev = append(ev, fmt.Sprintf("%s of the traffic fell in times no socket inventory covers", pct(float64(b)/float64(all))))
		}
	}
	if sev == "" {
		return
	}
	c.add(Finding{ID: RuleBlindSpot, Severity: sev, Evidence: ev, Next: nextCapture,
		Summary: "capture blind spot: the numbers above are a lower bound"})
}

func (c *findCtx) policy() {
	if c.in.Policy == nil {
		return
	}
	for _, f := range c.in.Policy.Check(c.r, c.in.Procs, c.in.Geo) {
		c.add(f)
	}
}

// remoteEvidence describes a process's top n remote hosts, one line each.
func (c *findCtx) remoteEvidence(k ingest.ProcKey, n int, prefix string) []string {
	var ev []string
	for i, r := range c.remotesOf(k) {
		if i == n {
			break
		}
		ev = append(ev, fmt.Sprintf("%s%s (%s): %s out, %s in", prefix, r.addr, c.where(r.addr), human(r.out), human(r.in)))
	}
	return ev
}

// sortedAddrs returns a map's address keys in address order.
func sortedAddrs[V any](m map[netip.Addr]V) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// natNote says where a NAT-translated flow comes from (" NAT'ed from
// 172.17.0.2:45678"), or nothing.
func natNote(fl *Flow) string {
	if fl.Untranslated == nil {
		return ""
	}
	return " NAT'ed from " + fl.Untranslated.A.String()
}

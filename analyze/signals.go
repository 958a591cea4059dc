package analyze

import (
	"bytes"
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/flowblame/flowblame/ingest"
)

// SignalSource wraps a PacketSource and, as packets pass through it to
// Analyze, notes the few per-packet facts the findings need that flow totals
// cannot give: Stratum JSON-RPC in payloads (crypto mining), bare SYNs per
// target (SYN floods, scans), and outgoing packets with a source address that
// is not the host's (spoofing). The checks are branch-cheap for ordinary
// packets; maps are touched only for the rare matching ones.
type SignalSource struct {
	ingest.PacketSource
	local     []netip.Prefix
	localMACs [][6]byte
	sig       Signals
	synOut    map[netip.Addr]*SYNTarget
	synIn     map[netip.Addr]*SYNTarget
	synPorts  map[uint16]*SYNPort
	stratum   map[ingest.FiveTuple]int
	dnsIn     map[string]*DNSZone // DNS queries that came in, by zone (checkDNS)
	dnsOut    map[string]*DNSZone // DNS queries the host sent, by zone
	dnsLabels int                 // distinct first labels held in dnsIn and dnsOut
}

// Signals are the per-packet facts gathered by a SignalSource.
type Signals struct {
	// Stratum lists flows whose payload carried mining-protocol JSON-RPC.
	Stratum []StratumHit `json:"stratum,omitempty"`
	// SYNOut are targets of outgoing bare SYNs (no ACK), most first.
	SYNOut []SYNTarget `json:"syn_out,omitempty"`
	// SYNIn are sources of incoming bare SYNs, most first.
	SYNIn []SYNTarget `json:"syn_in,omitempty"`
	// SYNInPorts are the local ports incoming bare SYNs went to, most
	// first (the 20 busiest): who opened a connection, which a flow's
	// counts do not tell.
	SYNInPorts []SYNPort `json:"syn_in_ports,omitempty"`
	// DNSIn counts the DNS queries that came in to local addresses, by
	// zone, busiest first (20 at most); DNSOut those the host sent to
	// other addresses (Sources counts the servers asked).
	DNSIn  []DNSZone `json:"dns_in,omitempty"`
	DNSOut []DNSZone `json:"dns_out,omitempty"`
	// Names are what DNS answers to the host called remote addresses:
	// the name asked for, by the address answered (the first answer for
	// each; 200,000 at most).
	Names map[netip.Addr]string `json:"-"`
	// EchoIn counts the ICMP/ICMPv6 echo requests (pings) that came in to
	// a local address; EchoRepliesOut the echo replies the host sent. A
	// ping flood the host answers one for one shows only here: flows carry
	// no ICMP type.
	EchoIn         EchoCount `json:"echo_in"`
	EchoRepliesOut int64     `json:"echo_replies_out"`
	// EchoRepliesTo counts the echo replies sent, by destination (the
	// first 200,000 destinations): answers, not a flood of the host's own.
	EchoRepliesTo map[netip.Addr]int64 `json:"-"`
	// Spoofed counts outgoing packets whose source is not a local address
	// and to whose source nothing came back from their destination. Such
	// packets whose destination did answer through this host are
	// Forwarded: the host routes for those addresses (a Kubernetes node's
	// pods, a VPN or NAT gateway); a forged source's replies go to the
	// address's real owner instead.
	Spoofed        int64        `json:"spoofed_packets"`
	SpoofedSources int          `json:"spoofed_sources"`
	SpoofedSample  []netip.Addr `json:"spoofed_sample,omitempty"`
	SpoofedTargets []netip.Addr `json:"spoofed_targets,omitempty"`
	Forwarded      int64        `json:"forwarded_packets"`
	// spoofPairs counts outgoing packets by (source, destination) while
	// there are fewer than maxSpoofPairs; later pairs' packets count as
	// spoofed at once (spoofSrc, spoofDst).
	spoofPairs map[[2]netip.Addr]*spoofPair
	spoofSrc   map[netip.Addr]struct{}
	spoofDst   map[netip.Addr]int64
}

// spoofPair counts one (source, destination) pair of outgoing packets with
// a source not local, and whether the destination answered.
type spoofPair struct {
	out      int64
	answered bool
}

// maxSpoofPairs bounds the pairs SignalSource follows (a spoofed flood
// makes a pair per packet).
const maxSpoofPairs = 200000

// StratumHit is one flow seen speaking a mining protocol.
type StratumHit struct {
	Tuple   ingest.FiveTuple `json:"tuple"`
	TS      int64            `json:"ts"`
	Method  string           `json:"method"`
	Excerpt string           `json:"excerpt"`
}

// SYNTarget counts bare SYNs to (or from) one address.
type SYNTarget struct {
	Addr  netip.Addr `json:"addr"`
	SYNs  int64      `json:"syns"`
	Ports int        `json:"ports"`
	Peers int        `json:"peers"`
	First int64      `json:"first"`
	Last  int64      `json:"last"`
	ports map[uint16]struct{}
	peers map[netip.Addr]struct{}
}

// sightings says from where and when something came in: the distinct
// source addresses (counted up to 65,536) and the first and last time.
type sightings struct {
	Sources int   `json:"sources"`
	First   int64 `json:"first"`
	Last    int64 `json:"last"`
	set     map[netip.Addr]struct{}
}

// see notes one arrival from src at ts.
func (s *sightings) see(src netip.Addr, ts int64) {
	if s.set == nil {
		s.set, s.First, s.Last = map[netip.Addr]struct{}{}, ts, ts
	}
	s.First, s.Last = min(s.First, ts), max(s.Last, ts)
	if len(s.set) < 1<<16 {
		s.set[src] = struct{}{}
	}
}

// done turns the set into its count (Signals returns no maps).
func (s *sightings) done() { s.Sources, s.set = len(s.set), nil }

// EchoCount counts echo requests (pings).
type EchoCount struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"wire_bytes"`
	sightings
}

// SYNPort counts the bare SYNs that came in to one local port.
type SYNPort struct {
	Port uint16 `json:"port"`
	SYNs int64  `json:"syns"`
	sightings
}

// NewSignalSource wraps src. local and localMACs decide which packets are
// outgoing, as in Options.
func NewSignalSource(src ingest.PacketSource, local []netip.Prefix, localMACs [][6]byte) *SignalSource {
	return &SignalSource{PacketSource: src, local: local, localMACs: localMACs,
		synOut: map[netip.Addr]*SYNTarget{}, synIn: map[netip.Addr]*SYNTarget{}, synPorts: map[uint16]*SYNPort{}, stratum: map[ingest.FiveTuple]int{},
		dnsIn: map[string]*DNSZone{}, dnsOut: map[string]*DNSZone{}}
}

func (s *SignalSource) isLocal(a netip.Addr) bool {
	for _, p := range s.local {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *SignalSource) macLocal(m [6]byte) bool {
	for _, l := range s.localMACs {
		if l == m {
			return true
		}
	}
	return false
}

var stratumMethods = [][]byte{[]byte(`"mining.subscribe"`), []byte(`"mining.authorize"`), []byte(`"mining.submit"`),
	[]byte(`"mining.notify"`), []byte(`"mining.set_difficulty"`), []byte(`"method":"login"`), []byte(`"method":"submit"`),
	[]byte(`"method":"job"`), []byte(`"method": "login"`), []byte(`"method": "submit"`), []byte(`"eth_submitLogin"`), []byte(`"eth_submitWork"`)}

// Next implements ingest.PacketSource.
func (s *SignalSource) Next(p *ingest.Packet) error {
	if err := s.PacketSource.Next(p); err != nil {
		return err
	}
	s.check(p)
	return nil
}

// NextSummaries implements ingest.SummarySource: it summarises through the
// wrapped source when that can, and looks at every frame either way.
func (s *SignalSource) NextSummaries(dst []ingest.Summary, p *ingest.Packet) (int, error) {
	ss, ok := s.PacketSource.(ingest.SummarySource)
	if !ok {
		return 0, s.Next(p)
	}
	n, err := ss.NextSummaries(dst, p)
	if n == 0 {
		if err == nil {
			s.check(p)
		}
		return 0, err
	}
	for i := range dst[:n] {
		s.checkSummary(&dst[i])
	}
	return n, nil
}

// check notes the signals of one packet.
func (s *SignalSource) check(p *ingest.Packet) {
	if p.Kind != ingest.KindIP {
		return
	}
	if len(p.Payload) > 8 && p.Payload[0] == '{' {
		s.checkStratum(p.Tuple, p.TS, p.Payload)
	}
	if p.Tuple.Proto == ingest.ProtoTCP && p.TCPFlags&0x12 == 0x02 {
		s.checkSYN(p.Tuple, p.TS)
	}
	if (p.Tuple.Proto == ingest.ProtoICMP || p.Tuple.Proto == ingest.ProtoICMPv6) && len(p.Payload) > 0 && !p.Fragment {
		s.checkEcho(p)
	}
	if p.Tuple.Proto == ingest.ProtoUDP && !p.Fragment && (p.Tuple.Src.Port() == 53 || p.Tuple.Dst.Port() == 53) {
		s.checkPort53(p.Tuple.Src, p.Tuple.Dst, p.TS, p.Payload)
	}
	if out := s.outgoing(p.Dir, p.HasMAC, p.SrcMAC); out || len(s.sig.spoofPairs) > 0 {
		s.checkSource(out, p.Tuple.Src.Addr(), p.Tuple.Dst.Addr())
	}
}

// outgoing reports whether a frame left the host (by the capture's
// direction or a local source MAC), when the local addresses are known.
func (s *SignalSource) outgoing(dir ingest.Direction, hasMAC bool, srcMAC [6]byte) bool {
	return len(s.local) > 0 && (dir == ingest.DirOut || (hasMAC && len(s.localMACs) > 0 && s.macLocal(srcMAC)))
}

// checkSource looks at a frame's addresses: an outgoing one whose source is
// not local may be spoofed; any other may answer such packets.
func (s *SignalSource) checkSource(out bool, src, dst netip.Addr) {
	if out {
		s.checkSpoof(src, dst)
	} else {
		s.checkReply(src, dst)
	}
}

// checkSummary is check for a summarised frame.
func (s *SignalSource) checkSummary(f *ingest.Summary) {
	if len(f.Payload) > 8 && f.Payload[0] == '{' {
		s.checkStratum(f.Tuple(), f.TS, f.Payload)
	}
	if f.Proto == ingest.ProtoTCP && f.TCPFlags&0x12 == 0x02 {
		s.checkSYN(f.Tuple(), f.TS)
	}
	if f.Proto == ingest.ProtoUDP && (f.SrcPort == 53 || f.DstPort == 53) {
		s.checkPort53(netip.AddrPortFrom(f.SrcAddr(), f.SrcPort), netip.AddrPortFrom(f.DstAddr(), f.DstPort), f.TS, f.Payload)
	}
	if out := s.outgoing(f.Dir, f.HasMAC, f.SrcMAC); out || len(s.sig.spoofPairs) > 0 {
		s.checkSource(out, f.SrcAddr(), f.DstAddr())
	}
}

// checkSYN counts a SYN without ACK.
func (s *SignalSource) checkSYN(t ingest.FiveTuple, ts int64) {
	src, dst := t.Src.Addr(), t.Dst.Addr()
	switch {
	case s.isLocal(src) && !s.isLocal(dst):
		s.count(s.synOut, dst, t.Dst.Port(), src, ts)
	case s.isLocal(dst) && !s.isLocal(src):
		s.count(s.synIn, src, t.Dst.Port(), dst, ts)
		p := s.synPorts[t.Dst.Port()]
		if p == nil {
			p = &SYNPort{Port: t.Dst.Port()}
			s.synPorts[t.Dst.Port()] = p
		}
		p.SYNs++
		p.see(src, ts)
	}
}

// checkEcho counts an echo request to a local address from elsewhere, and
// an echo reply from a local address to elsewhere (ICMP types 8 and 0,
// ICMPv6 128 and 129; the payload starts with the ICMP header).
func (s *SignalSource) checkEcho(p *ingest.Packet) {
	req, rep := uint8(8), uint8(0)
	if p.Tuple.Proto == ingest.ProtoICMPv6 {
		req, rep = 128, 129
	}
	src, dst := p.Tuple.Src.Addr(), p.Tuple.Dst.Addr()
	switch typ := p.Payload[0]; {
	case typ == req && s.isLocal(dst) && !s.isLocal(src):
		e := &s.sig.EchoIn
		e.Requests++
		e.Bytes += int64(p.WireLen)
		e.see(src, p.TS)
	case typ == rep && s.isLocal(src) && !s.isLocal(dst):
		s.sig.EchoRepliesOut++
		if s.sig.EchoRepliesTo == nil {
			s.sig.EchoRepliesTo = map[netip.Addr]int64{}
		}
		if _, ok := s.sig.EchoRepliesTo[dst]; ok || len(s.sig.EchoRepliesTo) < 200000 {
			s.sig.EchoRepliesTo[dst]++
		}
	}
}

// checkSpoof counts an outgoing packet from src to dst when src is not
// one of the host's addresses.
func (s *SignalSource) checkSpoof(src, dst netip.Addr) {
	if s.isLocal(src) || src.IsLoopback() || s.isLocal(dst) || linkScoped(src, dst) {
		return
	}
	if s.sig.spoofPairs == nil {
		s.sig.spoofPairs = map[[2]netip.Addr]*spoofPair{}
	}
	k := [2]netip.Addr{src, dst}
	if sp := s.sig.spoofPairs[k]; sp != nil {
		sp.out++
		return
	}
	if len(s.sig.spoofPairs) < maxSpoofPairs {
		s.sig.spoofPairs[k] = &spoofPair{out: 1}
		return
	}
	s.sig.spoofed(src, dst, 1)
}

// linkScoped reports whether a packet from src to dst cannot leave the
// link: the host's own link-local or unspecified source (IPv6 neighbour
// discovery, DHCP), or a multicast or broadcast destination (mDNS, SSDP).
// Such sources are no forgery, whatever --local lists.
func linkScoped(src, dst netip.Addr) bool {
	src = src.Unmap()
	return src.IsUnspecified() || src.IsLinkLocalUnicast() || groupAddr(dst)
}

// groupAddr reports whether a is a multicast or the broadcast address: a
// destination that is no single host and stays inside the network.
func groupAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// checkReply notes a packet that did not leave the host: if it answers
// outgoing packets of a source that is not local, the host forwards for
// that source.
func (s *SignalSource) checkReply(src, dst netip.Addr) {
	if sp := s.sig.spoofPairs[[2]netip.Addr{dst, src}]; sp != nil {
		sp.answered = true
	}
}

// spoofed counts n packets from a forged src to dst.
func (sig *Signals) spoofed(src, dst netip.Addr, n int64) {
	sig.Spoofed += n
	if sig.spoofSrc == nil {
		sig.spoofSrc = map[netip.Addr]struct{}{}
		sig.spoofDst = map[netip.Addr]int64{}
	}
	if len(sig.spoofSrc) < 100000 {
		sig.spoofSrc[src] = struct{}{}
	}
	if _, ok := sig.spoofDst[dst]; ok || len(sig.spoofDst) < 200000 { // memory stays bounded
		sig.spoofDst[dst] += n
	}
}

func (s *SignalSource) checkStratum(t ingest.FiveTuple, ts int64, payload []byte) {
	if _, seen := s.stratum[t]; seen {
		return
	}
	for _, m := range stratumMethods {
		if bytes.Contains(payload, m) {
			s.stratum[t] = len(s.sig.Stratum)
			ex := payload
			if len(ex) > 60 {
				ex = ex[:60]
			}
			s.sig.Stratum = append(s.sig.Stratum, StratumHit{Tuple: t, TS: ts, Method: string(bytes.Trim(m, `"`)), Excerpt: string(bytes.ToValidUTF8(ex, []byte("?")))})
			return
		}
	}
}

func (s *SignalSource) count(m map[netip.Addr]*SYNTarget, a netip.Addr, port uint16, peer netip.Addr, ts int64) {
	t := m[a]
	if t == nil {
		if len(m) > 200000 {
			return
		}
		t = &SYNTarget{Addr: a, First: ts, ports: map[uint16]struct{}{}, peers: map[netip.Addr]struct{}{}}
		m[a] = t
	}
	t.SYNs++
	t.Last = ts
	if len(t.ports) < 65536 {
		t.ports[port] = struct{}{}
	}
	if len(t.peers) < 65536 {
		t.peers[peer] = struct{}{}
	}
}

// Signals returns what was seen, deterministically ordered. Call it after
// the source is exhausted.
func (s *SignalSource) Signals() Signals {
	sig := s.sig
	flatten := func(m map[netip.Addr]*SYNTarget) []SYNTarget {
		var out []SYNTarget
		for _, t := range m {
			c := *t
			c.Ports, c.Peers = len(t.ports), len(t.peers)
			c.ports, c.peers = nil, nil
			out = append(out, c)
		}
		slices.SortFunc(out, func(a, b SYNTarget) int {
			if c := cmp.Compare(b.SYNs, a.SYNs); c != 0 {
				return c
			}
			return a.Addr.Compare(b.Addr)
		})
		if len(out) > 50 {
			out = out[:50]
		}
		return out
	}
	sig.SYNOut, sig.SYNIn = flatten(s.synOut), flatten(s.synIn)
	for _, p := range s.synPorts {
		c := *p
		c.done()
		sig.SYNInPorts = append(sig.SYNInPorts, c)
	}
	slices.SortFunc(sig.SYNInPorts, func(a, b SYNPort) int { return cmp.Or(cmp.Compare(b.SYNs, a.SYNs), cmp.Compare(a.Port, b.Port)) })
	if len(sig.SYNInPorts) > 20 {
		sig.SYNInPorts = sig.SYNInPorts[:20]
	}
	sig.EchoIn.done()
	sig.DNSIn, sig.DNSOut = dnsZones(s.dnsIn), dnsZones(s.dnsOut)
	sig.Names = maps.Clone(sig.Names)
	sig.spoofSrc, sig.spoofDst = maps.Clone(sig.spoofSrc), maps.Clone(sig.spoofDst)      // s.sig stays as it is: Signals can be called again
	pairs := slices.SortedFunc(maps.Keys(sig.spoofPairs), func(a, b [2]netip.Addr) int { // the caps below keep the first
		return cmp.Or(a[0].Compare(b[0]), a[1].Compare(b[1]))
	})
	for _, k := range pairs {
		if sp := sig.spoofPairs[k]; sp.answered {
			sig.Forwarded += sp.out
		} else {
			sig.spoofed(k[0], k[1], sp.out)
		}
	}
	sig.spoofPairs = nil
	sig.SpoofedSources = len(sig.spoofSrc)
	for a := range sig.spoofSrc {
		sig.SpoofedSample = append(sig.SpoofedSample, a)
	}
	slices.SortFunc(sig.SpoofedSample, func(a, b netip.Addr) int { return a.Compare(b) })
	if len(sig.SpoofedSample) > 5 {
		sig.SpoofedSample = sig.SpoofedSample[:5]
	}
	for a := range sig.spoofDst {
		sig.SpoofedTargets = append(sig.SpoofedTargets, a)
	}
	slices.SortFunc(sig.SpoofedTargets, func(a, b netip.Addr) int {
		if c := cmp.Compare(sig.spoofDst[b], sig.spoofDst[a]); c != 0 {
			return c
		}
		return a.Compare(b)
	})
	if len(sig.SpoofedTargets) > 5 {
		sig.SpoofedTargets = sig.SpoofedTargets[:5]
	}
	sig.spoofSrc, sig.spoofDst = nil, nil
	return sig
}

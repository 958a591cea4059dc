package analyze

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"
)

// DNSZone counts DNS queries for names under one zone, those that came in
// to the host (Signals.DNSIn: Sources counts the clients) or those it sent
// (DNSOut: Sources counts the servers asked): how many, and how many
// distinct first labels they asked for. A
// random-subdomain ("water torture") flood asks for a new random name under
// the victim's zone each time (a8fk2lqz.example.com, 91kdmx0e.example.com):
// every query misses the caches of the resolvers that relay it and reaches
// the authoritative server, which answers each one, so the flood's flows
// look answered and only the names give it away. Legitimate traffic asks
// for the same few names (www, mail, api) over and over.
type DNSZone struct {
	// Zone is the name without its first label, shortened to the
	// registered domain (its last two labels, three under a second-level
	// ccTLD domain such as co.uk); "" when the capture cut the names before
	// their end.
	Zone    string `json:"zone"`
	Queries int64  `json:"queries"`
	// Distinct counts the distinct first labels (a lower bound once the
	// signals hold dnsMaxLabels of them in all).
	Distinct int `json:"distinct_labels"`
	// Sample holds a few first labels asked for the first time while new
	// labels came at dnsSampleBurst or more in a window (a flood's), else
	// the first few distinct ones: for the evidence.
	Sample []string `json:"sample,omitempty"`
	// PeakNew is the most queries for a new first label in any
	// dnsWindow-second window, PeakQueries all the queries in that window,
	// and PeakAt the window's last second (Unix): a flood of a minute in a
	// capture of an hour shows at its own rate.
	// PeakSecs counts the seconds of that window with new labels: the
	// flood's rate is PeakNew/PeakSecs.
	PeakNew     int64 `json:"peak_new"`
	PeakQueries int64 `json:"peak_queries"`
	PeakAt      int64 `json:"peak_at"`
	PeakSecs    int64 `json:"peak_secs"`
	// Senders are the (source, destination) endpoints of a few burst
	// queries (those Sample's labels came in): the flows that find the
	// process that asked.
	Senders [][2]netip.AddrPort `json:"-"`
	sightings
	labels map[uint64]struct{}
	win    dnsWin
	early  []string // the first few distinct first labels
}

// dnsSampleBurst is how many new first labels a window must hold for the
// next ones to be sampled as a flood's.
const dnsSampleBurst = 100

// dnsWindow is the length in seconds of the window DNSZone's peak is
// taken over.
const dnsWindow = 10

// dnsWin counts a zone's queries and new first labels per second over the
// last dnsWindow seconds.
type dnsWin struct {
	sec        int64 // the latest second counted
	started    bool  // a query was counted
	q, n       [dnsWindow]int64
	sumQ, sumN int64
}

// dnsSlot is second sec's place in the window (sec may be negative: a
// pcapng time offset can put packets before 1970).
func dnsSlot(sec int64) int64 { return ((sec % dnsWindow) + dnsWindow) % dnsWindow }

// active counts the seconds of the window with new labels.
func (w *dnsWin) active() int64 {
	var n int64
	for _, c := range w.n {
		if c > 0 {
			n++
		}
	}
	return n
}

// add counts a query at second sec, a new first label when isNew, and
// returns the window's sums. A query more than the window behind the
// latest one is counted in no window.
func (w *dnsWin) add(sec int64, isNew bool) (sumQ, sumN int64) {
	switch {
	case !w.started:
		w.sec, w.started = sec, true
	case sec > w.sec:
		for t := w.sec + 1; t <= sec && t <= w.sec+dnsWindow; t++ {
			i := dnsSlot(t)
			w.sumQ, w.sumN = w.sumQ-w.q[i], w.sumN-w.n[i]
			w.q[i], w.n[i] = 0, 0
		}
		w.sec = sec
	case w.sec-sec >= dnsWindow:
		return w.sumQ, w.sumN
	}
	i := dnsSlot(sec)
	w.q[i]++
	w.sumQ++
	if isNew {
		w.n[i]++
		w.sumN++
	}
	return w.sumQ, w.sumN
}

const (
	dnsMaxZones  = 1000    // zones followed; queries for further zones count in the "…" zone
	dnsMaxLabels = 500_000 // distinct first labels held in all zones
	dnsSample    = 5
)

// dnsOther is the zone further zones are counted in.
const dnsOther = "…"

var dnsSeed = maphash.MakeSeed()

// checkPort53 looks at a UDP datagram from or to port 53: a query to a DNS
// server (checkDNS) or an answer from one (checkDNSAnswer).
func (s *SignalSource) checkPort53(src, dst netip.AddrPort, ts int64, payload []byte) {
	if dst.Port() == 53 {
		s.checkDNS(src, dst, ts, payload)
	} else {
		s.checkDNSAnswer(dst.Addr(), payload)
	}
}

// checkDNS notes a UDP datagram to port 53 that came in to a local
// address from elsewhere (dnsIn), or left a local address for elsewhere
// (dnsOut), when it is a standard query with one question. It allocates
// only for a new zone and a zone's first few labels.
func (s *SignalSource) checkDNS(src, dst netip.AddrPort, ts int64, payload []byte) {
	m, peer := s.dnsIn, src.Addr()
	switch srcLocal, dstLocal := s.isLocal(src.Addr()), s.isLocal(dst.Addr()); {
	case dstLocal && !srcLocal:
	case srcLocal && !dstLocal:
		m, peer = s.dnsOut, dst.Addr()
	default:
		return
	}
	var buf dnsNameBuf
	first, zone, ok := dnsQuestion(payload, &buf)
	if !ok {
		return
	}
	z := m[string(zone)]
	if z == nil {
		name := string(zone)
		if len(m) >= dnsMaxZones {
			name = dnsOther
			z = m[name]
		}
		if z == nil {
			z = &DNSZone{Zone: name, labels: map[uint64]struct{}{}}
			m[name] = z
		}
	}
	z.Queries++
	z.see(peer, ts)
	h := maphash.Bytes(dnsSeed, first)
	_, seen := z.labels[h]
	if !seen && s.dnsLabels < dnsMaxLabels {
		z.labels[h] = struct{}{}
		s.dnsLabels++
	}
	sec := floorSec(ts)
	q, n := z.win.add(sec, !seen)
	if n > z.PeakNew {
		z.PeakNew, z.PeakQueries, z.PeakAt, z.PeakSecs = n, q, sec, z.win.active()
	}
	if !seen {
		switch {
		case len(z.early) < dnsSample:
			z.early = append(z.early, strings.ToValidUTF8(string(first), "?"))
		case n >= dnsSampleBurst && len(z.Sample) < dnsSample:
			z.Sample = append(z.Sample, strings.ToValidUTF8(string(first), "?"))
			z.Senders = append(z.Senders, [2]netip.AddrPort{src, dst})
		}
	}
}

// dnsNameBuf holds a question's first label and zone, lower-cased.
type dnsNameBuf [64 + 256]byte

// dnsQuestion reads the question of a DNS query message as far as it was
// captured: the first label of the name and its zone (DNSZone.Zone), both
// lower-cased into buf. ok is false for responses, other opcodes,
// messages with other than one question, and names whose first label was
// cut.
func dnsQuestion(p []byte, buf *dnsNameBuf) (first, zone []byte, ok bool) {
	if len(p) < 14 || p[2]&0xf8 != 0 || binary.BigEndian.Uint16(p[4:]) != 1 {
		return nil, nil, false // a response (QR), not a standard query (opcode), or not one question
	}
	var last [3][2]int // the start and end of the last three labels after the first, oldest first
	n, complete := 0, false
	for i := 12; i < len(p); {
		l := int(p[i])
		if l == 0 {
			complete = true
			break
		}
		if l > 63 || i+1+l > len(p) {
			break // a compression pointer (not in a question) or the snaplen
		}
		if n == 0 {
			first = lowerInto(buf[:0], p[i+1:i+1+l])
		} else {
			last[0], last[1], last[2] = last[1], last[2], [2]int{i + 1, i + 1 + l}
		}
		n++
		i += 1 + l
	}
	if n == 0 {
		return nil, nil, false
	}
	zone = buf[64:64]
	if !complete {
		return first, zone, true
	}
	rest := min(n-1, 3)
	keep := 2
	if rest == 3 && last[2][1]-last[2][0] == 2 && slices.Contains(secondLevel, string(lowerInto(buf[64:64], p[last[1][0]:last[1][1]]))) {
		keep = 3 // example.co.uk
	}
	for _, l := range last[3-min(rest, keep):] {
		if len(zone) > 0 {
			zone = append(zone, '.')
		}
		zone = lowerInto(zone, p[l[0]:l[1]])
	}
	if len(zone) == 0 {
		zone = append(zone, '.')
	}
	return first, zone, true
}

// lowerInto appends b to dst with A-Z in lower case: DNS compares names
// without regard to ASCII case only (RFC 4343), and labels may hold any
// byte.
func lowerInto(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// secondLevel are the second-level labels ccTLDs register domains under
// (co.uk, com.au, ne.jp).
var secondLevel = []string{"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gob", "gouv"}

// dnsZones returns the busiest zones of m (at most 20), most queries
// first.
func dnsZones(m map[string]*DNSZone) []DNSZone {
	var out []DNSZone
	for _, z := range m {
		c := *z
		c.Distinct, c.labels, c.win, c.early = len(z.labels), nil, dnsWin{}, nil
		c.Sample, c.Senders = slices.Clone(z.Sample), slices.Clone(z.Senders)
		if len(c.Sample) == 0 {
			c.Sample = slices.Clone(z.early)
		}
		if !utf8.ValidString(c.Zone) {
			c.Zone = strings.ToValidUTF8(c.Zone, "?")
		}
		c.done()
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b DNSZone) int { return cmp.Or(cmp.Compare(b.Queries, a.Queries), cmp.Compare(a.Zone, b.Zone)) })
	return out[:min(len(out), 20)]
}

// dnsMaxNames bounds the addresses DNS answers name (Signals.Names).
const dnsMaxNames = 200_000

// checkDNSAnswer notes the addresses a DNS answer that came in to a local
// address gave for the name asked (the first name for each address).
func (s *SignalSource) checkDNSAnswer(dst netip.Addr, payload []byte) {
	if len(payload) < 12 || payload[2]&0x80 == 0 || !s.isLocal(dst) {
		return // not a response, or not to this host
	}
	dnsAnswers(payload, func(name string, a netip.Addr) {
		if _, ok := s.sig.Names[a]; !ok && len(s.sig.Names) < dnsMaxNames {
			if s.sig.Names == nil {
				s.sig.Names = map[netip.Addr]string{}
			}
			s.sig.Names[a] = name
		}
	})
}

// dnsAnswers calls fn with the question's name (lower case, without the
// final dot) and each IPv4 or IPv6 address in the answer section of DNS
// response p, as far as it was captured. A response that is not NOERROR,
// or has other than one question, gives nothing.
func dnsAnswers(p []byte, fn func(name string, a netip.Addr)) {
	if len(p) < 12 || p[3]&0x0f != 0 || binary.BigEndian.Uint16(p[4:]) != 1 {
		return
	}
	an := int(binary.BigEndian.Uint16(p[6:]))
	name, i, ok := dnsName(p, 12)
	if !ok || i+4 > len(p) || name == "" {
		return
	}
	i += 4 // qtype, qclass
	for ; an > 0; an-- {
		_, j, ok := dnsName(p, i)
		if !ok || j+10 > len(p) {
			return
		}
		typ, class := binary.BigEndian.Uint16(p[j:]), binary.BigEndian.Uint16(p[j+2:])
		rdlen := int(binary.BigEndian.Uint16(p[j+8:]))
		rd := j + 10
		if rd+rdlen > len(p) {
			return
		}
		switch {
		case class != 1:
		case typ == 1 && rdlen == 4:
			fn(name, netip.AddrFrom4([4]byte(p[rd:rd+4])))
		case typ == 28 && rdlen == 16:
			fn(name, netip.AddrFrom16([16]byte(p[rd:rd+16])).Unmap())
		}
		i = rd + rdlen
	}
}

// dnsName reads the (possibly compressed) name at offset i of message p,
// lower-cased, and returns it with the offset after it; ok is false when
// it runs past p, loops or is longer than a name can be.
func dnsName(p []byte, i int) (name string, next int, ok bool) {
	var b []byte
	next = -1
	for jumps := 0; ; {
		if i >= len(p) {
			return "", 0, false
		}
		l := int(p[i])
		switch {
		case l == 0:
			if next < 0 {
				next = i + 1
			}
			return strings.ToValidUTF8(string(b), "?"), next, true
		case l&0xc0 == 0xc0:
			if i+1 >= len(p) || jumps >= 16 {
				return "", 0, false
			}
			if next < 0 {
				next = i + 2
			}
			i = int(binary.BigEndian.Uint16(p[i:]) & 0x3fff)
			jumps++
		case l > 63 || i+1+l > len(p) || len(b)+1+l > 255:
			return "", 0, false
		default:
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = lowerInto(b, p[i+1:i+1+l])
			i += 1 + l
		}
	}
}

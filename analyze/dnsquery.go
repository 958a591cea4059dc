package analyze

import (
	"cmp"
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
)

// DNSZone counts the DNS queries that came in to the host for names under
// one zone: how many, and how many distinct first labels they asked for. A
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
	// Sample holds the first few distinct first labels, for the evidence.
	Sample []string `json:"sample,omitempty"`
	sightings
	labels map[uint64]struct{}
}

const (
	dnsMaxZones  = 1000    // zones followed; queries for further zones count in the "…" zone
	dnsMaxLabels = 500_000 // distinct first labels held in all zones
	dnsSample    = 5
)

// dnsOther is the zone further zones are counted in.
const dnsOther = "…"

var dnsSeed = maphash.MakeSeed()

// checkDNS notes a UDP datagram to port 53 that came in to a local
// address from elsewhere (dnsIn), or left a local address for elsewhere
// (dnsOut), when it is a standard query with one question.
func (s *SignalSource) checkDNS(src, dst netip.Addr, ts int64, payload []byte) {
	m, peer := s.dnsIn, src
	switch srcLocal, dstLocal := s.isLocal(src), s.isLocal(dst); {
	case dstLocal && !srcLocal:
	case srcLocal && !dstLocal:
		m, peer = s.dnsOut, dst
	default:
		return
	}
	first, zone, ok := dnsQuestion(payload)
	if !ok {
		return
	}
	z := m[zone]
	if z == nil {
		if len(m) >= dnsMaxZones {
			zone = dnsOther
			z = m[zone]
		}
		if z == nil {
			z = &DNSZone{Zone: zone, labels: map[uint64]struct{}{}}
			m[zone] = z
		}
	}
	z.Queries++
	z.see(peer, ts)
	h := maphash.Bytes(dnsSeed, first)
	if _, seen := z.labels[h]; !seen && s.dnsLabels < dnsMaxLabels {
		z.labels[h] = struct{}{}
		s.dnsLabels++
		if len(z.Sample) < dnsSample {
			z.Sample = append(z.Sample, strings.ToValidUTF8(string(first), "?"))
		}
	}
}

// dnsQuestion reads the question of a DNS query message as far as it was
// captured: the first label of the name (lower case) and its zone
// (DNSZone.Zone). ok is false for responses, other opcodes, messages with
// other than one question, and names whose first label was cut.
func dnsQuestion(p []byte) (first []byte, zone string, ok bool) {
	if len(p) < 14 || p[2]&0xf8 != 0 || binary.BigEndian.Uint16(p[4:]) != 1 {
		return nil, "", false // a response (QR), not a standard query (opcode), or not one question
	}
	var labels [][]byte
	complete := false
	for i := 12; i < len(p); {
		n := int(p[i])
		if n == 0 {
			complete = true
			break
		}
		if n > 63 || i+1+n > len(p) {
			break // a compression pointer (not in a question) or the snaplen
		}
		labels = append(labels, p[i+1:i+1+n])
		i += 1 + n
	}
	if len(labels) == 0 {
		return nil, "", false
	}
	first = asciiLower(labels[0])
	if !complete {
		return first, "", true
	}
	rest := labels[1:]
	keep := 2
	if len(rest) >= 3 && len(rest[len(rest)-1]) == 2 && slices.Contains(secondLevel, string(asciiLower(rest[len(rest)-2]))) {
		keep = 3 // example.co.uk
	}
	rest = rest[max(0, len(rest)-keep):]
	parts := make([]string, len(rest))
	for i, l := range rest {
		parts[i] = strings.ToValidUTF8(string(asciiLower(l)), "?")
	}
	zone = strings.Join(parts, ".")
	if zone == "" {
		zone = "."
	}
	return first, zone, true
}

// asciiLower returns a copy of b with A-Z in lower case: DNS compares
// names without regard to ASCII case only (RFC 4343), and labels may hold
// any byte.
func asciiLower(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		out[i] = c
	}
	return out
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
		c.Distinct, c.labels = len(z.labels), nil
		c.Sample = slices.Clone(z.Sample)
		c.done()
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b DNSZone) int { return cmp.Or(cmp.Compare(b.Queries, a.Queries), cmp.Compare(a.Zone, b.Zone)) })
	return out[:min(len(out), 20)]
}

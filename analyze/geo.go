package analyze

import (
	"fmt"
	"net/netip"
)

// Location is where an address is: a special range, or a country and an
// autonomous system from a geo database.
type Location struct {
	Special     string `json:"special,omitempty"` // name of a special-purpose range, e.g. "private (RFC 1918)"
	Country     string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	CountryName string `json:"country_name,omitempty"`
	ASN         uint   `json:"asn,omitempty"`
	ASOrg       string `json:"as_org,omitempty"`
}

// String renders the location for a table cell: "DE AS24940 Hetzner", or
// the special range, or "?" when nothing is known.
func (l Location) String() string {
	if l.Special != "" {
		return l.Special
	}
	s := l.Country
	if l.ASN != 0 {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("AS%d", l.ASN)
		if l.ASOrg != "" {
			s += " " + l.ASOrg
		}
	}
	if s == "" {
		return "?"
	}
	return s
}

// GeoLookup answers country and ASN questions for public addresses.
type GeoLookup interface {
	// Lookup returns what the databases know of a; ok is false when
	// nothing is known.
	Lookup(a netip.Addr) (loc Location, ok bool)
	// CountrySource and ASNSource name the databases (type and build date)
	// that answer, or "" when none is loaded.
	CountrySource() string
	ASNSource() string
}

type specialRange struct {
	p    netip.Prefix
	name string
}

// specialRanges are recognised without any database, most specific first.
var specialRanges = func() []specialRange {
	var rs []specialRange
	for _, r := range [][2]string{
		{"169.254.169.254/32", "cloud metadata service"},
		{"169.254.0.0/16", "link-local"},
		{"127.0.0.0/8", "loopback"},
		{"10.0.0.0/8", "private (RFC 1918)"},
		{"172.16.0.0/12", "private (RFC 1918)"},
		{"192.168.0.0/16", "private (RFC 1918)"},
		{"100.64.0.0/10", "carrier-grade NAT (RFC 6598)"},
		{"192.0.2.0/24", "documentation (TEST-NET-1)"},
		{"198.51.100.0/24", "documentation (TEST-NET-2)"},
		{"203.0.113.0/24", "documentation (TEST-NET-3)"},
		{"198.18.0.0/15", "benchmarking (RFC 2544)"},
		{"224.0.0.0/4", "multicast"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
		{"0.0.0.0/8", "this network"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"fd00:ec2::254/128", "cloud metadata service"},
		{"::1/128", "loopback"},
		{"::/128", "unspecified"},
		{"fe80::/10", "link-local"},
		{"fc00::/7", "unique local (private)"},
		{"ff00::/8", "multicast"},
		{"2001:db8::/32", "documentation (RFC 3849)"},
		{"64:ff9b::/96", "NAT64"},
	} {
		rs = append(rs, specialRange{netip.MustParsePrefix(r[0]), r[1]})
	}
	return rs
}()

// SpecialRange names the special-purpose range a belongs to (RFC 1918,
// CGNAT, loopback, link-local, multicast, cloud metadata, documentation, ...).
func SpecialRange(a netip.Addr) (string, bool) {
	a = a.Unmap()
	for _, r := range specialRanges {
		if r.p.Contains(a) {
			return r.name, true
		}
	}
	return "", false
}

// Locate returns a's location: a special range when it is one, else what g
// knows (g may be nil).
func Locate(g GeoLookup, a netip.Addr) Location {
	if s, ok := SpecialRange(a); ok {
		return Location{Special: s}
	}
	if g != nil {
		if l, ok := g.Lookup(a.Unmap()); ok {
			return l
		}
	}
	return Location{}
}

package analyze

import (
	"fmt"
	"net/netip"
	"strings"
)

// Location is where an address is: a special range, or a country and an
// autonomous system from a geo database.
type Location struct {
	Special     string `json:"special,omitempty"` // name of a special-purpose range, e.g. "private (RFC 1918)"
	Country     string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	CountryName string `json:"country_name,omitempty"`
	ASN         uint   `json:"asn,omitempty"`
	ASOrg       string `json:"as_org,omitempty"`
	// Proxy names the CDN or cloud load balancer whose published
	// origin-facing ranges hold the address (ReverseProxy): its
	// connections carry many visitors, not one client.
	Proxy string `json:"proxy,omitempty"`
}

// String renders the location for a table cell: "DE AS24940 Hetzner",
// "US (Cloudflare)" for a reverse proxy, or the special range, or "?" when
// nothing is known.
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
	// The proxy in parentheses ("US (Cloudflare)"), unless the AS name
	// already says it ("AS13335 CLOUDFLARENET").
	if f := strings.Fields(l.Proxy); len(f) > 0 && !strings.Contains(strings.ToLower(l.ASOrg), strings.ToLower(f[0])) {
		if s != "" {
			s += " (" + l.Proxy + ")"
		} else {
			s = l.Proxy
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
	var l Location
	if g != nil {
		if loc, ok := g.Lookup(a.Unmap()); ok {
			l = loc
		}
	}
	if l.Proxy == "" {
		l.Proxy = ReverseProxy(a, l.ASN)
	}
	return l
}

// UserProxy is a reverse proxy the user named (analyze --proxy): a range
// its connections to this host come from.
type UserProxy struct {
	Prefix netip.Prefix
	Name   string
}

// WithProxies returns g answering also that the addresses in ps are those
// proxies (Location.Proxy); g may be nil.
func WithProxies(g GeoLookup, ps []UserProxy) GeoLookup {
	if len(ps) == 0 {
		return g
	}
	return proxyGeo{g, ps}
}

type proxyGeo struct {
	GeoLookup
	ps []UserProxy
}

func (p proxyGeo) Lookup(a netip.Addr) (Location, bool) {
	var l Location
	ok := false
	if p.GeoLookup != nil {
		l, ok = p.GeoLookup.Lookup(a)
	}
	for _, u := range p.ps {
		if u.Prefix.Contains(a) {
			l.Proxy, ok = u.Name, true
			break
		}
	}
	return l, ok
}

func (p proxyGeo) CountrySource() string {
	if p.GeoLookup == nil {
		return ""
	}
	return p.GeoLookup.CountrySource()
}

func (p proxyGeo) ASNSource() string {
	if p.GeoLookup == nil {
		return ""
	}
	return p.GeoLookup.ASNSource()
}

// proxyRanges are the published ranges reverse proxies connect to origin
// servers from: a server behind one sees every visitor's connection come
// from these addresses. Cloudflare: cloudflare.com/ips (unchanged since
// 2021); Fastly: api.fastly.com/public-ip-list; Google Cloud's external
// load balancers and health checks (cloud.google.com/load-balancing/docs/
// firewall-rules).
var proxyRanges = func() []specialRange {
	var rs []specialRange
	for _, r := range []struct {
		name     string
		prefixes []string
	}{
		{"Cloudflare", []string{"173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
			"108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17",
			"162.158.0.0/15", "104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
			"2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32",
			"2a06:98c0::/29", "2c0f:f248::/32"}},
		{"Fastly", []string{"23.235.32.0/20", "43.249.72.0/22", "103.244.50.0/24", "103.245.222.0/23", "103.245.224.0/24",
			"104.156.80.0/20", "140.248.64.0/18", "140.248.128.0/17", "146.75.0.0/17", "151.101.0.0/16",
			"157.52.64.0/18", "167.82.0.0/17", "167.82.128.0/20", "167.82.160.0/20", "167.82.224.0/20",
			"172.111.64.0/18", "185.31.16.0/22", "199.27.72.0/21", "199.232.0.0/16", "2a04:4e40::/32", "2a04:4e42::/32"}},
		{"Google Cloud load balancer", []string{"130.211.0.0/22", "35.191.0.0/16", "2600:2d00:1:b029::/64", "2600:2d00:1:1::/64"}},
	} {
		for _, p := range r.prefixes {
			rs = append(rs, specialRange{netip.MustParsePrefix(p), r.name})
		}
	}
	return rs
}()

// proxyASNs are reverse proxies known by their AS number only (their
// origin-facing ranges are not published as a short list); they are
// recognised when an ASN database is loaded.
var proxyASNs = map[uint]string{13335: "Cloudflare", 54113: "Fastly", 20940: "Akamai", 16625: "Akamai",
	19551: "Imperva", 30148: "Sucuri"}

// ReverseProxy names the CDN or cloud load balancer a belongs to (by its
// published ranges, or by asn when not 0), or "".
func ReverseProxy(a netip.Addr, asn uint) string {
	a = a.Unmap()
	for _, r := range proxyRanges {
		if r.p.Contains(a) {
			return r.name
		}
	}
	return proxyASNs[asn]
}

// WithName puts the name a DNS answer gave an address before where it is
// ("pool.supportxmr.example · NL"); an unknown place ("?") gives way to
// the name alone.
func WithName(name, where string) string {
	switch {
	case name == "":
		return where
	case where == "?" || where == "":
		return name
	}
	return name + " · " + where
}

// Package geoip answers "where is this remote address": country and
// autonomous system, from MaxMind GeoLite2/GeoIP2 or DB-IP mmdb files, with
// a DB-IP Lite country database embedded so that country lookups work with
// no flags and no download.
//
//	db, err := geoip.Open(geoip.Options{})          // embedded country DB
//	loc := analyze.Locate(db, netip.MustParseAddr("8.8.8.8"))
//
// Databases are looked for, in order: the paths in Options; the environment
// variables FLOWBLAME_GEOIP_DB and FLOWBLAME_ASN_DB; the usual locations
// /usr/share/GeoIP and /var/lib/GeoIP (GeoLite2-Country, GeoLite2-City,
// GeoLite2-ASN, dbip-country-lite, dbip-asn-lite); then, for countries only,
// the embedded DB-IP Lite database (CC BY 4.0, https://db-ip.com).
package geoip

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/flowblame/flowblame/analyze"
)

//go:embed dbip-country.mmdb.gz
var embeddedCountry []byte

// EmbeddedAttribution is the credit the embedded database's licence asks for.
const EmbeddedAttribution = "IP Geolocation by DB-IP (https://db-ip.com), DB-IP Lite country database, CC BY 4.0"

// Options choose the databases. Empty fields mean "search as documented".
type Options struct {
	CountryDB string // mmdb with countries (GeoLite2-Country/City, DB-IP country/city, ip-location-db country)
	ASNDB     string // mmdb with ASNs (GeoLite2-ASN, DB-IP ASN Lite, ip-location-db asn)
	// NoEmbedded disables the embedded country database.
	NoEmbedded bool
	// SearchDirs overrides the usual locations (tests).
	SearchDirs []string
	// Getenv overrides os.Getenv (tests).
	Getenv func(string) string
}

// source is one opened database: through geoip2 when it knows the
// database type (MaxMind and DB-IP schemas), else through maxminddb with
// the flat ip-location-db schema.
type source struct {
	g    *geoip2.Reader
	m    *maxminddb.Reader
	desc string
}

// DB implements analyze.GeoLookup.
type DB struct {
	country, asn *source
}

var _ analyze.GeoLookup = (*DB)(nil)

var usualDirs = []string{"/usr/share/GeoIP", "/var/lib/GeoIP", "/usr/local/share/GeoIP"}

var (
	countryFiles = []string{"GeoLite2-Country.mmdb", "GeoIP2-Country.mmdb", "GeoLite2-City.mmdb", "GeoIP2-City.mmdb",
		"dbip-country-lite*.mmdb", "dbip-city-lite*.mmdb", "dbip-country*.mmdb"}
	asnFiles = []string{"GeoLite2-ASN.mmdb", "dbip-asn-lite*.mmdb", "asn*.mmdb"}
)

// Open loads the databases. A path given explicitly (flag or environment)
// that cannot be read is an error; databases that are merely absent are not.
func Open(o Options) (*DB, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	dirs := o.SearchDirs
	if dirs == nil {
		dirs = usualDirs
	}
	cpath, apath := firstOf(o.CountryDB, getenv("FLOWBLAME_GEOIP_DB")), firstOf(o.ASNDB, getenv("FLOWBLAME_ASN_DB"))
	if cpath == "" {
		cpath = find(dirs, countryFiles)
	}
	if apath == "" {
		apath = find(dirs, asnFiles)
	}
	d := &DB{}
	var err error
	switch {
	case cpath != "":
		raw, rerr := os.ReadFile(cpath)
		if rerr != nil {
			return nil, fmt.Errorf("open country database: %w", rerr)
		}
		if d.country, err = openSource(raw, filepath.Base(cpath)); err != nil {
			return nil, fmt.Errorf("open country database %s: %w", cpath, err)
		}
	case !o.NoEmbedded:
		zr, zerr := gzip.NewReader(bytes.NewReader(embeddedCountry))
		if zerr != nil {
			return nil, fmt.Errorf("open embedded country database: %w", zerr)
		}
		raw, rerr := io.ReadAll(zr)
		if rerr != nil {
			return nil, fmt.Errorf("open embedded country database: %w", rerr)
		}
		if d.country, err = openSource(raw, "embedded"); err != nil {
			return nil, fmt.Errorf("open embedded country database: %w", err)
		}
		d.country.desc += "; " + EmbeddedAttribution
	}
	if apath != "" {
		raw, rerr := os.ReadFile(apath)
		if rerr != nil {
			return nil, fmt.Errorf("open ASN database: %w", rerr)
		}
		if d.asn, err = openSource(raw, filepath.Base(apath)); err != nil {
			return nil, fmt.Errorf("open ASN database %s: %w", apath, err)
		}
	}
	return d, nil
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func openSource(raw []byte, name string) (*source, error) {
	m, err := maxminddb.OpenBytes(raw)
	if err != nil {
		return nil, err
	}
	s := &source{m: m}
	if g, err := geoip2.OpenBytes(raw); err == nil {
		s.g = g
	}
	built := time.Unix(int64(m.Metadata.BuildEpoch), 0).UTC().Format("2006-01-02")
	s.desc = fmt.Sprintf("%s (%s, built %s)", m.Metadata.DatabaseType, name, built)
	return s, nil
}

// find returns the first existing file matching one of the patterns, in
// directory order then pattern order; among glob matches the last by name
// (the newest dated file).
func find(dirs, patterns []string) string {
	for _, dir := range dirs {
		for _, pat := range patterns {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			sort.Strings(m)
			for i := len(m) - 1; i >= 0; i-- {
				if st, err := os.Stat(m[i]); err == nil && !st.IsDir() {
					return m[i]
				}
			}
		}
	}
	return ""
}

// CountrySource implements analyze.GeoLookup.
func (d *DB) CountrySource() string {
	if d.country == nil {
		return ""
	}
	return d.country.desc
}

// ASNSource implements analyze.GeoLookup.
func (d *DB) ASNSource() string {
	if d.asn == nil {
		return ""
	}
	return d.asn.desc
}

// flat is the ip-location-db schema (country_code; ASN fields as GeoLite2).
type flat struct {
	CountryCode string `maxminddb:"country_code"`
	ASN         uint   `maxminddb:"autonomous_system_number"`
	ASOrg       string `maxminddb:"autonomous_system_organization"`
}

// Lookup implements analyze.GeoLookup.
func (d *DB) Lookup(a netip.Addr) (analyze.Location, bool) {
	var loc analyze.Location
	if s := d.country; s != nil {
		if s.g != nil {
			if c, err := s.g.Country(a); err == nil {
				loc.Country, loc.CountryName = c.Country.ISOCode, c.Country.Names.English
				if loc.Country == "" {
					loc.Country = c.RegisteredCountry.ISOCode
				}
			}
		} else {
			var f flat
			if res := s.m.Lookup(a); res.Found() && res.Decode(&f) == nil {
				loc.Country = f.CountryCode
			}
		}
	}
	if s := d.asn; s != nil {
		if s.g != nil {
			if r, err := s.g.ASN(a); err == nil {
				loc.ASN, loc.ASOrg = r.AutonomousSystemNumber, r.AutonomousSystemOrganization
			}
		} else {
			var f flat
			if res := s.m.Lookup(a); res.Found() && res.Decode(&f) == nil {
				loc.ASN, loc.ASOrg = f.ASN, f.ASOrg
			}
		}
	}
	return loc, loc.Country != "" || loc.ASN != 0
}

// Close releases the databases.
func (d *DB) Close() error {
	for _, s := range []*source{d.country, d.asn} {
		if s != nil {
			s.m.Close()
			if s.g != nil {
				s.g.Close()
			}
		}
	}
	return nil
}

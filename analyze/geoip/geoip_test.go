package geoip

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/flowblame/flowblame/analyze"
)

// writeDB writes a small mmdb of the given type with one record per CIDR.
func writeDB(t *testing.T, dir, name, dbType string, recs map[string]mmdbtype.Map) string {
	t.Helper()
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, m := range recs {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Insert(n, m); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return p
}

func geoLiteCountry(cc, name string) mmdbtype.Map {
	return mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(cc), "names": mmdbtype.Map{"en": mmdbtype.String(name)}}}
}

func TestOpenAndLookup(t *testing.T) {
	dir := t.TempDir()
	cpath := writeDB(t, dir, "GeoLite2-Country.mmdb", "GeoLite2-Country", map[string]mmdbtype.Map{
		"45.9.148.0/24": geoLiteCountry("NL", "Netherlands"),
		"8.8.8.0/24":    geoLiteCountry("US", "United States"),
	})
	apath := writeDB(t, dir, "GeoLite2-ASN.mmdb", "GeoLite2-ASN", map[string]mmdbtype.Map{
		"45.9.148.0/24": {"autonomous_system_number": mmdbtype.Uint32(64496), "autonomous_system_organization": mmdbtype.String("Example Hosting")},
	})
	flatPath := writeDB(t, dir, "flat.mmdb", "country ipvAll", map[string]mmdbtype.Map{
		"45.9.148.0/24": {"country_code": mmdbtype.String("DE")},
	})
	noEnv := func(string) string { return "" }
	tests := []struct {
		name     string
		opts     Options
		addr     string
		want     analyze.Location
		wantSrc  string
		wantASN  string
		wantFind bool
	}{
		{"explicit geolite", Options{CountryDB: cpath, ASNDB: apath, Getenv: noEnv}, "45.9.148.21",
			analyze.Location{Country: "NL", CountryName: "Netherlands", ASN: 64496, ASOrg: "Example Hosting"}, "GeoLite2-Country", "GeoLite2-ASN", true},
		{"search dirs", Options{SearchDirs: []string{dir}, Getenv: noEnv}, "8.8.8.8",
			analyze.Location{Country: "US", CountryName: "United States"}, "GeoLite2-Country", "GeoLite2-ASN", true},
		{"environment", Options{SearchDirs: []string{}, Getenv: func(k string) string {
			if k == "FLOWBLAME_GEOIP_DB" {
				return flatPath
			}
			return ""
		}}, "45.9.148.1", analyze.Location{Country: "DE"}, "country ipvAll", "", true},
		{"embedded default", Options{SearchDirs: []string{}, Getenv: noEnv}, "8.8.8.8",
			analyze.Location{Country: "US"}, "DB-IP", "", true},
		{"nothing known", Options{CountryDB: cpath, Getenv: noEnv, SearchDirs: []string{}}, "9.9.9.9",
			analyze.Location{}, "GeoLite2-Country", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, err := Open(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			got, ok := db.Lookup(netip.MustParseAddr(tc.addr))
			if ok != tc.wantFind || got != tc.want {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tc.addr, got, ok, tc.want, tc.wantFind)
			}
			if !strings.Contains(db.CountrySource(), tc.wantSrc) {
				t.Errorf("CountrySource = %q, want it to name %q", db.CountrySource(), tc.wantSrc)
			}
			if tc.wantASN != "" && !strings.Contains(db.ASNSource(), tc.wantASN) {
				t.Errorf("ASNSource = %q, want %q", db.ASNSource(), tc.wantASN)
			}
		})
	}
}

func TestOpenBadPath(t *testing.T) {
	if _, err := Open(Options{CountryDB: filepath.Join(t.TempDir(), "missing.mmdb")}); err == nil {
		t.Fatal("want an error for a missing explicit database")
	}
	p := filepath.Join(t.TempDir(), "junk.mmdb")
	os.WriteFile(p, []byte("not an mmdb"), 0o644)
	if _, err := Open(Options{CountryDB: p}); err == nil {
		t.Fatal("want an error for a corrupt database")
	}
}

func TestSpecialRangesNeedNoDatabase(t *testing.T) {
	for addr, want := range map[string]string{
		"10.1.2.3": "private (RFC 1918)", "100.64.1.1": "carrier-grade NAT (RFC 6598)", "169.254.169.254": "cloud metadata service",
		"127.0.0.1": "loopback", "fe80::1": "link-local", "224.0.0.251": "multicast", "2001:db8::1": "documentation (RFC 3849)",
		"::ffff:192.168.1.1": "private (RFC 1918)",
	} {
		if got := analyze.Locate(nil, netip.MustParseAddr(addr)); got.Special != want {
			t.Errorf("Locate(%s) = %q, want %q", addr, got.Special, want)
		}
	}
}

package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Conntrack listings from standard tools, for captures taken without
// `flowblame collect` (tcpdump + ss on a Docker host): the NAT
// translations that let analysis charge a container's masqueraded uplink
// flows to its process, as conntrack.jsonl does for bundles.
//
// Accepted, one entry per line (other lines are skipped with a diagnostic):
//
//	conntrack -L            tcp      6 431999 ESTABLISHED src=A dst=B sport=1 dport=2 src=B dst=C sport=2 dport=3 [ASSURED] mark=0 use=1
//	/proc/net/nf_conntrack  ipv4     2 tcp      6 431999 ESTABLISHED src=A dst=B sport=1 dport=2 [UNREPLIED] src=B dst=C ...
//
// The first src/dst/sport/dport are the original tuple, the second the
// reply tuple; entries without ports (ICMP) and those the kernel does not
// translate are left out. Lines carry no time: every record gets the
// file's modification time.

// ReadConntrackDumps reads conntrack listings and returns their translated
// entries. An unreadable file is an error; unparseable lines are
// diagnostics.
func ReadConntrackDumps(paths []string) ([]NATRecord, []Diagnostic, error) {
	var recs []NATRecord
	var diags []Diagnostic
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return recs, diags, fmt.Errorf("read conntrack listing: %w", err)
		}
		var t int64
		if st, err := f.Stat(); err == nil {
			t = st.ModTime().UnixNano()
		}
		r, d := ParseConntrack(f, p, t)
		f.Close()
		recs, diags = append(recs, r...), append(diags, d...)
	}
	return recs, diags, nil
}

// ParseConntrack parses one conntrack listing (name for diagnostics, t the
// time given to its records).
func ParseConntrack(r io.Reader, name string, t int64) ([]NATRecord, []Diagnostic) {
	var recs []NATRecord
	diags := readJSONL(r, name, func(line []byte) error {
		if bytes.HasPrefix(line, []byte("conntrack v")) { // conntrack -L's summary line
			return nil
		}
		rec, translated, err := parseConntrackLine(string(line))
		if err == nil && translated {
			rec.T = t
			recs = append(recs, rec)
		}
		return err
	})
	return recs, diags
}

// parseConntrackLine parses one entry; translated is false for an entry
// without ports or one the kernel does not translate.
func parseConntrackLine(line string) (rec NATRecord, translated bool, err error) {
	f := strings.Fields(line)
	if len(f) >= 2 && (f[0] == "ipv4" || f[0] == "ipv6") {
		f = f[2:]
	}
	if len(f) < 2 {
		return rec, false, fmt.Errorf("not a conntrack entry: %w", ErrMalformed)
	}
	proto, err := strconv.ParseUint(f[1], 10, 8)
	if err != nil {
		return rec, false, fmt.Errorf("protocol number %q: %w", f[1], ErrMalformed)
	}
	rec.Proto = uint8(proto)
	var addrs [4]netip.Addr // orig src, dst, reply src, dst
	var ports [4]uint16
	var na, np [2]int // per key kind: next slot
	for _, w := range f[2:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		switch k {
		case "src", "dst":
			i := 0
			if k == "dst" {
				i = 1
			}
			if na[i] >= 2 {
				continue
			}
			a, err := netip.ParseAddr(v)
			if err != nil {
				return rec, false, fmt.Errorf("%s=%q: %w", k, v, ErrMalformed)
			}
			addrs[2*na[i]+i] = a
			na[i]++
		case "sport", "dport":
			i := 0
			if k == "dport" {
				i = 1
			}
			if np[i] >= 2 {
				continue
			}
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return rec, false, fmt.Errorf("%s=%q: %w", k, v, ErrMalformed)
			}
			ports[2*np[i]+i] = uint16(p)
			np[i]++
		case "zone":
			if z, err := strconv.ParseUint(v, 10, 16); err == nil {
				rec.Zone = uint16(z)
			}
		}
	}
	if na != [2]int{2, 2} {
		return rec, false, fmt.Errorf("entry without both tuples: %w", ErrMalformed)
	}
	if np != [2]int{2, 2} {
		return rec, false, nil // no ports (ICMP, GRE, ...)
	}
	ep := func(i int) netip.AddrPort { return netip.AddrPortFrom(addrs[i], ports[i]) }
	if ep(0) == ep(3) && ep(1) == ep(2) {
		return rec, false, nil
	}
	rec.OrigSrc, rec.OrigDst, rec.ReplySrc, rec.ReplyDst = ep(0).String(), ep(1).String(), ep(2).String(), ep(3).String()
	return rec, true, nil
}

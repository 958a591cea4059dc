package analyze

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

// socketsAt owns exactly the listed local endpoints (the sockets inside a
// container or VM, behind the host's NAT).
type socketsAt map[netip.AddrPort]int

func (s socketsAt) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	if pid, ok := s[local]; ok {
		return Attribution{Proc: ingest.ProcKey{PID: pid, Start: 1}, Comm: "ctr", Method: MethodExact, Confidence: ConfHigh}, ts - nsPerSec, ts + nsPerSec
	}
	return Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNeverSeen}, ts, ts
}

func TestNATIndex(t *testing.T) {
	ap := netip.MustParseAddrPort
	recs := []ingest.NATRecord{
		// Masquerade: 203.0.113.2:40000 → 198.51.100.2:443 leaves as 198.51.100.1:61000.
		{T: 10 * nsPerSec, Proto: ingest.ProtoTCP, OrigSrc: "203.0.113.2:40000", OrigDst: "198.51.100.2:443",
			ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"},
		// The translated port reused later by another container connection.
		{T: 500 * nsPerSec, Proto: ingest.ProtoTCP, OrigSrc: "203.0.113.3:40001", OrigDst: "198.51.100.2:443",
			ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"},
		// Published port: a client reaches 198.51.100.1:8080, forwarded to 203.0.113.2:80.
		{T: 20 * nsPerSec, Proto: ingest.ProtoTCP, OrigSrc: "198.51.100.9:50000", OrigDst: "198.51.100.1:8080",
			ReplySrc: "203.0.113.2:80", ReplyDst: "198.51.100.9:50000"},
		// Not translated: ignored.
		{T: 20 * nsPerSec, Proto: ingest.ProtoUDP, OrigSrc: "198.51.100.1:53000", OrigDst: "198.51.100.2:53",
			ReplySrc: "198.51.100.2:53", ReplyDst: "198.51.100.1:53000"},
		// IPv4-mapped endpoints are unmapped like the flows'.
		{T: 30 * nsPerSec, Proto: ingest.ProtoUDP, OrigSrc: "[::ffff:203.0.113.2]:5000", OrigDst: "198.51.100.2:53",
			ReplySrc: "198.51.100.2:53", ReplyDst: "198.51.100.1:62000"},
	}
	x := NewNATIndex(recs)
	if x.Len() != 3 {
		t.Errorf("Len = %d, want 3 translated tuples (the reused port is one)", x.Len())
	}
	inner := socketsAt{ap("203.0.113.2:40000"): 7, ap("203.0.113.3:40001"): 8, ap("203.0.113.2:80"): 9, ap("203.0.113.2:5000"): 10,
		ap("198.51.100.1:22"): 1}
	a := WithNAT(inner, x)
	for _, c := range []struct {
		name          string
		proto         uint8
		local, remote string
		ts            int64
		pid           int
		method        Method
	}{
		{"masquerade", ingest.ProtoTCP, "198.51.100.1:61000", "198.51.100.2:443", 12 * nsPerSec, 7, MethodNAT},
		{"recorded after the first packet", ingest.ProtoTCP, "198.51.100.1:61000", "198.51.100.2:443", 1 * nsPerSec, 7, MethodNAT},
		{"port reused", ingest.ProtoTCP, "198.51.100.1:61000", "198.51.100.2:443", 490 * nsPerSec, 8, MethodNAT},
		{"published port", ingest.ProtoTCP, "198.51.100.1:8080", "198.51.100.9:50000", 25 * nsPerSec, 9, MethodNAT},
		{"mapped", ingest.ProtoUDP, "198.51.100.1:62000", "198.51.100.2:53", 30 * nsPerSec, 10, MethodNAT},
		{"own socket first", ingest.ProtoTCP, "198.51.100.1:22", "198.51.100.9:50000", 25 * nsPerSec, 1, MethodExact},
		{"other protocol", ingest.ProtoUDP, "198.51.100.1:61000", "198.51.100.2:443", 12 * nsPerSec, 0, MethodNone},
		{"untranslated", ingest.ProtoUDP, "198.51.100.1:53000", "198.51.100.2:53", 20 * nsPerSec, 0, MethodNone},
	} {
		got, _, _ := a.Attribute(c.proto, ap(c.local), ap(c.remote), c.ts)
		if got.Proc.PID != c.pid || got.Method != c.method {
			t.Errorf("%s: %+v, want pid %d by %s", c.name, got, c.pid, c.method)
		}
	}
	if _, wrapped := WithNAT(inner, NewNATIndex(nil)).(*natAttributor); wrapped || WithNAT(nil, x) != nil {
		t.Error("WithNAT should return the attributor itself when there is nothing to translate")
	}
}

// TestAnalyzeNAT: through Analyze, the uplink flow of a masqueraded
// connection is charged to the container's process.
func TestAnalyzeNAT(t *testing.T) {
	ap := netip.MustParseAddrPort
	var pkts []ingest.Packet
	for i := range 10 {
		pkts = append(pkts, pkt(int64(i)*100, ingest.ProtoTCP, "198.51.100.1:61000", "198.51.100.2:443", 1000))
	}
	x := NewNATIndex([]ingest.NATRecord{{T: t0, Proto: ingest.ProtoTCP, OrigSrc: "203.0.113.2:40000", OrigDst: "198.51.100.2:443",
		ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"}})
	opts := Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")},
		Attributor: WithNAT(socketsAt{ap("203.0.113.2:40000"): 7}, x)}
	r := run(t, pkts, opts)
	if len(r.Processes) != 1 || r.Processes[0].Key.PID != 7 || r.Processes[0].Traffic.Out.Wire != 10000 {
		t.Fatalf("processes = %+v", r.Processes)
	}
	if len(r.Coverage.ByMethod) != 1 || r.Coverage.ByMethod[0].Method != MethodNAT || r.Coverage.TX != 1 {
		t.Errorf("coverage = %+v", r.Coverage)
	}
}

// TestNATDuplicates: one masqueraded connection captured on the container's
// veth (untranslated) and on the uplink (translated) is reported as counted
// twice; without the translations it is not recognised.
func TestNATDuplicates(t *testing.T) {
	var pkts []ingest.Packet
	for i := range 4 {
		p := pkt(int64(i)*100, ingest.ProtoTCP, "203.0.113.2:40000", "198.51.100.2:443", 1000)
		pkts = append(pkts, p)
		q := pkt(int64(i)*100+1, ingest.ProtoTCP, "198.51.100.1:61000", "198.51.100.2:443", 1000)
		q.Iface = 1
		pkts = append(pkts, q)
	}
	x := NewNATIndex([]ingest.NATRecord{{T: t0, Proto: ingest.ProtoTCP, OrigSrc: "203.0.113.2:40000", OrigDst: "198.51.100.2:443",
		ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"}})
	ifs := []ingest.Interface{{Name: "veth0"}, {Name: "eth0"}}
	opts := Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/32")}, NAT: x}
	for _, withNAT := range []bool{true, false} {
		o := opts
		if !withNAT {
			o.NAT = nil
		}
		r, err := Analyze(context.Background(), &memSource{pkts: pkts, ifs: ifs}, o)
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, d := range r.Diagnostics {
			if strings.Contains(d.Msg, "NAT-translated") {
				found = append(found, d.Msg)
				if d.Count != 4 || d.Bytes != 4000 {
					t.Errorf("diagnostic counts %d packets, %d bytes; want 4, 4000", d.Count, d.Bytes)
				}
			}
		}
		if (len(found) == 1) != withNAT {
			t.Errorf("with NAT %v: diagnostics %q", withNAT, found)
		}
	}
}

// FuzzNATIndex: any records index without panicking, and a lookup of a
// recorded uplink tuple finds a translation.
func FuzzNATIndex(f *testing.F) {
	f.Add(int64(5), uint8(6), "203.0.113.2:40000", "198.51.100.2:443", "198.51.100.2:443", "198.51.100.1:61000", int64(7))
	f.Add(int64(0), uint8(17), "[::ffff:203.0.113.2]:1", "[2001:db8::1]:2", "*:53", "0.0.0.0:*", int64(-1))
	f.Fuzz(func(t *testing.T, ts int64, proto uint8, os, od, rs, rd string, at int64) {
		x := NewNATIndex([]ingest.NATRecord{{T: ts, Proto: proto, OrigSrc: os, OrigDst: od, ReplySrc: rs, ReplyDst: rd}})
		a := WithNAT(socketsAt{}, x)
		p := func(s string) netip.AddrPort { e, _ := ingest.ParseEndpoint(s); return e }
		a.Attribute(proto, p(rd), p(rs), at)
		a.Attribute(proto, p(od), p(os), at)
		if x.Len() > 0 {
			if _, ok := x.lookup(proto, p(rd), p(rs), at); !ok {
				if _, ok := x.lookup(proto, p(od), p(os), at); !ok {
					t.Fatalf("indexed %d tuples but neither side of the record is found", x.Len())
				}
			}
		}
	})
}

package ingest

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const s1 = int64(1e9)

func TestCompileNative(t *testing.T) {
	p1 := ProcKey{PID: 10, Start: 1}
	p2 := ProcKey{PID: 11, Start: 2}
	recs := []SocketRecord{
		{Kind: "snapshot", T: 1 * s1, Seq: 1, Netns: 7, Count: 2},
		{Kind: "seen", T: 1 * s1, Snap: 1, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40000", Remote: "203.0.113.9:443", State: "ESTAB", Cookie: 5, Inode: 50, Holders: []ProcKey{p1}},
		{Kind: "seen", T: 1 * s1, Snap: 1, Netns: 7, Proto: "tcp", Local: "0.0.0.0:22", Remote: "0.0.0.0:0", State: "LISTEN", Cookie: 6, Holders: []ProcKey{p1}},
		{Kind: "snapshot", T: 2 * s1, Seq: 2, Netns: 7, Count: 2},
		// Holders change: p2 joins after fork.
		{Kind: "seen", T: 2 * s1, Snap: 2, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40000", Remote: "203.0.113.9:443", State: "ESTAB", Cookie: 5, Inode: 50, Holders: []ProcKey{p1, p2}},
		{Kind: "bytes", T: 2 * s1, Cookie: 5, Netns: 7, BytesAcked: 1000, BytesReceived: 10},
		{Kind: "snapshot", T: 3 * s1, Seq: 3, Netns: 7, Count: 2},
		{Kind: "probe", T: 3*s1 + s1/2, Netns: 7, Proto: "udp", Local: "198.51.100.1:5353", Remote: "203.0.113.1:53", Inode: 99, Holders: []ProcKey{p2}},
		{Kind: "destroy", T: 3*s1 + s1/4, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40001", Remote: "203.0.113.9:80", Cookie: 8, BytesAcked: 77, Holders: []ProcKey{p2}},
		{Kind: "snapshot", T: 4 * s1, Seq: 4, Netns: 7, Count: 1},
		{Kind: "gone", T: 4 * s1, Snap: 4, Netns: 7, Cookie: 5},
		{Kind: "destroy", T: 3*s1 + 8*s1/10, Netns: 7, Cookie: 5, BytesAcked: 5000, BytesReceived: 20},
		{Kind: "snapshot", T: 5 * s1, Seq: 5, Netns: 7, Count: 1},
		{Kind: "weird", T: 5 * s1},
		{Kind: "seen", T: 5 * s1, Proto: "tcp", Local: "bogus", Remote: "203.0.113.9:80"},
	}
	obs, cov, diags := CompileNative(recs)
	ep := netip.MustParseAddrPort
	want := []SocketObservation{
		{Proto: ProtoTCP, Local: ep("0.0.0.0:22"), Remote: ep("0.0.0.0:0"), State: "LISTEN", Cookie: 6, Netns: 7,
			First: 1 * s1, Last: 5 * s1, Holders: []ProcKey{p1}, Source: FormatNative, Via: "snapshot"},
		{Proto: ProtoTCP, Local: ep("198.51.100.1:40000"), Remote: ep("203.0.113.9:443"), State: "ESTAB", Cookie: 5, Inode: 50, Netns: 7,
			First: 1 * s1, Last: 1 * s1, Holders: []ProcKey{p1}, Source: FormatNative, Via: "snapshot"},
		{Proto: ProtoTCP, Local: ep("198.51.100.1:40000"), Remote: ep("203.0.113.9:443"), State: "ESTAB", Cookie: 5, Inode: 50, Netns: 7,
			First: 2 * s1, Last: 3 * s1, Closed: 3*s1 + 8*s1/10, Holders: []ProcKey{p1, p2}, Source: FormatNative, Via: "snapshot",
			BytesAcked: 5000, BytesReceived: 20},
		{Proto: ProtoTCP, Local: ep("198.51.100.1:40001"), Remote: ep("203.0.113.9:80"), Cookie: 8, Netns: 7,
			First: 3*s1 + s1/4, Last: 3*s1 + s1/4, Closed: 3*s1 + s1/4, Holders: []ProcKey{p2}, Source: FormatNative, Via: "destroy", BytesAcked: 77},
		{Proto: ProtoUDP, Local: ep("198.51.100.1:5353"), Remote: ep("203.0.113.1:53"), Inode: 99, Netns: 7,
			First: 3*s1 + s1/2, Last: 3*s1 + s1/2, Holders: []ProcKey{p2}, Source: FormatNative, Via: "probe"},
	}
	if d := cmp.Diff(want, obs, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("observations (-want +got):\n%s", d)
	}
	if cov.Interval != s1 || len(cov.Inventories[7]) != 5 || cov.Source != FormatNative {
		t.Errorf("coverage = %+v", cov)
	}
	if len(diags) != 2 {
		t.Errorf("diagnostics = %v, want 2", diags)
	}
	// The collector writes an inventory's marker after its seen/gone
	// records; the result is the same.
	var reordered []SocketRecord
	var marker *SocketRecord
	for i := range recs {
		r := recs[i]
		if r.Kind == "snapshot" {
			if marker != nil {
				reordered = append(reordered, *marker)
			}
			marker = &r
			continue
		}
		reordered = append(reordered, r)
	}
	reordered = append(reordered, *marker)
	obs2, cov2, _ := CompileNative(reordered)
	if d := cmp.Diff(obs, obs2, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" || len(cov2.Times()) != len(cov.Times()) {
		t.Errorf("marker-last order differs (-first +last):\n%s", d)
	}
	for _, d := range diags {
		if d.Where == "" || d.File != SocketsFile {
			t.Errorf("diagnostic without position: %+v", d)
		}
	}
}

func TestCompileSnapshots(t *testing.T) {
	ep := netip.MustParseAddrPort
	entry := func(local string, pid int, comm string) SocketEntry {
		return SocketEntry{Proto: ProtoTCP, Local: ep(local), Remote: ep("203.0.113.9:443"), State: "ESTAB", UID: -1,
			Holders: []ProcKey{{PID: pid}}, Comms: []string{comm}}
	}
	snaps := []SocketSnapshot{
		{Taken: 2 * s1, Source: FormatSS, Sockets: []SocketEntry{entry("198.51.100.1:1000", 5, "fb-bulk"), entry("198.51.100.1:1001", 6, "fb-churn")}},
		{Taken: 1 * s1, Source: FormatSS, Sockets: []SocketEntry{entry("198.51.100.1:1000", 5, "fb-bulk")}},
		{Taken: 3 * s1, Source: FormatSS, Sockets: []SocketEntry{entry("198.51.100.1:1000", 5, "fb-bulk")}},
		// PID 6 reused by another program.
		{Taken: 4 * s1, Source: FormatSS, Sockets: []SocketEntry{entry("198.51.100.1:1000", 5, "fb-bulk"), entry("198.51.100.1:1002", 6, "fb-reuse")}},
	}
	obs, cov, procs := CompileSnapshots(snaps)
	if len(obs) != 3 {
		t.Fatalf("got %d observations: %+v", len(obs), obs)
	}
	if o := obs[0]; o.Local.Port() != 1000 || o.First != s1 || o.Last != 4*s1 || o.Source != FormatSS {
		t.Errorf("bulk observation = %+v", o)
	}
	if o := obs[1]; o.Local.Port() != 1001 || o.First != 2*s1 || o.Last != 2*s1 || o.Holders[0] != (ProcKey{PID: 6}) {
		t.Errorf("churn observation = %+v", o)
	}
	if o := obs[2]; o.Holders[0] != (ProcKey{PID: 6, Start: 4 * s1}) {
		t.Errorf("reused pid observation = %+v", o)
	}
	if procs[ProcKey{PID: 6}].Comm != "fb-churn" || procs[ProcKey{PID: 6, Start: 4 * s1}].Comm != "fb-reuse" {
		t.Errorf("procs = %+v", procs)
	}
	if cov.Interval != s1 || len(cov.Inventories[0]) != 4 || cov.Source != FormatSS {
		t.Errorf("coverage = %+v", cov)
	}
	// A second dump loop interleaved half a second later keeps the
	// interval at one second.
	for i := range snaps {
		snaps[i].File = "a"
		s := snaps[i]
		s.File, s.Taken = "b", s.Taken+s1/2
		snaps = append(snaps, s)
	}
	if _, cov, _ := CompileSnapshots(snaps); cov.Interval != s1 || len(cov.Inventories[0]) != 8 {
		t.Errorf("interleaved coverage = %+v", cov)
	}
}

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "198.51.100.1:443", want: "198.51.100.1:443"},
		{in: "[2001:db8::1]:80", want: "[2001:db8::1]:80"},
		{in: "*:53", want: "0.0.0.0:53"},
		{in: "[::]:*", want: "[::]:0"},
		{in: "[::ffff:198.51.100.1]:22", want: "[::ffff:198.51.100.1]:22"},
		{in: "nope", wantErr: true},
		{in: "1.2.3.4:99999", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseEndpoint(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v", tc.in, err)
			continue
		}
		if err == nil && got.String() != tc.want {
			t.Errorf("%q: got %v, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCoverageMerge(t *testing.T) {
	a := Coverage{Inventories: map[uint64][]int64{0: {1, 3}}, Source: FormatSS}
	a.Interval = 2
	b := Coverage{Inventories: map[uint64][]int64{0: {2, 3}, 9: {10}}, Interval: 5}
	m := a.Merge(b)
	if d := cmp.Diff([]int64{1, 2, 3, 10}, m.Times()); d != "" || m.Interval != 5 || m.Source != FormatSS || m.Empty() {
		t.Errorf("merge = %+v %s", m, d)
	}
}

// BenchmarkCompileNative compiles 20,000 sockets listed by 10 inventories
// (the busy-host size of spec/collector.md §2).
func BenchmarkCompileNative(b *testing.B) {
	var recs []SocketRecord
	for snap := 1; snap <= 10; snap++ {
		recs = append(recs, SocketRecord{Kind: "snapshot", T: int64(snap) * s1, Seq: snap, Count: 20000})
		if snap == 1 {
			for i := 0; i < 20000; i++ {
				recs = append(recs, SocketRecord{Kind: "seen", T: s1, Snap: 1, Proto: "tcp", Cookie: uint64(i + 1),
					Local: "127.0.0.1:" + strconv.Itoa(10000+i%50000), Remote: "127.0.0.1:80", Holders: []ProcKey{{PID: 1 + i%10, Start: 1}}})
			}
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		obs, _, _ := CompileNative(recs)
		if len(obs) != 20000 {
			b.Fatalf("%d observations", len(obs))
		}
	}
}

// TestCompileSnapshotsForkOrder: a dump has no start times; the holder seen
// first (a fork's parent, which had the socket alone before) is the primary
// one even when the child's PID is lower (the PID counter wrapped around),
// also when the snapshots describe their processes (as every parser's do:
// a dump's ProcessInfo has no times and must not reset when the process
// was first seen — TestAttribution charged a forked socket to the child
// whenever the PIDs wrapped).
func TestCompileSnapshotsForkOrder(t *testing.T) {
	ep := netip.MustParseAddrPort
	sock := func(pids ...int) SocketEntry {
		e := SocketEntry{Proto: ProtoTCP, Local: ep("198.51.100.1:1000"), Remote: ep("198.51.100.2:5001"), State: "ESTAB", UID: -1}
		for _, p := range pids {
			e.Holders = append(e.Holders, ProcKey{PID: p})
			e.Comms = append(e.Comms, map[int]string{32749: "fb-fork", 300: "fb-forkchild"}[p])
		}
		return e
	}
	procs := func(pids ...int) map[ProcKey]ProcessInfo {
		m := map[ProcKey]ProcessInfo{}
		for _, p := range pids {
			m[ProcKey{PID: p}] = ProcessInfo{PID: p, UID: -1, Comm: map[int]string{32749: "fb-fork", 300: "fb-forkchild"}[p]}
		}
		return m
	}
	for _, described := range []bool{false, true} {
		snaps := []SocketSnapshot{
			{Taken: s1, Source: FormatSS, Sockets: []SocketEntry{sock(32749)}},
			{Taken: 2 * s1, Source: FormatSS, Sockets: []SocketEntry{sock(300, 32749)}},
			{Taken: 3 * s1, Source: FormatSS, Sockets: []SocketEntry{sock(300, 32749)}},
		}
		if described {
			snaps[0].Procs, snaps[1].Procs, snaps[2].Procs = procs(32749), procs(300, 32749), procs(300, 32749)
		}
		obs, _, got := CompileSnapshots(snaps)
		if len(obs) != 2 || obs[1].Holders[0].PID != 32749 || obs[1].Holders[1].PID != 300 {
			t.Fatalf("described %v: observations %+v: want the parent 32749 first once the child shares the socket", described, obs)
		}
		if p := got[ProcKey{PID: 32749}]; p.FirstSeen != s1 || p.LastSeen != 3*s1 {
			t.Errorf("described %v: the parent seen %d..%d, want %d..%d", described, p.FirstSeen, p.LastSeen, s1, 3*s1)
		}
	}
}

// TestCompileNativeTupleChange: a probe that catches a socket between
// socket() and connect() lists it as 0.0.0.0:0; the socket's later records
// (same cookie) carry its real tuple and must open an observation under it,
// keeping the holders (TestAttribution lost a whole connection to this race).
func TestCompileNativeTupleChange(t *testing.T) {
	p1 := ProcKey{PID: 10, Start: 1}
	ep := netip.MustParseAddrPort
	unbound := SocketRecord{Kind: "probe", T: s1, Netns: 7, Proto: "tcp", Local: "0.0.0.0:0", Remote: "0.0.0.0:0", State: "UNCONN", Cookie: 9, Inode: 90, Holders: []ProcKey{p1}}
	for _, tc := range []struct {
		name string
		recs []SocketRecord
		want SocketObservation
	}{
		{"probed again, then destroyed", []SocketRecord{unbound,
			{Kind: "probe", T: s1 + 1000, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40000", Remote: "198.51.100.2:5001", State: "ESTAB", Cookie: 9, Inode: 90, Holders: []ProcKey{p1}},
			{Kind: "destroy", T: 3 * s1, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40000", Remote: "198.51.100.2:5001", State: "UNCONN", Cookie: 9, Inode: 90, BytesAcked: 400002, Holders: []ProcKey{p1}},
		}, SocketObservation{Proto: ProtoTCP, Local: ep("198.51.100.1:40000"), Remote: ep("198.51.100.2:5001"), State: "ESTAB", Cookie: 9, Inode: 90, Netns: 7,
			First: s1 + 1000, Last: s1 + 1000, Closed: 3 * s1, Holders: []ProcKey{p1}, Source: FormatNative, Via: "probe", BytesAcked: 400002}},
		{"destroyed without holders", []SocketRecord{unbound,
			{Kind: "destroy", T: 2 * s1, Netns: 7, Proto: "tcp", Local: "198.51.100.1:40000", Remote: "198.51.100.2:5001", State: "UNCONN", Cookie: 9, Inode: 90},
		}, SocketObservation{Proto: ProtoTCP, Local: ep("198.51.100.1:40000"), Remote: ep("198.51.100.2:5001"), State: "UNCONN", Cookie: 9, Inode: 90, Netns: 7,
			First: 2 * s1, Last: 2 * s1, Closed: 2 * s1, Holders: []ProcKey{p1}, Source: FormatNative, Via: "destroy"}},
	} {
		obs, _, diags := CompileNative(tc.recs)
		var got *SocketObservation
		for i := range obs {
			if obs[i].Local == tc.want.Local {
				got = &obs[i]
			}
		}
		if got == nil || len(obs) != 2 || len(diags) != 0 {
			t.Errorf("%s: observations %+v, diagnostics %v", tc.name, obs, diags)
			continue
		}
		if d := cmp.Diff(tc.want, *got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
			t.Errorf("%s: the connected socket's observation (-want +got):\n%s", tc.name, d)
		}
	}
}

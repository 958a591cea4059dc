package sockwatch

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/go-cmp/cmp"

	"github.com/flowblame/flowblame/ingest"
)

// TestEmitCompact drives the inventory bookkeeping with synthetic sockets:
// unchanged sockets are not re-emitted, holder changes give "seen", counter
// changes "bytes", vanished sockets "gone", and destroy events find holders
// even after the socket went.
func TestEmitCompact(t *testing.T) {
	sink := &memSink{}
	w := newWatcher(Config{}.withDefaults(), sink, "/nonexistent-proc")
	w.now = func() time.Time { return time.Unix(1700000000, 0) }
	defer w.close()
	n := &netState{info: ingest.NetnsInfo{Inode: 4026531840, Host: true}, destroyFD: -1, socks: map[uint64]*sockState{}, alive: true}
	w.nets = []*netState{n}
	p1 := ingest.ProcKey{PID: 4000001, Start: 11}
	p2 := ingest.ProcKey{PID: 4000002, Start: 22}
	tcpA := diagSock{Family: 2, Proto: ipprotoTCP, State: 1, Local: netip.MustParseAddrPort("198.51.100.1:40000"),
		Remote: netip.MustParseAddrPort("203.0.113.7:443"), Inode: 10, Cookie: 1, HasInfo: true, BytesAcked: 100, BytesReceived: 200}
	udpB := diagSock{Family: 10, Proto: ipprotoUDP, State: tcpStateClose, Local: netip.MustParseAddrPort("[2001:db8::1]:53"),
		Remote: netip.MustParseAddrPort("[::]:0"), Inode: 11, Cookie: 2}
	inventory := func(socks ...diagSock) {
		n.gen++
		w.changed = w.changed[:0]
		for _, s := range socks {
			w.observe(n, &s)
		}
		if err := w.emitNetns(n, 1); err != nil {
			t.Fatal(err)
		}
		w.recentOld, w.recent = w.recent, map[uint64]*sockState{}
	}
	w.holders[10] = []ingest.ProcKey{p1}
	inventory(tcpA, udpB) // seq 1
	inventory(tcpA, udpB) // seq 2: nothing changed
	a2 := tcpA
	a2.BytesAcked = 5000
	w.holders[11] = []ingest.ProcKey{p2}
	inventory(a2, udpB) // seq 3: bytes of A, holders of B
	inventory(udpB)     // seq 4: A gone
	if err := w.onDestroy(destroyEvent{s: udpB, netns: n.info.Inode, t: 7}); err != nil {
		t.Fatal(err)
	}
	if err := w.onDestroy(destroyEvent{s: a2, netns: n.info.Inode, t: 8}); err != nil {
		t.Fatal(err)
	}
	unknownC := diagSock{Family: 2, Proto: ipprotoTCP, State: 7, Local: netip.MustParseAddrPort("198.51.100.1:1"),
		Remote: netip.MustParseAddrPort("198.51.100.2:2"), Cookie: 99}
	if err := w.onDestroy(destroyEvent{s: unknownC, netns: n.info.Inode, t: 9}); err != nil {
		t.Fatal(err)
	}

	type line struct {
		Kind          string
		Seq, Snap     int
		Count         int
		Cookie        uint64
		State         string
		Holders       []ingest.ProcKey
		Partial       string
		BytesAcked    uint64
		BytesReceived uint64
	}
	var got []line
	for _, r := range sink.socks {
		got = append(got, line{r.Kind, r.Seq, r.Snap, r.Count, r.Cookie, r.State, r.Holders, r.Partial, r.BytesAcked, r.BytesReceived})
	}
	h1, h2 := []ingest.ProcKey{p1}, []ingest.ProcKey{p2}
	want := []line{
		{Kind: "seen", Snap: 1, Cookie: 1, State: "ESTAB", Holders: h1, BytesAcked: 100, BytesReceived: 200},
		{Kind: "seen", Snap: 1, Cookie: 2, State: "UNCONN", Partial: "owner-unknown"},
		{Kind: "snapshot", Seq: 1, Count: 2},
		{Kind: "snapshot", Seq: 2, Count: 2},
		{Kind: "bytes", Snap: 3, Cookie: 1, BytesAcked: 5000, BytesReceived: 200},
		{Kind: "seen", Snap: 3, Cookie: 2, State: "UNCONN", Holders: h2},
		{Kind: "snapshot", Seq: 3, Count: 2},
		{Kind: "gone", Snap: 4, Cookie: 1},
		{Kind: "snapshot", Seq: 4, Count: 1},
		{Kind: "destroy", Cookie: 2, State: "UNCONN", Holders: h2},
		{Kind: "destroy", Cookie: 1, State: "ESTAB", Holders: h1, BytesAcked: 5000, BytesReceived: 200},
		{Kind: "destroy", Cookie: 99, State: "UNCONN", Partial: "owner-unknown"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	// Holders unknown to /proc still get a (minimal) process record, once each.
	var pids []int
	for _, p := range sink.procs {
		pids = append(pids, p.PID)
	}
	if d := cmp.Diff([]int{p1.PID, p2.PID}, pids); d != "" {
		t.Errorf("process records (-want +got):\n%s", d)
	}
}

func TestHolderKeys(t *testing.T) {
	a, b, c := ingest.ProcKey{PID: 1, Start: 5}, ingest.ProcKey{PID: 2, Start: 1}, ingest.ProcKey{PID: 2, Start: 3}
	ks := addKey(addKey(addKey(nil, c), a), b)
	ks = addKey(ks, b)
	if d := cmp.Diff([]ingest.ProcKey{a, b, c}, ks); d != "" {
		t.Fatal(d)
	}
	orig := ks
	ks = removeKey(ks, b)
	if d := cmp.Diff([]ingest.ProcKey{a, c}, ks); d != "" {
		t.Fatal(d)
	}
	if orig[1] != b {
		t.Error("removeKey modified a slice that records may share")
	}
}

// degradedReport is what runDegraded prints.
type degradedReport struct {
	Stats     Stats
	Kinds     map[string]int
	Err       string
	Snapshots int
}

// runDegraded is the "degraded" helper: it drops root (uid/gid 65534) when
// it has it, runs Run for 1.5 s and prints a degradedReport as JSON.
func runDegraded() error {
	if os.Geteuid() == 0 {
		if err := unix.Setgroups(nil); err != nil {
			return err
		}
		if err := unix.Setgid(65534); err != nil {
			return err
		}
		if err := unix.Setuid(65534); err != nil {
			return err
		}
	}
	sink := &memSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, Config{Interval: 500 * time.Millisecond}, sink)
	rep := degradedReport{Stats: st, Kinds: map[string]int{}}
	if err != nil {
		rep.Err = err.Error()
	}
	for _, r := range sink.socks {
		rep.Kinds[r.Kind]++
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// TestRunUnprivileged runs Run without root: it must work, say what it
// cannot see, and still inventory sockets.
func TestRunUnprivileged(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SOCKWATCH_HELPER=degraded")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var rep degradedReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("helper said %q: %v", out, err)
	}
	if rep.Err != "" {
		t.Fatalf("Run failed without root: %s", rep.Err)
	}
	t.Logf("unprivileged: %d events, records %v, notes %q", rep.Stats.Events, rep.Kinds, rep.Stats.Notes)
	notes := strings.Join(rep.Stats.Notes, "\n")
	// Destroy groups and the proc connector need CAP_NET_ADMIN on some
	// kernels only (Linux 6.18 lets anyone listen), so only "not root" is
	// certain.
	for _, want := range []string{"not root"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if rep.Kinds["snapshot"] < 2 || rep.Stats.Snapshots < 2 {
		t.Errorf("only %d snapshot records, %d inventories", rep.Kinds["snapshot"], rep.Stats.Snapshots)
	}
}

package sockwatch

import (
	"errors"
	"net/netip"
	"testing"
	"time"

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

// TestProbeFallback: a probe that could not describe a socket from its fd
// asks for an extra inventory, and the inventory then reports the socket
// with the probed process as holder.
func TestProbeFallback(t *testing.T) {
	sink := &memSink{}
	w := newWatcher(Config{}.withDefaults(), sink, "/nonexistent-proc")
	defer w.close()
	n := &netState{info: ingest.NetnsInfo{Inode: 1, Host: true}, destroyFD: -1, socks: map[uint64]*sockState{}, alive: true}
	w.nets = []*netState{n}
	w.hostNs = 1
	r := &probeResult{pid: 4000003, start: 33, netns: 1, t: time.Unix(5, 0),
		socks: []probedSock{{fd: 3, ino: 77, failed: errors.New("operation not permitted")}}}
	if err := w.onProbe(r); err != nil {
		t.Fatal(err)
	}
	if !w.extraDump || len(sink.socks) != 0 {
		t.Fatalf("extraDump %v, records %v", w.extraDump, sink.socks)
	}
	s := diagSock{Family: 2, Proto: ipprotoTCP, State: 1, Local: netip.MustParseAddrPort("198.51.100.1:5"),
		Remote: netip.MustParseAddrPort("198.51.100.2:6"), Inode: 77, Cookie: 9}
	n.gen++
	w.observe(n, &s)
	if err := w.emitNetns(n, 1); err != nil {
		t.Fatal(err)
	}
	want := []ingest.ProcKey{{PID: 4000003, Start: 33}}
	if len(sink.socks) == 0 || sink.socks[0].Kind != "seen" || !cmp.Equal(sink.socks[0].Holders, want) {
		t.Errorf("records %+v", sink.socks)
	}
}

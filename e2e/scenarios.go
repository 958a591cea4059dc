package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// Program is one observed helper program: the flows it owned and the
// comm it ran under.
type Program struct {
	Role   string
	PID    int
	Comm   string
	Tuples []ingest.FiveTuple
}

// Recording is the outcome of one recorded run: where the capture, the ss
// dumps and the collector bundle are, and which programs ran.
type Recording struct {
	Dir       string
	Capture   string   // tcpdump pcap of LocalIf
	Dumps     []string // ss -tunapeH and ss -tunapei loops
	Bundle    string   // flowblame collect bundle directory
	Programs  []Program
	PIDReused bool // reuse-b got reuse-a's PID
	CollectOK bool // the bundle was sealed
}

// Volumes of the scenarios.
const (
	bulkBytes   = 6 << 20
	churnConns  = 20
	udpCount    = 400
	udpSize     = 1000
	serverConns = 8
	forkBytes   = 500000
	reuseBytes  = 400000
)

// Record runs all scenarios once, concurrently, and returns what was
// recorded. In netns Local: "fb-bulk" (one TCP connection, 6 MiB over 4 s),
// "fb-churn" (20 connections of 200 ms, 10 kB out / 20 kB in each),
// "fb-udp" (an unconnected UDP socket, 400 × 1000 B), "fb-server" (8
// clients from Peer, 200 kB in / 100 kB out each), "fb-fork" (a socket
// shared with its child "fb-forkchild"), "fb-reuse-a" then "fb-reuse-b"
// (the same PID, forced through ns_last_pid). Recorders: tcpdump on
// LocalIf, two ss loops (-tunapeH, -tunapei) and `flowblame collect`
// (collect.Run, 1 s inventories). The caller must have checked RequireRoot.
// With FB_E2E_KEEP=dir the recordings are written to dir and kept.
func Record(t *testing.T) *Recording {
	t.Helper()
	dir := t.TempDir()
	if keep := os.Getenv("FB_E2E_KEEP"); keep != "" {
		// Keep the recordings (captures, dumps, bundle) for inspection.
		dir = keep
		os.RemoveAll(filepath.Join(dir, "bundle"))
	}
	tp := NewTopology(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	t.Cleanup(cancel)
	h := NewHelpers(dir, tp)
	sc := &Recording{Dir: dir, Capture: filepath.Join(dir, "cap.pcap"), Bundle: filepath.Join(dir, "bundle"),
		Dumps: []string{filepath.Join(dir, "ss-e.txt"), filepath.Join(dir, "ss-i.txt")}}
	peer := func(port int) string { return netip.AddrPortFrom(PeerIP, uint16(port)).String() }
	local := func(port int) string { return netip.AddrPortFrom(LocalIP, uint16(port)).String() }
	must := func(hp *HelperProc, err error) *HelperProc {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return hp
	}
	sink := must(h.Start(ctx, tp.Peer, "peer-tcp", "-listen", peer(5001)))
	echo := must(h.Start(ctx, tp.Peer, "peer-tcp", "-listen", peer(5002), "-expect", "10000", "-reply", "20000"))
	udpSink := must(h.Start(ctx, tp.Peer, "peer-udp", "-listen", peer(5003)))
	defer sink.Cmd.Process.Kill()
	defer echo.Cmd.Process.Kill()
	defer udpSink.Cmd.Process.Kill()
	waitListen(t, tp, tp.Peer, 5001, 5002)

	capRec, err := tp.StartCapture(ctx, tp.Local, tp.LocalIf, sc.Capture)
	if err != nil {
		t.Fatal(err)
	}
	ssE, err := tp.SSLoop(ctx, tp.Local, "-tunapeH", sc.Dumps[0])
	if err != nil {
		t.Fatal(err)
	}
	ssI, err := tp.SSLoop(ctx, tp.Local, "-tunapei", sc.Dumps[1])
	if err != nil {
		t.Fatal(err)
	}
	coll := must(h.Start(ctx, tp.Local, "collect", "-iface", tp.LocalIf, "-out", sc.Bundle, "-interval", "1s"))
	waitFile(filepath.Join(sc.Bundle, ingest.SocketsFile), 10*time.Second)
	time.Sleep(1200 * time.Millisecond)

	bulk := must(h.Start(ctx, tp.Local, "bulk", "-peer", peer(5001), "-bytes", strconv.Itoa(bulkBytes), "-dur", "4s"))
	churn := must(h.Start(ctx, tp.Local, "churn", "-peer", peer(5002), "-n", strconv.Itoa(churnConns), "-bytes", "10000", "-expect", "20000"))
	udp := must(h.Start(ctx, tp.Local, "udp", "-local", local(5353), "-peer", peer(5003), "-n", strconv.Itoa(udpCount),
		"-bytes", strconv.Itoa(udpSize), "-dur", "4s"))
	server := must(h.Start(ctx, tp.Local, "server", "-listen", local(5004), "-n", strconv.Itoa(serverConns),
		"-expect", "200000", "-reply", "100000"))
	waitListen(t, tp, tp.Local, 5004)
	clients := must(h.Start(ctx, tp.Peer, "clients", "-peer", local(5004), "-n", strconv.Itoa(serverConns),
		"-bytes", "200000", "-dur", "1500ms"))
	fork := must(h.Start(ctx, tp.Local, "fork", "-peer", peer(5001), "-bytes", strconv.Itoa(forkBytes), "-dur", "1500ms"))
	reuseA := must(h.Start(ctx, tp.Local, "reuse-a", "-peer", peer(5001), "-bytes", strconv.Itoa(reuseBytes), "-dur", "2s"))

	add := func(hp *HelperProc, comm string) *Report {
		t.Helper()
		rep, err := hp.Wait()
		if err != nil {
			t.Fatal(err)
		}
		e := Program{Role: rep.Role, PID: rep.PID, Comm: comm}
		for _, c := range rep.Conns {
			if tu, ok := c.Tuple(); ok {
				e.Tuples = append(e.Tuples, tu)
			}
		}
		sc.Programs = append(sc.Programs, e)
		return rep
	}
	repA := add(reuseA, "fb-reuse-a")
	reuseB := startReused(t, ctx, h, tp, repA.PID, peer(5001))
	sc.PIDReused = reuseB.Cmd.Process.Pid == repA.PID
	add(bulk, "fb-bulk")
	add(churn, "fb-churn")
	add(udp, "fb-udp")
	add(server, "fb-server")
	if _, err := clients.Wait(); err != nil {
		t.Fatal(err)
	}
	add(fork, "fb-fork")
	add(reuseB, "fb-reuse-b")
	if child, err := ReadReport(fork.Report + ".child.json"); err != nil || child.Sent != forkBytes {
		t.Errorf("fork child report: %+v, %v", child, err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := coll.Stop(); err != nil {
		t.Logf("collector: %v", err)
	}
	_, statErr := os.Stat(filepath.Join(sc.Bundle, ingest.ManifestFile))
	sc.CollectOK = statErr == nil
	ssE.Stop()
	ssI.Stop()
	capRec.Stop()
	t.Logf("PID reuse forced: %v (pid %d)", sc.PIDReused, repA.PID)
	return sc
}

// Replay loads a run recorded with FB_E2E_KEEP=dir.
func Replay(t *testing.T, dir string) *Recording {
	sc := &Recording{Dir: dir, Capture: filepath.Join(dir, "cap.pcap"), Bundle: filepath.Join(dir, "bundle"),
		Dumps: []string{filepath.Join(dir, "ss-e.txt"), filepath.Join(dir, "ss-i.txt")}}
	_, err := os.Stat(filepath.Join(sc.Bundle, ingest.ManifestFile))
	sc.CollectOK = err == nil
	reps, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	sort.Strings(reps)
	pids := map[string]int{}
	for _, p := range reps {
		rep, err := ReadReport(p)
		if err != nil || strings.HasSuffix(p, ".child.json") {
			continue
		}
		switch rep.Role {
		case "bulk", "churn", "udp", "server", "fork", "reuse-a", "reuse-b":
		default:
			continue
		}
		e := Program{Role: rep.Role, PID: rep.PID, Comm: "fb-" + rep.Role}
		for _, c := range rep.Conns {
			if tu, ok := c.Tuple(); ok {
				e.Tuples = append(e.Tuples, tu)
			}
		}
		pids[rep.Role] = rep.PID
		sc.Programs = append(sc.Programs, e)
	}
	if len(sc.Programs) == 0 {
		t.Fatalf("no helper reports in %s", dir)
	}
	sc.PIDReused = pids["reuse-a"] != 0 && pids["reuse-a"] == pids["reuse-b"]
	return sc
}

// startReused starts "reuse-b" with the PID reuse-a had: the kernel's
// ns_last_pid is set to pid-1 right before the fork (retried a few times
// since other processes on the machine may take the PID first). If it never
// lands, reuse-b runs with another PID and the test says so.
func startReused(t *testing.T, ctx context.Context, h *Helpers, tp *Topology, pid int, peer string) *HelperProc {
	t.Helper()
	for try := 0; ; try++ {
		if try < 5 {
			os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0o644)
		}
		hp, err := h.Start(ctx, tp.Local, "reuse-b", "-peer", peer, "-bytes", strconv.Itoa(reuseBytes), "-dur", "2s")
		if err != nil {
			t.Fatal(err)
		}
		if hp.Cmd.Process.Pid == pid || try >= 5 {
			return hp
		}
		hp.Cmd.Process.Kill()
		hp.Cmd.Wait()
	}
}

func waitListen(t *testing.T, tp *Topology, ns string, ports ...int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, port := range ports {
		for {
			out, _ := tp.Command(context.Background(), ns, "ss", "-Htln", "sport = :"+strconv.Itoa(port)).Output()
			if strings.Contains(string(out), "LISTEN") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("nothing listens on port %d in %s", port, ns)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func waitFile(p string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

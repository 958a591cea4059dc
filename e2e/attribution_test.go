package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

func TestMain(m *testing.M) {
	Dispatch()
	os.Exit(m.Run())
}

// expect is one observed program: the flows it owned and how it is named.
type expect struct {
	role   string
	pid    int
	comm   string
	tuples []ingest.FiveTuple
}

// scenario is the outcome of one recorded run.
type scenario struct {
	dir       string
	capture   string
	dumps     []string
	bundle    string
	expects   []expect
	pidReused bool
	collectOK bool
}

const (
	bulkBytes   = 6 << 20
	churnConns  = 20
	udpCount    = 400
	udpSize     = 1000
	serverConns = 8
	forkBytes   = 500000
	reuseBytes  = 400000
)

// TestAttribution is the acceptance test of issue "Attribution": real
// programs exchange known volumes over a veth pair while tcpdump, an ss loop
// and `flowblame collect` record; both the foreign-dump path (pcap + ss) and
// the native bundle path must charge each program its bytes.
func TestAttribution(t *testing.T) {
	var sc *scenario
	if dir := os.Getenv("FB_E2E_REPLAY"); dir != "" {
		sc = replay(t, dir) // analyse a run kept with FB_E2E_KEEP
	} else {
		RequireRoot(t, "tcpdump", "ss")
		sc = record(t)
	}
	t.Run("foreign-ss", func(t *testing.T) {
		snaps, diags, err := ingest.ReadSocketDumps(sc.dumps, ingest.Options{})
		if err != nil {
			t.Fatalf("ReadSocketDumps: %v", err)
		}
		for _, d := range diags {
			t.Logf("ss diagnostic: %s", d)
		}
		obs, cov, procs := ingest.CompileSnapshots(snaps)
		t.Logf("ss: %d snapshots, %d observations, interval %v", len(snaps), len(obs), time.Duration(cov.Interval))
		src, err := ingest.OpenCapture(sc.capture, ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
		check(t, sc, src, analyze.NewSocketIndex(obs, procs, cov, analyze.JoinOptions{HostPrefixes: local}), obs)
	})
	t.Run("native-bundle", func(t *testing.T) {
		if !sc.collectOK {
			t.Skip("collector did not produce a bundle (see log)")
		}
		b, err := ingest.OpenBundle(sc.bundle, ingest.Options{})
		if err != nil {
			t.Fatalf("OpenBundle: %v", err)
		}
		defer b.Close()
		for _, d := range b.Diagnostics {
			t.Logf("bundle diagnostic: %s", d)
		}
		t.Logf("bundle: %d observations, %d processes, %d inventories", len(b.Observations), len(b.Processes), len(b.Coverage.Times()))
		src, err := b.Packets()
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		check(t, sc, src, analyze.IndexBundle(b, analyze.JoinOptions{}), b.Observations)
	})
}

// record runs all scenarios once and returns what was recorded.
func record(t *testing.T) *scenario {
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
	sc := &scenario{dir: dir, capture: filepath.Join(dir, "cap.pcap"), bundle: filepath.Join(dir, "bundle"),
		dumps: []string{filepath.Join(dir, "ss-e.txt"), filepath.Join(dir, "ss-i.txt")}}
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

	capRec, err := tp.StartCapture(ctx, tp.Local, tp.LocalIf, sc.capture)
	if err != nil {
		t.Fatal(err)
	}
	ssE, err := tp.SSLoop(ctx, tp.Local, "-tunapeH", sc.dumps[0])
	if err != nil {
		t.Fatal(err)
	}
	ssI, err := tp.SSLoop(ctx, tp.Local, "-tunapei", sc.dumps[1])
	if err != nil {
		t.Fatal(err)
	}
	coll := must(h.Start(ctx, tp.Local, "collect", "-iface", tp.LocalIf, "-out", sc.bundle, "-interval", "1s"))
	waitFile(filepath.Join(sc.bundle, ingest.SocketsFile), 10*time.Second)
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
		e := expect{role: rep.Role, pid: rep.PID, comm: comm}
		for _, c := range rep.Conns {
			if tu, ok := c.Tuple(); ok {
				e.tuples = append(e.tuples, tu)
			}
		}
		sc.expects = append(sc.expects, e)
		return rep
	}
	repA := add(reuseA, "fb-reuse-a")
	reuseB := startReused(t, ctx, h, tp, repA.PID, peer(5001))
	sc.pidReused = reuseB.Cmd.Process.Pid == repA.PID
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
	_, statErr := os.Stat(filepath.Join(sc.bundle, ingest.ManifestFile))
	sc.collectOK = statErr == nil
	ssE.Stop()
	ssI.Stop()
	capRec.Stop()
	t.Logf("PID reuse forced: %v (pid %d)", sc.pidReused, repA.PID)
	return sc
}

// replay loads a run recorded with FB_E2E_KEEP=dir.
func replay(t *testing.T, dir string) *scenario {
	sc := &scenario{dir: dir, capture: filepath.Join(dir, "cap.pcap"), bundle: filepath.Join(dir, "bundle"),
		dumps: []string{filepath.Join(dir, "ss-e.txt"), filepath.Join(dir, "ss-i.txt")}}
	_, err := os.Stat(filepath.Join(sc.bundle, ingest.ManifestFile))
	sc.collectOK = err == nil
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
		e := expect{role: rep.Role, pid: rep.PID, comm: "fb-" + rep.Role}
		for _, c := range rep.Conns {
			if tu, ok := c.Tuple(); ok {
				e.tuples = append(e.tuples, tu)
			}
		}
		pids[rep.Role] = rep.PID
		sc.expects = append(sc.expects, e)
	}
	if len(sc.expects) == 0 {
		t.Fatalf("no helper reports in %s", dir)
	}
	sc.pidReused = pids["reuse-a"] != 0 && pids["reuse-a"] == pids["reuse-b"]
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

// check analyses src with idx and asserts the acceptance criteria; obs are
// the observations behind idx (to tell which sockets were seen).
func check(t *testing.T, sc *scenario, src ingest.PacketSource, idx *analyze.SocketIndex, obs []ingest.SocketObservation) {
	t.Helper()
	local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
	tee := NewTruthSource(src)
	res, err := analyze.Analyze(context.Background(), tee, analyze.Options{Local: local, Attributor: idx, Serial: true})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	truth := tee.Tuples

	// 1. The breakdown accounts for every byte.
	var accounted int64
	for _, p := range res.Processes {
		accounted += p.Traffic.Total().Wire
	}
	for _, u := range res.Unattributed {
		accounted += u.Out.Wire + u.In.Wire + u.Unknown.Wire
		t.Logf("unattributed %-26s %9d B", u.Cause, u.Out.Wire+u.In.Wire+u.Unknown.Wire)
	}
	if all := res.Totals.All.Sum().Wire; accounted != all || all != tee.Total {
		t.Errorf("processes+unattributed = %d B, totals = %d B, capture = %d B", accounted, all, tee.Total)
	}

	// Flow owners by local→remote tuple.
	type share struct {
		proc ingest.ProcKey
		comm string
		wire int64
	}
	owners := map[ingest.FiveTuple][]share{}
	for _, f := range res.Flows {
		if !f.Key.Oriented {
			continue
		}
		k := ingest.FiveTuple{Proto: f.Key.Proto, Src: f.Key.A, Dst: f.Key.B}
		for _, o := range f.Owners {
			owners[k] = append(owners[k], share{o.Owner.Proc, o.Owner.Comm, o.Traffic.Wire})
		}
	}
	seenTuple := map[ingest.FiveTuple]bool{}
	seenPort := map[uint16]bool{}
	for _, o := range obs {
		if len(o.Holders) == 0 {
			continue // a TIME-WAIT leftover is not the program's socket
		}
		seenTuple[ingest.FiveTuple{Proto: o.Proto, Src: unmap(o.Local), Dst: unmap(o.Remote)}] = true
		if o.Remote.Port() == 0 {
			seenPort[o.Local.Port()] = true
		}
	}

	var seenBytes, seenRight int64
	lines := []string{fmt.Sprintf("%-12s %7s %11s %11s %8s %s", "program", "pid", "truth B", "charged B", "ratio", "flows seen/all")}
	for _, e := range sc.expects {
		var want, right int64
		nSeen := 0
		for _, tu := range e.tuples {
			want += truth[tu]
			for _, s := range owners[tu] {
				if s.proc.PID == e.pid && s.comm == e.comm {
					right += s.wire
				}
			}
			if seenTuple[tu] || tu.Proto == ingest.ProtoUDP && seenPort[tu.Src.Port()] || tu.Src.Port() == 5004 && seenPort[5004] {
				nSeen++
				seenBytes += truth[tu]
				for _, s := range owners[tu] {
					if s.proc.PID == e.pid && s.comm == e.comm {
						seenRight += s.wire
					}
				}
			}
		}
		// The process's own total must match its flows' truth (nothing
		// charged to it from elsewhere, nothing missing).
		var charged int64
		for _, p := range res.Processes {
			if p.Key.PID == e.pid && p.Comm == e.comm {
				charged += p.Traffic.Total().Wire
			}
		}
		ratio := float64(charged) / float64(max(want, 1))
		lines = append(lines, fmt.Sprintf("%-12s %7d %11d %11d %8.4f %d/%d", e.comm, e.pid, want, charged, ratio, nSeen, len(e.tuples)))
		if want == 0 {
			t.Errorf("%s: no captured bytes for its flows %v", e.comm, e.tuples)
			continue
		}
		// The 2 % bound applies to programs whose every socket the socket
		// data saw with its owner; for the others (200 ms connections
		// between ss dumps, sockets the collector never walked) the gap is
		// the recorder's, reported here and in the unattributed causes.
		switch {
		case nSeen == len(e.tuples) && (ratio < 0.98 || ratio > 1.02):
			t.Errorf("%s (pid %d): charged %d B, its flows carried %d B (ratio %.4f, want within 2%%)", e.comm, e.pid, charged, want, ratio)
		case nSeen < len(e.tuples):
			t.Logf("%s: %d of %d sockets never seen with an owner (recorder gap): %.1f %% of its bytes charged",
				e.comm, len(e.tuples)-nSeen, len(e.tuples), 100*ratio)
		}
		if charged > want+want/50 {
			t.Errorf("%s: charged more than its flows carried (%d > %d)", e.comm, charged, want)
		}
	}
	t.Logf("per-program bytes (wire):\n%s", strings.Join(lines, "\n"))
	if seenBytes == 0 {
		t.Fatal("no flow of any program was seen by the socket data")
	}
	frac := float64(seenRight) / float64(seenBytes)
	t.Logf("correctly attributed where the socket was seen: %.4f of %d B", frac, seenBytes)
	if frac < 0.99 {
		t.Errorf("correctly attributed where seen = %.4f, want ≥ 0.99", frac)
	}
	var methods []string
	for _, m := range res.Coverage.ByMethod {
		methods = append(methods, fmt.Sprintf("%s=%d", m.Method, m.Out.Wire+m.In.Wire))
	}
	sort.Strings(methods)
	t.Logf("coverage TX %.4f RX %.4f by method: %s; attributor calls %d", res.Coverage.TX, res.Coverage.RX,
		strings.Join(methods, " "), res.Meta.AttributorCalls)
	// PID reuse: the two programs must be two processes, and neither's
	// bytes may be lent to the other.
	if sc.pidReused {
		for _, e := range sc.expects {
			other := map[string]string{"fb-reuse-a": "fb-reuse-b", "fb-reuse-b": "fb-reuse-a"}[e.comm]
			if other == "" {
				continue
			}
			for _, tu := range e.tuples {
				for _, s := range owners[tu] {
					if s.comm == other {
						t.Errorf("PID reuse: %d B of %s's flow %v charged to %s %v", s.wire, e.comm, tu, other, s.proc)
					}
				}
			}
		}
		keys := map[ingest.ProcKey]string{}
		for _, p := range res.Processes {
			if p.Comm == "fb-reuse-a" || p.Comm == "fb-reuse-b" {
				if c, dup := keys[p.Key]; dup && c != p.Comm {
					t.Errorf("PID reuse: %v charged as both %s and %s", p.Key, c, p.Comm)
				}
				keys[p.Key] = p.Comm
			}
		}
		if len(keys) != 2 {
			t.Logf("PID reuse: %d distinct processes charged: %v", len(keys), keys)
		}
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

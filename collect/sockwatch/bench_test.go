package sockwatch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// runFarm is the "farm" helper: it holds spec ("conns,udp") loopback TCP
// connections (both ends, half IPv4 and half IPv6) and UDP sockets, prints
// "ADDR listener", and waits for stdin to close.
func runFarm(spec string) error {
	var conns, udp int
	if _, err := fmt.Sscanf(spec, "%d,%d", &conns, &udp); err != nil {
		return err
	}
	var keep []io.Closer
	lns := map[string]net.Listener{}
	for _, nw := range []string{"tcp4", "tcp6"} {
		host := "127.0.0.1:0"
		if nw == "tcp6" {
			host = "[::1]:0"
		}
		ln, err := net.Listen(nw, host)
		if err != nil {
			return err
		}
		lns[nw] = ln
		keep = append(keep, ln)
	}
	accepted := make(chan net.Conn, conns)
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
	}
	for i := range conns {
		ln := lns["tcp4"]
		if i%2 == 1 {
			ln = lns["tcp6"]
		}
		c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
		if err != nil {
			return fmt.Errorf("conn %d: %w", i, err)
		}
		keep = append(keep, c, <-accepted)
	}
	for range udp {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		keep = append(keep, c)
	}
	fmt.Printf("ADDR %s\n", lns["tcp4"].Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range keep {
		c.Close()
	}
	return nil
}

// countSink counts records and remembers probe/seen holders of sockets to
// one remote address.
type countSink struct {
	mu     sync.Mutex
	kinds  map[string]int
	procs  int
	remote string
	pids   map[int]bool
}

func (c *countSink) Socket(r ingest.SocketRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kinds[r.Kind]++
	if r.Remote == c.remote && (r.Kind == "probe" || r.Kind == "seen" || r.Kind == "destroy") {
		for _, h := range r.Holders {
			c.pids[h.PID] = true
		}
	}
	return nil
}

func (c *countSink) Process(ingest.ProcessInfo) error {
	c.mu.Lock()
	c.procs++
	c.mu.Unlock()
	return nil
}

func cpuNow() time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rssKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// threadCPU is the CPU time of the watcher's prober thread (0 if none).
func threadCPU(w *watcher) time.Duration {
	if w.pb == nil || w.pb.tid.Load() == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", w.pb.tid.Load()))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns)
}

// TestBenchSockets measures the socket machinery on a host with 2,000
// sleeping processes and ~21,000 loopback sockets (10 farm processes ×
// (1,000 connections = 2,000 TCP sockets + 100 UDP)). It runs only with
// SOCKWATCH_BENCH=1 (make bench-sockets); SOCKWATCH_BENCH_SECONDS sets the
// Run duration (default 60).
func TestBenchSockets(t *testing.T) {
	if os.Getenv("SOCKWATCH_BENCH") == "" {
		t.Skip("set SOCKWATCH_BENCH=1 (make bench-sockets)")
	}
	requireRoot(t)
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("SOCKWATCH_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	exe, _ := os.Executable()
	// Farms and clients live in a network namespace of their own, so that
	// other programs' sockets on a shared machine stay out of the inventory.
	// The collector stays in the initial namespace (the proc connector works
	// only there) and walks every process on the host.
	benchNs := "swbench" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", benchNs).Run() })
	run(t, "ip", "netns", "add", benchNs)
	run(t, "ip", "-n", benchNs, "link", "set", "lo", "up")
	benchIno := netnsInode(t, benchNs)
	// 2,000 sleepers.
	var sleepers []*exec.Cmd
	defer func() {
		for _, c := range sleepers {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range 2000 {
		c := exec.Command("sleep", "3600")
		if err := c.Start(); err != nil {
			t.Fatalf("sleeper: %v", err)
		}
		sleepers = append(sleepers, c)
	}
	// 10 farms.
	var farms []*helper
	defer func() {
		for _, f := range farms {
			f.stop()
		}
	}()
	for range 10 {
		cmd := exec.Command("ip", "netns", "exec", benchNs, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SOCKWATCH_HELPER=farm", "SOCKWATCH_ADDR=1000,100")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("farm: %v", err)
		}
		farms = append(farms, &helper{cmd: cmd, stdin: in, line: strings.TrimSpace(line)})
	}
	target := strings.TrimPrefix(farms[0].line, "ADDR ")
	procs, _ := newFDWalker("/proc").pids(nil)
	t.Logf("environment: %d processes", len(procs))

	// Components, on a bare watcher.
	w := newWatcher(Config{}.withDefaults(), &countSink{kinds: map[string]int{}, pids: map[int]bool{}}, "/proc")
	var d *diagConn
	nsfd, err := unix.Open("/run/netns/"+benchNs, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = inNetns(nsfd, func() (err error) { d, err = openDiag(); return err })
	unix.Close(nsfd)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	measure := func(name string, n int, fn func() int) {
		fn() // warm-up
		c0, t0 := cpuNow(), time.Now()
		items := 0
		for range n {
			items = fn()
		}
		t.Logf("%-28s %7.1f ms wall, %7.1f ms CPU per run (%d items)", name,
			float64(time.Since(t0).Microseconds())/1000/float64(n), float64((cpuNow()-c0).Microseconds())/1000/float64(n), items)
	}
	measure("sock_diag inventory (4 dumps)", 5, func() int {
		n := 0
		for _, ds := range inventoryDumps {
			_, _ = d.dump(ds, statesNoTWNoSyn, func(*diagSock) { n++ })
		}
		return n
	})
	measure("full /proc/*/fd walk", 3, func() int { w.fullWalk(time.Now()); return len(w.holders) })
	measure("fd-count sweep", 5, func() int {
		pids, _ := w.walker.pids(nil)
		for _, p := range pids {
			_, _, _ = w.fdStat(p)
		}
		return len(pids)
	})
	w.close()

	// Run for secs with Interval 2s, FullWalkEvery 30s, plus 100 short clients.
	sink := &countSink{kinds: map[string]int{}, pids: map[int]bool{}, remote: target}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	var ms0 = rssKB()
	c0, t0 := cpuNow(), time.Now()
	var st Stats
	var runErr error
	done := make(chan struct{})
	rw := newWatcher(Config{Interval: 2 * time.Second, FullWalkEvery: 30 * time.Second}.withDefaults(), sink, "/proc")
	rw.onlyNetns = benchIno
	go func() {
		defer close(done)
		defer rw.close()
		runErr = rw.run(ctx)
		st = rw.finalStats()
	}()
	// Steady state first: measure CPU from 5 s to 5+steady s without
	// clients of our own, separating the prober thread (events caused by
	// other processes' fork/exec on this shared machine).
	steady := min(secs/2, 30)
	time.Sleep(5 * time.Second)
	cs, ps := cpuNow(), threadCPU(rw)
	time.Sleep(time.Duration(steady) * time.Second)
	steadyCPU, proberCPU := cpuNow()-cs, threadCPU(rw)-ps
	var clientPIDs []int
	var started atomic.Int32
	for range 100 {
		cmd := exec.Command("ip", "netns", "exec", benchNs, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "SOCKWATCH_HELPER=client", "SOCKWATCH_ADDR="+target)
		out, _ := cmd.Output()
		if pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(out), "PID "))); err == nil {
			clientPIDs = append(clientPIDs, pid)
			started.Add(1)
		}
	}
	<-done
	total := cpuNow() - c0
	wall := time.Since(t0)
	if runErr != nil {
		t.Fatal(runErr)
	}
	hit := 0
	for _, p := range clientPIDs {
		if sink.pids[p] {
			hit++
		}
	}
	t.Logf("Run %v: %d inventories, %d full walks, %d events (%d lost), records %v, %d process records",
		wall.Round(time.Second), st.Snapshots, st.FullWalks, st.Events, st.EventsLost, sink.kinds, sink.procs)
	t.Logf("steady-state CPU (%d s, no clients of ours): %.2f %% of one core, of which prober thread %.2f %% (probing other tenants' fork/exec)",
		steady, 100*steadyCPU.Seconds()/float64(steady), 100*proberCPU.Seconds()/float64(steady))
	t.Logf("inventory + walks + destroy events (all but the prober): %.2f %% of one core", 100*(steadyCPU-proberCPU).Seconds()/float64(steady))
	t.Logf("whole run CPU incl. start-up walk and 100 client execs: %.2f %% of one core (%.2f s)", 100*total.Seconds()/wall.Seconds(), total.Seconds())
	t.Logf("RSS %d MB before Run, %d MB after", ms0/1024, rssKB()/1024)
	t.Logf("100 ms client processes attributed: %d of %d", hit, len(clientPIDs))
	t.Logf("notes: %q", st.Notes)
}

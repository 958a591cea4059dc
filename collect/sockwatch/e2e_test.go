package sockwatch

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// The test binary doubles as the helper processes of the end-to-end test:
// SOCKWATCH_HELPER selects the role.
func TestMain(m *testing.M) {
	if role := os.Getenv("SOCKWATCH_HELPER"); role != "" {
		if err := runHelper(role, os.Getenv("SOCKWATCH_ADDR")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runHelper is one helper process:
//   - server: listen on addr, print "ADDR a", drain connections, stop when stdin closes;
//   - client: connect to addr, print "PID p", send 1000 bytes, hold 100 ms, exit;
//   - sharer: connect to addr, start a "holder" child sharing the socket (fd 3),
//     print "PIDS parent child", stop when stdin closes;
//   - holder: keep fd 3 open until stdin closes.
func runHelper(role, addr string) error {
	switch role {
	case "server":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		fmt.Printf("ADDR %s\n", ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
			}
		}()
		_, _ = io.Copy(io.Discard, os.Stdin)
		return nil
	case "client":
		// Like an interpreter importing modules: a file is open during
		// start-up and closed just before the connect, so the fd count
		// stays the same while a socket appears.
		if f, err := os.Open("/dev/null"); err == nil {
			time.Sleep(40 * time.Millisecond)
			f.Close()
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		fmt.Printf("PID %d\n", os.Getpid())
		_, _ = c.Write(make([]byte, 1000))
		time.Sleep(100 * time.Millisecond)
		return c.Close()
	case "sharer":
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		f, err := c.(*net.TCPConn).File()
		if err != nil {
			return err
		}
		exe, _ := os.Executable()
		child := exec.Command(exe, "-test.run=^$")
		child.Env = append(os.Environ(), "SOCKWATCH_HELPER=holder")
		child.ExtraFiles = []*os.File{f}
		in, _ := child.StdinPipe()
		if err := child.Start(); err != nil {
			return err
		}
		fmt.Printf("PIDS %d %d\n", os.Getpid(), child.Process.Pid)
		_, _ = io.Copy(io.Discard, os.Stdin)
		in.Close()
		return child.Wait()
	case "farm":
		return runFarm(addr)
	case "degraded":
		return runDegraded()
	case "holder":
		_, _ = io.Copy(io.Discard, os.Stdin)
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// requireRoot skips tests that need root and namespaces, unless CI=true.
func requireRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (network namespaces, sock_diag destroy groups, proc connector)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs iproute2 (ip)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setupNetns creates namespaces A and B joined by a veth pair,
// 198.51.100.1/24 ↔ 198.51.100.2/24, and checks A routes B via the veth.
func setupNetns(t *testing.T) (nsA, nsB string) {
	id := strconv.Itoa(os.Getpid() % 100000)
	nsA, nsB = "swA"+id, "swB"+id
	va, vb := "swa"+id, "swb"+id
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", nsA).Run()
		_ = exec.Command("ip", "netns", "del", nsB).Run()
	})
	run(t, "ip", "netns", "add", nsA)
	run(t, "ip", "netns", "add", nsB)
	run(t, "ip", "link", "add", va, "netns", nsA, "type", "veth", "peer", "name", vb, "netns", nsB)
	run(t, "ip", "-n", nsA, "addr", "add", "198.51.100.1/24", "dev", va)
	run(t, "ip", "-n", nsB, "addr", "add", "198.51.100.2/24", "dev", vb)
	for _, c := range [][]string{{nsA, va}, {nsB, vb}, {nsA, "lo"}, {nsB, "lo"}} {
		run(t, "ip", "-n", c[0], "link", "set", c[1], "up")
	}
	if r := run(t, "ip", "-n", nsA, "route", "get", "198.51.100.2"); !strings.Contains(r, "dev "+va) {
		t.Fatalf("198.51.100.2 is not routed via %s in %s: %s", va, nsA, r)
	}
	return nsA, nsB
}

func netnsInode(t *testing.T, name string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// helper is a running helper process with its first stdout line.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	line  string
}

func startHelper(t *testing.T, ns, role, addr string) *helper {
	t.Helper()
	h, err := startHelperE(ns, role, addr)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// startHelperE starts a helper in netns ns and reads its first line; it may
// be called from any goroutine.
func startHelperE(ns, role, addr string) (*helper, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SOCKWATCH_HELPER="+role, "SOCKWATCH_ADDR="+addr)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s helper: %w", role, err)
	}
	h := &helper{cmd: cmd, stdin: in, line: strings.TrimSpace(line)}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return h, nil
}

func (h *helper) stop() {
	h.stdin.Close()
	_ = h.cmd.Wait()
}

// memSink collects records; safe for concurrent reading.
type memSink struct {
	mu    sync.Mutex
	socks []ingest.SocketRecord
	procs []ingest.ProcessInfo
}

func (s *memSink) Socket(r ingest.SocketRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.socks = append(s.socks, r)
	return nil
}

func (s *memSink) Process(p ingest.ProcessInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
	return nil
}

func (s *memSink) find(fn func(r ingest.SocketRecord) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.socks, fn)
}

func holds(r ingest.SocketRecord, pids ...int) bool {
	for _, p := range pids {
		if !slices.ContainsFunc(r.Holders, func(k ingest.ProcKey) bool { return k.PID == p }) {
			return false
		}
	}
	return true
}

// TestRunNetns runs the whole machinery against real processes in two
// network namespaces: a server, a parent and child sharing one connection,
// and 100 clients that live about 100 ms each.
func TestRunNetns(t *testing.T) {
	requireRoot(t)
	// The proc connector exists only in the initial network and user
	// namespaces (a CI container may have neither): without it the
	// short-lived clients cannot be caught and that part is only logged.
	procConn := true
	if fd, err := openProcConn(); err != nil {
		procConn = false
		t.Logf("no proc connector here (%v): short-lived client checks are informational", err)
	} else {
		unix.Close(fd)
	}
	nsA, nsB := setupNetns(t)
	inoA, inoB := netnsInode(t, nsA), netnsInode(t, nsB)

	srv := startHelper(t, nsB, "server", "198.51.100.2:0")
	defer srv.stop()
	srvAddr := strings.TrimPrefix(srv.line, "ADDR ")
	sh := startHelper(t, nsA, "sharer", srvAddr)
	defer sh.stop()
	var parent, child int
	if _, err := fmt.Sscanf(sh.line, "PIDS %d %d", &parent, &child); err != nil {
		t.Fatalf("sharer said %q", sh.line)
	}

	sink := &memSink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Run(ctx, Config{Interval: 500 * time.Millisecond, FullWalkEvery: 5 * time.Second}, sink)
		done <- result{st, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !sink.find(func(r ingest.SocketRecord) bool { return r.Kind == "snapshot" && r.Netns == inoA }) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("netns %s never inventoried", nsA)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// 100 clients, 3 at a time.
	const nClients = 100
	pids := make([]int, 0, nClients)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for range nClients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			h, err := startHelperE(nsA, "client", srvAddr)
			if err != nil {
				t.Error(err)
				return
			}
			pid, _ := strconv.Atoi(strings.TrimPrefix(h.line, "PID "))
			_ = h.cmd.Wait()
			mu.Lock()
			pids = append(pids, pid)
			mu.Unlock()
		}()
	}
	wg.Wait()
	time.Sleep(700 * time.Millisecond)
	cancel()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("stats: snapshots %d, full walks %d, events %d (lost %d), netns %d, notes %q",
		res.st.Snapshots, res.st.FullWalks, res.st.Events, res.st.EventsLost, len(res.st.Netns), res.st.Notes)

	if !slices.ContainsFunc(res.st.Netns, func(n ingest.NetnsInfo) bool { return n.Inode == inoA && n.Name == nsA && !n.Host }) {
		t.Errorf("Stats.Netns %+v lacks %s (%d)", res.st.Netns, nsA, inoA)
	}
	serverPID := srv.cmd.Process.Pid
	isToServer := func(r ingest.SocketRecord) bool { return r.Remote == srvAddr && r.Netns == inoA && r.Proto == "tcp" }
	attributed, destroyed := 0, 0
	for _, pid := range pids {
		if sink.find(func(r ingest.SocketRecord) bool {
			return (r.Kind == "probe" || r.Kind == "seen") && isToServer(r) && holds(r, pid)
		}) {
			attributed++
		} else {
			t.Logf("client %d not attributed; its records:", pid)
			for _, r := range sink.socks {
				if holds(r, pid) {
					t.Logf("  %+v", r)
				}
			}
		}
		if sink.find(func(r ingest.SocketRecord) bool {
			return r.Kind == "destroy" && isToServer(r) && holds(r, pid) && r.BytesAcked >= 1000
		}) {
			destroyed++
		}
	}
	t.Logf("100 ms clients: %d/%d attributed, %d/%d destroy records with pid and bytes", attributed, len(pids), destroyed, len(pids))
	if len(pids) != nClients {
		t.Errorf("%d of %d clients ran", len(pids), nClients)
	}
	if procConn && attributed < 99 {
		t.Errorf("short-lived clients attributed: %d of %d, want ≥ 99", attributed, len(pids))
	}
	if destroyed < 99 && procConn {
		t.Errorf("destroy records joined to the client pid: %d of %d, want ≥ 99", destroyed, len(pids))
	}
	if !sink.find(func(r ingest.SocketRecord) bool { return isToServer(r) && holds(r, parent, child) }) {
		t.Errorf("no record of the shared socket with both holders %d and %d", parent, child)
	}
	if !sink.find(func(r ingest.SocketRecord) bool {
		return r.Kind == "seen" && r.Netns == inoB && r.State == "LISTEN" && r.Local == srvAddr && holds(r, serverPID)
	}) {
		t.Errorf("server listener %s in %s not seen with pid %d", srvAddr, nsB, serverPID)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	exe, _ := os.Executable()
	clientInfo := 0
	for _, p := range sink.procs {
		if slices.Contains(pids, p.PID) && p.Exe == exe && p.Start > 0 && p.Netns == inoA && len(p.ExeSHA256) == 64 {
			clientInfo++
		}
	}
	if clientInfo < 99 && procConn {
		t.Errorf("ProcessInfo with exe %s, hash and netns for %d clients, want ≥ 99", exe, clientInfo)
	}
	// Compactness and order: one snapshot marker per netns inventory, seq increasing.
	last := 0
	for _, r := range sink.socks {
		if r.Kind == "snapshot" {
			if r.Seq <= last {
				t.Fatalf("snapshot seq %d after %d", r.Seq, last)
			}
			last = r.Seq
		}
	}
}

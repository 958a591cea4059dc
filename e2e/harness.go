// Package e2e holds flowblame's end-to-end acceptance tests: real processes
// with known byte volumes exchange traffic over a veth pair between two
// network namespaces that the test creates, the traffic is captured
// (tcpdump, and `flowblame collect` for the native path) while socket tables
// are dumped (`ss` in a loop), and the analysis must charge every process
// what it sent and received.
//
// The harness (this file) is reusable: Topology builds and removes the
// namespaces, Helper programs are the test binary re-executed under a role
// name (TestMain must call Dispatch first), Capture/SSLoop record, and
// GroundTruth computes what each helper's flows carried on the wire.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowblame/flowblame/collect"
	"github.com/flowblame/flowblame/ingest"
)

// Addresses of the two ends (documentation range 198.51.100.0/24 only).
var (
	LocalIP = netip.MustParseAddr("198.51.100.1")
	PeerIP  = netip.MustParseAddr("198.51.100.2")
)

const (
	roleEnv   = "FB_E2E_ROLE"
	reportEnv = "FB_E2E_REPORT"
)

// RequireRoot skips the test when not root, unless CI=true (then it fails).
// It also requires the tools the harness runs.
func RequireRoot(t testing.TB, tools ...string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	if os.Geteuid() != 0 {
		if ci {
			t.Fatal("e2e tests need root (network namespaces, veth, packet capture); CI=true so not skipping")
		}
		t.Skip("e2e tests need root (network namespaces, veth, packet capture); skipping")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			if ci {
				t.Fatalf("e2e tests need %s in PATH", tool)
			}
			t.Skipf("e2e tests need %s in PATH; skipping", tool)
		}
	}
}

// Topology is two network namespaces joined by a veth pair: Local
// (198.51.100.1/24 on LocalIf, where the observed processes run and the
// capture is taken) and Peer (198.51.100.2/24 on PeerIf). Both ends live in
// namespaces of their own so that the machine's interfaces, routes and other
// tests are never touched.
type Topology struct {
	Local, Peer     string // netns names
	LocalIf, PeerIf string
}

// NewTopology creates the namespaces and the veth pair, checks with
// `ip route get` that the peer is reached through the test's veth, and
// registers the cleanup (which kills every process left in the namespaces).
func NewTopology(t testing.TB) *Topology {
	t.Helper()
	id := strconv.Itoa(os.Getpid() % 1000000)
	tp := &Topology{Local: "fb7l" + id, Peer: "fb7p" + id, LocalIf: "fb7l" + id, PeerIf: "fb7p" + id}
	t.Cleanup(tp.Destroy)
	steps := [][]string{
		{"netns", "add", tp.Local},
		{"netns", "add", tp.Peer},
		{"link", "add", tp.LocalIf, "netns", tp.Local, "type", "veth", "peer", "name", tp.PeerIf, "netns", tp.Peer},
		{"-n", tp.Local, "addr", "add", LocalIP.String() + "/24", "dev", tp.LocalIf},
		{"-n", tp.Peer, "addr", "add", PeerIP.String() + "/24", "dev", tp.PeerIf},
		{"-n", tp.Local, "link", "set", "lo", "up"},
		{"-n", tp.Peer, "link", "set", "lo", "up"},
		{"-n", tp.Local, "link", "set", tp.LocalIf, "up"},
		{"-n", tp.Peer, "link", "set", tp.PeerIf, "up"},
	}
	RunIP(t, steps...)
	for _, c := range []struct{ ns, dst, dev string }{{tp.Local, PeerIP.String(), tp.LocalIf}, {tp.Peer, LocalIP.String(), tp.PeerIf}} {
		out, err := exec.Command("ip", "-n", c.ns, "route", "get", c.dst).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "dev "+c.dev) {
			t.Fatalf("route to %s in %s does not use %s: %v: %s", c.dst, c.ns, c.dev, err, out)
		}
	}
	return tp
}

// StopCollector stops a collect helper and opens the bundle it wrote
// (closed when the test ends).
func StopCollector(t testing.TB, coll *HelperProc, bundle string) *ingest.Bundle {
	t.Helper()
	if _, err := coll.Stop(); err != nil {
		t.Logf("collector: %v", err)
	}
	b, err := ingest.OpenBundle(bundle, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// RunIP runs `ip` with each argument list in turn, failing the test on the
// first error.
func RunIP(t testing.TB, steps ...[]string) {
	t.Helper()
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
}

// Destroy kills the processes left in both namespaces and deletes them
// (the veth pair goes with them). It is safe to call twice.
func (tp *Topology) Destroy() {
	for _, ns := range []string{tp.Local, tp.Peer} {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	for _, ns := range []string{tp.Local, tp.Peer} {
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// Command returns a command that runs name in network namespace ns (the
// process keeps the PID of the command: `ip netns exec` execs it).
func (tp *Topology) Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Report is what a helper program writes when it finishes: its PID and the
// connections it used, with the application bytes it sent and received.
type Report struct {
	Role  string       `json:"role"`
	PID   int          `json:"pid"`
	Sent  int64        `json:"sent"`
	Recv  int64        `json:"recv"`
	Conns []ConnReport `json:"conns"`
}

// ConnReport is one socket a helper used.
type ConnReport struct {
	Proto  string `json:"proto"`
	Local  string `json:"local"`
	Remote string `json:"remote"`
}

// Helpers starts helper programs: the test binary, symlinked under the name
// "fb-<role>" so that each role has its own comm.
type Helpers struct {
	Dir  string // symlinks and reports
	Topo *Topology
	mu   sync.Mutex
	cmds []*HelperProc
}

// HelperProc is a running helper.
type HelperProc struct {
	Role   string
	Cmd    *exec.Cmd
	Report string // path of its Report
	stderr strings.Builder
}

// NewHelpers prepares a helper directory under dir.
func NewHelpers(dir string, tp *Topology) *Helpers { return &Helpers{Dir: dir, Topo: tp} }

// Start runs role in netns ns with args (flags of the role).
func (h *Helpers) Start(ctx context.Context, ns, role string, args ...string) (*HelperProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	link := filepath.Join(h.Dir, "fb-"+role)
	if err := ensureLink(self, link); err != nil {
		return nil, err
	}
	h.mu.Lock()
	n := len(h.cmds)
	h.mu.Unlock()
	hp := &HelperProc{Role: role, Report: filepath.Join(h.Dir, fmt.Sprintf("%s.%d.json", role, n))}
	hp.Cmd = h.Topo.Command(ctx, ns, link, args...)
	hp.Cmd.Env = append(os.Environ(), roleEnv+"="+role, reportEnv+"="+hp.Report)
	hp.Cmd.Stderr = &hp.stderr
	hp.Cmd.Stdout = &hp.stderr
	if err := hp.Cmd.Start(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.cmds = append(h.cmds, hp)
	h.mu.Unlock()
	return hp, nil
}

// ensureLink makes link a symlink to target (replacing a stale one).
func ensureLink(target, link string) error {
	if cur, err := os.Readlink(link); err == nil && cur == target {
		return nil
	}
	os.Remove(link)
	if err := os.Symlink(target, link); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// Wait waits for the helper and reads its report.
func (hp *HelperProc) Wait() (*Report, error) {
	if err := hp.Cmd.Wait(); err != nil {
		return nil, fmt.Errorf("helper %s: %w: %s", hp.Role, err, hp.stderr.String())
	}
	return ReadReport(hp.Report)
}

// Stop sends SIGTERM and waits (for helpers that run until told).
func (hp *HelperProc) Stop() (*Report, error) {
	hp.Cmd.Process.Signal(syscall.SIGTERM)
	return hp.Wait()
}

// ReadReport reads a helper's report file.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("report %s: %w", path, err)
	}
	return &r, nil
}

// Recorder is a background recorder (tcpdump, an ss loop) in a namespace.
type Recorder struct {
	cmd    *exec.Cmd
	stderr strings.Builder
}

// StartCapture runs `tcpdump -i iface -w file` in ns and waits until it is
// listening.
func (tp *Topology) StartCapture(ctx context.Context, ns, iface, file string) (*Recorder, error) {
	r := &Recorder{}
	r.cmd = tp.Command(ctx, ns, "tcpdump", "-i", iface, "-w", file, "-U", "-Z", "root", "-s", "128", "-n")
	pr, pw := io.Pipe()
	r.cmd.Stderr = pw
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := false
		for sc.Scan() {
			r.stderr.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "listening on") {
				once = true
				close(ready)
			}
		}
		if !once {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		return r, errors.New("tcpdump did not start listening")
	}
	return r, nil
}

// SSLoop is the documented dump loop, run in ns with its output to file:
//
//	while :; do date -u +%s.%N; ss ARGS; sleep 1; done > file
func (tp *Topology) SSLoop(ctx context.Context, ns, args, file string) (*Recorder, error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	r := &Recorder{}
	r.cmd = tp.Command(ctx, ns, "sh", "-c", "while :; do date -u +%s.%N; ss "+args+"; sleep 1; done")
	r.cmd.Stdout = f
	r.cmd.Stderr = &r.stderr
	if err := r.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { r.cmd.Wait(); f.Close() }()
	return r, nil
}

// Stop interrupts the recorder and waits for it.
func (r *Recorder) Stop() {
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return
	}
	// ip netns exec execs the program, so the PID is the recorder's own;
	// for the sh loop, kill the whole process group would be broader than
	// needed: SIGTERM to sh ends the loop after the current ss.
	r.cmd.Process.Signal(syscall.SIGINT)
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
	}
}

// TupleBytes are wire bytes per flow, keyed by the local→remote tuple
// (local = LocalIP), both directions summed.
type TupleBytes map[ingest.FiveTuple]int64

// TruthSource wraps a PacketSource and computes the ground truth from the
// packets the analysis reads: wire bytes per flow and in total.
type TruthSource struct {
	ingest.PacketSource
	Tuples TupleBytes
	Total  int64
}

// NewTruthSource wraps src.
func NewTruthSource(src ingest.PacketSource) *TruthSource {
	return &TruthSource{PacketSource: src, Tuples: TupleBytes{}}
}

// Next reads the next packet and counts it.
func (s *TruthSource) Next(p *ingest.Packet) error {
	if err := s.PacketSource.Next(p); err != nil {
		return err
	}
	s.Total += int64(p.WireLen)
	if p.Kind == ingest.KindIP {
		k := p.Tuple
		if k.Src.Addr() != LocalIP {
			k = k.Reverse()
		}
		s.Tuples[k] += int64(p.WireLen)
	}
	return nil
}

// Tuple returns the local→remote tuple of a ConnReport.
func (c ConnReport) Tuple() (ingest.FiveTuple, bool) {
	proto, ok := ingest.ParseProto(c.Proto)
	l, err1 := netip.ParseAddrPort(c.Local)
	r, err2 := netip.ParseAddrPort(c.Remote)
	if !ok || err1 != nil || err2 != nil {
		return ingest.FiveTuple{}, false
	}
	return ingest.FiveTuple{Proto: proto, Src: netip.AddrPortFrom(l.Addr().Unmap(), l.Port()), Dst: netip.AddrPortFrom(r.Addr().Unmap(), r.Port())}, true
}

// ---- helper programs ----

// Dispatch runs the helper role named by the environment, if any, and exits.
// TestMain must call it before m.Run.
func Dispatch() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	rep := &Report{Role: role, PID: os.Getpid()}
	err := runRole(role, os.Args[1:], rep)
	if p := os.Getenv(reportEnv); p != "" {
		b, _ := json.Marshal(rep)
		if werr := os.WriteFile(p, b, 0o644); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

type roleFlags struct {
	peer, listen, local string
	bytes, expect       int64
	reply               int64
	n                   int
	dur                 time.Duration
	chunk               int
}

func runRole(role string, args []string, rep *Report) error {
	if role == "collect" {
		return roleCollect(args)
	}
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	var f roleFlags
	fs.StringVar(&f.peer, "peer", "", "remote address:port")
	fs.StringVar(&f.listen, "listen", "", "listen address:port")
	fs.StringVar(&f.local, "local", "", "local address:port to bind")
	fs.Int64Var(&f.bytes, "bytes", 0, "bytes to send")
	fs.Int64Var(&f.expect, "expect", 0, "bytes to read before replying")
	fs.Int64Var(&f.reply, "reply", 0, "bytes to reply")
	fs.IntVar(&f.n, "n", 1, "count (connections, clients)")
	fs.DurationVar(&f.dur, "dur", time.Second, "duration to spread the sending over")
	fs.IntVar(&f.chunk, "chunk", 16384, "write size")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch {
	case role == "peer-tcp":
		return rolePeerTCP(ctx, f, rep)
	case role == "peer-udp":
		return rolePeerUDP(ctx, f, rep)
	case role == "bulk" || strings.HasPrefix(role, "reuse"):
		return roleBulk(ctx, f, rep)
	case role == "churn":
		return roleChurn(ctx, f, rep)
	case role == "flood":
		return roleFlood(ctx, f, rep)
	case role == "httpd":
		return roleHTTPD(ctx, f, rep)
	case role == "slowloris":
		return roleSlowloris(ctx, f, rep)
	case role == "httpget":
		return roleHTTPGet(ctx, f, rep)
	case role == "udp":
		return roleUDP(ctx, f, rep)
	case role == "server":
		return roleServer(ctx, f, rep)
	case role == "clients":
		return roleClients(ctx, f, rep)
	case role == "fork":
		return roleFork(ctx, f, rep)
	case role == "forkchild":
		return roleForkChild(ctx, f, rep)
	}
	return fmt.Errorf("unknown role %q", role)
}

var reportMu sync.Mutex

func (r *Report) add(c net.Conn, sent, recv int64) {
	reportMu.Lock()
	defer reportMu.Unlock()
	r.Sent += sent
	r.Recv += recv
	if c != nil {
		r.Conns = append(r.Conns, ConnReport{Proto: c.LocalAddr().Network(), Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String()})
	}
}

// paced writes total bytes to w in chunks spread evenly over dur.
func paced(ctx context.Context, w io.Writer, total int64, chunk int, dur time.Duration) (int64, error) {
	if chunk <= 0 {
		chunk = 16384
	}
	buf := make([]byte, chunk)
	n := (total + int64(chunk) - 1) / int64(chunk)
	start := time.Now()
	var sent int64
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		sz := int64(chunk)
		if total-sent < sz {
			sz = total - sent
		}
		m, err := w.Write(buf[:sz])
		sent += int64(m)
		if err != nil {
			return sent, err
		}
		if n > 1 {
			if d := time.Until(start.Add(dur * time.Duration(i+1) / time.Duration(n))); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return sent, ctx.Err()
}

// dialTCP connects to peer from local (an address; "" means LocalIP).
func dialTCP(peer string, local ...string) (*net.TCPConn, error) {
	from := LocalIP
	if len(local) > 0 && local[0] != "" {
		a, err := netip.ParseAddr(local[0])
		if err != nil {
			return nil, err
		}
		from = a
	}
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	c, err := d.Dial("tcp", peer)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

func rolePeerTCP(ctx context.Context, f roleFlags, rep *Report) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			var recv, sent int64
			if f.expect > 0 {
				n, _ := io.CopyN(io.Discard, c, f.expect)
				recv += n
				if f.reply > 0 {
					m, _ := c.Write(make([]byte, f.reply))
					sent += int64(m)
				}
			}
			n, _ := io.Copy(io.Discard, c)
			rep.add(nil, sent, recv+n)
		}()
	}
	wg.Wait()
	return nil
}

func rolePeerUDP(ctx context.Context, f roleFlags, rep *Report) error {
	pc, err := net.ListenPacket("udp", f.listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); pc.Close() }()
	buf := make([]byte, 65536)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return nil
		}
		rep.add(nil, 0, int64(n))
	}
}

// roleBulk: one TCP connection sending -bytes over -dur (also the
// PID-reuse programs "reuse-a"/"reuse-b").
func roleBulk(ctx context.Context, f roleFlags, rep *Report) error {
	c, err := dialTCP(f.peer, f.local)
	if err != nil {
		return err
	}
	sent, err := paced(ctx, c, f.bytes, f.chunk, f.dur)
	rep.add(c, sent, 0)
	c.CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
	return err
}

// roleChurn: -n connections one after another, each sending -bytes,
// reading -expect bytes and living 200 ms.
func roleChurn(ctx context.Context, f roleFlags, rep *Report) error {
	for i := 0; i < f.n && ctx.Err() == nil; i++ {
		if err := request(f, "", 200*time.Millisecond, rep); err != nil {
			return err
		}
	}
	return nil
}

// roleFlood: -n short connections to -peer, paced evenly over -dur, from
// the addresses in -local (comma-separated) in turn: each sends -bytes,
// reads -expect and closes (an HTTP flood's bots, one request per
// connection).
func roleFlood(ctx context.Context, f roleFlags, rep *Report) error {
	from := strings.Split(f.local, ",")
	start := time.Now()
	for i := 0; i < f.n && ctx.Err() == nil; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * f.dur / time.Duration(f.n))))
		if err := request(f, from[i%len(from)], 0, rep); err != nil {
			return err
		}
	}
	return nil
}

// roleHTTPD: a net/http server on -listen with no timeouts (a server a
// slow-request attack works against), answering every request with -reply
// bytes.
func roleHTTPD(ctx context.Context, f roleFlags, rep *Report) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	body := make([]byte, f.reply)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n, _ := w.Write(body)
		reportMu.Lock()
		rep.Sent += int64(n)
		reportMu.Unlock()
	})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// roleSlowloris: -n connections to -peer, spread over the -local addresses,
// each sending the start of an HTTP request and then one more header line
// every -dur/6 for -dur, never ending the headers (Slowloris), then
// closing. The report counts the connections and the bytes sent.
func roleSlowloris(ctx context.Context, f roleFlags, rep *Report) error {
	from := strings.Split(f.local, ",")
	conns := make([]*net.TCPConn, 0, f.n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var sent int64
	for i := 0; i < f.n; i++ {
		c, err := dialTCP(f.peer, from[i%len(from)])
		if err != nil {
			return err
		}
		conns = append(conns, c)
		m, err := fmt.Fprintf(c, "GET /?%d HTTP/1.1\r\nHost: %s\r\nUser-Agent: Mozilla/5.0\r\n", i, f.peer)
		if err != nil {
			return err
		}
		sent += int64(m)
	}
	for k := 0; k < 6 && ctx.Err() == nil; k++ {
		time.Sleep(f.dur / 6)
		for i, c := range conns {
			m, err := fmt.Fprintf(c, "X-a: %d\r\n", 1000+i)
			if err != nil {
				return err
			}
			sent += int64(m)
		}
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	rep.Sent += sent
	for _, c := range conns {
		rep.Conns = append(rep.Conns, ConnReport{Proto: "tcp", Local: c.LocalAddr().String(), Remote: c.RemoteAddr().String()})
	}
	return nil
}

// roleHTTPGet: -n HTTP GETs of http://-peer/ from the -local address over
// -dur, a new connection each, every answer read whole.
func roleHTTPGet(ctx context.Context, f roleFlags, rep *Report) error {
	from, err := netip.ParseAddr(f.local)
	if err != nil {
		return err
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	start := time.Now()
	for i := 0; i < f.n && ctx.Err() == nil; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * f.dur / time.Duration(f.n))))
		resp, err := cl.Get("http://" + f.peer + "/")
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		reportMu.Lock()
		rep.Recv += n
		reportMu.Unlock()
	}
	return nil
}

// request makes one connection to -peer from local (see dialTCP), sends
// -bytes, reads -expect and closes once the connection has lived at least
// life.
func request(f roleFlags, local string, life time.Duration, rep *Report) error {
	start := time.Now()
	c, err := dialTCP(f.peer, local)
	if err != nil {
		return err
	}
	defer c.Close()
	sent, err := c.Write(make([]byte, f.bytes))
	if err != nil {
		return err
	}
	recv, _ := io.CopyN(io.Discard, c, f.expect)
	time.Sleep(time.Until(start.Add(life)))
	rep.add(c, int64(sent), recv)
	return nil
}

// roleUDP: an unconnected UDP socket bound to -local sending -n datagrams
// of -bytes to -peer over -dur.
func roleUDP(ctx context.Context, f roleFlags, rep *Report) error {
	pc, err := net.ListenPacket("udp", f.local)
	if err != nil {
		return err
	}
	defer pc.Close()
	dst, err := net.ResolveUDPAddr("udp", f.peer)
	if err != nil {
		return err
	}
	buf := make([]byte, f.bytes)
	start := time.Now()
	var sent int64
	for i := 0; i < f.n && ctx.Err() == nil; i++ {
		m, err := pc.WriteTo(buf, dst)
		if err != nil {
			return err
		}
		sent += int64(m)
		time.Sleep(time.Until(start.Add(f.dur * time.Duration(i+1) / time.Duration(f.n))))
	}
	reportMu.Lock()
	rep.Sent += sent
	rep.Conns = append(rep.Conns, ConnReport{Proto: "udp", Local: pc.LocalAddr().String(), Remote: dst.String()})
	reportMu.Unlock()
	return nil
}

// roleServer: listens on -listen, serves -n connections: read -expect
// bytes, reply -reply bytes, close.
func roleServer(ctx context.Context, f roleFlags, rep *Report) error {
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	var wg sync.WaitGroup
	for i := 0; i < f.n; i++ {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			recv, _ := io.CopyN(io.Discard, c, f.expect)
			sent, _ := c.Write(make([]byte, f.reply))
			rep.add(c, int64(sent), recv)
			c.Close()
		}()
	}
	wg.Wait()
	ln.Close()
	return nil
}

// roleClients (peer side): -n clients to -peer, started 300 ms apart, each
// sending -bytes over -dur and reading the reply.
func roleClients(ctx context.Context, f roleFlags, rep *Report) error {
	var wg sync.WaitGroup
	errs := make(chan error, f.n)
	for i := 0; i < f.n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", f.peer, 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			sent, err := paced(ctx, c, f.bytes, f.chunk, f.dur)
			recv, _ := io.Copy(io.Discard, c)
			rep.add(c, sent, recv)
			if err != nil {
				errs <- err
			}
		}()
		time.Sleep(300 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// roleFork: connects, sends -bytes over -dur, hands the socket to a child
// ("fb-forkchild", fd 3) that sends -bytes more while the parent keeps its
// descriptor, then sends -bytes again after the child exits.
func roleFork(ctx context.Context, f roleFlags, rep *Report) error {
	c, err := dialTCP(f.peer)
	if err != nil {
		return err
	}
	defer c.Close()
	s1, err := paced(ctx, c, f.bytes, f.chunk, f.dur)
	if err != nil {
		return err
	}
	file, err := c.File()
	if err != nil {
		return err
	}
	defer file.Close()
	exe := filepath.Join(filepath.Dir(os.Args[0]), "fb-forkchild")
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if err := ensureLink(self, exe); err != nil {
		return err
	}
	child := exec.CommandContext(ctx, exe, "-bytes", strconv.FormatInt(f.bytes, 10), "-dur", f.dur.String())
	child.ExtraFiles = []*os.File{file}
	childReport := os.Getenv(reportEnv) + ".child.json"
	child.Env = append(os.Environ(), roleEnv+"=forkchild", reportEnv+"="+childReport)
	child.Stderr = os.Stderr
	if err := child.Run(); err != nil {
		return fmt.Errorf("fork child: %w", err)
	}
	s2, err := paced(ctx, c, f.bytes, f.chunk, f.dur)
	rep.add(c, s1+s2, 0)
	c.CloseWrite()
	io.Copy(io.Discard, c)
	return err
}

func roleForkChild(ctx context.Context, f roleFlags, rep *Report) error {
	file := os.NewFile(3, "inherited-socket")
	c, err := net.FileConn(file)
	if err != nil {
		return err
	}
	defer c.Close()
	sent, err := paced(ctx, c, f.bytes, f.chunk, f.dur)
	rep.add(c, sent, 0)
	return err
}

// roleCollect runs `flowblame collect` (collect.Run) in the helper's netns
// until SIGTERM: -iface (empty: the default selection), -out (bundle
// directory, not tarred), -interval.
func roleCollect(args []string) error {
	fs := flag.NewFlagSet("collect", flag.ContinueOnError)
	iface := fs.String("iface", "", "interface to capture")
	out := fs.String("out", "", "bundle directory")
	interval := fs.Duration("interval", time.Second, "socket inventory interval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var ifaces []string // "": the default, every interface that is up (and those coming up)
	if *iface != "" {
		ifaces = []string{*iface}
	}
	_, err := collect.Run(ctx, collect.Options{Interfaces: ifaces, Interval: *interval, Out: *out,
		NoTar: true, MinFree: -1, Tool: "flowblame e2e"})
	return err
}

//go:build linux

package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// Addresses of the live test: documentation ranges only (never the uplink).
const (
	liveA4 = "198.51.100.1"
	liveB4 = "198.51.100.2"
	liveA6 = "2001:db8:99::1"
	liveB6 = "2001:db8:99::2"
	liveIf = "vethA"
)

// liveRun is one iftop invocation running next to the capture.
type liveRun struct {
	name  string
	args  []string
	opts  func(o *analyze.IftopOptions)
	cmd   *exec.Cmd
	out   bytes.Buffer
	err   bytes.Buffer
	done  chan struct{}
	state error
}

// TestIftopMatchesRealIftop runs the installed iftop (1.0pre4) on a veth in
// a network namespace while tcpdump captures the same interface, sends
// deterministic UDP traffic between two namespaces, then replays the pcap
// through analyze.Iftop + RenderIftop and compares stdout byte for byte.
// iftop's clock is time(NULL) when libpcap hands it the packet (up to 1 s
// late, in blocks); the replay first tries t = floor(ts), then the block
// model with φ ∈ {0, 0.1, …, 0.9} (spec/iftop.md §1.5) and reports which
// one reproduced the output.
func TestIftopMatchesRealIftop(t *testing.T) {
	ci := os.Getenv("CI") == "true"
	skip := func(format string, args ...any) {
		t.Helper()
		if ci {
			t.Fatalf("CI=true: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("needs root to create network namespaces (set CI=true to fail instead of skipping)")
	}
	if testing.Short() && !ci {
		t.Skip("runs real iftop for about 20 s; skipped with -short")
	}
	for _, tool := range []string{"ip", "iftop", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s not installed (apt: iproute2, iftop, tcpdump)", tool)
		}
	}
	const S = 16 // iftop -s
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "fbiftop-a-"+tag, "fbiftop-b-"+tag
	macA, _ := setupVethPair(t, nsA, nsB)

	dir := t.TempDir()
	pcapPath := filepath.Join(dir, "vethA.pcap")
	tcpdump := startTcpdump(t, nsA, pcapPath)

	runs := []*liveRun{
		{name: "-P", args: []string{"-P"}, opts: func(o *analyze.IftopOptions) { o.PortDisplay = analyze.IftopPortsOn }},
		{name: "default", opts: func(o *analyze.IftopOptions) {}},
		{name: "-B", args: []string{"-B"}, opts: func(o *analyze.IftopOptions) { o.Bytes = true }},
		{name: "-P -F", args: []string{"-P", "-F", liveB4 + "/32"}, opts: func(o *analyze.IftopOptions) {
			o.PortDisplay = analyze.IftopPortsOn
			o.NetFilter4 = netip.MustParsePrefix(liveB4 + "/32")
		}},
		{name: "-P -G -o 2s -L 4", args: []string{"-P", "-G", liveB6 + "/128", "-o", "2s", "-L", "4"}, opts: func(o *analyze.IftopOptions) {
			o.PortDisplay = analyze.IftopPortsOn
			o.NetFilter6 = netip.MustParsePrefix(liveB6 + "/128")
			o.Order = analyze.IftopOrder2s
			o.Lines = 4
		}},
		{name: "-o source", args: []string{"-o", "source"}, opts: func(o *analyze.IftopOptions) { o.Order = analyze.IftopOrderSource }},
	}
	// Start iftop early in a second so that its time(NULL) start is
	// unambiguous.
	sleepUntil(time.Now().Truncate(time.Second).Add(time.Second + 100*time.Millisecond))
	start := time.Now()
	k := start.Unix()
	for _, r := range runs {
		args := append([]string{"netns", "exec", nsA, "iftop", "-t", "-s", fmt.Sprint(S), "-n", "-N", "-L", "100", "-i", liveIf}, r.args...)
		r.cmd = exec.Command("ip", args...)
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.err
		r.done = make(chan struct{})
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("start iftop %s: %v", r.name, err)
		}
		go func(r *liveRun) { r.state = r.cmd.Wait(); close(r.done) }(r)
	}
	t.Cleanup(func() {
		for _, r := range runs {
			select {
			case <-r.done:
			default:
				_ = r.cmd.Process.Kill()
				<-r.done
			}
		}
	})
	if time.Now().Unix() != k {
		t.Logf("iftop start straddled a second boundary; a phase artefact may follow")
	}

	socks := openLiveSockets(t, nsA, nsB)
	at := func(sec float64) time.Time { return time.Unix(k, 0).Add(time.Duration(sec * float64(time.Second))) }
	send := func(c *net.UDPConn, to *net.UDPAddr, n, ipLen int, v6 bool) {
		t.Helper()
		hdr := 28
		if v6 {
			hdr = 48
		}
		payload := make([]byte, ipLen-hdr)
		for i := 0; i < n; i++ {
			if _, err := c.WriteToUDP(payload, to); err != nil {
				t.Fatalf("send: %v", err)
			}
		}
	}
	// Traffic at x.5 s of wall time, away from iftop's second boundaries.
	// Second 1.5 ticks or not depending on the libpcap block phase; the
	// idle gap 10-14 s is one rotation; frames between two foreign hosts
	// exercise the IN_MULTICAST byte-order bug and the LE address compare.
	sleepUntil(at(1.5))
	send(socks.a4, socks.b4addr, 2, 400, false)
	sleepUntil(at(2.5))
	send(socks.a4, socks.b4addr, 10, 1000, false)
	send(socks.b4x, socks.a4xaddr, 5, 500, false)
	sleepUntil(at(3.5))
	send(socks.a6, socks.b6addr, 8, 1000, true)
	send(socks.b6, socks.a6addr, 4, 500, true)
	for s := 4.5; s < 10; s++ {
		sleepUntil(at(s))
		send(socks.a4, socks.b4addr, 3, 300, false)
		send(socks.b4, socks.a4addr, 2, 200, false)
		switch s {
		case 5.5:
			// TCP and UDP on the same ports are two lines with -P.
			socks.tcpConnect(t, nsA, 6000, 300)
		case 6.5:
			socks.sendForeign(t, "198.51.100.240", "198.51.100.9", 3333, 4444, 100, 2)
			socks.sendForeign(t, "198.51.100.240", "198.51.100.230", 1111, 2222, 100, 1)
		case 7.5:
			socks.tcpClose()
		}
	}
	sleepUntil(at(14.5))
	send(socks.a4x, socks.b4xaddr, 4, 700, false)
	// Triggers: one small packet a second until every iftop has printed.
	for s := float64(S) + 0.5; s < S+6; s++ {
		sleepUntil(at(s))
		if allDone(runs) {
			break
		}
		send(socks.b4x, socks.a4xaddr, 1, 100, false)
	}
	deadline := time.After(3 * time.Second)
	for _, r := range runs {
		select {
		case <-r.done:
		case <-deadline:
			_ = r.cmd.Process.Kill()
			<-r.done
			t.Errorf("iftop %s did not finish: stderr %q", r.name, r.err.String())
		}
	}
	stopTcpdump(t, tcpdump)

	pkts := readLivePcap(t, pcapPath)
	t.Logf("captured %d packets; iftop started at %s", len(pkts), start.UTC().Format("15:04:05.000"))
	type model struct {
		name     string
		emulate  bool
		phase    float64
		describe string
	}
	models := []model{{name: "floor(ts)"}}
	for i := 0; i < 10; i++ {
		models = append(models, model{name: fmt.Sprintf("φ=%.1f", float64(i)/10), emulate: true, phase: float64(i) / 10})
	}
	failed := false
	for _, r := range runs {
		want := r.out.String()
		if !strings.Contains(want, "====") {
			t.Errorf("iftop %s printed no screen: stdout %q stderr %q", r.name, want, r.err.String())
			failed = true
			continue
		}
		var first string
		matched := ""
		for _, m := range models {
			opts := analyze.IftopOptions{
				At: S, Lines: 100, Interface: liveIf, Start: start.UnixNano(),
				LocalIPv4: netip.MustParseAddr(liveA4), LocalIPv6: netip.MustParseAddr(liveA6), LocalMAC: macA,
				EmulateBlocks: m.emulate, Phase: m.phase,
			}
			r.opts(&opts)
			scr, err := analyze.Iftop(context.Background(), &memSource{pkts: pkts, name: liveIf}, opts)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := RenderIftop(&buf, scr); err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = buf.String()
			}
			if buf.String() == want {
				if matched != "" {
					matched += ", "
				}
				matched += m.name
			}
		}
		if matched == "" {
			failed = true
			t.Errorf("iftop %s: no clock model reproduces iftop's stdout; diff against floor(ts) (-iftop +flowblame):\n%s",
				r.name, cmp.Diff(want, first))
			continue
		}
		t.Logf("iftop %s reproduced byte for byte with clock model(s) %s (%d bytes):\n%s", r.name, matched, len(want), want)
	}
	if failed {
		keep := filepath.Join(os.TempDir(), fmt.Sprintf("flowblame-iftop-live-%s.pcap", tag))
		if b, err := os.ReadFile(pcapPath); err == nil && os.WriteFile(keep, b, 0o644) == nil {
			t.Logf("capture kept at %s (iftop start %d ns)", keep, start.UnixNano())
		}
	}
}

func allDone(runs []*liveRun) bool {
	for _, r := range runs {
		select {
		case <-r.done:
		default:
			return false
		}
	}
	return true
}

func sleepUntil(when time.Time) {
	if d := time.Until(when); d > 0 {
		time.Sleep(d)
	}
}

func liveCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// setupVethPair creates two namespaces joined by vethA/vethB with
// documentation addresses, static neighbours (no ARP/NDP on the wire) and
// verified routes; it returns both MACs. Cleanup deletes the namespaces.
func setupVethPair(t *testing.T, nsA, nsB string) (macA, macB []byte) {
	t.Helper()
	for _, ns := range []string{nsA, nsB} {
		liveCmd(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	liveCmd(t, "ip", "link", "add", liveIf, "netns", nsA, "type", "veth", "peer", "name", "vethB", "netns", nsB)
	type side struct{ ns, dev, v4, v6, peer4, peer6 string }
	sides := []side{{nsA, liveIf, liveA4, liveA6, liveB4, liveB6}, {nsB, "vethB", liveB4, liveB6, liveA4, liveA6}}
	for _, s := range sides {
		// No link-local address: no DAD/MLD/RS chatter from fe80::.
		_ = exec.Command("ip", "-n", s.ns, "link", "set", s.dev, "addrgenmode", "none").Run()
		for _, k := range []string{"accept_ra=0", "router_solicitations=0"} {
			_ = exec.Command("ip", "netns", "exec", s.ns, "sysctl", "-qw", "net.ipv6.conf."+s.dev+"."+k).Run()
		}
		liveCmd(t, "ip", "-n", s.ns, "addr", "add", s.v4+"/24", "dev", s.dev)
		liveCmd(t, "ip", "-n", s.ns, "addr", "add", s.v6+"/64", "dev", s.dev, "nodad")
		liveCmd(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
		liveCmd(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
		if _, err := exec.LookPath("ethtool"); err == nil {
			_ = exec.Command("ip", "netns", "exec", s.ns, "ethtool", "-K", s.dev, "tso", "off", "gso", "off", "gro", "off").Run()
		}
	}
	macs := make([][]byte, 2)
	for i, s := range sides {
		var links []struct {
			Address string `json:"address"`
		}
		if err := json.Unmarshal([]byte(liveCmd(t, "ip", "-j", "-n", s.ns, "link", "show", s.dev)), &links); err != nil || len(links) != 1 {
			t.Fatalf("read MAC of %s: %v", s.dev, err)
		}
		mac, err := net.ParseMAC(links[0].Address)
		if err != nil {
			t.Fatal(err)
		}
		macs[i] = mac
	}
	for i, s := range sides {
		peerMAC := net.HardwareAddr(macs[1-i]).String()
		liveCmd(t, "ip", "-n", s.ns, "neigh", "replace", s.peer4, "lladdr", peerMAC, "dev", s.dev, "nud", "permanent")
		liveCmd(t, "ip", "-n", s.ns, "neigh", "replace", s.peer6, "lladdr", peerMAC, "dev", s.dev, "nud", "permanent")
		for _, dst := range []string{s.peer4, s.peer6} {
			if out := liveCmd(t, "ip", "-n", s.ns, "route", "get", dst); !strings.Contains(out, "dev "+s.dev+" ") {
				t.Fatalf("route to %s in %s does not use %s: %s", dst, s.ns, s.dev, out)
			}
		}
	}
	time.Sleep(2 * time.Second) // let link-up chatter (MLD reports) pass
	return macs[0], macs[1]
}

func startTcpdump(t *testing.T, ns, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", liveIf, "-w", path, "-s", "256", "-U", "-n")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tcpdump: %v", err)
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				ready <- nil
				_, _ = io.Copy(io.Discard, stderr)
				return
			}
		}
		ready <- errors.New("tcpdump exited before listening")
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("tcpdump did not start listening")
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func stopTcpdump(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// readLivePcap reads the capture through ingest.OpenCapture, the reader
// flowblame analyze uses.
func readLivePcap(t *testing.T, path string) []ingest.Packet {
	t.Helper()
	src, err := ingest.OpenCapture(path, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var pkts []ingest.Packet
	for {
		var p ingest.Packet
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Payload = nil
		pkts = append(pkts, p)
	}
	for _, d := range src.Diagnostics() {
		t.Logf("capture diagnostic: %s", d)
	}
	return pkts
}

// liveSockets are UDP sockets bound inside the two namespaces.
type liveSockets struct {
	tcpLn                    *net.TCPListener // in nsB on 198.51.100.2:6000
	tcp                      *net.TCPConn     // from nsA, 198.51.100.1:5000
	tcpDone                  chan struct{}
	raw                      int // AF_PACKET socket on vethB
	rawIdx                   int
	rawMACs                  [2]net.HardwareAddr
	a4, a4x, a6, b4, b4x, b6 *net.UDPConn
	a4addr, a4xaddr, a6addr  *net.UDPAddr
	b4addr, b4xaddr, b6addr  *net.UDPAddr
}

func openLiveSockets(t *testing.T, nsA, nsB string) *liveSockets {
	t.Helper()
	s := &liveSockets{
		a4addr: &net.UDPAddr{IP: net.ParseIP(liveA4), Port: 5000}, a4xaddr: &net.UDPAddr{IP: net.ParseIP(liveA4), Port: 5001},
		a6addr: &net.UDPAddr{IP: net.ParseIP(liveA6), Port: 5000},
		b4addr: &net.UDPAddr{IP: net.ParseIP(liveB4), Port: 6000}, b4xaddr: &net.UDPAddr{IP: net.ParseIP(liveB4), Port: 6001},
		b6addr: &net.UDPAddr{IP: net.ParseIP(liveB6), Port: 6000},
	}
	listen := func(ns string, specs map[**net.UDPConn]*net.UDPAddr) {
		err := inNetns(ns, func() error {
			for c, a := range specs {
				conn, err := net.ListenUDP("udp", a)
				if err != nil {
					return err
				}
				*c = conn
			}
			return nil
		})
		if err != nil {
			t.Fatalf("open sockets in %s: %v", ns, err)
		}
	}
	listen(nsA, map[**net.UDPConn]*net.UDPAddr{&s.a4: s.a4addr, &s.a4x: s.a4xaddr, &s.a6: s.a6addr})
	listen(nsB, map[**net.UDPConn]*net.UDPAddr{&s.b4: s.b4addr, &s.b4x: s.b4xaddr, &s.b6: s.b6addr})
	err := inNetns(nsB, func() error {
		ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(liveB4), Port: 6000})
		s.tcpLn = ln
		return err
	})
	if err != nil {
		t.Fatalf("listen TCP in %s: %v", nsB, err)
	}
	s.tcpDone = make(chan struct{})
	go func() {
		defer close(s.tcpDone)
		c, err := s.tcpLn.Accept()
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c) // until the client closes
		c.Close()
	}()
	s.raw = -1
	err = inNetns(nsB, func() error {
		ifc, err := net.InterfaceByName("vethB")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // send only
		if err != nil {
			return err
		}
		s.raw, s.rawIdx = fd, ifc.Index
		return nil
	})
	if err != nil {
		t.Fatalf("open packet socket in %s: %v", nsB, err)
	}
	s.rawMACs = [2]net.HardwareAddr{{0x02, 0, 0, 0, 0x99, 0x0c}, {0x02, 0, 0, 0, 0x99, 0x0d}}
	t.Cleanup(func() {
		if s.raw >= 0 {
			unix.Close(s.raw)
		}
		s.tcpLn.Close()
		if s.tcp != nil {
			s.tcp.Close()
		}
		for _, c := range []*net.UDPConn{s.a4, s.a4x, s.a6, s.b4, s.b4x, s.b6} {
			if c != nil {
				c.Close()
			}
		}
	})
	return s
}

// inNetns runs f on an OS thread switched into the named network namespace.
// Sockets created by f stay in that namespace. If the thread cannot be
// switched back it stays locked and dies with its goroutine.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", name))
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// sendForeign injects n UDP frames between two hosts that are not the
// capturing interface (MACs and addresses foreign to vethA) from vethB.
func (s *liveSockets) sendForeign(t *testing.T, src, dst string, sport, dport, ipLen, n int) {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: s.rawMACs[0], DstMAC: s.rawMACs[1], EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, udp, gopacket.Payload(make([]byte, ipLen-28)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := unix.Sendto(s.raw, buf.Bytes(), 0, &unix.SockaddrLinklayer{Ifindex: s.rawIdx}); err != nil {
			t.Fatalf("send foreign frame: %v", err)
		}
	}
}

// tcpConnect opens a TCP connection from nsA (198.51.100.1:5000) to the
// listener in nsB and writes n bytes (one segment).
func (s *liveSockets) tcpConnect(t *testing.T, nsA string, port, n int) {
	t.Helper()
	err := inNetns(nsA, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(liveA4), Port: 5000}}
		c, err := d.Dial("tcp", net.JoinHostPort(liveB4, fmt.Sprint(port)))
		if err != nil {
			return err
		}
		s.tcp = c.(*net.TCPConn)
		return nil
	})
	if err != nil {
		t.Fatalf("TCP connect: %v", err)
	}
	if _, err := s.tcp.Write(make([]byte, n)); err != nil {
		t.Fatalf("TCP write: %v", err)
	}
}

// tcpClose closes the client side and waits for the server to finish.
func (s *liveSockets) tcpClose() {
	if s.tcp != nil {
		s.tcp.Close()
		s.tcp = nil
		<-s.tcpDone
	}
}

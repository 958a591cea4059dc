package collect

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// The end-to-end test builds two network namespaces joined by a veth pair
// (198.51.100.1 in A, 198.51.100.2 in B), runs the collector in A on its
// veth end (this test binary re-executed with FB_E2E_MODE=collect), sends
// known UDP and TCP volumes from B (FB_E2E_MODE=send), and checks that the
// capture holds exactly the frames the interface counters saw.

const (
	e2eAddrA  = "198.51.100.1"
	e2eAddrB  = "198.51.100.2"
	e2eUDP    = 5202
	e2eTCP    = 5201
	e2eDgrams = 300
	e2eTCPLen = 2 << 20
)

func TestE2EHelper(t *testing.T) {
	switch os.Getenv("FB_E2E_MODE") {
	case "collect":
		e2eCollect(t)
	case "send":
		e2eSend(t)
	default:
		t.Skip("helper process for TestE2ENetns")
	}
}

// e2eCollect runs in namespace A: UDP and TCP sinks plus the collector,
// until SIGTERM.
func e2eCollect(t *testing.T) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if os.Getenv("FB_E2E_IFACE") != "lo" {
		stopSinks := e2eSinks(t)
		defer stopSinks()
	}
	dir := os.Getenv("FB_E2E_DIR")
	go func() {
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(filepath.Join(dir, ingest.CaptureDir, "00000.pcapng")); err == nil {
				fmt.Println("READY")
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res, err := Run(ctx, Options{Interfaces: []string{os.Getenv("FB_E2E_IFACE")}, Out: dir, NoTar: true, MinFree: -1, Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("DONE", res.Manifest.Capture.StopReason)
}

// e2eSinks listens for the sender's UDP datagrams and TCP stream.
func e2eSinks(t *testing.T) (stop func()) {
	uc, err := net.ListenPacket("udp4", net.JoinHostPort(e2eAddrA, fmt.Sprint(e2eUDP)))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := uc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	ln, err := net.Listen("tcp4", net.JoinHostPort(e2eAddrA, fmt.Sprint(e2eTCP)))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	return func() { uc.Close(); ln.Close() }
}

// e2eSend runs in namespace B and sends the known volumes.
func e2eSend(t *testing.T) {
	uc, err := net.Dial("udp4", net.JoinHostPort(e2eAddrA, fmt.Sprint(e2eUDP)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 500)
	for i := 0; i < e2eDgrams; i++ {
		if _, err := uc.Write(buf); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // stay below the receiver's socket buffer
		}
	}
	uc.Close()
	tc, err := net.Dial("tcp4", net.JoinHostPort(e2eAddrA, fmt.Sprint(e2eTCP)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write(make([]byte, e2eTCPLen)); err != nil {
		t.Fatal(err)
	}
	tc.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, tc) // wait for the server's FIN
	tc.Close()
	fmt.Println("SENT")
}

func ipCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestE2ENetns(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("end-to-end capture test (-short)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("iproute2 (ip) not installed")
	}
	id := os.Getpid() % 100000
	nsA, nsB := fmt.Sprintf("fbcA%d", id), fmt.Sprintf("fbcB%d", id)
	vA, vB := fmt.Sprintf("fbvA%d", id), fmt.Sprintf("fbvB%d", id)
	ipCmd(t, "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	ipCmd(t, "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })
	ipCmd(t, "link", "add", vA, "netns", nsA, "type", "veth", "peer", "name", vB, "netns", nsB)
	for _, s := range []struct{ ns, dev, addr string }{{nsA, vA, e2eAddrA}, {nsB, vB, e2eAddrB}} {
		// no IPv6: no router solicitations or DAD frames outside the test's traffic
		ipCmd(t, "netns", "exec", s.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		ipCmd(t, "-n", s.ns, "addr", "add", s.addr+"/24", "dev", s.dev)
		ipCmd(t, "-n", s.ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", s.ns, "link", "set", s.dev, "up")
	}
	if r := ipCmd(t, "-n", nsB, "route", "get", e2eAddrA); !strings.Contains(r, "dev "+vB) {
		t.Fatalf("route to %s does not use the test veth: %s", e2eAddrA, r)
	}
	dir := filepath.Join(t.TempDir(), "bundle")

	col := exec.Command("ip", "netns", "exec", nsA, os.Args[0], "-test.run=^TestE2EHelper$", "-test.v")
	col.Env = append(os.Environ(), "FB_E2E_MODE=collect", "FB_E2E_DIR="+dir, "FB_E2E_IFACE="+vA)
	stdout, _ := col.StdoutPipe()
	var stderr strings.Builder
	col.Stderr = &stderr
	if err := col.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { col.Process.Kill(); col.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func(prefix string) string {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					col.Wait()
					t.Fatalf("collector exited before %s:\n%s", prefix, stderr.String())
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
				t.Log("collector:", l)
			case <-timeout:
				t.Fatalf("timeout waiting for %s", prefix)
			}
		}
	}
	wait("READY")

	send := exec.Command("ip", "netns", "exec", nsB, os.Args[0], "-test.run=^TestE2EHelper$", "-test.v")
	send.Env = append(os.Environ(), "FB_E2E_MODE=send")
	if out, err := send.CombinedOutput(); err != nil || !strings.Contains(string(out), "SENT") {
		t.Fatalf("sender: %v\n%s", err, out)
	}
	ipCmd(t, "-n", nsA, "addr", "add", "198.51.100.11/24", "dev", vA)
	time.Sleep(2500 * time.Millisecond) // last ACKs; address polls (1/s)
	col.Process.Signal(syscall.SIGTERM)
	if l := wait("DONE"); l != "DONE "+StopSignal {
		t.Errorf("collector: %q", l)
	}
	col.Wait()

	// The manifest: counters and kernel statistics of the veth.
	f, err := os.Open(filepath.Join(dir, ingest.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ingest.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ifc *ingest.IfaceInfo
	for i := range m.Interfaces {
		if m.Interfaces[i].Name == vA {
			ifc = &m.Interfaces[i]
		}
	}
	if ifc == nil || ifc.CountersStart == nil || ifc.CountersEnd == nil || !ifc.Captured {
		t.Fatalf("manifest lacks %s or its counters: %+v", vA, m.Interfaces)
	}
	var added bool
	for _, a := range m.AddrChanges {
		added = added || (a.Iface == vA && a.Addr == "198.51.100.11/24" && a.Action == "add")
	}
	if !added {
		t.Errorf("address change not recorded: %+v", m.AddrChanges)
	}
	offered := (ifc.CountersEnd.RxPackets - ifc.CountersStart.RxPackets) + (ifc.CountersEnd.TxPackets - ifc.CountersStart.TxPackets)
	frames, _ := pcapPackets(t, dir)
	var udp int
	for _, fr := range frames {
		if udpDstPort(fr) == e2eUDP {
			udp++
		}
	}
	t.Logf("offered %d (counters), captured %d, kernel received %d dropped %d, udp %d",
		offered, len(frames), ifc.CaptureReceived, ifc.CaptureDropped, udp)
	if uint64(len(frames)) != offered {
		t.Errorf("captured %d frames, interface counters say %d", len(frames), offered)
	}
	if ifc.CaptureDropped != 0 {
		t.Errorf("kernel dropped %d", ifc.CaptureDropped)
	}
	if udp != e2eDgrams {
		t.Errorf("captured %d datagrams, sent %d", udp, e2eDgrams)
	}
	if err := Verify(dir, io.Discard); err != nil {
		t.Errorf("verify: %v", err)
	}

	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: skipping the tshark read-back")
		return
	}
	args := []string{"-r", filepath.Join(dir, ingest.CaptureDir, "00000.pcapng"), "-T", "fields", "-e", "frame.packet_flags_direction"}
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	dirs := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dirs[l]++
	}
	if total := dirs["0x00000001"] + dirs["0x00000002"]; total != len(frames) || dirs["0x00000001"] == 0 || dirs["0x00000002"] == 0 {
		t.Errorf("tshark directions %v, want all %d frames inbound (1) or outbound (2)", dirs, len(frames))
	}
}

// TestKilledBundleReadable SIGKILLs a collector on lo and checks that what
// it left is usable: the partial manifest and the capture up to the last
// once-a-second flush.
func TestKilledBundleReadable(t *testing.T) {
	needRoot(t)
	if testing.Short() {
		t.Skip("kill test (-short)")
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	col := exec.Command(os.Args[0], "-test.run=^TestE2EHelper$")
	col.Env = append(os.Environ(), "FB_E2E_MODE=collect", "FB_E2E_DIR="+dir, "FB_E2E_IFACE=lo")
	stdout, _ := col.StdoutPipe()
	if err := col.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { col.Process.Kill(); col.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "READY" {
	}
	rc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	c, err := net.Dial("udp4", rc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		c.Write([]byte("before the kill"))
	}
	c.Close()
	time.Sleep(3 * time.Second) // several once-a-second flushes
	col.Process.Kill()
	col.Wait()

	f, err := os.Open(filepath.Join(dir, ingest.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ingest.ReadManifest(f)
	f.Close()
	if err != nil {
		t.Fatalf("partial manifest: %v", err)
	}
	if r, err := VerifyBundle(dir); err != nil || !r.Unfinished || r.Intact() {
		t.Errorf("verify of a killed bundle: %+v, %v", r, err)
	}
	if m.Capture.StopReason != StopRunning || m.Capture.Start == 0 || len(m.Interfaces) == 0 {
		t.Errorf("partial manifest: %+v", m.Capture)
	}
	port := rc.LocalAddr().(*net.UDPAddr).Port
	frames, _ := pcapPackets(t, dir)
	var n int
	for _, fr := range frames {
		if udpDstPort(fr) == port {
			n++
		}
	}
	if n != 20 {
		t.Errorf("killed capture holds %d of the 20 datagrams sent 2.5 s before the kill", n)
	}
}

package collect

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/flowblame/flowblame/collect/sockwatch"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/internal/dnsmsg"
	"github.com/gopacket/gopacket/pcapgo"
)

// needRoot skips a test that needs root, unless CI=true (then it fails).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (CI=true: not skipping)")
		}
		t.Skip("needs root (AF_PACKET capture, network namespaces)")
	}
}

// fakeSockets writes one snapshot record and one process, then waits.
func fakeSockets(ctx context.Context, _ sockwatch.Config, sink sockwatch.Sink) (sockwatch.Stats, error) {
	if err := sink.Process(ingest.ProcessInfo{PID: 1, Comm: "init"}); err != nil {
		return sockwatch.Stats{}, err
	}
	<-ctx.Done()
	err := sink.Socket(ingest.SocketRecord{Kind: "snapshot", T: 1, Seq: 1})
	return sockwatch.Stats{Snapshots: 1}, err
}

// pcapPackets reads every capture file of a bundle directory in name order
// and returns the frames.
func pcapPackets(t *testing.T, dir string) (frames [][]byte, flags []uint32) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, ingest.CaptureDir, "*.pcapng"))
	sort.Strings(names)
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		for {
			data, _, err := r.ReadPacketData()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			frames = append(frames, data)
		}
		f.Close()
	}
	return frames, nil
}

// udpDstPort returns the UDP destination port of an Ethernet/IPv4 frame.
func udpDstPort(f []byte) int { return udpPort(f, 2) }

func udpSrcPort(f []byte) int { return udpPort(f, 0) }

// udpPort returns the UDP port at offset at (0 source, 2 destination) of
// an Ethernet/IPv4 frame, or -1.
func udpPort(f []byte, at int) int {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[23] != 17 {
		return -1
	}
	ihl := int(f[14]&0xf) * 4
	if len(f) < 14+ihl+4 {
		return -1
	}
	return int(binary.BigEndian.Uint16(f[14+ihl+at:]))
}

func TestRunLoopback(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name   string
		filter bool // capture only the test's UDP port
	}{
		{"no filter", false},
		{"udp port filter", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.filter {
				if _, err := exec.LookPath("tcpdump"); err != nil {
					t.Skip("tcpdump not installed")
				}
			}
			runLoopback(t, tc.filter)
		})
	}
}

// runLoopback collects on lo while sending 50 datagrams and checks each was
// captured exactly once (no PACKET_OUTGOING duplicate), truncated to the
// snaplen, and with a filter that nothing else was.
func runLoopback(t *testing.T, filter bool) {
	dir := filepath.Join(t.TempDir(), "b")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := conn.LocalAddr().(*net.UDPAddr).Port
	opts := Options{Interfaces: []string{"lo"}, Out: dir, NoTar: true, Sockets: fakeSockets, MinFree: -1}
	if filter {
		opts.Filter = fmt.Sprintf("udp dst port %d", port)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type out struct {
		r   *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := Run(ctx, opts)
		done <- out{r, err}
	}()
	// wait for the capture file to appear: the ring is open by then
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, ingest.CaptureDir, "00000.pcapng")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := net.Dial("udp4", conn.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	payload := make([]byte, 1000)
	for range n {
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	// a Stratum-like JSON-RPC line over TCP: kept beyond the snaplen
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if a, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, a)
			a.Close()
		}
	}()
	tc, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Unique to this run: another test process capturing loopback at the
	// same time sends its own line.
	stratum := fmt.Sprintf(`{"id":1,"method":"mining.subscribe","params":["flowblame-test/%d-%d"]}`, os.Getpid(), time.Now().UnixNano()) + "\n"
	tc.Write([]byte(stratum))
	tc.Close()
	// a DNS query with a long name (to a closed port 53 on 127.0.0.1:
	// nothing needs to answer): kept whole beyond the snaplen too
	label := fmt.Sprintf("flowblametest%d%d", os.Getpid(), time.Now().UnixNano()%1e9)
	query := dnsmsg.Query(0x1234, label+".a-rather-long-zone-name-to-pass-ninety-six-bytes.example")
	if dc, err := net.Dial("udp4", "127.0.0.1:53"); err == nil {
		dc.Write(query)
		dc.Close()
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.r.Path != dir || o.r.Manifest.Capture.StopReason != StopSignal || o.r.Manifest.Capture.Filter != opts.Filter {
		t.Errorf("result %q, stop %q, filter %q", o.r.Path, o.r.Manifest.Capture.StopReason, o.r.Manifest.Capture.Filter)
	}
	frames, _ := pcapPackets(t, dir)
	var got, json, dns int
	for _, f := range frames {
		if bytes.HasSuffix(f, []byte(stratum)) {
			json++
			continue
		}
		if bytes.HasSuffix(f, query) {
			dns++
			continue
		}
		if udpDstPort(f) == 53 || udpSrcPort(f) == 53 {
			continue // the host's own DNS traffic on lo: kept whole as well
		}
		if len(f) > 96 {
			t.Fatalf("frame of %d bytes > snaplen", len(f))
		}
		if udpDstPort(f) == port {
			got++
		}
	}
	if got != n {
		t.Errorf("captured %d datagrams to port %d, want %d (loopback duplicates?)", got, port, n)
	}
	if want := map[bool]int{false: 1, true: 0}[filter]; json != want || dns != want {
		t.Errorf("%d frames hold the whole JSON-RPC line and %d the whole DNS query, want %d each", json, dns, want)
	}
	if filter && len(frames) != n {
		t.Errorf("filter let %d other frames through", len(frames)-n)
	}
	if err := Verify(dir, io.Discard); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestRunStops(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name     string
		opts     Options
		wantStop string
	}{
		{"duration, archived", Options{Duration: 1500 * time.Millisecond, MinFree: -1}, StopDuration},
		{"disk floor", Options{MinFree: 1 << 62, NoTar: true}, StopDiskFloor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Interfaces, o.Sockets = []string{"lo"}, fakeSockets
			o.Out = filepath.Join(t.TempDir(), "b")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := Run(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if r.Manifest.Capture.StopReason != tc.wantStop {
				t.Errorf("stop reason %q, want %q", r.Manifest.Capture.StopReason, tc.wantStop)
			}
			wantPath := o.Out
			if !o.NoTar {
				wantPath += ".tar.gz"
				if _, err := os.Stat(o.Out); !os.IsNotExist(err) {
					t.Errorf("bundle directory left behind after archiving: %v", err)
				}
			}
			if r.Path != wantPath {
				t.Errorf("path %q, want %q", r.Path, wantPath)
			}
			rep, err := VerifyBundle(r.Path)
			if err != nil || !rep.Intact() {
				t.Errorf("verify: %+v, %v", rep, err)
			}
			m := r.Manifest
			if m.Clock.MonotonicEnd <= m.Clock.MonotonicStart || m.Capture.End <= m.Capture.Start || len(m.Files) < 4 {
				t.Errorf("manifest clocks/files: %+v %+v %d files", m.Clock, m.Capture, len(m.Files))
			}
		})
	}
}

func TestSelectInterfaces(t *testing.T) {
	// The default selection keeps interfaces whose link type it can
	// capture (read from sysfs): use a real one of this machine.
	up := ""
	if ents, err := os.ReadDir(sysClassNet); err == nil {
		for _, e := range ents {
			if _, err := linkOf(e.Name()); err == nil && e.Name() != "lo" && up == "" {
				up = e.Name()
			}
		}
	}
	if up == "" {
		t.Skip("no capturable interface besides lo")
	}
	ifs := []ingest.IfaceInfo{
		{Name: "lo", Flags: []string{"up", "loopback"}},
		{Name: up, Flags: []string{"up", "broadcast"}},
		{Name: "fbdown0", Flags: []string{"broadcast"}}, // down
	}
	for _, tc := range []struct {
		names []string
		lo    bool
		want  []string
		err   bool
	}{
		{nil, false, []string{up}, false},
		{nil, true, []string{"lo", up}, false},
		{[]string{"any"}, false, []string{"lo", up}, false},
		{[]string{"fbdown0", up, "fbdown0"}, false, []string{"fbdown0", up}, false},
		{[]string{"wlan0"}, false, nil, true},
	} {
		got, err := selectInterfaces(ifs, tc.names, tc.lo)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("selectInterfaces(%v, %v) = %v, %v; want %v (error %v)", tc.names, tc.lo, got, err, tc.want, tc.err)
		}
	}
}

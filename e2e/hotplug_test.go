package e2e

import (
	"context"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// TestHotplugCapture: with the default interface selection, an interface
// that comes up during the collection (a container's veth being created) is
// captured from then on, and one that disappears ends its capture without
// stopping the collection.
func TestHotplugCapture(t *testing.T) {
	RequireRoot(t)
	tp := NewTopology(t)
	newLocal, newPeer := "fb7n"+tp.Local[4:], "fb7o"+tp.Local[4:]
	localAddr, peerAddr := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := NewHelpers(dir, tp)
	coll, err := h.Start(ctx, tp.Local, "collect", "-iface", "", "-out", bundle, "-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	waitFile(filepath.Join(bundle, ingest.SocketsFile), 10*time.Second)
	time.Sleep(500 * time.Millisecond)

	// The new interface comes up after the collection started.
	RunIP(t, []string{"link", "add", newLocal, "netns", tp.Local, "type", "veth", "peer", "name", newPeer, "netns", tp.Peer},
		[]string{"-n", tp.Local, "addr", "add", localAddr.String() + "/24", "dev", newLocal},
		[]string{"-n", tp.Peer, "addr", "add", peerAddr.String() + "/24", "dev", newPeer},
		[]string{"-n", tp.Local, "link", "set", newLocal, "up"},
		[]string{"-n", tp.Peer, "link", "set", newPeer, "up"})
	if out, err := tp.Command(ctx, tp.Peer, "ip", "route", "get", localAddr.String()).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+newPeer) {
		t.Fatalf("route to %s does not use %s: %v: %s", localAddr, newPeer, err, out)
	}
	sinkAddr := netip.AddrPortFrom(localAddr, 5003).String()
	sink, err := h.Start(ctx, tp.Local, "peer-udp", "-listen", sinkAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Cmd.Process.Kill()
	time.Sleep(2500 * time.Millisecond) // the collector looks for new interfaces every second
	const n, size = 200, 400
	udp, err := h.Start(ctx, tp.Peer, "udp", "-local", netip.AddrPortFrom(peerAddr, 5353).String(), "-peer", sinkAddr,
		"-n", strconv.Itoa(n), "-bytes", strconv.Itoa(size), "-dur", "1s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := udp.Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	// ...and goes away before the end: the collection goes on.
	RunIP(t, []string{"-n", tp.Local, "link", "del", newLocal})
	time.Sleep(1500 * time.Millisecond)
	b := StopCollector(t, coll, bundle)
	t.Logf("captured %v; notes %q", b.Manifest.Capture.Interfaces, b.Manifest.Notes)
	if b.Manifest.Capture.StopReason != "signal" {
		t.Errorf("stop reason %q, want signal (the vanished interface must not stop the collection)", b.Manifest.Capture.StopReason)
	}
	if len(b.Manifest.Capture.Interfaces) != 2 || b.Manifest.Capture.Interfaces[1] != newLocal {
		t.Errorf("captured interfaces %v, want %s then %s", b.Manifest.Capture.Interfaces, tp.LocalIf, newLocal)
	}
	var came, gone bool
	for _, note := range b.Manifest.Notes {
		came = came || strings.HasPrefix(note, newLocal) && strings.Contains(note, "came up")
		gone = gone || strings.HasPrefix(note, newLocal) && strings.Contains(note, "disappeared")
	}
	if !came || !gone {
		t.Errorf("notes %q should say %s came up and disappeared", b.Manifest.Notes, newLocal)
	}
	src, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	res, err := analyze.Analyze(context.Background(), src, analyze.Options{Local: b.LocalPrefixes()})
	if err != nil {
		t.Fatal(err)
	}
	var got int64
	for _, f := range res.Flows {
		if f.Key.Proto == ingest.ProtoUDP && f.Key.A.Addr() == localAddr && f.Key.B.Addr() == peerAddr {
			got += f.Traffic.In.Packets
			if name := src.Interfaces()[f.Iface].Name; name != newLocal {
				t.Errorf("flow %v on interface %q, want %s", f.Key, name, newLocal)
			}
		}
	}
	if got != n {
		t.Errorf("captured %d of the %d datagrams sent over the new interface", got, n)
	}
}

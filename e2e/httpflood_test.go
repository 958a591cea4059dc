package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
)

// TestHTTPFloodEndToEnd: 25 "bots" (addresses of the peer namespace) open
// 1,250 short connections to a server in the local namespace, one request
// and one answer each, while the real collector records; the bundle's
// analysis must call it an HTTP flood on the server's port with every
// connection counted, and charge the answers to the server process.
func TestHTTPFloodEndToEnd(t *testing.T) {
	RequireRoot(t)
	tp := NewTopology(t)
	bots := peerAddrs(t, tp, 25)

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := NewHelpers(dir, tp)
	const port, n, req, answer = 8080, 1250, 300, 6000
	srvAddr := netip.AddrPortFrom(LocalIP, port).String()
	srv, err := h.Start(ctx, tp.Local, "peer-tcp", "-listen", srvAddr, "-expect", strconv.Itoa(req), "-reply", strconv.Itoa(answer))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Cmd.Process.Kill()
	waitListen(t, tp, tp.Local, port)
	coll := startCollector(t, ctx, h, bundle)
	flood, err := h.Start(ctx, tp.Peer, "flood", "-peer", srvAddr, "-local", strings.Join(bots, ","),
		"-n", strconv.Itoa(n), "-bytes", strconv.Itoa(req), "-expect", strconv.Itoa(answer), "-dur", "5s")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := flood.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Conns) != n || rep.Recv != n*answer {
		t.Fatalf("the bots made %d connections and read %d B, want %d and %d", len(rep.Conns), rep.Recv, n, n*answer)
	}
	time.Sleep(1500 * time.Millisecond)
	b := StopCollector(t, coll, bundle)

	fs, got := bundleFindings(t, ctx, b, analyze.RuleDDoSTarget)
	ev := strings.Join(got.Evidence, "\n")
	t.Logf("%s\n%s", got.Summary, ev)
	for _, want := range []string{
		fmt.Sprintf("an HTTP flood on port %d", port),
		"from 25 addresses",
	} {
		if !strings.Contains(got.Summary, want) {
			t.Errorf("summary %q lacks %q", got.Summary, want)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("connection flood on local port %d: %d completed connections", port, n),
		"from 25 public addresses that connected 10 times or more each",
		fmt.Sprintf("[%d]", srv.Cmd.Process.Pid), // the server answered
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q", want)
		}
	}
	noAttackerFindings(t, fs)
}

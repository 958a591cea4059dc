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
	"github.com/flowblame/flowblame/ingest"
)

// TestHTTPFloodEndToEnd: 25 "bots" (addresses of the peer namespace) open
// 1,250 short connections to a server in the local namespace, one request
// and one answer each, while the real collector records; the bundle's
// analysis must call it an HTTP flood on the server's port with every
// connection counted, and charge the answers to the server process.
func TestHTTPFloodEndToEnd(t *testing.T) {
	RequireRoot(t)
	tp := NewTopology(t)
	var bots []string
	steps := [][]string{{"-n", tp.Local, "route", "add", "203.0.113.0/24", "dev", tp.LocalIf}}
	for i := range 25 {
		a := fmt.Sprintf("203.0.113.%d", 101+i)
		bots = append(bots, a)
		steps = append(steps, []string{"-n", tp.Peer, "addr", "add", a + "/32", "dev", tp.PeerIf})
	}
	RunIP(t, steps...)
	for _, c := range []struct{ ns, dst, dev string }{{tp.Local, bots[0], tp.LocalIf}, {tp.Local, bots[24], tp.LocalIf}, {tp.Peer, LocalIP.String(), tp.PeerIf}} {
		if out, err := tp.Command(context.Background(), c.ns, "ip", "route", "get", c.dst).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+c.dev) {
			t.Fatalf("route to %s in %s does not use %s: %v: %s", c.dst, c.ns, c.dev, err, out)
		}
	}

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
	coll, err := h.Start(ctx, tp.Local, "collect", "-iface", tp.LocalIf, "-out", bundle, "-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	waitFile(filepath.Join(bundle, ingest.SocketsFile), 10*time.Second)
	time.Sleep(1200 * time.Millisecond)
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

	src, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	local := b.LocalPrefixes()
	sig := analyze.NewSignalSource(src, local, nil)
	res, err := analyze.Analyze(ctx, sig, analyze.Options{Local: local, Attributor: analyze.IndexBundle(b, analyze.JoinOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	fs := analyze.Findings(analyze.FindingInput{Result: res, Signals: sig.Signals(), Manifest: &b.Manifest})
	var got *analyze.Finding
	for i := range fs {
		if fs[i].ID == analyze.RuleDDoSTarget {
			got = &fs[i]
		}
	}
	if got == nil {
		t.Fatalf("no %s finding among %d: %+v", analyze.RuleDDoSTarget, len(fs), fs)
	}
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
	for _, f := range fs {
		if f.ID == analyze.RuleScanning || f.ID == analyze.RuleSYNFlood || f.ID == analyze.RuleBruteForce {
			t.Errorf("unexpected %s: %s", f.ID, f.Summary)
		}
	}
}

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// peerAddrs adds n addresses (203.0.113.101 on) to the peer namespace,
// routes 203.0.113.0/24 from the local namespace over the test's veth, and
// checks with `ip route get` that traffic to the first and last of them,
// and back to LocalIP, uses the test's own veth before anything is sent.
func peerAddrs(t *testing.T, tp *Topology, n int) []string {
	t.Helper()
	var addrs []string
	steps := [][]string{{"-n", tp.Local, "route", "add", "203.0.113.0/24", "dev", tp.LocalIf}}
	for i := range n {
		a := fmt.Sprintf("203.0.113.%d", 101+i)
		addrs = append(addrs, a)
		steps = append(steps, []string{"-n", tp.Peer, "addr", "add", a + "/32", "dev", tp.PeerIf})
	}
	RunIP(t, steps...)
	for _, c := range []struct{ ns, dst, dev string }{{tp.Local, addrs[0], tp.LocalIf}, {tp.Local, addrs[n-1], tp.LocalIf}, {tp.Peer, LocalIP.String(), tp.PeerIf}} {
		if out, err := tp.Command(context.Background(), c.ns, "ip", "route", "get", c.dst).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+c.dev) {
			t.Fatalf("route to %s in %s does not use %s: %v: %s", c.dst, c.ns, c.dev, err, out)
		}
	}
	return addrs
}

// startCollector starts the real collector on the local end of the veth,
// writing bundle, and returns once it has written its first socket
// inventory.
func startCollector(t *testing.T, ctx context.Context, h *Helpers, bundle string) *HelperProc {
	t.Helper()
	coll, err := h.Start(ctx, h.Topo.Local, "collect", "-iface", h.Topo.LocalIf, "-out", bundle, "-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	waitFile(filepath.Join(bundle, ingest.SocketsFile), 10*time.Second)
	time.Sleep(1200 * time.Millisecond)
	return coll
}

// bundleFindings analyses a bundle as `flowblame analyze` does and returns
// its findings, failing the test unless one of them has id (returned too).
func bundleFindings(t *testing.T, ctx context.Context, b *ingest.Bundle, id string) ([]analyze.Finding, *analyze.Finding) {
	t.Helper()
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
	for i := range fs {
		if fs[i].ID == id {
			return fs, &fs[i]
		}
	}
	t.Fatalf("no %s finding among %d: %+v", id, len(fs), fs)
	return nil, nil
}

// noAttackerFindings fails the test for findings that would accuse the
// host of attacking (it is the target).
func noAttackerFindings(t *testing.T, fs []analyze.Finding) {
	t.Helper()
	for _, f := range fs {
		if f.ID == analyze.RuleScanning || f.ID == analyze.RuleSYNFlood || f.ID == analyze.RuleBruteForce {
			t.Errorf("unexpected %s: %s", f.ID, f.Summary)
		}
	}
}

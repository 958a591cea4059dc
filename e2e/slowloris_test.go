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

// TestSlowlorisEndToEnd: 8 addresses of the peer namespace hold 200
// connections to a real net/http server in the local namespace, each
// sending a header line every 4 s for 24 s and never ending the request,
// while the real collector records; meanwhile an ordinary client makes
// answered requests. The bundle's analysis must call it a slow-request
// attack on the server's port with every held connection counted, name the
// server process, and leave the ordinary client out.
func TestSlowlorisEndToEnd(t *testing.T) {
	RequireRoot(t)
	tp := NewTopology(t)
	attackers := peerAddrs(t, tp, 9)
	client := attackers[8] // the ordinary client
	attackers = attackers[:8]

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	h := NewHelpers(dir, tp)
	const port, n = 8080, 200
	srvAddr := netip.AddrPortFrom(LocalIP, port).String()
	srv, err := h.Start(ctx, tp.Local, "httpd", "-listen", srvAddr, "-reply", "2000")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Cmd.Process.Kill()
	waitListen(t, tp, tp.Local, port)
	coll := startCollector(t, ctx, h, bundle)
	slow, err := h.Start(ctx, tp.Peer, "slowloris", "-peer", srvAddr, "-local", strings.Join(attackers, ","),
		"-n", strconv.Itoa(n), "-dur", "24s")
	if err != nil {
		t.Fatal(err)
	}
	// An ordinary client meanwhile: 20 requests, each answered.
	normal, err := h.Start(ctx, tp.Peer, "httpget", "-peer", srvAddr, "-local", client, "-n", "20", "-dur", "20s")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := slow.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Conns) != n {
		t.Fatalf("the attackers held %d connections, want %d", len(rep.Conns), n)
	}
	if nrep, err := normal.Wait(); err != nil || nrep.Recv != 20*2000 {
		t.Fatalf("the ordinary client read %d B (%v), want %d", nrep.Recv, err, 20*2000)
	}
	time.Sleep(1500 * time.Millisecond)
	b := StopCollector(t, coll, bundle)

	fs, got := bundleFindings(t, ctx, b, analyze.RuleDDoSTarget)
	ev := strings.Join(got.Evidence, "\n")
	t.Logf("%s\n%s\nnext: %s", got.Summary, ev, got.Next)
	for _, want := range []string{
		fmt.Sprintf("a slow-request (Slowloris) attack on port %d (%d connections held open from 8 addresses, none answered)", port, n),
	} {
		if !strings.Contains(got.Summary, want) {
			t.Errorf("summary %q lacks %q", got.Summary, want)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("slow requests on local port %d: %d connections from 8 public addresses", port, n),
		fmt.Sprintf("[%d] holds the connections on port %d", srv.Cmd.Process.Pid, port),
	} {
		if !strings.Contains(ev, want) {
			t.Errorf("evidence lacks %q", want)
		}
	}
	if strings.Contains(ev, client) || strings.Contains(ev, "other public addresses") {
		t.Errorf("the ordinary client %s is counted in the attack", client)
	}
	if !strings.Contains(got.Next, "client_header_timeout") {
		t.Errorf("next step %q lacks the host-side advice", got.Next)
	}
	noAttackerFindings(t, fs)
}

package e2e

import (
	"context"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/report"
)

// Overlay addresses of the VXLAN between the two namespaces.
var (
	localOverlay = netip.MustParseAddr("203.0.113.1")
	peerOverlay  = netip.MustParseAddr("203.0.113.2")
)

// TestTunnelAttribution: a real program sends over a VXLAN overlay (as a pod
// does on a Kubernetes node) while tcpdump captures the underlay veth and
// an ss loop records sockets. The outer flow is the kernel's VXLAN socket
// (no process); the flow inside must be listed with its bytes and charged
// to the program.
func TestTunnelAttribution(t *testing.T) {
	RequireRoot(t, "tcpdump", "ss")
	tp := NewTopology(t)
	for _, c := range []struct {
		ns, dev            string
		local, remote, ovl netip.Addr
	}{{tp.Local, tp.LocalIf, LocalIP, PeerIP, localOverlay}, {tp.Peer, tp.PeerIf, PeerIP, LocalIP, peerOverlay}} {
		RunIP(t,
			[]string{"-n", c.ns, "link", "add", "fbvx", "type", "vxlan", "id", "42", "local", c.local.String(), "remote", c.remote.String(), "dstport", "4789", "dev", c.dev},
			[]string{"-n", c.ns, "addr", "add", c.ovl.String() + "/24", "dev", "fbvx"},
			[]string{"-n", c.ns, "link", "set", "fbvx", "up"})
	}
	if out, err := exec.Command("ip", "-n", tp.Local, "route", "get", peerOverlay.String()).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev fbvx") {
		t.Fatalf("route to %s does not use the VXLAN: %v: %s", peerOverlay, err, out)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := NewHelpers(dir, tp)
	sinkAddr := netip.AddrPortFrom(peerOverlay, 5001).String()
	sink, err := h.Start(ctx, tp.Peer, "peer-tcp", "-listen", sinkAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Cmd.Process.Kill()
	waitListen(t, tp, tp.Peer, 5001)
	capture, dump := filepath.Join(dir, "underlay.pcap"), filepath.Join(dir, "ss.txt")
	capRec, err := tp.StartCapture(ctx, tp.Local, tp.LocalIf, capture)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := tp.SSLoop(ctx, tp.Local, "-tunapeH", dump)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	const sent = 3_000_000
	bulk, err := h.Start(ctx, tp.Local, "bulk", "-peer", sinkAddr, "-bytes", "3000000", "-dur", "2s", "-local", localOverlay.String())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bulk.Wait()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	ss.Stop()
	capRec.Stop()

	snaps, _, err := ingest.ReadSocketDumps([]string{dump}, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	obs, cov, procs := ingest.CompileSnapshots(snaps)
	src, err := ingest.OpenCapture(capture, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
	res, err := analyze.Analyze(context.Background(), src, analyze.Options{Local: local,
		Attributor: analyze.NewSocketIndex(obs, procs, cov, analyze.JoinOptions{HostPrefixes: local})})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tunnels) == 0 {
		t.Fatalf("no tunnelled flows found in %d packets", res.Meta.Packets)
	}
	tf := res.Tunnels[0]
	t.Logf("inner %v via %v: A→B %d B, B→A %d B, owner %+v (end %s)", tf.Inner, tf.Outer, tf.AB.Wire, tf.BA.Wire, tf.Owner, tf.OwnerEnd)
	if tf.Inner.A.Addr() != localOverlay || tf.Inner.B != netip.MustParseAddrPort(sinkAddr) || tf.Outer.Proto != ingest.ProtoUDP ||
		(tf.Outer.A.Port() != 4789 && tf.Outer.B.Port() != 4789) {
		t.Errorf("biggest tunnelled flow %v via %v, want %s → %s over VXLAN", tf.Inner, tf.Outer, localOverlay, sinkAddr)
	}
	// Whole VXLAN frames: at least the payload plus 50 bytes of outer headers per segment.
	if tf.AB.Wire < sent {
		t.Errorf("inner A→B %d wire bytes, program sent %d", tf.AB.Wire, sent)
	}
	if tf.Owner == nil || tf.Owner.Proc.PID != rep.PID || tf.OwnerEnd != "a" {
		t.Errorf("inner flow owner %+v (end %q), want pid %d on end a", tf.Owner, tf.OwnerEnd, rep.PID)
	}
	// The report sums the program's inner flows for it.
	d, err := report.Build(report.Input{Result: res}, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.TunnelProcesses) == 0 || d.TunnelProcesses[0].Proc.PID != rep.PID || d.TunnelProcesses[0].TX.Wire < sent {
		t.Errorf("processes inside tunnels %+v, want pid %d sending ≥ %d bytes", d.TunnelProcesses, rep.PID, sent)
	}
	// The verdict points at the program, not at "unattributed".
	fs := analyze.Findings(analyze.FindingInput{Result: res})
	if len(fs) == 0 || fs[0].ID != analyze.RuleTunnels || len(fs[0].Procs) != 1 || fs[0].Procs[0].PID != rep.PID {
		t.Errorf("first finding %+v, want %s naming pid %d", fs, analyze.RuleTunnels, rep.PID)
	}
}

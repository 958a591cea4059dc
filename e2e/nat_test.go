package e2e

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// Addresses of the "container" behind the local namespace's NAT.
var (
	natGateway   = netip.MustParseAddr("203.0.113.1")
	natContainer = netip.MustParseAddr("203.0.113.2")
)

// TestNATAttribution: a program in a third namespace (a container) sends
// to the peer through the local namespace, which masquerades it (as Docker
// does) onto the uplink where the real collector captures. On the uplink
// the flow has the host's address and a translated port, which no socket
// has; the collector's conntrack record must let analysis charge it to the
// program in the container.
func TestNATAttribution(t *testing.T) {
	RequireRoot(t, "nft")
	tp := NewTopology(t)
	ctr := "fb7c" + tp.Local[4:]
	ctrIf, gwIf := ctr, "fb7g"+tp.Local[4:]
	t.Cleanup(func() {
		killNetns(ctr)
		exec.Command("ip", "netns", "del", ctr).Run()
	})
	RunIP(t, []string{"netns", "add", ctr},
		[]string{"link", "add", gwIf, "netns", tp.Local, "type", "veth", "peer", "name", ctrIf, "netns", ctr},
		[]string{"-n", tp.Local, "addr", "add", natGateway.String() + "/24", "dev", gwIf},
		[]string{"-n", ctr, "addr", "add", natContainer.String() + "/24", "dev", ctrIf},
		[]string{"-n", tp.Local, "link", "set", gwIf, "up"},
		[]string{"-n", ctr, "link", "set", ctrIf, "up"},
		[]string{"-n", ctr, "link", "set", "lo", "up"},
		[]string{"-n", ctr, "route", "add", "default", "via", natGateway.String()})
	for _, s := range [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"nft", "add table ip fbnat"},
		{"nft", "add chain ip fbnat post { type nat hook postrouting priority 100 ; }"},
		{"nft", "add rule ip fbnat post oifname " + tp.LocalIf + " masquerade"},
	} {
		if out, err := tp.Command(context.Background(), tp.Local, s[0], s[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v: %s", strings.Join(s, " "), tp.Local, err, out)
		}
	}
	if out, err := exec.Command("ip", "-n", ctr, "route", "get", PeerIP.String()).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+ctrIf) {
		t.Fatalf("route to %s in %s does not use %s: %v: %s", PeerIP, ctr, ctrIf, err, out)
	}

	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	h := NewHelpers(dir, tp)
	sinkAddr := netip.AddrPortFrom(PeerIP, 5001).String()
	sink, err := h.Start(ctx, tp.Peer, "peer-tcp", "-listen", sinkAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Cmd.Process.Kill()
	waitListen(t, tp, tp.Peer, 5001)
	coll, err := h.Start(ctx, tp.Local, "collect", "-iface", tp.LocalIf, "-out", bundle, "-interval", "1s")
	if err != nil {
		t.Fatal(err)
	}
	waitFile(filepath.Join(bundle, ingest.SocketsFile), 10*time.Second)
	// The same connection recorded with standard tools as well: tcpdump on
	// the uplink, ss in the container, and the conntrack listing below.
	capture, dump := filepath.Join(dir, "uplink.pcap"), filepath.Join(dir, "ss-container.txt")
	capRec, err := tp.StartCapture(ctx, tp.Local, tp.LocalIf, capture)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := tp.SSLoop(ctx, ctr, "-tunapeH", dump)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	const sent = 3_000_000
	bulk, err := h.Start(ctx, ctr, "bulk", "-peer", sinkAddr, "-bytes", strconv.Itoa(sent), "-dur", "2s", "-local", natContainer.String())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := bulk.Wait()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	ss.Stop()
	capRec.Stop()
	listing := filepath.Join(dir, "conntrack.txt")
	out, err := tp.Command(ctx, tp.Local, "cat", "/proc/net/nf_conntrack").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(listing, out, 0o644); err != nil {
		t.Fatal(err)
	}
	b := StopCollector(t, coll, bundle)
	t.Logf("bundle: %d NAT records, %d conntrack polls, notes %q", len(b.NAT), b.Manifest.Collector.NATPolls, b.Manifest.Notes)
	if len(b.NAT) == 0 || int64(len(b.NAT)) != b.Manifest.Collector.NATRecords {
		t.Fatalf("conntrack.jsonl has %d records, manifest says %d", len(b.NAT), b.Manifest.Collector.NATRecords)
	}
	analyse := func(attr analyze.Attributor) *analyze.Flow {
		t.Helper()
		src, err := b.Packets()
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		res, err := analyze.Analyze(context.Background(), src, analyze.Options{Local: b.LocalPrefixes(), Attributor: attr})
		if err != nil {
			t.Fatal(err)
		}
		for i := range res.Flows {
			if f := &res.Flows[i]; f.Key.B.String() == sinkAddr {
				return f
			}
		}
		t.Fatalf("no flow to %s among %d", sinkAddr, len(res.Flows))
		return nil
	}
	idx := analyze.IndexBundle(b, analyze.JoinOptions{})

	// Without the translation the uplink flow has no owner.
	plain := analyse(idx)
	if plain.Key.A.Addr() != LocalIP {
		t.Errorf("uplink flow %v, want it from the host's %s (masqueraded)", plain.Key, LocalIP)
	}
	if len(plain.Owners) != 1 || plain.Owners[0].Owner.Attributed() {
		t.Errorf("uplink flow owners without NAT: %+v, want one unattributed share", plain.Owners)
	}

	f := analyse(analyze.WithNAT(idx, analyze.NewNATIndex(b.NAT)))
	t.Logf("uplink flow %v: %d B out, owners %+v", f.Key, f.Traffic.Out.Wire, f.Owners)
	if f.Traffic.Out.Wire < sent {
		t.Errorf("uplink flow carried %d wire bytes out, program sent %d", f.Traffic.Out.Wire, sent)
	}
	// Every byte charged to the program (in shares of the inner socket
	// match's confidence), through the translation.
	var charged int64
	for _, o := range f.Owners {
		if o.Owner.Proc.PID != rep.PID || o.Owner.Method != analyze.MethodNAT {
			t.Errorf("uplink flow share %+v, want pid %d by %s", o, rep.PID, analyze.MethodNAT)
		}
		charged += o.Traffic.Wire
	}
	if total := f.Traffic.Out.Wire + f.Traffic.In.Wire; charged != total || len(f.Owners) == 0 {
		t.Errorf("%d of the uplink flow's %d wire bytes charged", charged, total)
	}

	// The standard-tools path: tcpdump + ss + a conntrack listing
	// (analyze --pcap --sockets --conntrack).
	snaps, _, err := ingest.ReadSocketDumps([]string{dump}, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, diags, err := ingest.ReadConntrackDumps([]string{listing})
	if err != nil || len(recs) == 0 {
		t.Fatalf("conntrack listing: %d records, %v, %v", len(recs), diags, err)
	}
	csrc, err := ingest.OpenCapture(capture, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer csrc.Close()
	local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
	fres, err := analyze.Analyze(context.Background(), csrc, analyze.Options{Local: local,
		Attributor: analyze.WithNAT(analyze.IndexSnapshots(snaps, analyze.JoinOptions{HostPrefixes: local}), analyze.NewNATIndex(recs))})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, fl := range fres.Flows {
		if fl.Key.B.String() != sinkAddr {
			continue
		}
		found = len(fl.Owners) > 0
		for _, o := range fl.Owners {
			if o.Owner.Proc.PID != rep.PID || o.Owner.Method != analyze.MethodNAT {
				t.Errorf("tcpdump+ss+conntrack: uplink flow share %+v, want pid %d by %s", o, rep.PID, analyze.MethodNAT)
			}
		}
	}
	if !found {
		t.Errorf("tcpdump+ss+conntrack: no owned flow to %s", sinkAddr)
	}
}

// killNetns kills every process left in network namespace ns.
func killNetns(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			exec.Command("kill", "-9", strconv.Itoa(pid)).Run()
		}
	}
}

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

func TestMain(m *testing.M) {
	Dispatch()
	os.Exit(m.Run())
}

// TestAttribution is the acceptance test of issue "Attribution": real
// programs exchange known volumes over a veth pair while tcpdump, an ss loop
// and `flowblame collect` record; both the foreign-dump path (pcap + ss) and
// the native bundle path must charge each program its bytes.
func TestAttribution(t *testing.T) {
	var sc *Recording
	if dir := os.Getenv("FB_E2E_REPLAY"); dir != "" {
		sc = Replay(t, dir) // analyse a run kept with FB_E2E_KEEP
	} else {
		RequireRoot(t, "tcpdump", "ss")
		sc = Record(t)
	}
	t.Run("foreign-ss", func(t *testing.T) {
		snaps, diags, err := ingest.ReadSocketDumps(sc.Dumps, ingest.Options{})
		if err != nil {
			t.Fatalf("ReadSocketDumps: %v", err)
		}
		for _, d := range diags {
			t.Logf("ss diagnostic: %s", d)
		}
		obs, cov, procs := ingest.CompileSnapshots(snaps)
		t.Logf("ss: %d snapshots, %d observations, interval %v", len(snaps), len(obs), time.Duration(cov.Interval))
		src, err := ingest.OpenCapture(sc.Capture, ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
		check(t, sc, src, analyze.NewSocketIndex(obs, procs, cov, analyze.JoinOptions{HostPrefixes: local}), obs, false)
	})
	t.Run("native-bundle", func(t *testing.T) {
		if !sc.CollectOK {
			t.Skip("collector did not produce a bundle (see log)")
		}
		b, err := ingest.OpenBundle(sc.Bundle, ingest.Options{})
		if err != nil {
			t.Fatalf("OpenBundle: %v", err)
		}
		defer b.Close()
		for _, d := range b.Diagnostics {
			t.Logf("bundle diagnostic: %s", d)
		}
		t.Logf("bundle: %d observations, %d processes, %d inventories", len(b.Observations), len(b.Processes), len(b.Coverage.Times()))
		src, err := b.Packets()
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		check(t, sc, src, analyze.IndexBundle(b, analyze.JoinOptions{}), b.Observations, true)
	})
}

// check analyses src with idx and asserts the acceptance criteria; obs are
// the observations behind idx (to tell which sockets were seen).
// With strict (the collector's own bundle), every program must be charged
// within 2 % whether or not all its sockets were seen with an owner: the
// collector issue's acceptance.
func check(t *testing.T, sc *Recording, src ingest.PacketSource, idx *analyze.SocketIndex, obs []ingest.SocketObservation, strict bool) {
	t.Helper()
	local := []netip.Prefix{netip.PrefixFrom(LocalIP, 32)}
	tee := NewTruthSource(src)
	res, err := analyze.Analyze(context.Background(), tee, analyze.Options{Local: local, Attributor: idx, Serial: true})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	truth := tee.Tuples

	// 1. The breakdown accounts for every byte.
	var accounted int64
	for _, p := range res.Processes {
		accounted += p.Traffic.Total().Wire
	}
	for _, u := range res.Unattributed {
		accounted += u.Out.Wire + u.In.Wire + u.Unknown.Wire
		t.Logf("unattributed %-26s %9d B", u.Cause, u.Out.Wire+u.In.Wire+u.Unknown.Wire)
	}
	if all := res.Totals.All.Sum().Wire; accounted != all || all != tee.Total {
		t.Errorf("processes+unattributed = %d B, totals = %d B, capture = %d B", accounted, all, tee.Total)
	}

	// Flow owners by local→remote tuple.
	type share struct {
		proc ingest.ProcKey
		comm string
		wire int64
	}
	owners := map[ingest.FiveTuple][]share{}
	for _, f := range res.Flows {
		if !f.Key.Oriented {
			continue
		}
		k := ingest.FiveTuple{Proto: f.Key.Proto, Src: f.Key.A, Dst: f.Key.B}
		for _, o := range f.Owners {
			owners[k] = append(owners[k], share{o.Owner.Proc, o.Owner.Comm, o.Traffic.Wire})
		}
	}
	seenTuple := map[ingest.FiveTuple]bool{}
	seenPort := map[uint16]bool{}
	for _, o := range obs {
		if len(o.Holders) == 0 {
			continue // a TIME-WAIT leftover is not the program's socket
		}
		seenTuple[ingest.FiveTuple{Proto: o.Proto, Src: unmap(o.Local), Dst: unmap(o.Remote)}] = true
		if o.Remote.Port() == 0 {
			seenPort[o.Local.Port()] = true
		}
	}

	var seenBytes, seenRight int64
	lines := []string{fmt.Sprintf("%-12s %7s %11s %11s %8s %s", "program", "pid", "truth B", "charged B", "ratio", "flows seen/all")}
	for _, e := range sc.Programs {
		var want, right int64
		nSeen := 0
		for _, tu := range e.Tuples {
			want += truth[tu]
			for _, s := range owners[tu] {
				if s.proc.PID == e.PID && s.comm == e.Comm {
					right += s.wire
				}
			}
			if seenTuple[tu] || tu.Proto == ingest.ProtoUDP && seenPort[tu.Src.Port()] || tu.Src.Port() == 5004 && seenPort[5004] {
				nSeen++
				seenBytes += truth[tu]
				for _, s := range owners[tu] {
					if s.proc.PID == e.PID && s.comm == e.Comm {
						seenRight += s.wire
					}
				}
			}
		}
		// The process's own total must match its flows' truth (nothing
		// charged to it from elsewhere, nothing missing).
		var charged int64
		for _, p := range res.Processes {
			if p.Key.PID == e.PID && p.Comm == e.Comm {
				charged += p.Traffic.Total().Wire
			}
		}
		ratio := float64(charged) / float64(max(want, 1))
		lines = append(lines, fmt.Sprintf("%-12s %7d %11d %11d %8.4f %d/%d", e.Comm, e.PID, want, charged, ratio, nSeen, len(e.Tuples)))
		if want == 0 {
			t.Errorf("%s: no captured bytes for its flows %v", e.Comm, e.Tuples)
			continue
		}
		// The 2 % bound applies to programs whose every socket the socket
		// data saw with its owner; for the others (200 ms connections
		// between ss dumps, sockets the collector never walked) the gap is
		// the recorder's, reported here and in the unattributed causes.
		switch {
		case nSeen == len(e.Tuples) && (ratio < 0.98 || ratio > 1.02):
			t.Errorf("%s (pid %d): charged %d B, its flows carried %d B (ratio %.4f, want within 2%%)", e.Comm, e.PID, charged, want, ratio)
		case nSeen < len(e.Tuples) && (strict || e.Comm == "fb-churn") && (ratio < 0.98 || ratio > 1.02):
			// The collector issue's acceptance: a client whose connections
			// last less than one snapshot interval is charged within 2 %
			// (exec probes catch short processes; the same-peer rule covers
			// short connections inside a long-lived one).
			t.Errorf("%s (pid %d): %d of %d sockets never seen with an owner, charged %.1f %% of its bytes, want within 2 %%",
				e.Comm, e.PID, len(e.Tuples)-nSeen, len(e.Tuples), 100*ratio)
		case nSeen < len(e.Tuples):
			t.Logf("%s: %d of %d sockets never seen with an owner (recorder gap): %.1f %% of its bytes charged",
				e.Comm, len(e.Tuples)-nSeen, len(e.Tuples), 100*ratio)
		}
		if charged > want+want/50 {
			t.Errorf("%s: charged more than its flows carried (%d > %d)", e.Comm, charged, want)
		}
	}
	t.Logf("per-program bytes (wire):\n%s", strings.Join(lines, "\n"))
	if seenBytes == 0 {
		t.Fatal("no flow of any program was seen by the socket data")
	}
	frac := float64(seenRight) / float64(seenBytes)
	t.Logf("correctly attributed where the socket was seen: %.4f of %d B", frac, seenBytes)
	if frac < 0.99 {
		t.Errorf("correctly attributed where seen = %.4f, want ≥ 0.99", frac)
	}
	var methods []string
	for _, m := range res.Coverage.ByMethod {
		methods = append(methods, fmt.Sprintf("%s=%d", m.Method, m.Out.Wire+m.In.Wire))
	}
	sort.Strings(methods)
	t.Logf("coverage TX %.4f RX %.4f by method: %s; attributor calls %d", res.Coverage.TX, res.Coverage.RX,
		strings.Join(methods, " "), res.Meta.AttributorCalls)
	// PID reuse: the two programs must be two processes, and neither's
	// bytes may be lent to the other.
	if sc.PIDReused {
		for _, e := range sc.Programs {
			other := map[string]string{"fb-reuse-a": "fb-reuse-b", "fb-reuse-b": "fb-reuse-a"}[e.Comm]
			if other == "" {
				continue
			}
			for _, tu := range e.Tuples {
				for _, s := range owners[tu] {
					if s.comm == other {
						t.Errorf("PID reuse: %d B of %s's flow %v charged to %s %v", s.wire, e.Comm, tu, other, s.proc)
					}
				}
			}
		}
		keys := map[ingest.ProcKey]string{}
		for _, p := range res.Processes {
			if p.Comm == "fb-reuse-a" || p.Comm == "fb-reuse-b" {
				if c, dup := keys[p.Key]; dup && c != p.Comm {
					t.Errorf("PID reuse: %v charged as both %s and %s", p.Key, c, p.Comm)
				}
				keys[p.Key] = p.Comm
			}
		}
		if len(keys) != 2 {
			t.Logf("PID reuse: %d distinct processes charged: %v", len(keys), keys)
		}
	}
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

package analyze

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/flowblame/flowblame/ingest"
)

// tunnelled returns p with inner IP layers (kind, proto, src, dst as
// "addr:port").
func tunnelled(p ingest.Packet, layers ...ingest.IPLayer) ingest.Packet {
	p.NInner = uint8(copy(p.Inner[:], layers))
	return p
}

func layer(kind ingest.LayerKind, proto uint8, src, dst string) ingest.IPLayer {
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	return ingest.IPLayer{Kind: kind, Proto: proto, Src: s.Addr(), Dst: d.Addr(), SrcPort: s.Port(), DstPort: d.Port()}
}

func TestTunnelFlows(t *testing.T) {
	const nodeA, nodeB = "198.51.100.1:40000", "198.51.100.2:4789"
	pod1, pod2, pod3 := "203.0.113.10:1234", "203.0.113.20:80", "203.0.113.30:53"
	tcp, udp := ingest.ProtoTCP, ingest.ProtoUDP
	pkts := []ingest.Packet{
		tunnelled(pkt(0, udp, nodeA, nodeB, 1000), layer(ingest.LayerTunnel, tcp, pod1, pod2)),
		tunnelled(pkt(100, udp, nodeA, nodeB, 1000), layer(ingest.LayerTunnel, tcp, pod1, pod2)),
		tunnelled(pkt(200, udp, nodeB, nodeA, 100), layer(ingest.LayerTunnel, tcp, pod2, pod1)),
		// Nested tunnels: the innermost one counts.
		tunnelled(pkt(300, udp, nodeA, nodeB, 300), layer(ingest.LayerTunnel, 47, "203.0.113.1:0", "203.0.113.2:0"), layer(ingest.LayerTunnel, udp, pod3, pod1)),
		// An ICMP quote is not a tunnel.
		tunnelled(pkt(400, ingest.ProtoICMP, "198.51.100.1:0", "198.51.100.9:0", 90), layer(ingest.LayerICMPQuoted, udp, pod1, pod3)),
		pkt(500, tcp, "198.51.100.1:5000", "203.0.113.99:443", 60),
	}
	r := run(t, pkts, Options{Local: local24})
	ap := netip.MustParseAddrPort
	c := func(n, wire int64) Counts {
		return Counts{Packets: n, Wire: wire, IP: wire - 14*n, Captured: min(wire, 96*n)}
	}
	want := []TunnelFlow{
		{Outer: FlowKey{Proto: udp, A: ap(nodeA), B: ap(nodeB)}, Inner: FlowKey{Proto: tcp, A: ap(pod1), B: ap(pod2)},
			AB: Counts{Packets: 2, Wire: 2000, IP: 1972, Captured: 192}, BA: c(1, 100), First: t0, Last: t0 + 200e6,
			// Window rates at the last packet (second t0), as for flows.
			ABRate: WindowRates{S2: 1000, S10: 200, S40: 50}, BARate: WindowRates{S2: 50, S10: 10, S40: 2.5},
			Peak: PeakRate{Rate: 1050, At: t0}},
		{Outer: FlowKey{Proto: udp, A: ap(nodeA), B: ap(nodeB)}, Inner: FlowKey{Proto: udp, A: ap(pod1), B: ap(pod3)},
			BA: Counts{Packets: 1, Wire: 300, IP: 286, Captured: 96}, First: t0 + 300e6, Last: t0 + 300e6,
			BARate: WindowRates{S2: 150, S10: 30, S40: 7.5}, Peak: PeakRate{Rate: 150, At: t0}},
	}
	if d := cmp.Diff(want, r.Tunnels, cmpopts.EquateComparable(netip.AddrPort{})); d != "" {
		t.Errorf("tunnels (-want +got):\n%s", d)
	}
	// With socket data, the inner flow's end whose socket was seen owns it.
	r = run(t, pkts, Options{Local: local24, Attributor: podAttributor{ap(pod2)}})
	if o := r.Tunnels[0].Owner; o == nil || o.Proc.PID != 7 || o.Comm != "nginx" || r.Tunnels[0].OwnerEnd != "b" {
		t.Errorf("owner of %v: %+v (end %q)", r.Tunnels[0].Inner, o, r.Tunnels[0].OwnerEnd)
	}
	if r.Tunnels[1].Owner != nil {
		t.Errorf("owner of %v: %+v, want none", r.Tunnels[1].Inner, r.Tunnels[1].Owner)
	}
	// Most bytes are tunnelled: a finding names the tunnel and the owner.
	fs := Findings(FindingInput{Result: r})
	var tf *Finding
	for i := range fs {
		if fs[i].ID == RuleTunnels {
			tf = &fs[i]
		}
	}
	if tf == nil || tf.Severity != SevLow || len(tf.Evidence) != 2 || len(tf.Procs) != 1 || tf.Procs[0].PID != 7 ||
		tf.Summary != "94% of the traffic (2.4 kB) is inside tunnels (VXLAN); the biggest inner flow is tcp 203.0.113.10:1234 ⇄ 203.0.113.20:80 of nginx[7]" {
		t.Errorf("tunnel finding: %+v", tf)
	}
	if r := run(t, pkts[5:], Options{}); r.Tunnels == nil || len(r.Tunnels) != 0 {
		t.Errorf("no tunnels: got %#v, want an empty list", r.Tunnels)
	}
}

// podAttributor owns one address:port (a pod's server socket), pid 7.
type podAttributor struct{ sock netip.AddrPort }

func (p podAttributor) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	if local != p.sock {
		return Attribution{Method: MethodNone, Cause: CauseNeverSeen}, ts, ts
	}
	return Attribution{Proc: ingest.ProcKey{PID: 7, Start: 1}, Comm: "nginx", Method: MethodExact, Confidence: ConfHigh}, ts, ts
}

// TestTunnelRates: a tunnelled flow's window rates and peak are computed
// as a plain flow's are from the same frames.
func TestTunnelRates(t *testing.T) {
	const nodeA, nodeB = "198.51.100.1:40000", "198.51.100.2:4789"
	pod1, pod2 := "203.0.113.10:1234", "203.0.113.20:80"
	udp, tcp := ingest.ProtoUDP, ingest.ProtoTCP
	var tun, plain []ingest.Packet
	for _, f := range []struct {
		ms  int64
		out bool
		n   int
	}{{0, true, 1000}, {1200, true, 1500}, {1700, true, 1500}, {1800, false, 400}, {5300, false, 500}, {9100, true, 80}} {
		src, dst, isrc, idst := nodeA, nodeB, pod1, pod2
		if !f.out {
			src, dst, isrc, idst = nodeB, nodeA, pod2, pod1
		}
		tun = append(tun, tunnelled(pkt(f.ms, udp, src, dst, f.n), layer(ingest.LayerTunnel, tcp, isrc, idst)))
		if f.out {
			plain = append(plain, pkt(f.ms, udp, nodeA, nodeB, f.n))
		} else {
			plain = append(plain, pkt(f.ms, udp, nodeB, nodeA, f.n))
		}
	}
	for _, at := range []int64{0, t0 + 5900e6} {
		rt := run(t, tun, Options{Local: local24, At: at})
		rp := run(t, plain, Options{Local: local24, At: at})
		tf, fl := rt.Tunnels[0], rp.Flows[0]
		if tf.ABRate != fl.Traffic.OutRate || tf.BARate != fl.Traffic.InRate || tf.Peak != fl.Traffic.Peak {
			t.Errorf("At %d: tunnel rates %+v / %+v, peak %+v; the same frames as a flow: %+v / %+v, peak %+v",
				at, tf.ABRate, tf.BARate, tf.Peak, fl.Traffic.OutRate, fl.Traffic.InRate, fl.Traffic.Peak)
		}
		if tf.Peak.Rate != 2200 || tf.Peak.At != t0+1e9 {
			t.Errorf("peak %+v, want (1000+3400)/2 = 2200 B/s ending at second t0+1", tf.Peak)
		}
	}
}

package analyze

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/flowblame/flowblame/ingest"
)

// TunnelFlow is traffic carried inside a tunnel (IP-in-IP, 6in4, GRE,
// VXLAN, Geneve, GTP-U, Teredo, MPLS-in-IP, ...): the innermost tunnelled IP
// header's 5-tuple and the outer flow that carried it. On an overlay network
// (Kubernetes VXLAN or Geneve, a VPN) the outer flow is node ↔ node and the
// inner one names the pods or hosts inside. The outer flow is what Flows,
// Pairs and the process join count; these rows break it down.
type TunnelFlow struct {
	// Outer is the carrying flow and Inner the tunnelled one, each with
	// its endpoints in a fixed order (A before B by address, then port);
	// Oriented is false in both.
	Outer FlowKey `json:"outer"`
	Inner FlowKey `json:"inner"`
	// AB and BA count whole frames (the outer flow's wire, IP and captured
	// lengths) by the inner header's direction.
	AB    Counts `json:"ab"`
	BA    Counts `json:"ba"`
	First int64  `json:"first"`
	Last  int64  `json:"last"`
	// ABRate and BARate are the 2/10/40-second window rates at Result.At
	// by the inner header's direction, and Peak the highest 2-second rate
	// of both directions with the time it ended (whole frames, wire bytes
	// per second, as for flows).
	ABRate WindowRates `json:"ab_rate"`
	BARate WindowRates `json:"ba_rate"`
	Peak   PeakRate    `json:"peak"`
	// Owner is the process whose socket is an end of the inner flow (a
	// pod's process behind a VXLAN or Geneve overlay), asked of the
	// Attributor at First for end A, then end B; nil when there are no
	// socket data, when neither end's socket was seen, or beyond the
	// first maxTunnelOwners rows. OwnerEnd is "a" or "b".
	Owner    *Attribution `json:"owner,omitempty"`
	OwnerEnd string       `json:"owner_end,omitempty"`
}

// TunnelName names the tunnel an outer flow carries from its protocol and
// ports: "VXLAN", "Geneve", "GTP-U", "GRE", "IP-in-IP", ..., else "a tunnel".
func TunnelName(outer FlowKey) string {
	switch outer.Proto {
	case ingest.ProtoGRE:
		return "GRE"
	case 4, 41:
		return "IP-in-IP"
	case 137:
		return "MPLS-in-IP"
	case ingest.ProtoUDP:
		for _, p := range []uint16{outer.A.Port(), outer.B.Port()} {
			switch p {
			case 4789, 8472:
				return "VXLAN"
			case 6081:
				return "Geneve"
			case 2152, 3386:
				return "GTP"
			case 3544:
				return "Teredo"
			case 4754:
				return "GRE-in-UDP"
			case 6635:
				return "MPLS-in-UDP"
			}
		}
	}
	return "a tunnel"
}

// Total returns AB+BA.
func (t *TunnelFlow) Total() Counts {
	c := t.AB
	c.Add(t.BA)
	return c
}

// maxTunnelOwners is how many of the biggest tunnelled flows get an owner.
const maxTunnelOwners = 1000

// maxTunnelFlows bounds the distinct tunnelled flows itemised; frames of
// further ones are counted in tunnelTable.more (and a diagnostic).
const maxTunnelFlows = 100_000

type tunKey struct {
	outer, inner FlowKey
}

// tunnelTable sums tunnelled flows on the reading goroutine.
type tunnelTable struct {
	idx  map[tunKey]int32
	ents []TunnelFlow
	st   []tunState // by entry
	at   int64      // Options.At, for the window log
	wl   *windowLog // made at the first tunnelled frame
	more Counts     // frames of flows beyond maxTunnelFlows
}

// tunState is what a tunnelled flow's rates are computed from.
type tunState struct {
	pk     peakTracker
	pkAt   peakAt
	logSec int64
	logIdx int32
}

// unorderedKey returns the 5-tuple with A < B (by address, then port) and
// whether src is B.
func unorderedKey(proto uint8, src, dst netip.AddrPort) (FlowKey, bool) {
	if c := cmp.Or(src.Addr().Compare(dst.Addr()), cmp.Compare(src.Port(), dst.Port())); c > 0 {
		return FlowKey{Proto: proto, A: dst, B: src}, true
	}
	return FlowKey{Proto: proto, A: src, B: dst}, false
}

// add counts p if it carries a tunnelled IP header.
func (t *tunnelTable) add(p *ingest.Packet) {
	in := -1
	for i := range int(p.NInner) {
		if p.Inner[i].Kind == ingest.LayerTunnel {
			in = i
		}
	}
	if in < 0 {
		return
	}
	l := &p.Inner[in]
	outer, _ := unorderedKey(p.Tuple.Proto, p.Tuple.Src, p.Tuple.Dst)
	inner, rev := unorderedKey(l.Proto, netip.AddrPortFrom(l.Src, l.SrcPort), netip.AddrPortFrom(l.Dst, l.DstPort))
	k := tunKey{outer, inner}
	i, ok := t.idx[k]
	if !ok {
		if len(t.ents) >= maxTunnelFlows {
			t.more.addFrame(p)
			return
		}
		if t.idx == nil {
			t.idx = map[tunKey]int32{}
		}
		i = int32(len(t.ents))
		t.idx[k] = i
		t.ents = append(t.ents, TunnelFlow{Outer: outer, Inner: inner, First: math.MaxInt64, Last: math.MinInt64})
		t.st = append(t.st, tunState{pk: newPeakTracker(), logSec: math.MinInt64})
		if t.wl == nil {
			t.wl = newWindowLog(t.at)
		}
	}
	e, st := &t.ents[i], &t.st[i]
	d := uint8(0)
	if rev {
		e.BA.addFrame(p)
		d = 1
	} else {
		e.AB.addFrame(p)
	}
	e.First, e.Last = min(e.First, p.TS), max(e.Last, p.TS)
	sec := floorSec(p.TS)
	st.pk.add(sec, d, int64(p.WireLen), &st.pkAt)
	t.wl.add(i, &st.logSec, &st.logIdx, sec, d, int64(p.WireLen))
}

// attributeTunnels asks a for the owners of the biggest tunnelled flows (sorted
// by result) and returns the number of calls.
func attributeTunnels(a Attributor, tfs []TunnelFlow) int64 {
	var calls int64
	for i := range tfs[:min(len(tfs), maxTunnelOwners)] {
		tf := &tfs[i]
		for _, end := range []struct {
			name          string
			local, remote netip.AddrPort
		}{{"a", tf.Inner.A, tf.Inner.B}, {"b", tf.Inner.B, tf.Inner.A}} {
			calls++
			if o, _, _ := a.Attribute(tf.Inner.Proto, end.local, end.remote, tf.First); o.Attributed() {
				tf.Owner, tf.OwnerEnd = &o, end.name
				break
			}
		}
	}
	return calls
}

// result returns the tunnelled flows by wire bytes (descending), then by
// inner and outer key, and a diagnostic when some were not itemised.
func (t *tunnelTable) result(at int64) ([]TunnelFlow, []ingest.Diagnostic) {
	out := append([]TunnelFlow{}, t.ents...)
	if t.wl != nil {
		sums := t.wl.sums(len(out), floorSec(at))
		for i := range out {
			out[i].ABRate, out[i].BARate = sums[i].rates()
			_, _, out[i].Peak = t.st[i].pk.peaks(&t.st[i].pkAt)
		}
	}
	slices.SortFunc(out, func(a, b TunnelFlow) int {
		if c := cmp.Compare(b.Total().Wire, a.Total().Wire); c != 0 {
			return c
		}
		return cmp.Or(compareFlowKey(a.Inner, b.Inner), compareFlowKey(a.Outer, b.Outer))
	})
	var ds []ingest.Diagnostic
	if m := t.more; m.Packets > 0 {
		ds = append(ds, ingest.Diagnostic{Kind: ingest.DiagInfo, Where: "tunnels", Offset: -1, Count: m.Packets, Bytes: m.Wire,
			Msg: fmt.Sprintf("%d tunnelled frames (%d bytes) of flows beyond the first %d inside tunnels are counted in their outer flows but not listed",
				m.Packets, m.Wire, maxTunnelFlows)})
	}
	return out, ds
}

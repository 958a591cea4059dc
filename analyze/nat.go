package analyze

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/flowblame/flowblame/ingest"
)

// MethodNAT: the flow is a NAT translation recorded in the host's conntrack
// table (a container's or VM's traffic masqueraded on the uplink, or a
// published port forwarded to it); the socket of the untranslated tuple
// owns it. The confidence is that of the socket match.
const MethodNAT Method = "nat"

// natKey is a flow as captured on the translated side: the host's end and
// the remote end.
type natKey struct {
	proto         uint8
	local, remote netip.AddrPort
}

// natEnt is one translation: from T on, natKey stands for the socket tuple
// (local, remote) on the other side of the NAT.
type natEnt struct {
	t             int64
	local, remote netip.AddrPort
}

// NATIndex maps flows captured on the translated side of a NAT to the
// tuple of the socket behind it, from conntrack records
// (ingest.NATRecord).
type NATIndex struct {
	m map[natKey][]natEnt // by time
}

// NewNATIndex indexes the translated connections of recs. For source NAT
// (masquerade) the uplink flow is the reverse of the reply tuple and the
// socket is the original source; for destination NAT (a published port)
// the host end is the original destination and the socket is the reply
// source. Records that translate nothing, or do not parse, are ignored.
func NewNATIndex(recs []ingest.NATRecord) *NATIndex {
	x := &NATIndex{m: map[natKey][]natEnt{}}
	for _, r := range recs {
		oSrc, err1 := ingest.ParseEndpoint(r.OrigSrc)
		oDst, err2 := ingest.ParseEndpoint(r.OrigDst)
		rSrc, err3 := ingest.ParseEndpoint(r.ReplySrc)
		rDst, err4 := ingest.ParseEndpoint(r.ReplyDst)
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			continue
		}
		oSrc, oDst, rSrc, rDst = unmapPort(oSrc), unmapPort(oDst), unmapPort(rSrc), unmapPort(rDst)
		if oSrc == rDst && oDst == rSrc {
			continue // not translated
		}
		// Source side: the uplink carries reply.dst ↔ reply.src; the socket
		// is the original sender's.
		if rDst != oSrc {
			x.add(natKey{r.Proto, rDst, rSrc}, natEnt{r.T, oSrc, oDst})
		}
		// Destination side: the host end is orig.dst, the peer orig.src; the
		// socket is the one that answers (reply.src).
		if rSrc != oDst {
			x.add(natKey{r.Proto, oDst, oSrc}, natEnt{r.T, rSrc, rDst})
		}
	}
	for k, es := range x.m {
		slices.SortStableFunc(es, func(a, b natEnt) int { return cmp.Compare(a.t, b.t) })
		x.m[k] = es
	}
	return x
}

func (x *NATIndex) add(k natKey, e natEnt) {
	if es := x.m[k]; len(es) > 0 && es[len(es)-1] == e {
		return
	}
	x.m[k] = append(x.m[k], e)
}

// Len returns the number of translated flow tuples indexed.
func (x *NATIndex) Len() int { return len(x.m) }

// natSlack is how long before the record a translation is taken to hold:
// the collector polls conntrack every few seconds, so a connection is first
// recorded some time after its first packet.
const natSlack = int64(30e9)

// lookup returns the untranslated tuple of a flow at ts: the latest
// translation recorded no later than ts+natSlack, else the earliest.
func (x *NATIndex) lookup(proto uint8, local, remote netip.AddrPort, ts int64) (natEnt, bool) {
	es := x.m[natKey{proto, unmapPort(local), unmapPort(remote)}]
	if len(es) == 0 {
		return natEnt{}, false
	}
	i, _ := slices.BinarySearchFunc(es, ts+natSlack+1, func(e natEnt, t int64) int { return cmp.Compare(e.t, t) })
	if i == 0 {
		return es[0], true
	}
	return es[i-1], true
}

// natAttributor asks its inner Attributor about the untranslated tuple when
// the captured tuple itself has no owner.
type natAttributor struct {
	inner Attributor
	nat   *NATIndex
}

// WithNAT returns an Attributor that answers like a, except that a flow a
// cannot attribute and that x knows as a NAT translation is attributed
// through the socket of its untranslated tuple (MethodNAT). With an empty
// index it returns a itself.
func WithNAT(a Attributor, x *NATIndex) Attributor {
	if a == nil || x == nil || x.Len() == 0 {
		return a
	}
	return &natAttributor{inner: a, nat: x}
}

// Attribute implements Attributor.
func (n *natAttributor) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	a, from, until := n.inner.Attribute(proto, local, remote, ts)
	if a.Attributed() {
		return a, from, until
	}
	e, ok := n.nat.lookup(proto, local, remote, ts)
	if !ok {
		return a, from, until
	}
	b, bf, bu := n.inner.Attribute(proto, e.local, e.remote, ts)
	if !b.Attributed() {
		return a, from, until
	}
	b.Method = MethodNAT
	return b, bf, bu
}

// natDuplicates finds the flows of r that are NAT translations
// (Flow.Untranslated, set by untranslate) of another flow of r captured on
// a different interface: one connection seen on a container's veth or
// bridge and again, translated, on the uplink. Its packets are in both
// flows (and the totals); the diagnostic says how many.
func natDuplicates(r *Result) (ingest.Diagnostic, bool) {
	type ukey struct {
		proto uint8
		a, b  netip.AddrPort
	}
	norm := func(k *FlowKey) ukey {
		a, b := unmapPort(k.A), unmapPort(k.B)
		if a.Compare(b) > 0 {
			a, b = b, a
		}
		return ukey{k.Proto, a, b}
	}
	byKey := make(map[ukey]int, len(r.Flows))
	for i := range r.Flows {
		byKey[norm(&r.Flows[i].Key)] = i
	}
	var flows, packets, bytes int64
	for i := range r.Flows {
		f := &r.Flows[i]
		if f.Untranslated == nil {
			continue
		}
		if j, ok := byKey[norm(f.Untranslated)]; ok && j != i && r.Flows[j].Iface != f.Iface {
			flows++
			packets += f.Traffic.Out.Packets + f.Traffic.In.Packets
			bytes += f.Traffic.Out.Wire + f.Traffic.In.Wire
		}
	}
	if flows == 0 {
		return ingest.Diagnostic{}, false
	}
	return ingest.Diagnostic{Kind: ingest.DiagInfo, Where: "interfaces", Offset: -1, Count: packets, Bytes: bytes,
		Msg: fmt.Sprintf("%d NAT-translated flows were also captured untranslated on another interface (a container's veth "+
			"or bridge and the uplink): their %d packets (%d bytes) are counted on both; --interface NAME counts one interface",
			flows, packets, bytes)}, true
}

// untranslate sets Flow.Untranslated for the flows of r that are NAT
// translations (the host's end is A when oriented; either end otherwise).
func (x *NATIndex) untranslate(r *Result) {
	for i := range r.Flows {
		f := &r.Flows[i]
		if e, ok := x.lookup(f.Key.Proto, f.Key.A, f.Key.B, f.Traffic.First); ok {
			f.Untranslated = &FlowKey{Proto: f.Key.Proto, A: e.local, B: e.remote, Oriented: f.Key.Oriented}
		} else if f.Key.Oriented {
			continue
		} else if e, ok := x.lookup(f.Key.Proto, f.Key.B, f.Key.A, f.Traffic.First); ok {
			f.Untranslated = &FlowKey{Proto: f.Key.Proto, A: e.remote, B: e.local}
		}
	}
}

package analyze

import "github.com/flowblame/flowblame/ingest"

// PacketOwners answers "which process owned this packet" one packet at a
// time, for writers that annotate a capture (export --pcapng). Direction is
// decided exactly as Analyze decides it, and the Attributor is asked once
// per flow and again only when a packet leaves the previous answer's
// validity range.
type PacketOwners struct {
	cl    *classifier
	attr  Attributor
	cache map[fkey]cachedOwner
	r     rec
}

type cachedOwner struct {
	a          Attribution
	from, till int64
}

// maxOwnerCache bounds PacketOwners' cache (about 100 MB).
const maxOwnerCache = 1 << 20

// NewPacketOwners uses opts.Local, LocalMACs, IfaceAddrs and Attributor.
func NewPacketOwners(opts Options) *PacketOwners {
	return &PacketOwners{cl: newClassifier(opts), attr: opts.Attributor, cache: map[fkey]cachedOwner{}}
}

// PacketDir is the direction Owner decided for one packet.
type PacketDir int8

// Packet directions.
const (
	PacketDirUnknown PacketDir = iota
	PacketOut                  // sent by this host (TX)
	PacketIn                   // received (RX)
)

// Owner returns the flow key of p, its owner at p's time and p's direction
// (as Analyze counts it: the packet's own, which a flow between two equal
// endpoints cannot tell from the key). ifaces are the source's interfaces
// so far (their addresses count as local). Non-IP frames get CauseNonIP,
// flows of unknown direction CauseUnknownDir.
func (o *PacketOwners) Owner(p *ingest.Packet, ifaces []ingest.Interface) (FlowKey, Attribution, PacketDir) {
	none := Attribution{Method: MethodNone, Confidence: ConfNone}
	if p.Kind != ingest.KindIP {
		none.Cause = CauseNonIP
		return FlowKey{}, none, PacketDirUnknown
	}
	o.cl.refresh(ifaces)
	o.cl.classify(p, &o.r)
	k := o.r.k.flowKey()
	dir := PacketDirUnknown
	switch o.r.dir {
	case dirOut:
		dir = PacketOut
	case dirIn:
		dir = PacketIn
	}
	switch {
	case !k.Oriented:
		none.Cause = CauseUnknownDir
		return k, none, dir
	case o.attr == nil:
		none.Cause = CauseNoSockets
		return k, none, dir
	}
	if c, ok := o.cache[o.r.k]; ok && p.TS >= c.from && p.TS <= c.till {
		return k, c.a, dir
	}
	a, from, till := o.attr.Attribute(k.Proto, k.A, k.B, p.TS)
	if len(o.cache) >= maxOwnerCache { // a flood of one-packet flows: start over
		clear(o.cache)
	}
	o.cache[o.r.k] = cachedOwner{a: a, from: from, till: till}
	return k, a, dir
}

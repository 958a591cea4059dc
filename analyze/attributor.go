package analyze

import "net/netip"

// Attributor answers "which process owned the local end of this flow at this
// time". The engine calls it once per flow and again only when a packet falls
// outside the validity range of the previous answer, so implementations may
// be moderately expensive.
type Attributor interface {
	// Attribute returns the owner of the socket whose local end is local and
	// whose peer is remote (proto ProtoTCP/ProtoUDP/...), for a packet at ts
	// (Unix ns). The answer holds for packets of this flow in
	// [validFrom, validUntil] (inclusive).
	Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (a Attribution, validFrom, validUntil int64)
}

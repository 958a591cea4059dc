package analyze

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"net/netip"

	"github.com/flowblame/flowblame/ingest"
)

// Directions of a frame relative to the local host, as array indices.
const (
	dirOut     = 0 // TX
	dirIn      = 1 // RX
	dirUnknown = 2
)

// Key flags.
const (
	fOriented    = 1 << iota // A is the local endpoint
	fV4                      // addresses are IPv4 (stored v4-mapped)
	fFolded                  // an aggregate of flows past Options.MaxFlows: ports are 0
	fFoldedHosts             // with fFolded: the addresses are 0 too (every host)
)

// foldLevel returns FlowKey.Folded for key flags.
func foldLevel(flags uint8) string {
	switch {
	case flags&fFoldedHosts != 0:
		return FoldedHosts
	case flags&fFolded != 0:
		return FoldedPorts
	}
	return ""
}

// fkey is the compact, comparable flow key the hot path works on: a
// direction-normalised 5-tuple with addresses in 16-byte form.
type fkey struct {
	a, b   [16]byte
	pa, pb uint16
	proto  uint8
	flags  uint8
}

// flowKey converts k to the public FlowKey.
func (k *fkey) flowKey() FlowKey {
	return FlowKey{
		Proto:    k.proto,
		A:        netip.AddrPortFrom(k.addrA(), k.pa),
		B:        netip.AddrPortFrom(k.addrB(), k.pb),
		Oriented: k.flags&fOriented != 0,
		Folded:   foldLevel(k.flags),
	}
}

// compare orders keys as compareFlowKey orders their FlowKeys: protocol,
// IPv4 before IPv6, A (address, port), B, unoriented before oriented, then
// flows before aggregates.
func (k *fkey) compare(o *fkey) int {
	if k.proto != o.proto {
		return cmp.Compare(k.proto, o.proto)
	}
	if v, w := k.flags&fV4, o.flags&fV4; v != w {
		return cmp.Compare(w, v)
	}
	if c := bytes.Compare(k.a[:], o.a[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(k.pa, o.pa); c != 0 {
		return c
	}
	if c := bytes.Compare(k.b[:], o.b[:]); c != 0 {
		return c
	}
	if c := cmp.Compare(k.pb, o.pb); c != 0 {
		return c
	}
	if c := cmp.Compare(k.flags&fOriented, o.flags&fOriented); c != 0 {
		return c
	}
	return cmp.Compare(k.flags&(fFolded|fFoldedHosts), o.flags&(fFolded|fFoldedHosts))
}

// prefix is the first 128 bits of compare's order, as two words compared
// in turn: keys whose prefixes differ compare as their prefixes do. For
// IPv4 keys it is the whole order but for the Oriented flag, so sorting
// many flows rarely needs their keys (a flood of one-packet flows from
// many sources ties on everything but the remote address).
func (k *fkey) prefix() (uint64, uint64) {
	p := uint64(k.proto) << 56
	if k.flags&fV4 != 0 { // IPv4 first; a and b are v4-mapped
		return p | uint64(binary.BigEndian.Uint32(k.a[12:]))<<23 | uint64(k.pa)<<7,
			uint64(binary.BigEndian.Uint32(k.b[12:]))<<16 | uint64(k.pb)
	}
	hi := binary.BigEndian.Uint64(k.a[:8])
	return p | 1<<55 | hi>>9, hi<<55 | binary.BigEndian.Uint64(k.a[8:])>>9
}

// addrPrefix is a 64-bit prefix of netip.Addr.Compare's order (invalid,
// then IPv4 by value, then IPv6 by its first 62 bits).
func addrPrefix(a netip.Addr) uint64 {
	switch {
	case !a.IsValid():
		return 0
	case a.Is4():
		b := a.As4()
		return 1<<62 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return 2<<62 | binary.BigEndian.Uint64(b[:8])>>2
}

func (k *fkey) addrA() netip.Addr { return addr16(k.a, k.flags&fV4 != 0) }
func (k *fkey) addrB() netip.Addr { return addr16(k.b, k.flags&fV4 != 0) }

func addr16(a [16]byte, v4 bool) netip.Addr {
	ip := netip.AddrFrom16(a)
	if v4 {
		return ip.Unmap()
	}
	return ip
}

// prefix16 is a prefix in 16-byte form (IPv4 as v4-mapped), for matching
// without netip's method overhead.
type prefix16 struct {
	hi, lo         uint64 // masked address, big-endian halves
	maskHi, maskLo uint64
	v4             bool
}

func newPrefix16(p netip.Prefix) prefix16 {
	p = p.Masked()
	bits := p.Bits()
	v4 := p.Addr().Is4()
	if v4 {
		bits += 96
	}
	a := p.Addr().As16()
	var maskHi, maskLo uint64
	switch {
	case bits >= 64:
		maskHi = ^uint64(0)
		if bits > 64 {
			maskLo = ^uint64(0) << (128 - bits)
		}
	case bits > 0:
		maskHi = ^uint64(0) << (64 - bits)
	}
	return prefix16{
		hi: binary.BigEndian.Uint64(a[:8]) & maskHi, lo: binary.BigEndian.Uint64(a[8:]) & maskLo,
		maskHi: maskHi, maskLo: maskLo, v4: v4,
	}
}

func (p *prefix16) contains(a *[16]byte, v4 bool) bool {
	return p.v4 == v4 &&
		binary.BigEndian.Uint64(a[:8])&p.maskHi == p.hi &&
		binary.BigEndian.Uint64(a[8:])&p.maskLo == p.lo
}

// classifier decides the direction of frames and builds their flow keys.
// It runs in the reading goroutine.
type classifier struct {
	prefixes [2][]prefix16 // Options.Local by family: [0] IPv6, [1] IPv4
	hosts    [][16]byte    // host addresses, any family (v4 mapped; v4 flag kept apart)
	hostV4   []bool
	macs     [][6]byte
	nIfaces  int // interfaces of the source already merged in
	base     Options
}

func newClassifier(opts Options) *classifier {
	c := &classifier{base: opts}
	for _, p := range opts.Local {
		if p.IsValid() {
			p16 := newPrefix16(p)
			c.prefixes[b2i(p16.v4)] = append(c.prefixes[b2i(p16.v4)], p16)
		}
	}
	// Sorted iteration keeps the classifier deterministic whatever the
	// map order (only membership matters, but keep it tidy).
	for i := range maxKey(opts.IfaceAddrs) + 1 {
		for _, p := range opts.IfaceAddrs[i] {
			c.addHost(p.Addr())
		}
	}
	for _, m := range opts.LocalMACs {
		c.addMAC(m[:])
	}
	return c
}

func maxKey(m map[int][]netip.Prefix) int {
	mx := -1
	for k := range m {
		mx = max(mx, k)
	}
	return mx
}

func (c *classifier) addHost(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	a16 := a.Unmap().As16()
	v4 := a.Unmap().Is4()
	for i, h := range c.hosts {
		if h == a16 && c.hostV4[i] == v4 {
			return
		}
	}
	c.hosts = append(c.hosts, a16)
	c.hostV4 = append(c.hostV4, v4)
}

func (c *classifier) addMAC(m []byte) {
	if len(m) != 6 {
		return
	}
	var k [6]byte
	copy(k[:], m)
	if k == ([6]byte{}) {
		return // loopback "MAC" 00:00:00:00:00:00 identifies nothing
	}
	for _, h := range c.macs {
		if h == k {
			return
		}
	}
	c.macs = append(c.macs, k)
}

// refresh merges addresses and MACs of interfaces the source has described
// since the last call.
func (c *classifier) refresh(ifs []ingest.Interface) {
	for ; c.nIfaces < len(ifs); c.nIfaces++ {
		it := ifs[c.nIfaces]
		for _, p := range it.Addrs {
			c.addHost(p.Addr())
		}
		c.addMAC(it.MAC)
	}
}

func (c *classifier) isLocal(a *[16]byte, v4 bool) bool {
	for i := range c.hosts {
		if c.hosts[i] == *a && c.hostV4[i] == v4 {
			return true
		}
	}
	ps := c.prefixes[b2i(v4)]
	for i := range ps {
		if ps[i].contains(a, v4) {
			return true
		}
	}
	return false
}

func (c *classifier) isLocalMAC(m *[6]byte) bool {
	for i := range c.macs {
		if c.macs[i] == *m {
			return true
		}
	}
	return false
}

// frameDir decides the direction of a frame from what the capture recorded
// (EPB flags, SLL type), then MACs; used after addresses failed to decide.
func (c *classifier) frameDir(p *ingest.Packet) uint8 {
	switch p.Dir {
	case ingest.DirOut:
		return dirOut
	case ingest.DirIn:
		return dirIn
	}
	if p.HasMAC && len(c.macs) > 0 {
		if c.isLocalMAC(&p.SrcMAC) {
			return dirOut
		}
		if c.isLocalMAC(&p.DstMAC) {
			return dirIn
		}
	}
	return dirUnknown
}

// classify fills r from p: direction, key, hash. p must be KindIP.
func (c *classifier) classify(p *ingest.Packet, r *rec) {
	sa, da := p.Tuple.Src.Addr(), p.Tuple.Dst.Addr()
	v4 := sa.Is4()
	// The addresses go straight into the key as two 64-bit words each and
	// are only ever read back 64 bits at a time: a 16-byte array returned
	// by As16 and then copied is read with one 16-byte load from two 8-byte
	// stores, which the CPU cannot forward (a stall that was a third of this
	// function's time).
	k := &r.k
	put16(&k.a, sa)
	put16(&k.b, da)
	d := c.addrDir(k, v4)
	if d == dirUnknown {
		d = c.frameDir(p)
	}
	c.finish(r, d, v4, p.Tuple.Proto, p.Tuple.Src.Port(), p.Tuple.Dst.Port())
}

// classifySummary is classify for a summarised frame.
func (c *classifier) classifySummary(s *ingest.Summary, r *rec) {
	k := &r.k
	k.a, k.b = s.Src, s.Dst
	d := c.addrDir(k, s.V4)
	if d == dirUnknown {
		switch {
		case s.Dir == ingest.DirOut:
			d = dirOut
		case s.Dir == ingest.DirIn:
			d = dirIn
		case !s.HasMAC || len(c.macs) == 0:
		case c.isLocalMAC(&s.SrcMAC):
			d = dirOut
		case c.isLocalMAC(&s.DstMAC):
			d = dirIn
		}
	}
	c.finish(r, d, s.V4, s.Proto, s.SrcPort, s.DstPort)
}

// addrDir decides a frame's direction from its addresses (in k.a, k.b):
// out when only the source is local, in when only the destination is.
func (c *classifier) addrDir(k *fkey, v4 bool) uint8 {
	sl, dl := c.isLocal(&k.a, v4), c.isLocal(&k.b, v4)
	switch {
	case sl && !dl:
		return dirOut
	case dl && !sl:
		return dirIn
	}
	return dirUnknown
}

// finish completes r whose key holds the frame's addresses (source in a):
// direction d, the key in flow order (local end first when oriented) and
// its hashes.
func (c *classifier) finish(r *rec, d uint8, v4 bool, proto uint8, sp, dp uint16) {
	k := &r.k
	r.dir = d
	k.proto = proto
	k.flags = 0
	if v4 {
		k.flags = fV4
	}
	be := binary.BigEndian
	a0, a1, b0, b1 := be.Uint64(k.a[:8]), be.Uint64(k.a[8:]), be.Uint64(k.b[:8]), be.Uint64(k.b[8:])
	rev := false
	switch d {
	case dirOut:
		k.flags |= fOriented
	case dirIn:
		k.flags |= fOriented
		rev = true
	default:
		c := cmp.Or(cmp.Compare(a0, b0), cmp.Compare(a1, b1))
		rev = c > 0 || (c == 0 && sp > dp)
	}
	if rev {
		be.PutUint64(k.a[:8], b0)
		be.PutUint64(k.a[8:], b1)
		be.PutUint64(k.b[:8], a0)
		be.PutUint64(k.b[8:], a1)
		k.pa, k.pb = dp, sp
		r.rev = 1
	} else {
		k.pa, k.pb = sp, dp
		r.rev = 0
	}
	r.hash, r.hash2 = k.hashes()
}

// put16 writes a as 16 bytes (IPv4 v4-mapped) with two 64-bit stores.
func put16(dst *[16]byte, a netip.Addr) {
	be := binary.BigEndian
	if a.Is4() {
		b := a.As4()
		be.PutUint64(dst[:8], 0)
		be.PutUint64(dst[8:], 0xffff<<32|uint64(be.Uint32(b[:])))
		return
	}
	if a.Zone() == "" {
		// Appends the two 64-bit halves into dst itself (cap 16, no zone).
		if b, err := a.AppendBinary(dst[:0]); err == nil && len(b) == 16 && &b[0] == &dst[0] {
			return
		}
	}
	*dst = a.As16()
}

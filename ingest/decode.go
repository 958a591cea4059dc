package ingest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Frame decoding: link, IP and transport headers of one captured frame.
//
// The decoder is hand-written, allocation-free and bounds-checked. It reads
// only what it needs: link headers (to find IP), the outermost IP header (the
// packet's 5-tuple, IPLen, fragment state), the transport ports and TCP
// flags, and the IP headers nested inside tunnels and ICMP error quotes
// (Packet.Inner), which is what a tshark field walk or conversation table
// counts; so are the packet headers sampled in sFlow datagrams, which
// tshark dissects by default.
//
// Decisions worth knowing:
//   - ICMP and ICMPv6 tuples have ports 0 (type/code are not folded into
//     ports); the quoted header of an ICMP error goes to Inner as
//     LayerICMPQuoted.
//   - A non-first IPv4 or IPv6 fragment takes its ports from the first
//     fragment with the same (src, dst, proto, id) seen earlier by this
//     Decoder; Fragment is set either way. The table is bounded (see
//     fragTableSize) and evicts the oldest entry.
//   - Headers inside a fragmented IP packet (tunnel payloads, ICMP quotes)
//     are decoded in the frame that completes the packet (every payload
//     byte seen, in any order; duplicates and overlaps add nothing), from
//     its first fragKeep bytes, whichever fragments carried them — the
//     frame where tshark, which reassembles by default, dissects them.
//     A fragment cut by the snaplen is never part of a reassembly (as in
//     Wireshark), and an IPv4 first fragment so cut is decoded as it is.
//     flowblame does not otherwise reassemble.
//   - Payload is the transport payload for TCP and UDP, and the whole IP
//     payload (ICMP message, GRE header, ...) for other protocols; it is
//     empty for non-first fragments.
//   - Where tshark stops dissecting, the decoder stops too, so that counts
//     agree with tshark: a UDP length below 8 (one beyond the IP payload is
//     only flagged by tshark, which decodes what is there), an
//     IPv4 header whose options were cut by the snaplen, a version-6 header
//     on the IPv6 link type. A version-6 header after an IPv4 EtherType or
//     on the IPv4 link type is decoded as IPv6, as Wireshark does.
//   - Errors are returned only for frames that carry no usable outer IP
//     header; building one allocates, the success path never does.
//   - The IP payload is bounded by the IP length field, so an Ethernet FCS
//     or padding is never taken as payload. An IPv4 total length of 0 (TCP
//     segmentation offload) means "to the end of the frame".
//   - A frame whose outer IP header is valid but whose transport header is
//     cut by the snaplen is still KindIP, with zero ports.

// Limits that bound the decoder's loops.
const (
	maxIPv6Ext = 16  // IPv6 extension headers in one packet
	maxNesting = 8   // link/IP headers nested through tunnels
	payloadMax = 256 // bytes of transport payload kept in Packet.Payload (what collect keeps of JSON-RPC and DNS)
)

// EtherTypes understood by the decoder.
const (
	etIPv4      uint16 = 0x0800
	etVLAN      uint16 = 0x8100
	etQinQ      uint16 = 0x88a8
	etQinQOld1  uint16 = 0x9100
	etQinQOld2  uint16 = 0x9200
	etIPv6      uint16 = 0x86dd
	etMPLS      uint16 = 0x8847
	etMPLSMC    uint16 = 0x8848
	etPPPoES    uint16 = 0x8864
	etTEB       uint16 = 0x6558 // transparent Ethernet bridging (Ethernet over GRE)
	etERSPAN2   uint16 = 0x88be
	etERSPAN3   uint16 = 0x22eb
	etPPP       uint16 = 0x880b // PPP inside GRE (PPTP)
	etNSH       uint16 = 0x894f
	etVNTag     uint16 = 0x8926
	etPBB       uint16 = 0x88e7 // 802.1ah provider backbone bridging (MAC-in-MAC)
	etCFP       uint16 = 0x8903 // Cisco FabricPath
	etCMD       uint16 = 0x8909 // Cisco MetaData (TrustSec)
	etWCCP      uint16 = 0x883e // WCCP redirect inside GRE
	etAruba     uint16 = 0x8200 // Aruba: 802.11 frames inside GRE
	etLLCLength uint16 = 1500   // EtherType values ≤ this are 802.3 lengths
)

// PPP protocol numbers.
const (
	pppIPv4 uint16 = 0x0021
	pppIPv6 uint16 = 0x0057
)

// IP protocol numbers of decoded encapsulations.
const (
	protoPIM      uint8 = 103
	protoMPLSinIP uint8 = 137
	protoSwIPe    uint8 = 53
	protoAH       uint8 = 51
)

// UDP ports of decoded tunnels.
const (
	portVXLAN   uint16 = 4789
	portGeneve  uint16 = 6081
	portTeredo  uint16 = 3544
	portAYIYA   uint16 = 5072
	portGTPU    uint16 = 2152
	portGTPv0   uint16 = 3386 // GTP' and GTPv0
	portGREUDP  uint16 = 4754 // GRE-in-UDP (RFC 8086)
	portMPLSUDP uint16 = 6635 // MPLS-in-UDP (RFC 7510)
	portGPE     uint16 = 4790 // VXLAN-GPE
	portL2TP    uint16 = 1701
	portSFlow   uint16 = 6343 // sFlow datagrams: packet samples, not a tunnel, but tshark dissects their headers
)

// Decoder decodes link, IP and transport headers of one frame. Not safe for
// concurrent use. It keeps IPv4/IPv6 fragment state (first-fragment ports
// and leading bytes, for fragTableSize packets), so use one Decoder per
// capture, fed in capture order.
type Decoder struct {
	// slowOnly disables fastEthernet (tests compare both paths).
	slowOnly bool
	frags    fragTable
	// replay holds the head of a completed fragmented packet while what
	// it carries is decoded.
	replay [fragKeep]byte
}

// NewDecoder returns a Decoder with an empty fragment table.
func NewDecoder() *Decoder { return &Decoder{} }

// errDecode is a decoding failure; Decode wraps it with ErrMalformed.
type errDecode string

func (e errDecode) Error() string { return string(e) }

// Decoding failures. They are values, not allocations.
const (
	errShort       errDecode = "frame too short"
	errIPVersion   errDecode = "bad IP version"
	errIPHeaderLen errDecode = "bad IPv4 header length"
	errTooDeep     errDecode = "headers nested too deeply"
	errUnsupported errDecode = "unsupported link type"
)

// decodeError reports a malformed frame; it wraps ErrMalformed.
type decodeError struct {
	link LinkType
	why  error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("%v: link type %d: %v", ErrMalformed, e.link, e.why)
}

func (e *decodeError) Unwrap() []error { return []error{ErrMalformed, e.why} }

// UnsupportedLinkError is returned by Decode for a link type it does not
// decode. It wraps ErrUnrecognized.
type UnsupportedLinkError struct{ Link LinkType }

func (e *UnsupportedLinkError) Error() string {
	return fmt.Sprintf("unsupported link type %d", e.Link)
}

// Unwrap makes errors.Is(err, ErrUnrecognized) true.
func (e *UnsupportedLinkError) Unwrap() error { return ErrUnrecognized }

// Decode fills p.Link, Kind, EtherType, HasMAC/SrcMAC/DstMAC, SLLType, Dir
// (SLL pkttype only), Tuple, IPLen, Fragment, TCPFlags, Inner/NInner, Payload
// from frame (the captured bytes). It never panics and never retains frame
// beyond p.Payload. A non-nil error means the frame is malformed or its link
// type unsupported (p.Kind says which) — a record-level problem, not fatal.
func (d *Decoder) Decode(link LinkType, frame []byte, p *Packet) (err error) {
	if link == LinkEthernet && !d.slowOnly && d.fastEthernet(frame, p) {
		return nil
	}
	resetDecoded(p, link)
	p.Tuple = FiveTuple{} // set at the end, unless the decoder gives up early (an unsupported link)
	if n := pseudoHeaderLen(link); n > 0 {
		// Wireshark reads these link types' first bytes as a pseudo-header
		// that is not part of the frame's lengths (frame.len, cap_len).
		p.WireLen, p.CapLen = max(p.WireLen-n, 0), max(p.CapLen-n, 0)
	}
	defer func() {
		if r := recover(); r != nil {
			p.Kind = KindMalformed
			p.Tuple = FiveTuple{}
			err = &decodeError{link: link, why: fmt.Errorf("decoder panic: %v", r)}
		}
	}()
	st := state{d: d, p: p}
	var e error
	switch link {
	case LinkEthernet:
		e = st.ethernet(frame)
	case LinkSLL:
		e = st.sll(frame)
	case LinkSLL2:
		e = st.sll2(frame)
	case LinkRaw, linkRawAlt, linkRawOpenBSD:
		e = st.rawIP(frame)
	case LinkIPv4:
		e = st.ipv4(frame) // hands a version-6 header to ipv6, as tshark does
	case LinkIPv6:
		e = st.ipv6(frame)
	case LinkNull:
		e = st.null(frame, false)
	case LinkLoop:
		e = st.null(frame, true)
	case linkPPP:
		e = st.ppp(frame, true)
	case linkCHDLC:
		e = st.chdlc(frame)
	default:
		e = st.otherLink(link, frame)
		if e == errUnsupported {
			p.Kind = KindUnsupportedLink
			return &UnsupportedLinkError{Link: link}
		}
	}
	if st.outerDone {
		p.Tuple.Proto = st.proto
		p.Tuple.Src = netip.AddrPortFrom(st.src, st.sp)
		p.Tuple.Dst = netip.AddrPortFrom(st.dst, st.dp)
	}
	if e != nil {
		if p.Kind == KindIP {
			// The outer header was decoded; a problem further in does not
			// make the packet unusable.
			return nil
		}
		p.Kind = KindMalformed
		return &decodeError{link: link, why: e}
	}
	return nil
}

// resetDecoded sets the fields Decode fills, except Tuple, to what a frame
// carrying nothing decodable has.
func resetDecoded(p *Packet, link LinkType) {
	p.Link = link
	p.Kind = KindNonIP
	p.EtherType = 0
	p.HasMAC = false
	p.SrcMAC = [6]byte{}
	p.DstMAC = [6]byte{}
	p.SLLType = -1
	p.IPLen = 0
	p.Fragment = false
	p.TCPFlags = 0
	// Only the layers in use can hold anything; the rest stay zero.
	clear(p.Inner[:min(int(p.NInner), MaxInnerLayers)])
	p.NInner = 0
	p.Payload = nil
}

// fastEthernet decodes the commonest frame of all — Ethernet II without
// tags carrying IPv4 without options or fragmentation, or IPv6 without
// extension headers, and a complete TCP header or a UDP header on no
// tunnel port — into p exactly as the general path does (FuzzFastPath
// compares them), without its bookkeeping: no deferred recover (nothing
// here can index out of range), no per-layer dispatch. For any other frame
// it reports false and leaves p alone. It is about a third of the cost of
// the general path; on a typical capture nearly every frame takes it.
func (d *Decoder) fastEthernet(b []byte, p *Packet) bool {
	var s Summary
	if !summarizeEthernet(b, &s) {
		return false
	}
	resetDecoded(p, LinkEthernet)
	p.Kind = KindIP
	p.EtherType = be16(b, 12)
	p.HasMAC = true
	p.DstMAC, p.SrcMAC = s.DstMAC, s.SrcMAC
	p.IPLen = int(s.IPLen)
	p.TCPFlags = s.TCPFlags
	p.Payload = s.Payload
	p.Tuple = s.Tuple()
	return true
}

// tcpTunnelPort reports whether transport looks inside a TCP segment with
// these ports: GTP on port 2152, which Wireshark dissects over TCP too.
func tcpTunnelPort(sp, dp uint16) bool { return sp == portGTPU || dp == portGTPU }

// udpTunnelPort reports whether udpTunnel would look inside a UDP
// datagram with these ports.
func udpTunnelPort(sp, dp uint16) bool {
	switch dp {
	case portVXLAN, portGeneve, portGPE, portGREUDP, portMPLSUDP:
		return true
	}
	for _, port := range [...]uint16{portL2TP, portGTPU, portGTPv0, portTeredo, portAYIYA, portSFlow} {
		if sp == port || dp == port {
			return true
		}
	}
	return false
}

// pseudoHeaderLen is the length of the pseudo-header Wireshark's wiretap
// (pcap_process_pseudo_header) takes off the front of a frame of this link
// type, whether or not flowblame decodes the rest (PPP with direction,
// 204, takes its byte off where it is decoded).
func pseudoHeaderLen(link LinkType) int {
	switch link {
	case 123, 139, 201, 209, 254: // SunATM, MTP2 with phdr, Bluetooth H4 with phdr, Linux I2C, Bluetooth Linux monitor
		return 4
	case 144, 177: // IrDA, Linux LAPD
		return 16
	case 196: // SITA
		return 5
	case 245: // NFC LLCP
		return 2
	}
	return 0
}

// Link types decoded beyond the named contract constants.
const (
	linkRawAlt     LinkType = 12  // DLT_RAW as most BSDs number it
	linkRawOpenBSD LinkType = 14  // DLT_RAW as OpenBSD numbers it (Wireshark reads it as raw IP)
	linkPPP        LinkType = 9   // PPP with optional HDLC-like framing
	linkCHDLC      LinkType = 104 // Cisco HDLC
)

// state is the per-frame decoding state.
type state struct {
	d *Decoder
	p *Packet
	// depth counts nested link/IP headers; outerDone says the outermost IP
	// header has been decoded, so further IP headers go to Inner.
	depth     int
	outerDone bool
	// innerKind is the LayerKind the next inner IP header gets.
	innerKind LayerKind
	// reported is the IP payload length the IP header announced for the
	// transport being decoded (bounds UDP lengths, as Wireshark checks).
	reported int
	// The outermost header's 5-tuple, written to Packet.Tuple once at the
	// end of Decode.
	src, dst netip.Addr
	sp, dp   uint16
	proto    uint8
	// replay: decoding the head of a reassembled packet; Payload and
	// TCPFlags keep the values of the frame's own headers.
	replay bool
}

func be16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }

// ethernet decodes an Ethernet II / 802.3 header with any VLAN tags.
func (s *state) ethernet(b []byte) error {
	if len(b) < 14 {
		return errShort
	}
	if !s.outerDone && !s.p.HasMAC {
		s.p.HasMAC = true
		copy(s.p.DstMAC[:], b[0:6])
		copy(s.p.SrcMAC[:], b[6:12])
	}
	et := be16(b, 12)
	b = b[14:]
	// Tags and MAC-in-MAC headers: every pass consumes bytes, so the loop
	// is bounded by the frame length.
	for {
		n := 0
		switch et {
		case etVLAN, etQinQ, etQinQOld1, etQinQOld2: // isVLANTag
			n = 4 // 802.1Q/802.1ad tag: TCI, EtherType
		case etVNTag:
			n = 6 // VN-Tag: 4 bytes, EtherType
		case etPBB:
			n = 18 // 802.1ah I-TAG, customer DA and SA, EtherType
		case etCFP:
			n = 16 // Cisco FabricPath FTAG/TTL, inner DA and SA, EtherType
		case etCMD:
			n = 8 // Cisco MetaData: version, length, option, SGT, EtherType
		}
		if n == 0 {
			break
		}
		if len(b) < n {
			return errShort
		}
		if et == etCFP && len(b) >= n+4 {
			// Wireshark dissects the frame inside FabricPath as
			// Ethernet with a trailing FCS.
			b = b[:len(b)-4]
		}
		et = be16(b, n-2)
		b = b[n:]
	}
	if et <= etLLCLength {
		return s.llc(b[:min(len(b), int(et))])
	}
	return s.etherType(et, b)
}

// llc decodes an 802.2 LLC header as Wireshark does: only information
// frames (I, with a 2-byte control field, or UI) carry a payload; SNAP with
// an encapsulated-Ethernet, Cisco or AppleTalk OUI leads to its EtherType,
// DSAP 0x06 (the IP SAP) to IP.
func (s *state) llc(b []byte) error {
	if len(b) < 3 {
		return nil
	}
	n := 3 // DSAP, SSAP, 1-byte control (U frames)
	switch ctl := b[2]; {
	case ctl&0x01 == 0: // I frame
		n = 4
	case ctl != 0x03: // S or U frames other than UI carry nothing
		return nil
	}
	if len(b) < n {
		return nil
	}
	switch {
	case b[0] == 0xaa && b[1] == 0xaa: // SNAP: OUI, protocol ID
		if len(b) < n+5 {
			return nil
		}
		switch uint32(b[n])<<16 | uint32(b[n+1])<<8 | uint32(b[n+2]) {
		case 0x000000, 0x0000f8, 0x00000c, 0x080007:
			return s.etherType(be16(b, n+3), b[n+5:])
		}
	case b[0] == 0x06:
		return s.ipv4(b[n:]) // hands a version-6 header to ipv6, as tshark does
	case b[0] == 0x14 || b[0] == 0x20 || b[0] == 0x34 || b[0] == 0x54 || b[0] == 0xfe: // OSI network layer
		return s.osi(b[n:])
	}
	return nil
}

// pflog decodes a pflog header as Wireshark does: its first byte is the
// header's length, the packet starts at that length rounded up to 4, the
// direction is at offset 44 (60 from OpenBSD 3.8's 61-byte header on), and
// the fields Wireshark reads (48, 64 or, from OpenBSD 4.9's 100-byte header
// on, 100 bytes) must be there. Address family 2 is IPv4; 24, 28 and 30
// (the BSDs' and macOS's AF_INET6) are IPv6.
func (s *state) pflog(b []byte) error {
	if len(b) < 1 {
		return errShort
	}
	n := int(b[0])
	fields, dir := 48, 44
	switch {
	case n >= 100:
		fields, dir = 100, 60
	case n >= 61:
		fields, dir = 64, 60
	}
	if len(b) < fields {
		return errShort
	}
	switch b[dir] {
	case 1:
		s.p.Dir = DirIn
	case 2:
		s.p.Dir = DirOut
	}
	n = (n + 3) &^ 3
	if n > len(b) {
		return nil
	}
	switch b[1] {
	case 2:
		return s.ipv4(b[n:])
	case 24, 28, 30:
		return s.ipv6(b[n:])
	}
	return nil
}

// osi decodes an OSI network-layer PDU whose NLPID says it is IP (0xcc) or
// IPv6 (0x8e), the NLPID followed by the packet (Wireshark's osinl.excl).
func (s *state) osi(b []byte) error {
	if len(b) < 1 {
		return nil
	}
	switch b[0] {
	case 0xcc:
		return s.ipv4(b[1:])
	case 0x8e:
		return s.ipv6(b[1:])
	}
	return nil
}

// etherType dispatches on an EtherType-like protocol value.
func (s *state) etherType(et uint16, b []byte) error {
	// 802.1Q/802.1ad tags where an EtherType led to them rather than an
	// Ethernet header (Linux cooked captures, GRE): as in ethernet.
	if isVLANTag(et) {
		for isVLANTag(et) {
			if len(b) < 4 {
				return errShort
			}
			et, b = be16(b, 2), b[4:]
		}
		if et <= etLLCLength {
			return s.llc(b[:min(len(b), int(et))])
		}
	}
	if !s.outerDone {
		s.p.EtherType = et
	}
	s.depth++
	if s.depth > maxNesting {
		return errTooDeep
	}
	switch et {
	case etIPv4:
		return s.ipv4(b)
	case etIPv6:
		return s.ipv6(b)
	case etMPLS, etMPLSMC:
		return s.mpls(b)
	case etPPPoES:
		if len(b) < 6 {
			return errShort
		}
		return s.ppp(b[6:], false)
	case etTEB:
		return s.ethernet(b)
	case etPPP:
		return s.ppp(b, true)
	case etNSH:
		return s.nsh(b)
	case etMACsec:
		return s.macsec(b)
	case etAVSP:
		return s.avsp(b)
	}
	return nil
}

// MACsec and Arista vendor-specific (timestamp) EtherTypes.
const (
	etMACsec uint16 = 0x88e5
	etAVSP   uint16 = 0xd28b
)

// macsec decodes an 802.1AE SecTAG as Wireshark does: version 0 only; the
// payload's EtherType follows the SecTAG only when the frame is neither
// encrypted (E) nor changed (C); a 16-byte ICV ends the frame.
func (s *state) macsec(b []byte) error {
	if len(b) < 1 || b[0]&0x80 != 0 {
		return nil
	}
	n := 6
	if b[0]&0x20 != 0 { // SC: explicit SCI
		n = 14
	}
	if len(b) <= n+16 || b[0]&0x0c != 0 || len(b) < n+2 {
		return nil
	}
	return s.etherType(be16(b, n), b[n+2:])
}

// avsp decodes Arista's vendor-specific header (packet-avsp.c): subtype;
// for subtype 1 (timestamp) a version and a 64- or 48-bit timestamp; then
// the EtherType.
func (s *state) avsp(b []byte) error {
	if len(b) < 2 {
		return nil
	}
	n := 2
	if be16(b, 0) == 1 {
		if len(b) < 4 {
			return nil
		}
		switch be16(b, 2) {
		case 0x10, 0x110:
			n = 12
		case 0x20, 0x120:
			n = 10
		default:
			return nil
		}
	}
	if len(b) < n+2 {
		return nil
	}
	return s.etherType(be16(b, n), b[n+2:])
}

// isVLANTag reports whether et introduces an 802.1Q/802.1ad tag.
func isVLANTag(et uint16) bool {
	return et == etVLAN || et == etQinQ || et == etQinQOld1 || et == etQinQOld2
}

// nsh decodes a Network Service Header (RFC 8300).
func (s *state) nsh(b []byte) error {
	if len(b) < 8 {
		return nil
	}
	n := int(b[1]&0x3f) * 4
	if n < 8 || len(b) < n {
		return nil
	}
	return s.nextProto(b[3], b[n:])
}

// nextProto dispatches on the "next protocol" numbering shared by NSH and
// VXLAN-GPE: 1 IPv4, 2 IPv6, 3 Ethernet, 4 NSH, 5 MPLS.
func (s *state) nextProto(np uint8, b []byte) error {
	switch np {
	case 1:
		return s.etherType(etIPv4, b)
	case 2:
		return s.etherType(etIPv6, b)
	case 3:
		return s.etherType(etTEB, b)
	case 4:
		return s.etherType(etNSH, b)
	case 5:
		return s.etherType(etMPLS, b)
	}
	return nil
}

// sll decodes a Linux cooked v1 header (16 bytes).
func (s *state) sll(b []byte) error {
	if len(b) < 16 {
		return errShort
	}
	s.setSLLType(be16(b, 0))
	if be16(b, 2) == arphrdNetlink {
		return nil // nlmon: the protocol field is a netlink family
	}
	return s.sllPayload(be16(b, 14), b[16:])
}

// arphrdNetlink is the SLL hardware type of netlink monitor (nlmon)
// devices, which Wireshark dissects as netlink whatever the protocol field.
const arphrdNetlink = 824

// sll2 decodes a Linux cooked v2 header (20 bytes).
func (s *state) sll2(b []byte) error {
	if len(b) < 20 {
		return errShort
	}
	s.setSLLType(uint16(b[10]))
	if be16(b, 8) == arphrdNetlink {
		return nil // nlmon: the protocol field is a netlink family
	}
	return s.sllPayload(be16(b, 0), b[20:])
}

func (s *state) setSLLType(t uint16) {
	s.p.SLLType = int8(min(t, 127))
	s.p.Dir = sllDirection(t)
}

// sllDirection is the direction a Linux cooked header's packet type says:
// PACKET_HOST (0) in, PACKET_OUTGOING (4) out.
func sllDirection(t uint16) Direction {
	switch t {
	case 0:
		return DirIn
	case 4:
		return DirOut
	}
	return DirUnknown
}

// sllPayload dispatches on the SLL protocol field. Values below 0x0600 are
// Linux ETH_P_* pseudo-protocols: 0x0004 is 802.2 LLC.
func (s *state) sllPayload(proto uint16, b []byte) error {
	// On a GRE device (ARPHRD_IPGRE) the protocol field is the GRE protocol
	// type and the payload what GRE carries: the EtherType dispatch below
	// covers it (0x6558 is Ethernet).
	if proto == 0x0004 {
		return s.llc(b)
	}
	if proto < 0x0600 {
		if !s.outerDone {
			s.p.EtherType = proto
		}
		return nil
	}
	return s.etherType(proto, b)
}

// rawIP decodes a frame that starts with an IPv4 or IPv6 header.
func (s *state) rawIP(b []byte) error {
	if len(b) < 1 {
		return errShort
	}
	switch b[0] >> 4 {
	case 4:
		return s.ipv4(b)
	case 6:
		return s.ipv6(b)
	}
	return errIPVersion
}

// null decodes a BSD loopback header: a 4-byte address family in host
// (NULL) or network (LOOP) byte order. NULL accepts either order.
func (s *state) null(b []byte, network bool) error {
	if len(b) < 4 {
		return errShort
	}
	af := binary.BigEndian.Uint32(b)
	if !network {
		af = hostOrderAF(b)
	}
	switch af {
	case 2:
		return s.ipv4(b[4:])
	case 24, 28, 30: // AF_INET6 on NetBSD/OpenBSD, FreeBSD, Darwin
		return s.ipv6(b[4:])
	}
	if !network && af <= 0xffff && af >= 0x0600 {
		// Some captures put an EtherType here.
		return s.etherType(uint16(af), b[4:])
	}
	return nil // another address family: not IP
}

// hostOrderAF reads a 4-byte address family written in the capturing
// host's byte order, whichever that was: the reading that fits 16 bits.
func hostOrderAF(b []byte) uint32 {
	if af := binary.BigEndian.Uint32(b); af <= 0xffff {
		return af
	}
	return binary.LittleEndian.Uint32(b)
}

// ppp decodes a PPP header, optionally with HDLC address/control bytes.
func (s *state) ppp(b []byte, hdlc bool) error {
	if hdlc && len(b) >= 2 && b[0] == 0xff && b[1] == 0x03 {
		b = b[2:]
	}
	if len(b) < 1 {
		return errShort
	}
	var proto uint16
	if b[0]&1 == 1 { // protocol-field compression
		proto = uint16(b[0])
		b = b[1:]
	} else {
		if len(b) < 2 {
			return errShort
		}
		proto = be16(b, 0)
		b = b[2:]
	}
	switch proto {
	case pppIPv4:
		return s.ipv4(b)
	case pppIPv6:
		return s.ipv6(b)
	case 0x0281, 0x0283: // MPLS unicast, multicast
		return s.mpls(b)
	}
	return nil
}

// chdlc decodes a Cisco HDLC header: address, control, EtherType.
func (s *state) chdlc(b []byte) error {
	if len(b) < 4 {
		return errShort
	}
	return s.etherType(be16(b, 2), b[4:])
}

// mpls decodes an MPLS label stack and guesses the payload from its first
// nibble, as Wireshark does: 4 is IPv4, 6 is IPv6, 0 is a pseudowire
// control word followed by Ethernet.
func (s *state) mpls(b []byte) error {
	for { // bounded: every label consumes 4 bytes
		if len(b) < 4 {
			return errShort
		}
		bottom := b[2]&1 == 1
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) < 1 {
		return nil
	}
	switch b[0] >> 4 {
	case 4:
		return s.ipv4(b)
	case 6:
		return s.ipv6(b)
	case 0:
		if len(b) < 4 {
			return errShort
		}
		return s.ethernet(b[4:])
	}
	return nil
}

// ipHeader records one decoded IP header: the outermost becomes the tuple,
// later ones go to Inner. It returns the index of the Inner slot used, or -1.
func (s *state) ipHeader(src, dst netip.Addr, proto uint8, ipLen int) int {
	p := s.p
	if !s.outerDone {
		s.outerDone = true
		p.Kind = KindIP
		s.src, s.dst, s.proto = src, dst, proto
		p.IPLen = ipLen
		return -1
	}
	if int(p.NInner) >= MaxInnerLayers {
		return -2
	}
	i := int(p.NInner)
	p.Inner[i] = IPLayer{Kind: s.innerKind, Proto: proto, Src: src, Dst: dst}
	p.NInner++
	return i
}

// ipv4 decodes an IPv4 header and what it carries. Like Wireshark's
// dissector, it hands a version-6 header to ipv6.
func (s *state) ipv4(b []byte) error {
	if len(b) >= 1 && b[0]>>4 == 6 {
		return s.ipv6(b)
	}
	if len(b) < 20 {
		return errShort
	}
	if b[0]>>4 != 4 {
		return errIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return errIPHeaderLen
	}
	total := int(be16(b, 2))
	if total != 0 && total < ihl {
		return errIPHeaderLen
	}
	if len(b) < ihl && !optionsCaptured(b[20:], ihl-20) {
		// tshark looks for a source route in the options before it
		// records the destination; options cut by the snaplen stop it.
		return errShort
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	proto := b[9]
	slot := s.ipHeader(src, dst, proto, total)
	if slot == -2 {
		return nil
	}
	if len(b) < ihl {
		return errShort
	}
	payload := b[ihl:]
	reported := len(payload)
	if total != 0 {
		reported = total - ihl
		if total < len(b) {
			payload = b[ihl:total]
		}
	}
	fragOff := int(be16(b, 6)&0x1fff) * 8
	more := b[6]&0x20 != 0
	if fragOff != 0 || more {
		f := fragInfo{
			key:    fragKey{src: src, dst: dst, proto: proto, id: uint32(be16(b, 4))},
			offset: fragOff, more: more, length: reported,
		}
		return s.fragment(slot, f, proto, payload)
	}
	// Skip IPsec AH headers, so that Proto names the upper layer as it
	// does for IPv6 (bounded: each consumes at least 8 bytes).
	for proto == protoAH && len(payload) >= 8 {
		n := (int(payload[1]) + 2) * 4
		if len(payload) < n {
			break
		}
		proto = payload[0]
		payload, reported = payload[n:], reported-n
		s.setProto(slot, proto)
	}
	s.reported = reported
	return s.transport(slot, proto, payload, false)
}

// setProto records the upper-layer protocol of the header in slot.
func (s *state) setProto(slot int, proto uint8) {
	switch {
	case slot == -1:
		s.proto = proto
	case slot >= 0:
		s.p.Inner[slot].Proto = proto
	}
}

// optionsCaptured says whether a walk over n bytes of IPv4 options, of
// which only opts were captured, stays within the captured bytes (it stops
// at End of Option List or a source-route option, as Wireshark's does).
func optionsCaptured(opts []byte, n int) bool {
	for i := 0; i < n; {
		if i >= len(opts) {
			return false
		}
		switch opts[i] {
		case 0: // end of option list
			return true
		case 1: // no operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false
		}
		l := int(opts[i+1])
		if opts[i] == 131 || opts[i] == 137 { // loose or strict source route
			return i+2 < len(opts)
		}
		if l < 2 {
			return true
		}
		i += l
	}
	return true
}

// fragment handles one fragment of an IP packet. The first fragment gives
// the ports (remembered for the others); nothing inside a fragment is
// decoded, except in the frame that completes the packet, where the
// headers at the start of the first fragment are decoded as if reassembled
// — which is where tshark, reassembling by default, dissects them.
func (s *state) fragment(slot int, f fragInfo, proto uint8, payload []byte) error {
	if f.offset != 0 && slot == -1 {
		s.p.Fragment = true
	}
	// Wireshark reassembles only fragments it has whole; a first fragment
	// cut by the snaplen it dissects as it is when IPv4 (an IPv6 one it
	// shows as data). Its ports still serve the later fragments.
	whole := len(payload) >= f.length
	var err error
	if f.offset == 0 {
		cutV4 := !whole && !f.v6
		if cutV4 {
			s.reported = f.length
		}
		// Before the table is touched: what the payload carries may be
		// fragmented too.
		err = s.transport(slot, proto, payload, !cutV4)
	}
	var e *fragEntry
	done := false
	switch {
	case whole:
		e, done = s.d.frags.add(f, payload)
	case f.offset == 0:
		e = s.d.frags.get(f.key)
		e.hasFirst = true
	default:
		e = s.d.frags.find(f.key)
	}
	if f.offset == 0 {
		e.sp, e.dp = s.ports(slot)
	} else if e != nil && e.hasFirst {
		s.setPorts(slot, e.sp, e.dp)
	}
	if !done {
		return err
	}
	e.forget()
	// The whole packet has arrived, so its leading bytes are all there.
	n := copy(s.d.replay[:], e.head[:min(int(e.total), fragKeep)])
	s.reported = int(e.total)
	s.replay = true
	err = s.transport(slot, proto, s.d.replay[:n], false)
	s.replay = false
	return err
}

// ipv6 decodes an IPv6 header, its extension headers and what it carries.
func (s *state) ipv6(b []byte) error {
	if len(b) < 40 {
		return errShort
	}
	if b[0]>>4 != 6 {
		return errIPVersion
	}
	plen := int(be16(b, 4))
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	next := b[6]
	payload := b[40:]
	if plen != 0 && plen < len(payload) {
		payload = payload[:plen]
	}
	before := len(payload)
	// Walk extension headers to find the upper-layer protocol.
	var (
		fragID    uint32
		fragOff   uint16
		fragMore  bool
		fragFound bool
		walkErr   error
	)
walk:
	for i := 0; ; i++ {
		if i == maxIPv6Ext {
			walkErr = errTooDeep
			break
		}
		switch next {
		case 0, 43, 60, 140: // hop-by-hop, routing, destination options, shim6
			if len(payload) < 8 {
				walkErr = errShort
				break walk
			}
			n := (int(payload[1]) + 1) * 8
			if len(payload) < n {
				walkErr = errShort
				break walk
			}
			next = payload[0]
			payload = payload[n:]
		case 44: // fragment
			if len(payload) < 8 {
				walkErr = errShort
				break walk
			}
			fragFound = true
			fragOff = be16(payload, 2) >> 3
			fragMore = payload[3]&1 != 0
			fragID = binary.BigEndian.Uint32(payload[4:])
			next = payload[0]
			payload = payload[8:]
		case protoAH: // length in 4-byte units, minus 2
			if len(payload) < 8 {
				walkErr = errShort
				break walk
			}
			n := (int(payload[1]) + 2) * 4
			if len(payload) < n {
				walkErr = errShort
				break walk
			}
			next = payload[0]
			payload = payload[n:]
		default:
			break walk
		}
	}
	slot := s.ipHeader(src, dst, next, plen+40)
	if slot == -2 || walkErr != nil {
		return walkErr
	}
	reported := len(payload)
	if plen != 0 {
		reported = plen - (before - len(payload)) // minus extension headers
	}
	if fragFound && (fragOff != 0 || fragMore) {
		f := fragInfo{
			key:    fragKey{src: src, dst: dst, proto: next, id: fragID},
			offset: int(fragOff) * 8, more: fragMore, length: reported, v6: true,
		}
		return s.fragment(slot, f, next, payload)
	}
	s.reported = reported
	return s.transport(slot, next, payload, false)
}

// ports returns the ports recorded for the header in slot (-1 = outer).
func (s *state) ports(slot int) (uint16, uint16) {
	switch {
	case slot == -1:
		return s.sp, s.dp
	case slot >= 0:
		return s.p.Inner[slot].SrcPort, s.p.Inner[slot].DstPort
	}
	return 0, 0
}

// setPorts records ports for the header in slot (-1 = outer).
func (s *state) setPorts(slot int, sp, dp uint16) {
	switch {
	case slot == -1:
		s.sp, s.dp = sp, dp
	case slot >= 0 && s.p.Inner[slot].Kind == LayerTunnel:
		s.p.Inner[slot].SrcPort = sp
		s.p.Inner[slot].DstPort = dp
	}
}

// setPayload keeps the first bytes of the outermost transport payload.
func (s *state) setPayload(slot int, b []byte) {
	if slot == -1 && !s.replay {
		s.p.Payload = b[:min(len(b), payloadMax):min(len(b), payloadMax)]
	}
}

// transport decodes the transport header carried by an IP header (slot -1
// is the outer one). fragmented says the payload is only the first
// fragment, so nothing inside it is decoded beyond the ports.
func (s *state) transport(slot int, proto uint8, b []byte, fragmented bool) error {
	switch proto {
	case ProtoTCP:
		if len(b) < 4 {
			return nil
		}
		s.setPorts(slot, be16(b, 0), be16(b, 2))
		if len(b) < 14 {
			return nil
		}
		if slot == -1 && !s.replay {
			s.p.TCPFlags = b[13]
		}
		off := int(b[12]>>4) * 4
		if off >= 20 && off <= len(b) {
			s.setPayload(slot, b[off:])
			if !fragmented && tcpTunnelPort(be16(b, 0), be16(b, 2)) {
				s.innerKind = LayerTunnel
				return s.gtp(b[off:])
			}
		}
		return nil
	case ProtoUDP:
		if len(b) < 4 {
			return nil
		}
		sp, dp := be16(b, 0), be16(b, 2)
		s.setPorts(slot, sp, dp)
		if len(b) < 8 {
			return nil
		}
		s.setPayload(slot, b[8:])
		ulen := int(be16(b, 4))
		if fragmented || ulen < 8 {
			// tshark stops at a UDP length below 8; one beyond the IP
			// payload is only flagged (the payload is what is there).
			return nil
		}
		return s.udpTunnel(sp, dp, b[8:min(len(b), ulen)])
	case ProtoICMP:
		s.setPayload(slot, b)
		if fragmented || len(b) < 8 {
			return nil
		}
		switch b[0] {
		case 3, 4, 5, 11, 12: // unreachable, source quench, redirect, time exceeded, parameter problem
			return s.quoted(icmpQuote(b), 4)
		}
		return nil
	case ProtoICMPv6:
		s.setPayload(slot, b)
		if fragmented || len(b) < 8 {
			return nil
		}
		switch b[0] {
		case 1, 2, 3, 4: // unreachable, too big, time exceeded, parameter problem
			return s.quoted(b[8:], 6)
		}
		return nil
	}
	s.setPayload(slot, b)
	if fragmented {
		return nil
	}
	switch proto {
	case 4: // IP-in-IP
		return s.tunnel(b, 4)
	case 41: // IPv6-in-IP
		return s.tunnel(b, 6)
	case ProtoGRE:
		return s.gre(b)
	case protoSwIPe: // type, header length, policy, sequence, authenticator, then IPv6
		if len(b) < 2 || int(b[1]) > len(b) {
			return nil
		}
		return s.tunnel(b[b[1]:], 6)
	case protoMPLSinIP: // RFC 4023
		s.innerKind = LayerTunnel
		return s.etherType(etMPLS, b)
	case 143: // Ethernet (RFC 8986 SRv6 End.DX2 and friends)
		s.innerKind = LayerTunnel
		return s.etherType(etTEB, b)
	case protoPIM:
		// PIMv2 Register (type 1) carries the multicast packet.
		if len(b) >= 8 && b[0] == 0x21 {
			return s.versionedIP(b[8:])
		}
	}
	return nil
}

// icmpQuote returns the original datagram an ICMPv4 error b quotes, cut as
// Wireshark cuts it: a redirect quotes the IP header and 64 bits; an RFC 4884
// length (byte 5, in 32-bit words) shorter than the quoted datagram's total
// length ends it at the header's length plus that many words.
func icmpQuote(b []byte) []byte {
	q := b[8:]
	if len(q) == 0 {
		return q
	}
	ihl := int(q[0] & 0x0f)
	switch ol := int(b[5]); {
	case b[0] == 5:
		return q[:min(len(q), ihl*4+8)]
	case ol > 0 && len(b) > 8+ol*4 && int(be16(q, 2)) > ol*4:
		return q[:min(len(q), (ihl+ol)*4)]
	}
	return q
}

// nest guards recursion into a nested header.
func (s *state) nest() bool {
	s.depth++
	return s.depth <= maxNesting
}

// tunnel decodes an IP header carried inside a tunnel.
func (s *state) tunnel(b []byte, version int) error { return s.nested(b, version, LayerTunnel) }

// quoted decodes the IP header quoted by an ICMP error message.
func (s *state) quoted(b []byte, version int) error { return s.nested(b, version, LayerICMPQuoted) }

// nested decodes an IP header inside the packet, recorded as kind.
func (s *state) nested(b []byte, version int, kind LayerKind) error {
	if !s.nest() {
		return errTooDeep
	}
	s.innerKind = kind
	if version == 4 {
		return s.ipv4(b)
	}
	return s.ipv6(b)
}

// gre decodes a GRE header (RFC 2784/2890, and PPTP's version 1).
func (s *state) gre(b []byte) error {
	if len(b) < 4 {
		return nil
	}
	flags := be16(b, 0)
	proto := be16(b, 2)
	n := 4
	if flags&0x8000 != 0 || flags&0x4000 != 0 { // checksum or routing present
		n += 4
	}
	if flags&0x2000 != 0 { // key
		n += 4
	}
	if flags&0x1000 != 0 { // sequence
		n += 4
	}
	if flags&0x0007 == 1 && flags&0x0080 != 0 { // PPTP acknowledgement
		n += 4
	}
	if len(b) < n {
		return nil
	}
	b = b[n:]
	s.innerKind = LayerTunnel
	switch proto {
	case etERSPAN2:
		if flags&0x1000 == 0 { // ERSPAN type I: no ERSPAN header
			return s.etherType(etTEB, b)
		}
		if len(b) < 8 || b[0]>>4 != 1 { // Wireshark: type II is version 1
			return nil
		}
		return s.etherType(etTEB, b[8:])
	case etWCCP:
		if len(b) > 0 && b[0]>>4 != 4 { // WCCPv2 redirect header
			if len(b) < 4 {
				return nil
			}
			b = b[4:]
		}
		return s.etherType(etIPv4, b)
	case etAruba:
		return s.wifi(b)
	case etCMD:
		if len(b) < 8 {
			return nil
		}
		return s.etherType(be16(b, 0), b[8:])
	case etERSPAN3:
		if len(b) < 12 || b[0]>>4 != 2 { // Wireshark: type III is version 2
			return nil
		}
		hl := 12
		if b[11]&1 != 0 { // platform-specific subheader
			hl += 8
		}
		if len(b) < hl {
			return nil
		}
		return s.etherType(etTEB, b[hl:])
	}
	return s.etherType(proto, b)
}

// udpTunnel decodes tunnels carried over UDP, chosen by well-known port.
func (s *state) udpTunnel(sp, dp uint16, b []byte) error {
	s.innerKind = LayerTunnel
	has := func(port uint16) bool { return sp == port || dp == port }
	// Wireshark tries the lower port first, and 1701 is below every other
	// tunnel port; L2TP declines what is not version 2 or 3.
	if has(portL2TP) {
		if ok, err := s.l2tp(b); ok {
			return err
		}
	}
	switch {
	case dp == portVXLAN:
		if len(b) < 8 { // Wireshark ignores the I flag
			return nil
		}
		return s.etherType(etTEB, b[8:])
	case dp == portGeneve:
		if len(b) < 8 { // Wireshark ignores the version
			return nil
		}
		n := 8 + int(b[0]&0x3f)*4
		if len(b) < n {
			return nil
		}
		return s.etherType(be16(b, 2), b[n:])
	case dp == portGPE:
		if len(b) < 8 || b[0]&0x04 == 0 {
			return nil
		}
		return s.nextProto(b[3], b[8:])
	case has(portGTPU) || has(portGTPv0):
		return s.gtp(b)
	case dp == portGREUDP:
		return s.gre(b)
	case dp == portMPLSUDP:
		return s.etherType(etMPLS, b)
	case has(portTeredo):
		return s.teredo(b)
	case has(portAYIYA):
		return s.ayiya(b)
	case has(portSFlow):
		return s.sflow(b)
	}
	return nil
}

// sflow decodes an sFlow version 5 datagram as Wireshark does by default
// (sflow_245.enable_dissection): the header of every packet sampled in a
// flow sample is dissected, and its IP headers go to Inner as
// LayerSampled. They are copies of traffic seen elsewhere, counted only
// where tshark counts every IP header of a frame. Like Wireshark, it stops
// at the first enterprise-specific sample, and at a field or a sampled
// header that runs past the datagram; counter samples and other records
// carry no headers.
func (s *state) sflow(b []byte) error {
	u32 := func(off int) (uint32, bool) {
		if off < 0 || off+4 > len(b) {
			return 0, false
		}
		return binary.BigEndian.Uint32(b[off:]), true
	}
	if v, ok := u32(0); !ok || v != 5 {
		return nil
	}
	at, ok := u32(4)
	off := 8
	switch {
	case !ok:
		return nil
	case at == 1:
		off += 4
	case at == 2:
		off += 16
	default:
		return nil // Wireshark stops at an unknown agent address type
	}
	off += 12 // sub-agent id, sequence number, uptime
	n, ok := u32(off)
	off += 4
	for ; ok && n > 0; n-- {
		typ, ok1 := u32(off)
		length, ok2 := u32(off + 4)
		if !ok1 || !ok2 || typ>>12 != 0 {
			return nil // cut, or an enterprise-specific sample Wireshark cannot skip
		}
		body := off + 8
		switch typ & 0xfff {
		case 1: // flow sample: seq, source id, rate, pool, drops, input, output, records
			ok = s.sflowRecords(b, body+28)
		case 3: // expanded: seq, source type and index, rate, pool, drops, in and out format and value, records
			ok = s.sflowRecords(b, body+40)
		}
		if !ok || int64(body)+int64(length) > int64(len(b)) {
			return nil // Wireshark checks the sample's length after dissecting it
		}
		off = body + int(length)
	}
	return nil
}

// sflowRecords walks the flow records of a flow sample in datagram b,
// whose record count is at off, and dissects each raw packet header
// (format 1) of Ethernet, IPv4 or IPv6. As in Wireshark, the record after
// a raw packet header starts where the header (padded to 4 bytes) ends,
// whatever the record's length said; other records are skipped by their
// length. It returns false when a field or a header runs past the
// datagram (Wireshark stops there).
func (s *state) sflowRecords(b []byte, off int) bool {
	if off+4 > len(b) {
		return false
	}
	n := binary.BigEndian.Uint32(b[off:])
	off += 4
	for ; n > 0; n-- {
		if off < 0 || off+8 > len(b) {
			return false
		}
		typ, length := binary.BigEndian.Uint32(b[off:]), binary.BigEndian.Uint32(b[off+4:])
		rec := off + 8
		if typ != 1 { // not a raw packet header: skipped unread, even past the end
			if typ>>12 != 0 && int64(length) > int64(len(b)-rec) {
				return false // an enterprise's record is shown whole, which fails past the end
			}
			off = rec + int(length)
			continue
		}
		if rec+16 > len(b) {
			return false
		}
		proto, hlen := binary.BigEndian.Uint32(b[rec:]), binary.BigEndian.Uint32(b[rec+12:])
		if int64(hlen) > int64(len(b)-rec-16) {
			return false // the header runs past the datagram
		}
		hdr := b[rec+16 : rec+16+int(hlen)] // may run into the next record, as in Wireshark
		off = rec + 16 + (int(hlen)+3)&^3
		depth := s.depth
		switch proto {
		case 1: // Ethernet
			s.innerKind = LayerSampled
			_ = s.etherType(etTEB, hdr)
		case 11:
			_ = s.nested(hdr, 4, LayerSampled)
		case 12:
			_ = s.nested(hdr, 6, LayerSampled)
		}
		s.depth = depth // samples sit side by side, not inside each other
	}
	return true
}

// l2tp decodes an L2TP header (RFC 2661) as Wireshark does on UDP port
// 1701, whichever side has it. ok false means Wireshark declines it (not
// version 2 or 3) and the other port may have it. An L2TPv2 data message
// (T bit clear) carries PPP after the header: flags, length if L, tunnel
// and session ids, Ns and Nr if S, offset size and padding if O. The
// length, if given, ends the message. Control messages carry no IP, and
// neither does L2TPv3 as Wireshark decodes it by default.
func (s *state) l2tp(b []byte) (ok bool, err error) {
	if len(b) < 2 {
		return false, nil
	}
	flags := be16(b, 0)
	switch flags & 0x000f {
	case 2:
	case 3:
		return true, nil
	default:
		return false, nil
	}
	if flags&0x8000 != 0 { // control message
		return true, nil
	}
	n := 6
	if flags&0x4000 != 0 { // length
		if len(b) < 4 {
			return true, nil
		}
		b = b[:min(len(b), int(be16(b, 2)))]
		n += 2
	}
	if flags&0x0800 != 0 { // Ns, Nr
		n += 4
	}
	if flags&0x0200 != 0 { // offset size, then that much padding
		if len(b) < n+2 {
			return true, nil
		}
		n += 2 + int(be16(b, n))
	}
	if len(b) <= n {
		return true, nil
	}
	return true, s.pppHDLC(b[n:])
}

// pppHDLC decodes a frame as Wireshark's ppp_hdlc dissector does: Cisco
// HDLC after a Cisco HDLC address (0x0f, 0x8f), else PPP, after an address
// and control field if the first byte is 0xff (whatever the control byte).
func (s *state) pppHDLC(b []byte) error {
	if len(b) > 0 && (b[0] == 0x0f || b[0] == 0x8f) {
		return s.chdlc(b)
	}
	if len(b) > 0 && b[0] == 0xff {
		if len(b) < 2 {
			return errShort
		}
		b = b[2:]
	}
	return s.ppp(b, false)
}

// gtp decodes a GTP header as Wireshark does on the GTP ports, whatever
// the port: a T-PDU (message type 255) of GTP' (protocol type bit 0: a
// 6-byte header, 20 with the long-header bit), GTPv0 (20 bytes) or GTPv1-U
// (8 bytes and extension headers) carries an IP packet.
func (s *state) gtp(b []byte) error {
	if len(b) < 6 || b[1] != 0xff {
		return nil
	}
	switch version := b[0] >> 5; {
	case b[0]&0x10 == 0: // GTP'
		n := 6
		if b[0]&0x01 != 0 {
			n = 20
		}
		if len(b) < n {
			return nil
		}
		return s.versionedIP(b[n:])
	case version == 0:
		if len(b) < 20 {
			return nil
		}
		return s.versionedIP(b[20:])
	case version != 1 || len(b) < 8:
		return nil
	}
	n := 8
	if b[0]&0x07 != 0 {
		if len(b) < 12 {
			return nil
		}
		next := b[11]
		n = 12
		for i := 0; next != 0; i++ {
			if i == maxIPv6Ext || len(b) < n+1 {
				return nil
			}
			l := int(b[n]) * 4
			if l == 0 || len(b) < n+l {
				return nil
			}
			next = b[n+l-1]
			n += l
		}
	}
	return s.versionedIP(b[n:])
}

// versionedIP decodes an IPv4 or IPv6 header chosen by its version nibble;
// anything else is ignored.
func (s *state) versionedIP(b []byte) error {
	if len(b) < 1 {
		return nil
	}
	switch b[0] >> 4 {
	case 4:
		return s.tunnel(b, 4)
	case 6:
		return s.tunnel(b, 6)
	}
	return nil
}

// teredo decodes Teredo (RFC 4380): optional authentication and origin
// indication headers, then IPv6.
func (s *state) teredo(b []byte) error {
	if len(b) >= 4 && be16(b, 0) == 0x0001 { // authentication
		n := 4 + int(b[2]) + int(b[3]) + 9
		if len(b) < n {
			return nil
		}
		b = b[n:]
	}
	if len(b) >= 8 && be16(b, 0) == 0x0000 { // origin indication
		b = b[8:]
	}
	if len(b) < 40 || b[0]>>4 != 6 {
		return nil
	}
	return s.tunnel(b, 6)
}

// ayiya decodes an AYIYA header (Anything In Anything); next header 4 or 41.
func (s *state) ayiya(b []byte) error {
	if len(b) < 8 {
		return nil
	}
	idLen := 1 << (b[0] >> 4)
	sigLen := int(b[1]>>4) * 4
	n := 8 + idLen + sigLen
	if len(b) < n {
		return nil
	}
	switch b[3] {
	case 4:
		return s.tunnel(b[n:], 4)
	case 41:
		return s.tunnel(b[n:], 6)
	}
	return nil
}

// Further link types: those the corpus holds that tshark decodes to IP
// cheaply.
const (
	linkTokenRing  LinkType = 6 // IEEE 802.5
	linkPPPHDLC    LinkType = 50
	linkPPPEther   LinkType = 51 // PPPoE session, no Ethernet header
	linkATMRFC1483 LinkType = 100
	linkEnc        LinkType = 109 // OpenBSD enc(4)
	linkPFLog      LinkType = 117 // OpenBSD/FreeBSD/macOS pflog
	linkPPPDir     LinkType = 204 // PPP with a direction byte
	linkFDDI       LinkType = 10
	link80211      LinkType = 105
	linkFrelay     LinkType = 107
	linkRadiotap   LinkType = 127
	linkArcnet     LinkType = 129 // ARCNET_LINUX
	linkUser2      LinkType = 149 // Apple PKTAP as written by macOS
	linkJuniperEth LinkType = 178
	linkPPI        LinkType = 192
	linkIPNet      LinkType = 226
	linkNFLog      LinkType = 239
	linkIPoIB      LinkType = 242
	linkPKTAP      LinkType = 258
)

// otherLink decodes the less common link types; errUnsupported for the rest.
func (s *state) otherLink(link LinkType, b []byte) error {
	s.depth++
	if s.depth > maxNesting {
		return errTooDeep
	}
	switch link {
	case linkTokenRing:
		// Access control, frame control, DA, SA, the routing information
		// field when the SA's top bit says so (its length in the low 5
		// bits of its first byte), then 802.2 LLC in LLC frames.
		if len(b) < 14 {
			return errShort
		}
		if b[1]&0xc0 != 0x40 { // a MAC frame: no LLC
			return nil
		}
		n := 14
		if b[8]&0x80 != 0 {
			if len(b) < 15 {
				return errShort
			}
			n += int(b[14] & 0x1f)
			if len(b) < n {
				return errShort
			}
		}
		return s.llc(b[n:])
	case linkPFLog:
		return s.pflog(b)
	case linkEnc:
		// Address family (in either byte order), SPI, flags; then IP.
		if len(b) < 12 {
			return errShort
		}
		switch hostOrderAF(b) {
		case 2:
			return s.ipv4(b[12:])
		case 24:
			return s.ipv6(b[12:])
		}
		return nil
	case linkPPPDir: // 0 received by the capturing host, 1 sent by it; then PPP
		if len(b) < 1 {
			return errShort
		}
		// Wireshark takes the direction byte as a pseudo-header: it is
		// not part of the frame's lengths (frame.len, frame.cap_len).
		s.p.WireLen, s.p.CapLen = max(s.p.WireLen-1, 0), max(s.p.CapLen-1, 0)
		switch b[0] {
		case 0:
			s.p.Dir = DirIn
		case 1:
			s.p.Dir = DirOut
		}
		return s.ppp(b[1:], true)
	case linkPPPHDLC: // PPP in HDLC-like framing, or Cisco HDLC
		if len(b) > 0 && (b[0] == 0x0f || b[0] == 0x8f) {
			return s.chdlc(b)
		}
		return s.ppp(b, true)
	case linkPPPEther: // PPPoE session header, then the PPP protocol
		if len(b) < 6 {
			return errShort
		}
		return s.ppp(b[6:], false)
	case linkATMRFC1483: // RFC 1483 LLC encapsulation
		return s.llc(b)
	case linkFDDI: // frame control, DA, SA, then 802.2 LLC
		if len(b) < 13 {
			return errShort
		}
		if b[0]&0xf0 != 0x50 { // not an asynchronous LLC frame (SMT, MAC, token), which Wireshark leaves undecoded
			return nil
		}
		return s.llc(b[13:])
	case link80211:
		return s.wifi(b)
	case linkRadiotap: // version, pad, little-endian length
		if len(b) < 4 {
			return errShort
		}
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if n < 4 || len(b) < n {
			return errShort
		}
		return s.wifi(b[n:])
	case linkPPI: // version, flags, little-endian length and DLT
		if len(b) < 8 {
			return errShort
		}
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if n < 8 || len(b) < n {
			return errShort
		}
		return s.subLink(LinkType(binary.LittleEndian.Uint32(b[4:])), b[n:])
	case linkPKTAP, linkUser2: // little-endian header length and DLT
		if len(b) < 8 {
			return errShort
		}
		n := int(binary.LittleEndian.Uint32(b))
		if n < 8 || len(b) < n {
			return errShort
		}
		return s.subLink(LinkType(binary.LittleEndian.Uint32(b[4:])), b[n:])
	case linkFrelay:
		return s.frelay(b)
	case linkArcnet:
		return s.arcnet(b)
	case linkJuniperEth:
		// "MGC" magic, flags, optional extensions, then Ethernet.
		if len(b) < 4 || b[0] != 'M' || b[1] != 'G' || b[2] != 'C' {
			return errShort
		}
		n := 4
		if b[3]&0x80 != 0 {
			if len(b) < 6 {
				return errShort
			}
			n = 6 + int(be16(b, 4))
		}
		if len(b) < n {
			return errShort
		}
		return s.ethernet(b[n:])
	case linkIPNet: // Solaris ipnet: version, family, ..., 24 bytes
		if len(b) < 24 {
			return errShort
		}
		switch b[1] {
		case 2:
			return s.ipv4(b[24:])
		case 26:
			return s.ipv6(b[24:])
		}
		return nil
	case linkIPoIB: // 40 bytes of addresses, EtherType, reserved
		if len(b) < 44 {
			return errShort
		}
		return s.etherType(be16(b, 40), b[44:])
	case linkNFLog:
		return s.nflog(b)
	}
	return errUnsupported
}

// subLink decodes a frame of an encapsulated link type (PPI, PKTAP).
func (s *state) subLink(link LinkType, b []byte) error {
	switch link {
	case LinkEthernet:
		return s.ethernet(b)
	case LinkNull:
		return s.null(b, false)
	case LinkRaw, linkRawAlt, linkRawOpenBSD, LinkIPv4, LinkIPv6:
		return s.rawIP(b)
	case LinkSLL:
		return s.sll(b)
	case linkPPP:
		return s.ppp(b, true)
	}
	return s.otherLink(link, b)
}

// wifi decodes an 802.11 data frame up to its LLC/SNAP header.
func (s *state) wifi(b []byte) error {
	if len(b) < 24 {
		return nil
	}
	fc0, fc1 := b[0], b[1]
	if (fc0>>2)&3 != 2 || fc1&0x40 != 0 { // not data, or protected
		return nil
	}
	subtype := fc0 >> 4
	if subtype&0x4 != 0 { // null function: no body
		return nil
	}
	n := 24
	if fc1&0x03 == 0x03 { // ToDS and FromDS: fourth address
		n += 6
	}
	if subtype&0x8 != 0 { // QoS control, and HT control when ordered
		n += 2
		if fc1&0x80 != 0 {
			n += 4
		}
	}
	if len(b) < n {
		return nil
	}
	return s.llc(b[n:])
}

// frelay decodes a Frame Relay header: Q.922 address, then RFC 2427 NLPID
// or a Cisco-style EtherType.
func (s *state) frelay(b []byte) error {
	n := 0
	for n < len(b) && n < 4 {
		n++
		if b[n-1]&1 == 1 { // address extension bit ends the address
			break
		}
	}
	b = b[n:]
	if len(b) < 2 {
		return errShort
	}
	if b[0] != 0x03 {
		return s.etherType(be16(b, 0), b[2:])
	}
	b = b[1:]
	if b[0] == 0 && len(b) > 1 { // padding
		b = b[1:]
	}
	if b[0] == 0x80 { // SNAP: OUI, EtherType
		if len(b) < 6 {
			return errShort
		}
		return s.etherType(be16(b, 4), b[6:])
	}
	return s.osi(b)
}

// arcnet decodes a Linux ARCNET header: source, destination, offset,
// protocol, and for RFC 1201 protocols a split flag and sequence number.
func (s *state) arcnet(b []byte) error {
	if len(b) < 5 {
		return errShort
	}
	proto := b[4]
	b = b[5:]
	switch proto {
	case 0xd4, 0xc4, 0xd5, 0xd6: // RFC 1201: IP, IPv6, ARP, RARP
		if len(b) < 3 {
			return errShort
		}
		n := 3
		if b[0] == 0xff { // exception packet
			n += 4
		}
		if len(b) < n {
			return errShort
		}
		b = b[n:]
	}
	switch proto {
	case 0xd4, 0xf0: // IP (RFC 1201, RFC 1051)
		return s.ipv4(b)
	case 0xc4:
		return s.ipv6(b)
	}
	return nil
}

// nflog decodes a Linux NFLOG record: family, version, resource id, then
// TLVs (host-order length and type, 4-byte aligned); type 9 is the packet.
func (s *state) nflog(b []byte) error {
	if len(b) < 4 {
		return errShort
	}
	family := b[0]
	b = b[4:]
	for len(b) >= 4 {
		l := int(binary.LittleEndian.Uint16(b))
		t := binary.LittleEndian.Uint16(b[2:]) & 0x7fff
		if l < 4 || l > len(b) {
			return errShort
		}
		if t == 9 {
			v := b[4:l]
			switch family {
			case 2:
				return s.ipv4(v)
			case 10:
				return s.ipv6(v)
			}
			return nil
		}
		l = (l + 3) &^ 3
		if l > len(b) {
			return nil
		}
		b = b[l:]
	}
	return nil
}

package ingest

import (
	"encoding/binary"
	"net/netip"
)

// Summary is what a consumer that only counts traffic needs of one common
// frame: Ethernet II without tags, or Linux cooked (SLL, SLL2), carrying
// IPv4 without options or fragmentation, or IPv6 without extension headers,
// and a complete TCP header or a UDP header on no tunnel port (the frames
// the decoder's fast path takes, and their cooked equivalents). A
// SummarySource hands out Summaries of these frames in bulk, without
// building a Packet for each. A Summary and the Packet the general
// path decodes from the same frame agree field for field (FuzzSummaries).
type Summary struct {
	// TS, WireLen, CapLen, IPLen and Iface are as in Packet.
	TS    int64
	Wire  uint32
	Cap   uint32
	IPLen uint32
	Iface int32
	// Dir is the direction the capture recorded (pcapng epb_flags, else the
	// cooked header's packet type), as Packet.Dir.
	Dir              Direction
	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8
	// V4: the addresses are IPv4, stored IPv4-mapped (::ffff:a.b.c.d).
	V4 bool
	// Src and Dst are the 16-byte forms of the IP addresses.
	Src, Dst [16]byte
	// HasMAC says SrcMAC and DstMAC are valid (Ethernet frames; not Linux
	// cooked ones).
	HasMAC         bool
	SrcMAC, DstMAC [6]byte
	// Payload is as Packet.Payload: the first bytes of the transport
	// payload, aliasing the source's buffer until its next call.
	Payload []byte
}

// SrcAddr returns the source address as Packet.Tuple holds it.
func (s *Summary) SrcAddr() netip.Addr { return addr16(&s.Src, s.V4) }

// DstAddr returns the destination address as Packet.Tuple holds it.
func (s *Summary) DstAddr() netip.Addr { return addr16(&s.Dst, s.V4) }

// Tuple returns the frame's 5-tuple as Packet.Tuple holds it.
func (s *Summary) Tuple() FiveTuple {
	return FiveTuple{Proto: s.Proto, Src: netip.AddrPortFrom(s.SrcAddr(), s.SrcPort),
		Dst: netip.AddrPortFrom(s.DstAddr(), s.DstPort)}
}

func addr16(a *[16]byte, v4 bool) netip.Addr {
	if v4 {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(*a)
}

// SummarySource is a PacketSource that can summarise common frames in
// bulk: the fastest way to read a capture for traffic accounting.
//
// NextSummaries fills dst with Summaries of the next frames and returns
// how many (n > 0). When the next frame is not a common one (or the source
// cannot summarise at all), it returns n = 0 and has decoded that frame
// into p exactly as Next would; errors (io.EOF at the end) are Next's.
// Payloads alias the source's buffer and are valid until the next call.
// Next and NextSummaries may be mixed; frames come in order either way.
type SummarySource interface {
	PacketSource
	NextSummaries(dst []Summary, p *Packet) (n int, err error)
}

// summarizer summarises a frame of one link type into s (but for the
// capture fields TS, Wire, Cap and Iface; Dir is the link header's) when it
// is a common frame, and reports whether it was. It never indexes out of
// range.
type summarizer func(b []byte, s *Summary) bool

// summarizerFor returns the summarizer of a link type, or nil.
func summarizerFor(link LinkType) summarizer {
	switch link {
	case LinkEthernet:
		return summarizeEthernet
	case LinkSLL:
		return summarizeSLL
	case LinkSLL2:
		return summarizeSLL2
	}
	return nil
}

// summarizeEthernet summarises an untagged Ethernet II frame.
func summarizeEthernet(b []byte, s *Summary) bool {
	if len(b) < 14 || !summarizeIP(be16(b, 12), b[14:], s) {
		return false
	}
	s.HasMAC, s.Dir = true, DirUnknown
	s.DstMAC = [6]byte(b[0:6])
	s.SrcMAC = [6]byte(b[6:12])
	return true
}

// summarizeSLL summarises a Linux cooked (v1) frame: packet type (the
// direction), hardware type, address, protocol.
func summarizeSLL(b []byte, s *Summary) bool {
	if len(b) < 16 || be16(b, 2) == arphrdNetlink || !summarizeIP(be16(b, 14), b[16:], s) {
		return false
	}
	s.setCooked(be16(b, 0))
	return true
}

// summarizeSLL2 summarises a Linux cooked v2 frame: protocol, interface,
// hardware type, packet type, address.
func summarizeSLL2(b []byte, s *Summary) bool {
	if len(b) < 20 || be16(b, 8) == arphrdNetlink || !summarizeIP(be16(b, 0), b[20:], s) {
		return false
	}
	s.setCooked(uint16(b[10]))
	return true
}

// setCooked sets what a cooked header says: no MACs, the direction from the
// packet type.
func (s *Summary) setCooked(pktType uint16) {
	s.HasMAC, s.SrcMAC, s.DstMAC = false, [6]byte{}, [6]byte{}
	s.Dir = sllDirection(pktType)
}

// summarizeIP summarises what EtherType et carries in ip: IPv4 without
// options or fragmentation, or IPv6 without extension headers, carrying a
// whole TCP header or a UDP header off tunnel ports (the decoder's fast
// path, FuzzFastPath).
func summarizeIP(et uint16, ip []byte, s *Summary) bool {
	if len(ip) < 40 && (len(ip) < 28 || et != etIPv4) {
		return false
	}
	var l4 []byte
	be := binary.BigEndian
	switch et {
	case etIPv4:
		// Version 4, no options; MF clear and offset 0 (DF may be set).
		if ip[0] != 0x45 || be16(ip, 6)&0x3fff != 0 {
			return false
		}
		ipLen := be16(ip, 2)
		if ipLen < 20 {
			return false // 0 (TSO) or bogus: the general path decides
		}
		s.IPLen = uint32(ipLen)
		s.Proto = ip[9]
		s.V4 = true
		be.PutUint64(s.Src[:8], 0)
		be.PutUint64(s.Src[8:], 0xffff<<32|uint64(be.Uint32(ip[12:16])))
		be.PutUint64(s.Dst[:8], 0)
		be.PutUint64(s.Dst[8:], 0xffff<<32|uint64(be.Uint32(ip[16:20])))
		l4 = ip[20:]
		if int(ipLen) < len(ip) {
			l4 = ip[20:ipLen]
		}
	case etIPv6:
		if ip[0]>>4 != 6 {
			return false
		}
		plen := int(be16(ip, 4))
		s.Proto = ip[6]
		s.V4 = false
		s.Src = [16]byte(ip[8:24])
		s.Dst = [16]byte(ip[24:40])
		l4 = ip[40:]
		if plen != 0 && plen < len(l4) {
			l4 = l4[:plen]
		}
		s.IPLen = uint32(plen + 40)
	default:
		return false
	}
	var pay []byte
	switch s.Proto {
	case ProtoTCP:
		if len(l4) < 20 {
			return false
		}
		off := int(l4[12]>>4) * 4
		if off < 20 || off > len(l4) {
			return false
		}
		s.SrcPort, s.DstPort, s.TCPFlags, pay = be16(l4, 0), be16(l4, 2), l4[13], l4[off:]
		if tcpTunnelPort(s.SrcPort, s.DstPort) {
			return false
		}
	case ProtoUDP:
		if len(l4) < 8 {
			return false
		}
		s.SrcPort, s.DstPort, s.TCPFlags = be16(l4, 0), be16(l4, 2), 0
		if udpTunnelPort(s.SrcPort, s.DstPort) {
			return false
		}
		pay = l4[8:]
	default:
		return false
	}
	n := min(len(pay), payloadMax)
	s.Payload = pay[:n:n]
	return true
}

// NextSummaries implements SummarySource: classic little-endian pcap 2.4
// of Ethernet or Linux cooked frames is summarised straight from the read
// buffer, as far as the buffer holds whole records that need no diagnostic.
func (r *pcapReader) NextSummaries(dst []Summary, p *Packet) (int, error) {
	sum := summarizerFor(r.link)
	if r.err != nil || !r.plain || sum == nil || r.walkOnly || r.dec.slowOnly {
		return 0, r.Next(p)
	}
	br := r.br
	b := br.buf[br.r:br.w]
	le := binary.LittleEndian
	pos, n := 0, 0
	for n < len(dst) && len(b)-pos >= pcapRecHdrLen {
		h := b[pos : pos+pcapRecHdrLen]
		sec, frac, caplen, wire := le.Uint32(h), le.Uint32(h[4:]), le.Uint32(h[8:]), le.Uint32(h[12:])
		need := pcapRecHdrLen + uint64(caplen)
		if need > uint64(len(b)-pos) || caplen > r.snaplen || caplen > r.limit || caplen > wire || wire > maxWireLen || frac >= r.fracMax {
			break
		}
		s := &dst[n]
		if !sum(b[pos+pcapRecHdrLen:pos+int(need)], s) {
			break
		}
		s.TS = int64(sec)*1e9 + int64(frac)*r.fracMul
		s.Wire, s.Cap, s.Iface = wire, caplen, 0
		pos += int(need)
		n++
	}
	if n == 0 {
		return 0, r.Next(p)
	}
	r.took(dst[:n], pos)
	return n, nil
}

// NextSummaries implements SummarySource: Enhanced Packet Blocks of a
// little-endian section, on Ethernet or Linux cooked interfaces, with no
// options or only epb_flags (as flowblame collect writes them), are
// summarised straight from the read buffer.
func (r *pcapngReader) NextSummaries(dst []Summary, p *Packet) (int, error) {
	if r.err != nil || r.be || r.walkOnly || r.dec.slowOnly {
		return 0, r.Next(p)
	}
	br := r.br
	b := br.buf[br.r:br.w]
	le := binary.LittleEndian
	pos, n := 0, 0
	for n < len(dst) && len(b)-pos >= 32 {
		blk := b[pos:]
		length := le.Uint32(blk[4:])
		if le.Uint32(blk) != blockEPB || length < 32 || length%4 != 0 || uint64(length) > uint64(len(blk)) ||
			le.Uint32(blk[length-4:]) != length {
			break
		}
		body := blk[8 : length-4]
		id := le.Uint32(body)
		if uint64(id) >= uint64(len(r.section)) {
			break
		}
		ni := &r.section[id]
		caplen, wire := le.Uint32(body[12:]), le.Uint32(body[16:])
		sum := ni.sum
		if sum == nil || uint64(caplen) > uint64(len(body)-20) || caplen > wire || wire > maxWireLen {
			break
		}
		dir := DirUnknown
		if opts := body[min(20+(int(caplen)+3)&^3, len(body)):]; len(opts) != 0 {
			if len(opts) != 12 || le.Uint32(opts) != optEpbFlags|4<<16 || le.Uint32(opts[8:]) != optEndOfOpt {
				break
			}
			switch le.Uint32(opts[4:]) & 3 {
			case 1:
				dir = DirIn
			case 2:
				dir = DirOut
			}
		}
		s := &dst[n]
		if !sum(body[20:20+caplen], s) {
			break
		}
		s.TS = ni.nanos(uint64(le.Uint32(body[4:]))<<32 | uint64(le.Uint32(body[8:])))
		s.Wire, s.Cap, s.Iface = wire, caplen, int32(ni.global)
		if dir != DirUnknown { // the capture's own record wins over the link header
			s.Dir = dir
		}
		pos += int(length)
		n++
	}
	if n == 0 {
		return 0, r.Next(p)
	}
	r.lastTS = dst[n-1].TS
	r.took(dst[:n], pos)
	return n, nil
}

// took consumes the pos bytes of the records summarised into sums and
// counts them as emit counts a frame.
func (f *fileBase) took(sums []Summary, pos int) {
	f.br.discard(pos)
	f.recNo += int64(len(sums))
	f.stats.Packets += int64(len(sums))
	for i := range sums {
		s := &sums[i]
		f.stats.Bytes += int64(s.Wire)
		f.stats.CapturedBytes += int64(s.Cap)
		if s.Cap < s.Wire {
			f.stats.Truncated++
		}
	}
}

package ingest

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Sentinel errors. Callers test them with errors.Is; every error returned by
// this package wraps one of them (or an *os.PathError) with file and position.
var (
	// ErrUnrecognized means "this input is not in my format" (wrong magic).
	ErrUnrecognized = errors.New("unrecognized format")
	// ErrMalformed means the input is in the right format but a header or
	// record is invalid.
	ErrMalformed = errors.New("malformed input")
	// ErrTruncated means the input ends in the middle of a header or record.
	ErrTruncated = errors.New("truncated input")
)

// Direction is the direction of a packet relative to the capturing host.
type Direction uint8

const (
	// DirUnknown: the direction could not be decided from the capture alone.
	DirUnknown Direction = iota
	// DirIn: the packet was received by the capturing host.
	DirIn
	// DirOut: the packet was sent by the capturing host.
	DirOut
)

func (d Direction) String() string {
	switch d {
	case DirIn:
		return "in"
	case DirOut:
		return "out"
	}
	return "unknown"
}

// IP protocol numbers used across flowblame.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoGRE    uint8 = 47
	ProtoICMPv6 uint8 = 58
)

// ProtoName returns "tcp", "udp", "icmp", "icmpv6", "gre" or "ip-N".
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmpv6"
	case ProtoGRE:
		return "gre"
	}
	return fmt.Sprintf("ip-%d", p)
}

// FiveTuple identifies one direction of a transport flow. It is comparable and
// can be used as a map key. Ports are zero for protocols without ports (ICMP
// and other IP protocols). Addresses are always unmapped (an IPv4-mapped IPv6
// address on the wire stays IPv6; socket tables map it with Unmap).
type FiveTuple struct {
	Proto uint8
	Src   netip.AddrPort
	Dst   netip.AddrPort
}

// Reverse returns the tuple of the opposite direction.
func (t FiveTuple) Reverse() FiveTuple { return FiveTuple{Proto: t.Proto, Src: t.Dst, Dst: t.Src} }

func (t FiveTuple) String() string {
	return fmt.Sprintf("%s %s > %s", ProtoName(t.Proto), t.Src, t.Dst)
}

// PacketKind says how far a frame could be decoded.
type PacketKind uint8

const (
	// KindIP: an IPv4 or IPv6 packet; Tuple is valid.
	KindIP PacketKind = iota
	// KindNonIP: a well-formed frame that carries no IP (ARP, LLDP, ...);
	// EtherType says what it carries when known.
	KindNonIP
	// KindUnsupportedLink: the frame's link type is not decoded.
	KindUnsupportedLink
	// KindMalformed: the frame is too short or its headers are invalid.
	KindMalformed
)

func (k PacketKind) String() string {
	switch k {
	case KindIP:
		return "ip"
	case KindNonIP:
		return "non-ip"
	case KindUnsupportedLink:
		return "unsupported-link"
	}
	return "malformed"
}

// LayerKind says why an IP header other than the outermost one was found.
type LayerKind uint8

const (
	// LayerTunnel: an IP header carried inside a tunnel (IP-in-IP, GRE,
	// VXLAN, Geneve, ...).
	LayerTunnel LayerKind = iota + 1
	// LayerICMPQuoted: the IP header quoted inside an ICMP error message.
	LayerICMPQuoted
	// LayerSampled: an IP header of a packet sampled by a flow-sampling
	// export (sFlow): a copy of traffic seen elsewhere, not part of this
	// frame's journey. Analysis ignores it; tshark counts it.
	LayerSampled
)

// IPLayer is an IP header found inside the packet beyond the outermost one.
type IPLayer struct {
	Kind  LayerKind
	Proto uint8
	Src   netip.Addr
	Dst   netip.Addr
	// Ports of the inner transport header when present (tunnels only).
	SrcPort, DstPort uint16
}

// MaxInnerLayers is the capacity of Packet.Inner.
const MaxInnerLayers = 8

// Packet is one decoded frame. Readers fill a caller-owned *Packet in
// PacketSource.Next; Payload aliases the reader's buffer and is valid only
// until the next call to Next. Every other field is a copy.
type Packet struct {
	// TS is the capture timestamp in Unix nanoseconds (UTC).
	TS int64
	// WireLen is the original frame length (pcap "len", tshark frame.len):
	// what bandwidth is counted in.
	WireLen int
	// CapLen is the number of bytes captured (≤ WireLen when snaplen cut it).
	CapLen int
	// IPLen is the outermost IP packet's length as iftop 1.0pre4 counts it:
	// IPv4 total length, IPv6 payload length + 40. Zero for non-IP frames.
	IPLen int
	// Truncated is CapLen < WireLen.
	Truncated bool
	// Iface is the index into PacketSource.Interfaces() of the interface the
	// frame was captured on.
	Iface int
	// Link is the link type (LINKTYPE_* number) the frame was decoded with.
	Link LinkType
	// Dir is the direction recorded by the capture itself (pcapng EPB flags,
	// Linux SLL/SLL2 packet type); DirUnknown when it recorded none.
	Dir Direction
	// Kind says whether Tuple is valid.
	Kind PacketKind
	// EtherType of the innermost link header (0 if none); set for KindNonIP.
	EtherType uint16
	// HasMAC says SrcMAC/DstMAC are valid (Ethernet frames).
	HasMAC         bool
	SrcMAC, DstMAC [6]byte
	// SLLType is the Linux SLL/SLL2 packet type (0 host, 1 broadcast,
	// 2 multicast, 3 other host, 4 outgoing) or -1 when not SLL.
	SLLType int8
	// Tuple is the outermost IP header's 5-tuple (KindIP only). Ports of a
	// non-first IPv4/IPv6 fragment are copied from its first fragment when
	// that was seen (Fragment is then true).
	Tuple FiveTuple
	// Fragment: the packet is a non-first fragment.
	Fragment bool
	// TCPFlags of the outermost TCP header (0 if not TCP).
	TCPFlags uint8
	// Inner lists further IP headers (tunnels, ICMP quotes); NInner of them.
	Inner  [MaxInnerLayers]IPLayer
	NInner uint8
	// Payload is the first captured bytes of the outermost transport payload
	// (at most 64 bytes). It aliases the reader's buffer.
	Payload []byte
	// Frame is the whole captured frame (CapLen bytes, link header
	// included), for writers that copy packets (export --pcapng). It aliases
	// the reader's buffer and is valid only until the next call to Next.
	Frame []byte
	// Comment is the pcapng EPB comment, if any (copied).
	Comment string
	// Hint is process information recorded in the capture itself (pcapng
	// process-id option or a ptcpdump-style comment); nil when absent.
	Hint *ProcessHint
}

// Time returns TS as a UTC time.Time.
func (p *Packet) Time() time.Time { return time.Unix(0, p.TS).UTC() }

// ProcessHint is process information carried inside a capture file.
type ProcessHint struct {
	PID  int
	Comm string
	Cmd  string
	// Source: "pcapng-option" or "pcapng-comment".
	Source string
}

// DiagKind classifies a Diagnostic.
type DiagKind string

// Diagnostic kinds.
const (
	DiagMalformed   DiagKind = "malformed"
	DiagTruncated   DiagKind = "truncated"
	DiagUnsupported DiagKind = "unsupported"
	DiagSkipped     DiagKind = "skipped"
	DiagInfo        DiagKind = "info"
)

// Diagnostic reports input that was skipped, cut short or not understood. It
// is returned next to the data, never only logged. Repeated record-level
// problems of the same kind in one file are folded into one Diagnostic with a
// Count; Where then describes the first occurrence.
type Diagnostic struct {
	File  string   `json:"file"`
	Kind  DiagKind `json:"kind"`
	Where string   `json:"where"` // "offset 1234", "packet 17 (offset 1234)", "line 12"
	// Offset is the byte offset of the first occurrence, -1 if not applicable.
	Offset int64 `json:"offset"`
	// Count is how many records this diagnostic stands for (≥ 1).
	Count int64 `json:"count"`
	// Bytes is how many input bytes were skipped (when known).
	Bytes int64  `json:"bytes,omitempty"`
	Msg   string `json:"message"`
	Err   error  `json:"-"`
}

func (d Diagnostic) String() string {
	s := fmt.Sprintf("%s: %s: %s: %s", d.File, d.Where, d.Kind, d.Msg)
	if d.Count > 1 {
		s += fmt.Sprintf(" (%d times)", d.Count)
	}
	return s
}

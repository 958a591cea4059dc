package ingest

import "net/netip"

// LinkType is a LINKTYPE_* value from pcap/pcapng headers.
type LinkType uint16

// Link types decoded by flowblame.
const (
	LinkNull     LinkType = 0   // BSD loopback (host-order 4-byte AF)
	LinkEthernet LinkType = 1   // Ethernet, 802.1Q/802.1ad tags
	LinkRaw      LinkType = 101 // raw IPv4/IPv6
	LinkLoop     LinkType = 108 // OpenBSD loopback (network-order AF)
	LinkSLL      LinkType = 113 // Linux cooked v1
	LinkIPv4     LinkType = 228
	LinkIPv6     LinkType = 229
	LinkSLL2     LinkType = 276 // Linux cooked v2
)

// Interface describes one capture interface: a pcap file's single link, or a
// pcapng Interface Description Block. Indices are global across all files of
// a source, in order of first appearance.
type Interface struct {
	Name        string         `json:"name,omitempty"`
	Description string         `json:"description,omitempty"`
	File        string         `json:"file"`
	Link        LinkType       `json:"link_type"`
	SnapLen     int            `json:"snaplen"`
	MAC         []byte         `json:"mac,omitempty"`
	Addrs       []netip.Prefix `json:"addrs,omitempty"`
	// Kernel statistics from pcapng Interface Statistics Blocks (the last
	// one seen for this interface); HasStats says they were present.
	HasStats bool   `json:"has_stats"`
	Received uint64 `json:"received,omitempty"` // isb_ifrecv
	Dropped  uint64 `json:"dropped,omitempty"`  // isb_ifdrop + isb_osdrop
}

// SourceStats counts what a PacketSource has read so far.
type SourceStats struct {
	Files         int   `json:"files"`
	Packets       int64 `json:"packets"`        // frames returned by Next
	Bytes         int64 `json:"bytes"`          // sum of WireLen
	CapturedBytes int64 `json:"captured_bytes"` // sum of CapLen
	Truncated     int64 `json:"truncated"`      // frames with CapLen < WireLen
	Malformed     int64 `json:"malformed"`      // frames of KindMalformed
	NonIP         int64 `json:"non_ip"`
	Unsupported   int64 `json:"unsupported_link"`
	SkippedBytes  int64 `json:"skipped_bytes"` // input bytes skipped as unreadable
	// Duplicates counts packets logged twice by the capture tool and
	// skipped (Windows pktmon logs one packet at several stack components).
	Duplicates int64 `json:"duplicates,omitempty"`
}

// PacketSource is a pull iterator over decoded packets.
//
// Next fills *p with the next frame and returns nil, or returns io.EOF at the
// end. Any other error is fatal for the source (the caller should stop);
// record-level problems are not errors but Diagnostics. Slices in p (Payload)
// alias the source's buffer and are valid only until the next call to Next.
// After an error or io.EOF, Next keeps returning it.
type PacketSource interface {
	Next(p *Packet) error
	// Interfaces lists the interfaces seen so far (complete after io.EOF).
	Interfaces() []Interface
	// Diagnostics lists problems found so far (complete after io.EOF).
	Diagnostics() []Diagnostic
	// Stats counts what was read so far.
	Stats() SourceStats
	Close() error
}

// Options controls how captures are read.
type Options struct {
	// Strict turns record-level problems (tier 2) into fatal errors.
	Strict bool
	// MaxDiagnostics caps distinct Diagnostics kept per file (default 100);
	// further ones are folded into counts.
	MaxDiagnostics int
	// decoder, when set, decodes the frames of the file instead of a
	// Decoder of its own: OpenCaptures gives the files it merges one, so
	// that IP fragments are reassembled across them as in the merged
	// stream (a datagram cut by a capture's rotation keeps its ports).
	decoder *Decoder
}

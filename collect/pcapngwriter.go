package collect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// pcapng block types and option codes (draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockISB = 0x00000005
	blockEPB = 0x00000006

	optEnd         = 0
	optComment     = 1
	shbHardware    = 2
	shbOS          = 3
	shbUserAppl    = 4
	ifName         = 2
	ifDescription  = 3
	ifIPv4Addr     = 4
	ifIPv6Addr     = 5
	ifMACAddr      = 6
	ifTSResol      = 9
	ifFilter       = 11
	ifOS           = 12
	epbFlags       = 2
	isbStartTime   = 2
	isbEndTime     = 3
	isbIfRecv      = 4
	isbIfDrop      = 5
	byteOrderMagic = 0x1A2B3C4D
)

// EPB flag bits (epb_flags): direction in bits 0-1, reception type in 2-4.
const (
	FlagInbound   uint32 = 1
	FlagOutbound  uint32 = 2
	FlagUnicast   uint32 = 1 << 2
	FlagMulticast uint32 = 2 << 2
	FlagBroadcast uint32 = 3 << 2
	FlagPromisc   uint32 = 4 << 2
)

// PcapngIface describes one interface for its Interface Description Block.
type PcapngIface struct {
	Name        string
	Description string
	Filter      string // pcap-filter expression, written as if_filter
	OS          string
	Link        ingest.LinkType
	SnapLen     uint32
	MAC         net.HardwareAddr
	Addrs       []netip.Prefix // written as if_IPv4addr / if_IPv6addr
}

// PcapngStats are the kernel capture statistics written as an Interface
// Statistics Block.
type PcapngStats struct {
	Start, End time.Time
	Received   uint64 // isb_ifrecv: packets that passed the filter (incl. dropped)
	Dropped    uint64 // isb_ifdrop: packets dropped because the ring was full
}

// PcapngWriter writes one pcapng section: a Section Header Block, one
// Interface Description Block per interface (timestamps in nanoseconds,
// if_tsresol=9), then Enhanced Packet Blocks and finally Interface
// Statistics Blocks. The section length is left unspecified, so a file cut
// at any point is readable up to the last complete block. It is not safe
// for concurrent use.
type PcapngWriter struct {
	bw     *bufio.Writer
	n      int64
	nIface int
	opts   []byte // scratch for options
	hdr    [32]byte
}

// NewPcapngWriter writes the section header and interface blocks to w.
// Bytes are buffered (1 MiB); call Flush to push them to w.
func NewPcapngWriter(w io.Writer, app, osName string, ifaces []PcapngIface) (*PcapngWriter, error) {
	pw := &PcapngWriter{bw: bufio.NewWriterSize(w, 1<<20)}
	pw.opts = pw.opts[:0]
	pw.addStr(shbUserAppl, app)
	pw.addStr(shbOS, osName)
	pw.endOpts()
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], byteOrderMagic)
	binary.LittleEndian.PutUint16(h[4:], 1)
	binary.LittleEndian.PutUint16(h[6:], 0)
	binary.LittleEndian.PutUint64(h[8:], ^uint64(0)) // section length unknown
	if err := pw.block(blockSHB, h[:], nil, pw.opts); err != nil {
		return nil, err
	}
	for _, ifc := range ifaces {
		if err := pw.addInterface(ifc); err != nil {
			return nil, err
		}
	}
	return pw, nil
}

func (w *PcapngWriter) addInterface(ifc PcapngIface) error {
	w.opts = w.opts[:0]
	w.addStr(ifName, ifc.Name)
	w.addStr(ifDescription, ifc.Description)
	for _, p := range ifc.Addrs {
		a := p.Addr()
		if a.Is4() {
			b := a.As4()
			m := net.CIDRMask(p.Bits(), 32)
			w.addOpt(ifIPv4Addr, append(b[:], m...))
		} else if a.Is6() {
			b := a.As16()
			w.addOpt(ifIPv6Addr, append(b[:], byte(p.Bits())))
		}
	}
	if len(ifc.MAC) == 6 {
		w.addOpt(ifMACAddr, ifc.MAC)
	}
	w.addOpt(ifTSResol, []byte{9})
	if ifc.Filter != "" {
		w.addOpt(ifFilter, append([]byte{0}, ifc.Filter...))
	}
	w.addStr(ifOS, ifc.OS)
	w.endOpts()
	var h [8]byte
	binary.LittleEndian.PutUint16(h[0:], uint16(ifc.Link))
	binary.LittleEndian.PutUint32(h[4:], ifc.SnapLen)
	w.nIface++
	return w.block(blockIDB, h[:], nil, w.opts)
}

// WritePacket writes one Enhanced Packet Block for interface iface (its
// position in the list given to NewPcapngWriter). wireLen is the original
// frame length; flags (FlagInbound, ...) are written as epb_flags when
// non-zero. data is not retained.
func (w *PcapngWriter) WritePacket(iface int, ts time.Time, wireLen int, data []byte, flags uint32) error {
	return w.writePacketNs(iface, ts.UnixNano(), wireLen, data, flags)
}

// writePacketNs is WritePacket with the time in nanoseconds since the
// epoch, as the capture ring gives it.
func (w *PcapngWriter) writePacketNs(iface int, ns int64, wireLen int, data []byte, flags uint32) error {
	if iface < 0 || iface >= w.nIface {
		return fmt.Errorf("write packet: no interface %d", iface)
	}
	if wireLen < len(data) {
		wireLen = len(data)
	}
	// The hot path of the capture: header and fixed part in one write, the
	// frame, then padding, the epb_flags option and the trailer in one more.
	pad := pad4(len(data))
	total := 12 + 20 + len(data) + pad
	if flags != 0 {
		total += 12 // epb_flags (4 + 4) and opt_endofopt (4)
	}
	if total > 1<<30 {
		return errBlockTooLarge
	}
	le := binary.LittleEndian
	h := w.hdr[:28]
	le.PutUint32(h[0:], blockEPB)
	le.PutUint32(h[4:], uint32(total))
	le.PutUint32(h[8:], uint32(iface))
	putNs(h[12:], ns)
	le.PutUint32(h[20:], uint32(len(data)))
	le.PutUint32(h[24:], uint32(wireLen))
	w.bw.Write(h)
	w.bw.Write(data)
	var tail [3 + 12 + 4]byte
	n := pad
	if flags != 0 {
		le.PutUint16(tail[n:], epbFlags)
		le.PutUint16(tail[n+2:], 4)
		le.PutUint32(tail[n+4:], flags)
		n += 12 // option, then opt_endofopt (zeros)
	}
	le.PutUint32(tail[n:], uint32(total))
	if _, err := w.bw.Write(tail[:n+4]); err != nil {
		return fmt.Errorf("write pcapng block: %w", err)
	}
	w.n += int64(total)
	return nil
}

// WriteStats writes an Interface Statistics Block for interface iface at
// time ts.
func (w *PcapngWriter) WriteStats(iface int, ts time.Time, st PcapngStats) error {
	if iface < 0 || iface >= w.nIface {
		return fmt.Errorf("write stats: no interface %d", iface)
	}
	w.opts = w.opts[:0]
	var b [8]byte
	if !st.Start.IsZero() {
		putTS(b[:], st.Start)
		w.addOpt(isbStartTime, b[:])
	}
	if !st.End.IsZero() {
		putTS(b[:], st.End)
		w.addOpt(isbEndTime, b[:])
	}
	binary.LittleEndian.PutUint64(b[:], st.Received)
	w.addOpt(isbIfRecv, b[:])
	binary.LittleEndian.PutUint64(b[:], st.Dropped)
	w.addOpt(isbIfDrop, b[:])
	w.endOpts()
	h := w.hdr[:12]
	binary.LittleEndian.PutUint32(h[0:], uint32(iface))
	putTS(h[4:], ts)
	return w.block(blockISB, h, nil, w.opts)
}

// Flush writes buffered blocks to the underlying writer.
func (w *PcapngWriter) Flush() error { return w.bw.Flush() }

// Size is the number of bytes written so far (buffered or not).
func (w *PcapngWriter) Size() int64 { return w.n }

// putTS writes a pcapng timestamp (ns since the epoch, high word first).
func putTS(b []byte, t time.Time) { putNs(b, t.UnixNano()) }

func putNs(b []byte, ns int64) {
	binary.LittleEndian.PutUint32(b[0:], uint32(uint64(ns)>>32))
	binary.LittleEndian.PutUint32(b[4:], uint32(ns))
}

func (w *PcapngWriter) addStr(code uint16, s string) {
	if s != "" {
		w.addOpt(code, []byte(s))
	}
}

func (w *PcapngWriter) addOpt(code uint16, v []byte) {
	var h [4]byte
	binary.LittleEndian.PutUint16(h[0:], code)
	binary.LittleEndian.PutUint16(h[2:], uint16(len(v)))
	w.opts = append(w.opts, h[:]...)
	w.opts = append(w.opts, v...)
	w.opts = append(w.opts, make([]byte, pad4(len(v)))...)
}

func (w *PcapngWriter) endOpts() {
	if len(w.opts) > 0 {
		w.opts = append(w.opts, 0, 0, 0, 0)
	}
}

func pad4(n int) int { return (4 - n&3) & 3 }

var errBlockTooLarge = errors.New("pcapng block too large")

// block writes type, total length, fixed body, data (padded), options and
// the trailing length.
func (w *PcapngWriter) block(typ uint32, fixed, data, opts []byte) error {
	total := 12 + len(fixed) + len(data) + pad4(len(data)) + len(opts)
	if total > 1<<30 {
		return errBlockTooLarge
	}
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint32(h[4:], uint32(total))
	w.bw.Write(h[:])
	w.bw.Write(fixed)
	w.bw.Write(data)
	var zero [4]byte
	w.bw.Write(zero[:pad4(len(data))])
	w.bw.Write(opts)
	_, err := w.bw.Write(h[4:8])
	if err != nil {
		return fmt.Errorf("write pcapng block: %w", err)
	}
	w.n += int64(total)
	return nil
}

package ingest

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"unicode/utf8"
)

// pcapng block types.
const (
	blockSHB       = 0x0a0d0d0a
	blockIDB       = 0x00000001
	blockPB        = 0x00000002 // obsolete Packet Block
	blockSPB       = 0x00000003
	blockNRB       = 0x00000004
	blockISB       = 0x00000005
	blockEPB       = 0x00000006
	blockJournal   = 0x00000009
	blockDSB       = 0x0000000a
	blockCustom    = 0x00000bad
	blockCustomNC  = 0x40000bad
	blockDarwinPIB = 0x80000001 // Apple pktap Process Information Block
	bomMagic       = 0x1a2b3c4d
	bomMagicSwap   = 0x4d3c2b1a
)

// pcapng option codes.
const (
	optEndOfOpt   = 0
	optComment    = 1
	optCustomStr  = 2988
	optCustomBin  = 2989
	optCustomStr2 = 19372
	optCustomBin2 = 19373

	optIfName     = 2
	optIfDesc     = 3
	optIfIPv4     = 4
	optIfIPv6     = 5
	optIfMAC      = 6
	optIfTsresol  = 9
	optIfTsoffset = 14

	optEpbFlags = 2
	// Apple pktap: index of the Process Information Block of the process
	// that sent/received the packet (and of the "effective" process).
	optEpbDarwinPIB  = 0x8001
	optEpbDarwinEPIB = 0x8002

	optPIBName = 2

	optIsbIfrecv = 4
	optIsbIfdrop = 5
	optIsbOsdrop = 7
)

// ngIface is an Interface Description Block of the current section.
type ngIface struct {
	global  int // index into fileBase.ifaces
	link    LinkType
	sum     summarizer // summarizerFor(link), nil when it has none
	snaplen uint32
	// Timestamp units to ns: tsKind 0: units*tsFactor; 1: units/tsFactor;
	// 2: units*1e9 >> tsShift.
	tsKind   uint8
	tsShift  uint8
	tsFactor uint64
	tsOffset int64 // if_tsoffset in ns
}

func (i *ngIface) nanos(units uint64) int64 {
	var ns uint64
	switch i.tsKind {
	case 0:
		ns = units * i.tsFactor
	case 1:
		ns = units / i.tsFactor
	default:
		hi, lo := bits.Mul64(units, 1e9)
		s := uint(i.tsShift)
		switch {
		case s == 0:
			ns = lo
		case s < 64:
			ns = hi<<(64-s) | lo>>s
		default:
			ns = hi >> (s - 64)
		}
	}
	return int64(ns) + i.tsOffset
}

// pcapngReader walks the blocks of a pcapng file, section by section.
//
// Policy: the first block must be a valid SHB of version 1.0 (or 1.2, which
// some writers emit and libpcap/Wireshark accept); anything else is fatal,
// as in Wireshark (libpcap/pcapng-invalid-vers-*.pcapng). A block whose
// length is below 12, not a multiple of 4 or above 16 MiB makes the rest of
// the file untrustworthy: reading stops with a malformed-tail diagnostic. A
// block with a sane length but bad content (caplen beyond the block, unknown
// interface, options overrunning the block, trailer length mismatch) is
// skipped or kept with a diagnostic and reading resumes at the next block.
// Simple Packet Blocks carry no timestamp: they get the previous packet's.
type pcapngReader struct {
	fileBase
	endian
	section []ngIface // IDBs of the current section
	pibs    []*ProcessHint
	lastTS  int64
	// Cache of the last comment / hint, so that a run of packets with the
	// same comment (ptcpdump writes one per packet) does not allocate.
	lastComment string
	lastHint    *ProcessHint
	pktmon      pktmonDedup // Windows pktmon appearances (pktmon.go)
	scratch     []byte
}

func newPcapngReader(base fileBase) (captureReader, error) {
	r := &pcapngReader{fileBase: base}
	r.notPacket = true
	h, ok := r.br.peek(28)
	if !ok {
		if k := r.br.endKind(true); k == endIOError || k == endCorrupt {
			return nil, fmt.Errorf("read %s: pcapng section header: %v: %w", r.name, r.br.err, ErrMalformed)
		}
		return nil, fmt.Errorf("read %s: pcapng section header cut short (%d bytes): %w", r.name, len(h), ErrTruncated)
	}
	if err := r.setByteOrder(h[8:12]); err != nil {
		return nil, err
	}
	length := r.u32(h[4:])
	if length < 28 || length%4 != 0 || length > maxBlockLen {
		return nil, fmt.Errorf("read %s: pcapng section header length %d invalid: %w", r.name, length, ErrMalformed)
	}
	if major, minor := r.u16(h[12:]), r.u16(h[14:]); !(major == 1 && (minor == 0 || minor == 2)) {
		return nil, fmt.Errorf("read %s: pcapng version %d.%d unsupported: %w", r.name, major, minor, ErrMalformed)
	}
	blk, ok := r.br.peek(int(length))
	if !ok {
		return nil, fmt.Errorf("read %s: pcapng section header cut short (%d of %d bytes): %w",
			r.name, len(blk), length, ErrTruncated)
	}
	if t := r.u32(blk[length-4:]); t != length {
		return nil, fmt.Errorf("read %s: pcapng section header trailing length %d differs from %d: %w",
			r.name, t, length, ErrMalformed)
	}
	r.walkOptions(blk[24:length-4], 0, nil)
	r.br.discard(int(length))
	return r, nil
}

func (r *pcapngReader) setByteOrder(bom []byte) error {
	switch binary.LittleEndian.Uint32(bom) {
	case bomMagic:
		r.be = false
	case bomMagicSwap:
		r.be = true
	default:
		return fmt.Errorf("read %s: pcapng byte-order magic %q invalid: %w", r.name, bom, ErrMalformed)
	}
	return nil
}

// checkTrailer compares the trailing block length with the leading one. A
// mismatch means the block cannot be trusted: it is skipped (ok false) and
// reading resumes after the leading length.
func (r *pcapngReader) checkTrailer(blk []byte, off int64) (ok bool, err error) {
	n := len(blk)
	if t := r.u32(blk[n-4:]); t != uint32(n) {
		return false, r.problem("trailer-length", DiagMalformed, off, int64(n),
			fmt.Sprintf("block of type %#x: trailing length %d differs from leading length %d; block skipped",
				r.u32(blk), t, n))
	}
	return true, nil
}

// walkOptions calls fn for each option in opts (nil fn: only validate).
func (r *pcapngReader) walkOptions(opts []byte, off int64, fn func(code uint16, val []byte)) {
	for len(opts) >= 4 {
		code, l := r.u16(opts), int(r.u16(opts[2:]))
		if code == optEndOfOpt {
			return
		}
		if 4+l > len(opts) {
			r.problem("option-overrun", DiagMalformed, off, 0,
				fmt.Sprintf("option %d of length %d overruns its block (%d bytes left); rest of options ignored",
					code, l, len(opts)-4))
			return
		}
		if fn != nil {
			fn(code, opts[4:4+l])
		}
		adv := 4 + (l+3)&^3
		if adv > len(opts) {
			return
		}
		opts = opts[adv:]
	}
}

// Next implements PacketSource. p.Payload aliases the read buffer and is
// valid only until the next call; p.Comment is a copy and p.Hint may be
// shared between packets (treat it as read-only).
func (r *pcapngReader) Next(p *Packet) error {
	for r.err == nil {
		br := r.br
		off := br.off
		r.notPacket = true
		h, ok := br.peek(12)
		if !ok {
			r.finish(false, len(h), "a block header")
			break
		}
		typ := r.u32(h)
		if typ == blockSHB {
			if err := r.setByteOrder(h[8:12]); err != nil {
				return r.malformedTail(off, "section header with invalid byte-order magic")
			}
		}
		length := r.u32(h[4:])
		if length < 12 || length%4 != 0 || length > maxBlockLen {
			return r.malformedTail(off, fmt.Sprintf("block of type %#x has invalid length %d", typ, length))
		}
		blk, ok := br.peek(int(length))
		if !ok {
			r.finish(true, len(blk), fmt.Sprintf("a block of type %#x (%d bytes long)", typ, length))
			break
		}
		if typ == blockEPB || typ == blockSPB || typ == blockPB {
			r.recNo++
			r.notPacket = false
		}
		good, err := r.checkTrailer(blk, off)
		if err != nil {
			return err
		}
		body := blk[8 : length-4]
		br.discard(int(length))
		if !good {
			continue
		}
		switch typ {
		case blockEPB:
			if done, e := r.packetBlock(p, body, off, false); done || e != nil {
				return e
			}
		case blockSPB:
			if done, e := r.simpleBlock(p, body, off); done || e != nil {
				return e
			}
		case blockPB:
			if done, e := r.packetBlock(p, body, off, true); done || e != nil {
				return e
			}
		case blockIDB:
			err = r.idb(body, off)
		case blockISB:
			err = r.isb(body, off)
		case blockSHB:
			err = r.shb(body, off)
		case blockDarwinPIB:
			r.pib(body, off)
		case blockDSB:
			r.dsb(body, off)
		case blockNRB, blockCustom, blockCustomNC, blockJournal:
		default:
			r.info(fmt.Sprintf("block-%#x", typ), off, fmt.Sprintf("block type %#x skipped", typ))
		}
		if err != nil {
			return err
		}
	}
	return r.err
}

// dsb notes a Decryption Secrets Block: tshark decrypts with its secrets
// and, for WireGuard, dissects and counts the IP packets inside; flowblame
// counts the encrypted packets only (one info diagnostic per file).
func (r *pcapngReader) dsb(body []byte, off int64) {
	kind := "decryption secrets"
	if len(body) >= 4 {
		switch r.u32(body) {
		case 0x544c534b:
			kind = "a TLS key log"
		case 0x57474b4c:
			kind = "WireGuard keys"
		case 0x5353484b:
			kind = "an SSH key log"
		case 0x5a4e574b:
			kind = "ZigBee network keys"
		case 0x4f50434b:
			kind = "OPC UA keys"
		}
	}
	r.info("decryption-secrets", off, fmt.Sprintf("the capture holds %s (a Decryption Secrets Block): tshark decrypts with them "+
		"and counts the IP packets inside WireGuard tunnels it decrypts; flowblame counts the encrypted packets only", kind))
}

func (r *pcapngReader) shb(body []byte, off int64) error {
	if len(body) < 16 {
		return r.malformedTail(off, "section header block too short")
	}
	if major, minor := r.u16(body[4:]), r.u16(body[6:]); !(major == 1 && (minor == 0 || minor == 2)) {
		return r.malformedTail(off, fmt.Sprintf("section header version %d.%d unsupported", major, minor))
	}
	r.section = r.section[:0]
	r.pibs = r.pibs[:0]
	r.walkOptions(body[16:], off, nil)
	return nil
}

func (r *pcapngReader) idb(body []byte, off int64) error {
	if len(body) < 8 {
		return r.problem("idb-short", DiagMalformed, off, int64(len(body)+12), "interface description block too short; skipped")
	}
	ni := ngIface{
		global: len(r.ifaces), link: LinkType(r.u16(body)), snaplen: r.u32(body[4:]), tsFactor: 1000,
	}
	ni.sum = summarizerFor(ni.link)
	ifc := Interface{File: r.name, Link: ni.link, SnapLen: int(ni.snaplen)}
	r.walkOptions(body[8:], off, func(code uint16, v []byte) {
		switch code {
		case optIfName:
			ifc.Name = string(v)
		case optIfDesc:
			ifc.Description = string(v)
		case optIfMAC:
			if len(v) == 6 {
				ifc.MAC = append([]byte(nil), v...)
			}
		case optIfIPv4:
			if len(v) == 8 {
				a := netip.AddrFrom4([4]byte(v[:4]))
				ones := bits.OnesCount32(binary.BigEndian.Uint32(v[4:]))
				if pfx, err := a.Prefix(ones); err == nil {
					ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(a, pfx.Bits()))
				}
			}
		case optIfIPv6:
			if len(v) == 17 && v[16] <= 128 {
				ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(netip.AddrFrom16([16]byte(v[:16])), int(v[16])))
			}
		case optIfTsresol:
			if len(v) == 1 {
				r.setResolution(&ni, v[0], off)
			}
		case optIfTsoffset:
			if len(v) == 8 {
				ni.tsOffset = int64(r.u64(v)) * 1e9
			}
		}
	})
	r.section = append(r.section, ni)
	r.ifaces = append(r.ifaces, ifc)
	return nil
}

func (r *pcapngReader) setResolution(ni *ngIface, v byte, off int64) {
	k := v & 0x7f
	if v&0x80 != 0 {
		ni.tsKind, ni.tsShift = 2, k
		return
	}
	switch {
	case k <= 9:
		ni.tsKind, ni.tsFactor = 0, pow10(9-k)
	case k <= 28:
		ni.tsKind, ni.tsFactor = 1, pow10(min(k-9, 19))
	default:
		r.info("tsresol", off, fmt.Sprintf("if_tsresol 10^-%d out of range; read as 10^-28", k))
		ni.tsKind, ni.tsFactor = 1, pow10(19)
	}
}

func pow10(k byte) uint64 {
	n := uint64(1)
	for ; k > 0; k-- {
		n *= 10
	}
	return n
}

func (r *pcapngReader) iface(id uint32, off int64) (*ngIface, error) {
	if int64(id) >= int64(len(r.section)) {
		return nil, r.problem("unknown-interface", DiagMalformed, off, 0,
			fmt.Sprintf("packet refers to interface %d but the section has %d; skipped", id, len(r.section)))
	}
	return &r.section[id], nil
}

// packetBlock handles an EPB (or, old, an obsolete Packet Block). done is
// true when p holds a packet.
func (r *pcapngReader) packetBlock(p *Packet, body []byte, off int64, old bool) (done bool, err error) {
	blkLen := int64(len(body) + 12)
	if len(body) < 20 {
		return false, r.problem("packet-block-short", DiagMalformed, off, blkLen, "packet block too short; skipped")
	}
	var id uint32
	if old {
		id = uint32(r.u16(body))
	} else {
		id = r.u32(body)
	}
	ni, err := r.iface(id, off)
	if ni == nil {
		r.stats.SkippedBytes += blkLen
		return false, err
	}
	units := uint64(r.u32(body[4:]))<<32 | uint64(r.u32(body[8:]))
	caplen, wire := r.u32(body[12:]), r.wireLen(r.u32(body[16:]), off)
	if uint64(caplen) > uint64(len(body)-20) {
		return false, r.problem("caplen-beyond-block", DiagMalformed, off, blkLen,
			fmt.Sprintf("captured length %d beyond its %d-byte block; skipped", caplen, blkLen))
	}
	frame := body[20 : 20+caplen]
	// Decode resets every decoded field; set only the capture fields.
	p.TS = ni.nanos(units)
	p.WireLen, p.CapLen, p.Truncated = int(wire), int(caplen), caplen < wire
	p.Iface, p.Dir, p.Comment, p.Hint = ni.global, DirUnknown, "", nil
	if optStart := 20 + (int(caplen)+3)&^3; optStart < len(body) {
		r.packetOptions(p, body[optStart:], off)
	}
	r.lastTS = p.TS
	if caplen > wire {
		r.info("caplen-wirelen", off, fmt.Sprintf("captured length %d exceeds wire length %d; wire length kept", caplen, wire))
	}
	if len(p.Comment) > 11 && p.Comment[0] == 'P' {
		if g, n, dir, ok := pktmonInfo(p.Comment); ok {
			if r.pktmon.duplicate(g, n) {
				r.stats.Duplicates++
				r.info("pktmon-appearance", off, "Windows pktmon logged this packet again at another stack component; only its first appearance is counted")
				return false, nil
			}
			if p.Dir == DirUnknown {
				p.Dir = dir
			}
		}
	}
	return true, r.emit(p, ni.link, frame, off)
}

// packetOptions reads epb_flags, comments and process options.
func (r *pcapngReader) packetOptions(p *Packet, opts []byte, off int64) {
	r.scratch = r.scratch[:0]
	ncomments := 0
	var hint *ProcessHint
	r.walkOptions(opts, off, func(code uint16, v []byte) {
		switch code {
		case optEpbFlags:
			if len(v) == 4 {
				switch r.u32(v) & 3 {
				case 1:
					p.Dir = DirIn
				case 2:
					p.Dir = DirOut
				}
			}
		case optComment:
			if ncomments > 0 {
				r.scratch = append(r.scratch, '\n')
			}
			r.scratch = append(r.scratch, v...)
			ncomments++
		case optCustomStr, optCustomStr2:
			if len(v) > 4 && hint == nil && utf8.Valid(v[4:]) {
				if h := ParseProcessHint(string(v[4:])); h != nil {
					h.Source = HintSourceOption
					hint = h
				}
			}
		case optEpbDarwinPIB, optEpbDarwinEPIB:
			if len(v) == 4 && hint == nil {
				if i := r.u32(v); int64(i) < int64(len(r.pibs)) && r.pibs[i] != nil {
					hint = r.pibs[i]
				}
			}
		}
	})
	if ncomments > 0 {
		if string(r.scratch) == r.lastComment {
			p.Comment = r.lastComment
		} else {
			r.lastComment = string(r.scratch)
			r.lastHint = ParseProcessHint(r.lastComment)
			p.Comment = r.lastComment
		}
		if hint == nil {
			hint = r.lastHint
		}
	}
	p.Hint = hint
}

// simpleBlock handles a Simple Packet Block (interface 0, no timestamp).
func (r *pcapngReader) simpleBlock(p *Packet, body []byte, off int64) (bool, error) {
	blkLen := int64(len(body) + 12)
	if len(body) < 4 {
		return false, r.problem("packet-block-short", DiagMalformed, off, blkLen, "simple packet block too short; skipped")
	}
	ni, err := r.iface(0, off)
	if ni == nil {
		r.stats.SkippedBytes += blkLen
		return false, err
	}
	wire := r.wireLen(r.u32(body), off)
	caplen := min(wire, uint32(len(body)-4))
	if ni.snaplen != 0 {
		caplen = min(caplen, ni.snaplen)
	}
	*p = Packet{
		TS: r.lastTS, WireLen: int(wire), CapLen: int(caplen), Truncated: caplen < wire, Iface: ni.global, SLLType: -1,
	}
	r.info("spb-timestamp", off, "simple packet block has no timestamp; previous packet's time used")
	return true, r.emit(p, ni.link, body[4:4+caplen], off)
}

// isb records the kernel counters of an Interface Statistics Block.
func (r *pcapngReader) isb(body []byte, off int64) error {
	if len(body) < 12 {
		return r.problem("isb-short", DiagMalformed, off, int64(len(body)+12), "interface statistics block too short; skipped")
	}
	id := r.u32(body)
	if int64(id) >= int64(len(r.section)) {
		return r.problem("isb-interface", DiagMalformed, off, int64(len(body)+12),
			fmt.Sprintf("statistics for unknown interface %d; skipped", id))
	}
	ifc := &r.ifaces[r.section[id].global]
	var recv, drop uint64
	var has bool
	r.walkOptions(body[12:], off, func(code uint16, v []byte) {
		if len(v) != 8 {
			return
		}
		switch code {
		case optIsbIfrecv:
			recv, has = r.u64(v), true
		case optIsbIfdrop, optIsbOsdrop:
			drop, has = drop+r.u64(v), true
		}
	})
	if has {
		ifc.HasStats, ifc.Received, ifc.Dropped = true, recv, drop
	}
	return nil
}

// pib reads an Apple pktap Process Information Block (process id + name).
func (r *pcapngReader) pib(body []byte, off int64) {
	if len(body) < 4 {
		r.pibs = append(r.pibs, nil)
		return
	}
	h := &ProcessHint{PID: int(int32(r.u32(body))), Source: HintSourceOption}
	r.walkOptions(body[4:], off, func(code uint16, v []byte) {
		if code == optPIBName {
			h.Comm = string(v)
		}
	})
	r.pibs = append(r.pibs, h)
}

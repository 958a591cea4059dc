package ingest

import (
	"encoding/binary"
	"fmt"
)

// pcap linktype field layout (libpcap pcap-common.h LT_* macros).
const (
	ltLinkMask        = 0x0000ffff
	ltReservedMask    = 0x03ff0000
	ltFCSPresent      = 0x04000000
	ltFCSLenShift     = 28
	pcapGlobalHdrLen  = 24
	pcapRecHdrLen     = 16
	pcapModRecHdrLen  = 24 // Kuznetzov: + ifindex(4) protocol(2) pkt_type(1) pad(1)
	pcapVersionMajor  = 2
	pcapVersionMinor  = 4
	nanosPerMicro     = 1000
	fracLimitMicro    = 1000000
	fracLimitNano     = 1000000000
	pcapMaxRecordNote = "larger than 256 KiB and than the snaplen"
)

// pcapReader walks the records of a classic libpcap file.
//
// Header policy, following libpcap (sf-pcap.c) and Wireshark (libpcap.c):
// major version other than 2 is fatal (both refuse version 1.x; tshark
// cannot read libpcap/pcap-invalid-version-1.pcap); minor versions other
// than 4 are read with an info diagnostic (Wireshark reads 2.5, as in
// libpcap/pcap-invalid-version-2.pcap; for minor < 3 caplen and len are
// swapped when caplen > len, as libpcap does for files of that era). A
// linktype with the FCS-length bits set is masked to its low 16 bits with
// an info diagnostic; non-zero reserved bits (0x03ff0000) are fatal, as in
// both libpcap and Wireshark (libpcap/linktype-reserved-field-not-zero.pcap).
type pcapReader struct {
	fileBase
	endian
	nano     bool // nanosecond timestamps
	modified bool // Kuznetzov records with 8 extra header bytes
	oldMinor bool // version 2.0–2.2: caplen/len may be swapped
	hdrLen   int  // record header length
	link     LinkType
	snaplen  uint32
	limit    uint32 // largest caplen accepted
	fracMax  uint32
	fracMul  int64
	// plain: little-endian 2.4 records of 16 bytes, where Next takes a
	// short path for a record that is wholly buffered and needs no
	// diagnostic.
	plain bool
}

func newPcapReader(base fileBase) (captureReader, error) {
	r := &pcapReader{fileBase: base}
	r.notPacket = true
	defer func() { r.notPacket = false }()
	h, ok := r.br.peek(pcapGlobalHdrLen)
	if !ok {
		if k := r.br.endKind(true); k == endIOError || k == endCorrupt {
			return nil, fmt.Errorf("read %s: pcap header: %v: %w", r.name, r.br.err, ErrMalformed)
		}
		return nil, fmt.Errorf("read %s: pcap global header cut short (%d of %d bytes): %w",
			r.name, len(h), pcapGlobalHdrLen, ErrTruncated)
	}
	switch be32(h) {
	case magicPcapMicro, magicPcapNano, magicPcapModified:
		r.be = true
	}
	switch be32(h) {
	case magicPcapNano, magicPcapNanoSw:
		r.nano = true
	case magicPcapModified, magicPcapModSw:
		r.modified = true
	}
	major, minor := r.u16(h[4:]), r.u16(h[6:])
	r.snaplen = r.u32(h[16:])
	lt := r.u32(h[20:])
	if major != pcapVersionMajor {
		return nil, fmt.Errorf("read %s: pcap version %d.%d unsupported: %w", r.name, major, minor, ErrMalformed)
	}
	if lt&ltReservedMask != 0 {
		return nil, fmt.Errorf("read %s: pcap link type field %#08x has reserved bits set: %w", r.name, lt, ErrMalformed)
	}
	r.fracMax, r.fracMul = fracLimitMicro, nanosPerMicro
	if r.nano {
		r.fracMax, r.fracMul = fracLimitNano, 1
	}
	r.limit = maxRecordLen
	if r.snaplen > maxRecordLen {
		r.limit = min(r.snaplen, maxBlockLen)
	}
	r.link = LinkType(lt & ltLinkMask)
	r.br.discard(pcapGlobalHdrLen)
	if minor != pcapVersionMinor {
		r.info("pcap-version", 0, fmt.Sprintf("pcap version %d.%d (expected 2.4); read as 2.4", major, minor))
		r.oldMinor = minor < 3
	}
	v := pcapStandard
	switch {
	case r.modified:
		v = r.pickVariant(pcapModifiedVariants)
	case !r.nano:
		v = r.pickVariant(pcapStandardVariants)
	}
	r.hdrLen, r.modified = v.hdrLen, v.pktType
	r.plain = !r.be && r.hdrLen == pcapRecHdrLen && minor == pcapVersionMinor
	if lt&ltFCSPresent != 0 || lt>>ltFCSLenShift != 0 {
		r.info("pcap-fcs-bits", 0, fmt.Sprintf("link type field %#08x: FCS length %d (16-bit units) present; link type %d used",
			lt, lt>>ltFCSLenShift, r.link))
	}
	if v.note != "" {
		r.info("pcap-variant", 0, v.note+" (chosen as Wireshark does, from the first records)")
	}
	r.ifaces = []Interface{{File: r.name, Link: r.link, SnapLen: int(r.snaplen)}}
	return r, nil
}

// pcapVariant is a per-record header layout of classic pcap (Wireshark's
// libpcap.c variants). Patched libpcaps of 1999 and Nokia's IPSO wrote
// longer record headers, some under the standard magic number.
type pcapVariant struct {
	hdrLen  int
	pktType bool   // byte 22 is the Linux packet type (direction)
	note    string // info diagnostic when chosen; "" for standard pcap
}

var (
	pcapStandard         = pcapVariant{hdrLen: pcapRecHdrLen}
	pcapStandardVariants = []pcapVariant{pcapStandard,
		{24, true, "pcap records with 24-byte headers (Red Hat 6.1 \"ss990417\" libpcap): per-record packet type used for direction"},
		{20, false, "pcap records with 20-byte headers (Nokia IPSO libpcap)"}}
	pcapModifiedVariants = []pcapVariant{
		{pcapModRecHdrLen, true, "modified (Kuznetzov \"ss991029\") pcap: per-record packet type used for direction"},
		{28, true, "modified pcap with 28-byte record headers (SuSE 6.3 \"ss990915\" libpcap): per-record packet type used for direction"}}
)

// pickVariant chooses the record layout as Wireshark does: the first
// variant under which the first three records look sane, else the one with
// the fewest problems (fraction ≥ 1 s, captured length above 256 KiB or the
// snaplen or the wire length, wire length above 128 MiB, a record cut
// short), the first on ties.
func (r *pcapReader) pickVariant(vs []pcapVariant) pcapVariant {
	best, bestMerit := vs[0], -1
	for _, v := range vs {
		m := r.tryVariant(v.hdrLen)
		if m == 0 {
			return v
		}
		if bestMerit < 0 || m < bestMerit {
			best, bestMerit = v, m
		}
	}
	return best
}

// tryVariant counts the problems of the first record (of three) that has
// any when records have hdrLen-byte headers; 0 when all look sane or the
// file ends at a record boundary.
func (r *pcapReader) tryVariant(hdrLen int) int {
	off := 0
	for range 3 {
		h, ok := r.br.peek(off + hdrLen)
		if !ok {
			if len(h) == off {
				return 0
			}
			return 1
		}
		h = h[off:]
		caplen, wire := r.lengths(h)
		m := 0
		for _, bad := range []bool{r.u32(h[4:]) >= fracLimitMicro, caplen > maxRecordLen, wire > 128<<20, caplen > r.snaplen, caplen > wire} {
			if bad {
				m++
			}
		}
		if m > 0 {
			return m
		}
		off += hdrLen + int(caplen)
		if _, ok := r.br.peek(off); !ok {
			return 1
		}
	}
	return 0
}

// lengths returns a record header's captured and wire lengths (swapped
// back for files of version 2.0–2.2 that wrote them the other way round).
func (r *pcapReader) lengths(h []byte) (caplen, wire uint32) {
	caplen, wire = r.u32(h[8:]), r.u32(h[12:])
	if r.oldMinor && caplen > wire {
		caplen, wire = wire, caplen
	}
	return caplen, wire
}

// setCapture sets p's capture fields from a record header. Decode resets
// every decoded field, so the whole (large) Packet is never zeroed.
func (r *pcapReader) setCapture(p *Packet, sec, frac, caplen, wire uint32, dir Direction) {
	p.TS = int64(sec)*1e9 + int64(frac)*r.fracMul
	p.WireLen, p.CapLen, p.Truncated = int(wire), int(caplen), caplen < wire
	p.Iface, p.Dir, p.Comment, p.Hint = 0, dir, "", nil
}

// Next implements PacketSource. p.Payload aliases the read buffer and is
// valid only until the next call.
func (r *pcapReader) Next(p *Packet) error {
	if r.err != nil {
		return r.err
	}
	br := r.br
	if b := br.buf[br.r:br.w]; r.plain && len(b) >= pcapRecHdrLen {
		le := binary.LittleEndian
		sec, frac, caplen, wire := le.Uint32(b), le.Uint32(b[4:]), le.Uint32(b[8:]), le.Uint32(b[12:])
		if need := pcapRecHdrLen + uint64(caplen); need <= uint64(len(b)) && caplen <= r.snaplen && caplen <= r.limit && caplen <= wire && wire <= maxWireLen && frac < r.fracMax {
			off := br.off
			r.recNo++
			r.setCapture(p, sec, frac, caplen, wire, DirUnknown)
			br.discard(int(need))
			return r.emit(p, r.link, b[pcapRecHdrLen:need:need], off)
		}
	}
	off := br.off
	r.recNo++
	h, ok := br.peek(r.hdrLen)
	if !ok {
		return r.finish(false, len(h), "a record header")
	}
	caplen, wire := r.lengths(h)
	if caplen > r.limit {
		return r.malformedTail(off, fmt.Sprintf("record header claims %d captured bytes (%s %d)",
			caplen, pcapMaxRecordNote, r.snaplen))
	}
	need := r.hdrLen + int(caplen)
	rec, ok := br.peek(need)
	if !ok {
		return r.finish(true, len(rec), "a packet record")
	}
	sec, frac := r.u32(rec[0:]), r.u32(rec[4:])
	var dir Direction
	if r.modified {
		switch rec[22] { // pkt_type: 0 host, 1 broadcast, 2 multicast, 3 other host, 4 outgoing
		case 0, 1, 2:
			dir = DirIn
		case 4:
			dir = DirOut
		}
	}
	wire = r.wireLen(wire, off)
	r.setCapture(p, sec, frac, caplen, wire, dir)
	br.discard(need)
	if frac >= r.fracMax {
		r.info("ts-fraction", off, fmt.Sprintf("timestamp fraction %d out of range; added as is", frac))
	}
	if caplen > r.snaplen {
		r.info("caplen-snaplen", off, fmt.Sprintf("captured length %d exceeds snaplen %d; kept", caplen, r.snaplen))
	}
	if caplen > wire {
		r.info("caplen-wirelen", off, fmt.Sprintf("captured length %d exceeds wire length %d; wire length kept", caplen, wire))
	}
	return r.emit(p, r.link, rec[r.hdrLen:need], off)
}

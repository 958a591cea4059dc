package report

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// PcapngAnnotator writes a capture again as pcapng with every packet
// annotated with the process that owned it:
//
//   - an EPB comment "pid=4242 comm=kdevtmpfsi exe=/tmp/kdevtmpfsi
//     method=exact confidence=high" (Wireshark's packet comment; tshark
//     -Y 'frame.comment contains "pid=4242"'), or "unattributed: <cause>";
//   - a process information block per process and the EPB option that
//     points at it (the Darwin/Apple pcapng extension Wireshark decodes as
//     the packet's process id and name), so tools that understand process
//     blocks show the process without parsing comments;
//   - the direction in epb_flags when it is known.
//
// The writer owns no packet memory: each WritePacket copies what it needs.
type PcapngAnnotator struct {
	w      *bufio.Writer
	ifaces map[int]uint32 // source interface index → IDB index
	nIDB   uint32
	pibs   map[ingest.ProcKey]uint32
	nPIB   uint32
	procs  map[ingest.ProcKey]ingest.ProcessInfo
	buf    []byte
}

const (
	ngSHB      = 0x0A0D0D0A
	ngIDB      = 1
	ngEPB      = 6
	ngDPIB     = 0x80000001 // Darwin process information block
	optEnd     = 0
	optComment = 1
	optEpbFlag = 2
	optPIBIdx  = 0x8001 // EPB: index of the process information block
	optPIBName = 2      // DPIB: process name
)

// NewPcapngAnnotator writes the section header; procs supply exe paths
// (may be nil).
func NewPcapngAnnotator(w io.Writer, tool string, procs map[ingest.ProcKey]ingest.ProcessInfo) (*PcapngAnnotator, error) {
	a := &PcapngAnnotator{w: bufio.NewWriterSize(w, 1<<20), ifaces: map[int]uint32{}, pibs: map[ingest.ProcKey]uint32{}, procs: procs}
	body := []byte{}
	body = binary.LittleEndian.AppendUint32(body, 0x1A2B3C4D)
	body = binary.LittleEndian.AppendUint16(body, 1)
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint64(body, ^uint64(0))
	body = appendOpt(body, 4, []byte(tool)) // shb_userappl
	body = appendOpt(body, optEnd, nil)
	return a, a.block(ngSHB, body)
}

func appendOpt(b []byte, code uint16, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (a *PcapngAnnotator) block(typ uint32, body []byte) error {
	n := uint32(12 + len(body))
	var h [8]byte
	binary.LittleEndian.PutUint32(h[0:], typ)
	binary.LittleEndian.PutUint32(h[4:], n)
	a.w.Write(h[:])
	a.w.Write(body)
	_, err := a.w.Write(h[4:8])
	return err
}

func (a *PcapngAnnotator) idb(idx int, ifs []ingest.Interface) (uint32, error) {
	if id, ok := a.ifaces[idx]; ok {
		return id, nil
	}
	var it ingest.Interface
	if idx < len(ifs) {
		it = ifs[idx]
	}
	body := binary.LittleEndian.AppendUint16(nil, uint16(it.Link))
	body = binary.LittleEndian.AppendUint16(body, 0)
	body = binary.LittleEndian.AppendUint32(body, uint32(max(it.SnapLen, 0)))
	if it.Name != "" {
		body = appendOpt(body, 2, []byte(it.Name))
	}
	body = appendOpt(body, 9, []byte{9}) // if_tsresol: nanoseconds
	body = appendOpt(body, optEnd, nil)
	if err := a.block(ngIDB, body); err != nil {
		return 0, err
	}
	id := a.nIDB
	a.ifaces[idx] = id
	a.nIDB++
	return id, nil
}

func (a *PcapngAnnotator) pib(k ingest.ProcKey, comm string) (uint32, error) {
	if id, ok := a.pibs[k]; ok {
		return id, nil
	}
	body := binary.LittleEndian.AppendUint32(nil, uint32(k.PID))
	body = appendOpt(body, optPIBName, []byte(comm))
	body = appendOpt(body, optEnd, nil)
	if err := a.block(ngDPIB, body); err != nil {
		return 0, err
	}
	id := a.nPIB
	a.pibs[k] = id
	a.nPIB++
	return id, nil
}

// Comment returns the annotation text for an owner.
func (a *PcapngAnnotator) Comment(o analyze.Attribution) string {
	if !o.Attributed() {
		return "unattributed: " + string(o.Cause)
	}
	s := fmt.Sprintf("pid=%d comm=%s", o.Proc.PID, o.Comm)
	if p, ok := a.procs[o.Proc]; ok && p.Exe != "" {
		s += " exe=" + p.Exe
	}
	if len(o.Holders) > 1 {
		s += fmt.Sprintf(" holders=%d", len(o.Holders))
	}
	return s + fmt.Sprintf(" method=%s confidence=%s", o.Method, o.Confidence)
}

// WritePacket writes p (its Frame) with the owner's annotation and its
// direction (in epb_flags, when known).
func (a *PcapngAnnotator) WritePacket(p *ingest.Packet, ifs []ingest.Interface, owner analyze.Attribution, dir analyze.PacketDir) error {
	id, err := a.idb(p.Iface, ifs)
	if err != nil {
		return err
	}
	var pibIdx uint32
	attributed := owner.Attributed()
	if attributed {
		if pibIdx, err = a.pib(owner.Proc, owner.Comm); err != nil {
			return err
		}
	}
	b := a.buf[:0]
	ts := uint64(p.TS)
	b = binary.LittleEndian.AppendUint32(b, id)
	b = binary.LittleEndian.AppendUint32(b, uint32(ts>>32))
	b = binary.LittleEndian.AppendUint32(b, uint32(ts))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.Frame)))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.WireLen))
	b = append(b, p.Frame...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	b = appendOpt(b, optComment, []byte(a.Comment(owner)))
	switch dir {
	case analyze.PacketOut:
		b = appendOpt(b, optEpbFlag, binary.LittleEndian.AppendUint32(nil, 2))
	case analyze.PacketIn:
		b = appendOpt(b, optEpbFlag, binary.LittleEndian.AppendUint32(nil, 1))
	}
	if attributed {
		b = appendOpt(b, optPIBIdx, binary.LittleEndian.AppendUint32(nil, pibIdx))
	}
	b = appendOpt(b, optEnd, nil)
	a.buf = b
	return a.block(ngEPB, b)
}

// Close flushes the writer (it does not close the underlying writer).
func (a *PcapngAnnotator) Close() error { return a.w.Flush() }

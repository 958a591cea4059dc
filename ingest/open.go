package ingest

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Sizes that bound the readers.
const (
	// readBufSize is the size of the buffer every capture is read through.
	readBufSize = 1 << 20
	// maxRecordLen is the largest pcap record (caplen) accepted; libpcap's
	// MAXIMUM_SNAPLEN.
	maxRecordLen = 256 << 10
	// maxBlockLen is the largest pcapng block accepted (libpcap's limit).
	maxBlockLen = 16 << 20
)

// Magic numbers, as read big-endian from the first four bytes.
const (
	magicPcapMicro    = 0xa1b2c3d4
	magicPcapNano     = 0xa1b23c4d
	magicPcapModified = 0xa1b2cd34 // Alexey Kuznetzov's patched libpcap
	magicPcapMicroSw  = 0xd4c3b2a1
	magicPcapNanoSw   = 0x4d3cb2a1
	magicPcapModSw    = 0x34cdb2a1
	magicPcapng       = 0x0a0d0d0a
	// Compressed captures, as Wireshark reads them: a zstd frame, an LZ4
	// frame (gzip is told by its first two bytes).
	magicZstd = 0x28b52ffd
	magicLZ4  = 0x04224d18
)

// OpenCapture opens one pcap or pcapng file, optionally compressed (gzip,
// zstd or LZ4), sniffing the format from its magic number. The returned
// source owns the file and closes it in Close.
func OpenCapture(path string, opts Options) (PacketSource, error) {
	return openCapture(path, opts, readBufSize)
}

func openCapture(path string, opts Options, bufSize int) (captureReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	src, err := newReader(f, path, opts, bufSize)
	if err != nil {
		f.Close()
		return nil, err
	}
	src.setCloser(f)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		src.setSize(fi.Size())
	}
	return src, nil
}

// mergeBufBudget caps the read buffers of all files of one merge: many
// rotated files get smaller buffers (at least 64 KiB each).
const mergeBufBudget = 64 << 20

// OpenCaptures opens several capture files and merges them into one source
// in timestamp order (ties go to the earlier file in paths). Interface
// indices are global across the files, in order of first appearance. One
// path is the same as OpenCapture. A file that cannot be read at all (not
// there, not a capture, cut inside its header) is skipped with a diagnostic
// and the others are merged — a bundle copied off a host just after its
// capture rotated ends with an empty file — unless every file is like that
// or Options.Strict is set: then the error is returned.
// Each file is open only while the merge reads it (see lazyFile), so the
// number of files is bounded neither by descriptors nor by memory.
func OpenCaptures(paths []string, opts Options) (PacketSource, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("open captures: no files: %w", ErrUnrecognized)
	}
	if len(paths) == 1 {
		return OpenCapture(paths[0], opts)
	}
	bufSize := max(64<<10, min(readBufSize, mergeBufBudget/len(paths)))
	srcs := make([]PacketSource, 0, len(paths))
	// One decoder for the merged stream. The probe decodes the first
	// packet with a decoder of its own, so the shared one sees each frame
	// once, in the merged order (exactly so for files that follow each
	// other in time, as rotated captures do: a file is opened when the
	// merge reaches its first packet).
	dec := NewDecoder()
	failed := 0
	for _, p := range paths {
		s, err := probeFile(p, opts, bufSize)
		if err != nil {
			failed++
			if opts.Strict || failed == len(paths) {
				for _, o := range srcs {
					o.Close()
				}
				return nil, err
			}
			srcs = append(srcs, failedFile{Diagnostic{File: p, Kind: DiagSkipped, Where: "file", Offset: -1, Count: 1,
				Msg: "not read: " + err.Error(), Err: err}})
			continue
		}
		s.opts.decoder = dec
		srcs = append(srcs, s)
	}
	return Merge(srcs...), nil
}

// NewReader reads a pcap or pcapng capture (optionally gzip-compressed) from
// r. name is used in errors and Diagnostics. Close does not close r.
func NewReader(r io.Reader, name string, opts Options) (PacketSource, error) {
	return newReader(r, name, opts, readBufSize)
}

// captureReader is what pcap and pcapng readers have in common.
type captureReader interface {
	PacketSource
	setCloser(c io.Closer)
	setSize(n int64)
}

func newReader(r io.Reader, name string, opts Options, bufSize int) (captureReader, error) {
	decompBufSize := bufSize // decompressed data is larger than its input
	if l, ok := r.(interface{ Len() int }); ok && l.Len() < bufSize {
		// In-memory input (tests, fuzzing): no buffer larger than it.
		bufSize = max(l.Len(), 64)
	}
	br := newByteReader(r, bufSize)
	var closers []io.Closer // the decompressor's, when it holds resources
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	head, ok := br.peek(4)
	if !ok {
		if br.err != nil && !isEOF(br.err) {
			return nil, fmt.Errorf("read %s: %w", name, br.err)
		}
		return nil, fmt.Errorf("read %s: file too short for a magic number (%d bytes) %q: %w",
			name, len(head), head, ErrTruncated)
	}
	// A compressed capture (gzip, zstd or LZ4 frames, as Wireshark reads
	// them) is read through its decompressor.
	codec := compression(head)
	var inner io.Reader
	switch codec {
	case "gzip":
		gz, err := gzip.NewReader(br)
		if err != nil {
			if isEOF(err) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("read %s: gzip header: %w", name, ErrTruncated)
			}
			return nil, fmt.Errorf("read %s: gzip header: %v: %w", name, err, ErrMalformed)
		}
		// gz is not closed: gzip.Reader.Close holds no resource and only
		// returns the stream's error, which reading has already reported
		// (a cut stream is a truncation diagnostic); closing a file whose
		// stream is cut, before or after reading it all, is no error.
		inner = gz
	case "zstd":
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow*2))
		if err != nil {
			return nil, fmt.Errorf("read %s: zstd: %v: %w", name, err, ErrMalformed)
		}
		closers = append(closers, zr.IOReadCloser()) // frees the decoder; never fails
		inner = zr
	case "lz4":
		inner = lz4.NewReader(br)
	}
	if inner != nil {
		br = newByteReader(inner, decompBufSize)
		br.codec = codec
		head, ok = br.peek(4)
		if !ok {
			closeAll()
			if errors.Is(br.err, zstd.ErrWindowSizeExceeded) {
				return nil, fmt.Errorf("read %s: zstd: the frame's window is above %d MiB (zstd --long=28 or more; tshark refuses it too): decompress it with zstd -d --long=31 first: %w",
					name, zstdMaxWindow>>20, ErrMalformed)
			}
			if br.err != nil && !isEOF(br.err) && !errors.Is(br.err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("read %s: %s: %v: %w", name, codec, br.err, ErrMalformed)
			}
			return nil, fmt.Errorf("read %s: %s content too short for a magic number %q: %w",
				name, codec, head, ErrTruncated)
		}
	}
	dec := opts.decoder
	if dec == nil {
		dec = NewDecoder()
	}
	base := fileBase{name: name, br: br, opts: opts, dec: dec, diags: newDiagFolder(name, opts.MaxDiagnostics), closers: closers}
	base.stats.Files = 1
	switch m := be32(head); m {
	case magicPcapMicro, magicPcapNano, magicPcapModified, magicPcapMicroSw, magicPcapNanoSw, magicPcapModSw:
		return newPcapReader(base)
	case magicPcapng:
		return newPcapngReader(base)
	default:
		closeAll()
		if codec != "" {
			return nil, fmt.Errorf("read %s: %s content: magic %q is not pcap or pcapng (for another capture format, convert it first: editcap -F pcapng %s out.pcapng): %w",
				name, codec, head, name, ErrUnrecognized)
		}
		return nil, fmt.Errorf("read %s: magic %q is not pcap, pcapng, gzip, zstd or lz4 (for another capture format, convert it first: editcap -F pcapng %s out.pcapng): %w",
			name, head, name, ErrUnrecognized)
	}
}

// zstdMaxWindow bounds a zstd frame's window (zstd --long=27 and below,
// which covers every level's default): a hostile frame header cannot make
// the reader allocate more.
const zstdMaxWindow = 128 << 20

// compression names the compression a file starting with head (4 bytes)
// is in: "gzip", "zstd", "lz4", or "" for none of them.
func compression(head []byte) string {
	switch {
	case head[0] == 0x1f && head[1] == 0x8b:
		return "gzip"
	case be32(head) == magicZstd:
		return "zstd"
	case be32(head) == magicLZ4:
		return "lz4"
	}
	return ""
}

// MayHoldPcapng reports whether a file starting with head is pcapng, or is
// compressed in a way OpenCapture reads (gzip, zstd, LZ4) and so may hold
// pcapng once decompressed.
func MayHoldPcapng(head [4]byte) bool {
	return be32(head[:]) == magicPcapng || compression(head[:]) != ""
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func isEOF(err error) bool { return err == io.EOF }

// byteReader is a forward-only reader over one big buffer. peek returns
// slices into the buffer that stay valid until the next peek that has to
// refill it. Read (for gzip below it) bypasses the buffer after draining.
type byteReader struct {
	src   io.Reader
	buf   []byte
	r, w  int
	off   int64  // input offset of buf[r]
	err   error  // sticky error from src (io.EOF at the end)
	codec string // src is a decompressor ("gzip", "zstd", "lz4"): its errors are data errors
}

func newByteReader(src io.Reader, size int) *byteReader {
	return &byteReader{src: src, buf: make([]byte, size)}
}

// avail returns how many bytes are buffered.
func (b *byteReader) avail() int { return b.w - b.r }

// peek returns the next n bytes without consuming them. ok is false when
// fewer than n bytes remain before the end or an error; the bytes that are
// there are returned anyway (see b.err). n must be ≤ maxBlockLen+64.
func (b *byteReader) peek(n int) (data []byte, ok bool) {
	if b.w-b.r >= n {
		return b.buf[b.r : b.r+n], true
	}
	b.fill(n)
	if b.w-b.r >= n {
		return b.buf[b.r : b.r+n], true
	}
	return b.buf[b.r:b.w], false
}

func (b *byteReader) fill(n int) {
	if b.r+n > len(b.buf) && b.r > 0 {
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	zeros := 0
	for b.w-b.r < n && b.err == nil {
		if b.w == len(b.buf) {
			// Only for a record longer than the buffer. Grow as the data
			// arrives, so that a length field claiming megabytes at the
			// end of a short file costs no big allocation.
			nb := make([]byte, min(2*len(b.buf), max(n, len(b.buf)+readBufSize)))
			b.w = copy(nb, b.buf[b.r:b.w])
			b.r = 0
			b.buf = nb
		}
		m, err := b.src.Read(b.buf[b.w:])
		if m < 0 || m > len(b.buf)-b.w {
			m, err = 0, errors.New("reader returned an invalid count")
		}
		b.w += m
		switch {
		case err != nil:
			b.err = err
		case m == 0:
			// Guard against readers that return 0, nil forever.
			if zeros++; zeros > 100 {
				b.err = io.ErrNoProgress
			}
		}
	}
}

// discard consumes n buffered bytes (n ≤ avail()).
func (b *byteReader) discard(n int) {
	b.r += n
	b.off += int64(n)
}

// skip consumes n bytes, reading past the buffer when needed. It returns
// how many bytes were actually skipped.
func (b *byteReader) skip(n int64) int64 {
	var done int64
	for done < n {
		if b.r == b.w {
			b.fill(1)
			if b.r == b.w {
				break
			}
		}
		k := int(min(n-done, int64(b.w-b.r)))
		b.discard(k)
		done += int64(k)
	}
	return done
}

// Read implements io.Reader so that gzip can read the compressed bytes
// through the sniffing buffer.
func (b *byteReader) Read(p []byte) (int, error) {
	if b.r == b.w {
		if b.err != nil {
			return 0, b.err
		}
		b.fill(1)
		if b.r == b.w {
			return 0, b.err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.discard(n)
	return n, nil
}

// ReadByte implements io.ByteReader so that flate does not wrap b in its
// own bufio.Reader.
func (b *byteReader) ReadByte() (byte, error) {
	if b.r == b.w {
		if _, ok := b.peek(1); !ok {
			if b.err == nil {
				return 0, io.EOF
			}
			return 0, b.err
		}
	}
	c := b.buf[b.r]
	b.discard(1)
	return c, nil
}

var _ io.ByteReader = (*byteReader)(nil)

// endError classifies b.err after a short peek at a record boundary or in a
// record: clean EOF, truncated (EOF inside, or a cut gzip stream), a gzip
// data error (malformed tail) or a real I/O error (fatal).
type endKind int

const (
	endClean endKind = iota
	endTruncated
	endCorrupt
	endIOError
)

func (b *byteReader) endKind(inRecord bool) endKind {
	switch {
	case b.err == nil || b.err == io.EOF:
		if inRecord {
			return endTruncated
		}
		return endClean
	case errors.Is(b.err, io.ErrUnexpectedEOF):
		return endTruncated
	}
	if b.codec != "" {
		return endCorrupt
	}
	return endIOError
}

// fileBase is the state shared by the pcap and pcapng readers: the buffer,
// the decoder, stats, interfaces and diagnostics of one file.
type fileBase struct {
	name    string
	br      *byteReader
	opts    Options
	dec     *Decoder
	diags   *diagFolder
	stats   SourceStats
	ifaces  []Interface
	closers []io.Closer
	err     error // sticky: io.EOF or a fatal error
	size    int64 // input size when known (a regular file), else 0
	recNo   int64 // 1-based number of the current packet record
	// notPacket: the current record is not a packet (pcapng non-packet
	// blocks); Where then gives only the offset.
	notPacket bool
	// walkOnly skips frame decoding (benchmarks of the record walk).
	walkOnly bool
}

func (f *fileBase) setCloser(c io.Closer) { f.closers = append(f.closers, c) }

func (f *fileBase) setSize(n int64) { f.size = n }

// Interfaces implements PacketSource.
func (f *fileBase) Interfaces() []Interface {
	out := make([]Interface, len(f.ifaces))
	copy(out, f.ifaces)
	return out
}

// Diagnostics implements PacketSource.
func (f *fileBase) Diagnostics() []Diagnostic { return f.diags.diagnostics() }

// Stats implements PacketSource.
func (f *fileBase) Stats() SourceStats { return f.stats }

// Close implements PacketSource. It closes the gzip stream and the file
// opened by OpenCapture, never a reader passed to NewReader.
func (f *fileBase) Close() error {
	var first error
	for i := len(f.closers) - 1; i >= 0; i-- {
		if err := f.closers[i].Close(); err != nil && first == nil {
			first = err
		}
	}
	f.closers = nil
	if f.err == nil {
		f.err = io.EOF
	}
	return first
}

func (f *fileBase) where(off int64) string {
	if f.notPacket {
		return fmt.Sprintf("offset %d", off)
	}
	return fmt.Sprintf("packet %d (offset %d)", f.recNo, off)
}

// problem records a record-level problem. Under Options.Strict it returns
// the fatal error the caller must return (and makes it sticky).
func (f *fileBase) problem(class string, kind DiagKind, off, skipped int64, msg string) error {
	f.stats.SkippedBytes += skipped
	f.diags.add(class, kind, f.where(off), off, skipped, msg, nil)
	if f.opts.Strict && kind != DiagInfo && kind != DiagTruncated {
		sentinel := ErrMalformed
		f.err = fmt.Errorf("read %s: %s: %s: %w", f.name, f.where(off), msg, sentinel)
		return f.err
	}
	return nil
}

// info records an informational diagnostic (never fatal).
// maxWireLen is the largest original frame length counted. Wireshark keeps
// a frame's length in a signed 32-bit integer and counts a larger one as
// this (tshark's frame.len for an original length of 0xfffffff0).
const maxWireLen = math.MaxInt32

// wireLen returns a record's original length as counted: above maxWireLen,
// maxWireLen, with an info diagnostic.
func (f *fileBase) wireLen(wire uint32, off int64) uint32 {
	if wire <= maxWireLen {
		return wire
	}
	f.info("wirelen-huge", off, fmt.Sprintf("original length %d is above 2^31-1; counted as %d, as Wireshark does", wire, maxWireLen))
	return maxWireLen
}

func (f *fileBase) info(class string, off int64, msg string) {
	f.diags.add(class, DiagInfo, f.where(off), off, 0, msg, nil)
}

// finish ends the file at the current position: b.err decides whether it
// ended cleanly, was cut short (partial bytes of a record are counted as
// skipped) or failed. inRecord says a record had started.
func (f *fileBase) finish(inRecord bool, partial int, what string) error {
	off := f.br.off
	switch f.br.endKind(inRecord || partial > 0) {
	case endClean:
		f.err = io.EOF
	case endTruncated:
		f.stats.SkippedBytes += int64(partial)
		msg := fmt.Sprintf("capture cut short inside %s (%d bytes of it present)", what, partial)
		if f.br.codec != "" && errors.Is(f.br.err, io.ErrUnexpectedEOF) {
			msg = fmt.Sprintf("%s stream cut short inside %s (%d bytes of it present)", f.br.codec, what, partial)
		}
		f.diags.add("truncated", DiagTruncated, f.where(off), off, int64(partial), msg, ErrTruncated)
		f.err = io.EOF
	case endCorrupt:
		f.stats.SkippedBytes += int64(partial)
		f.diags.add(f.br.codec+"-corrupt", DiagMalformed, f.where(off), off, int64(partial),
			fmt.Sprintf("%s stream corrupt: %v; rest of file skipped", f.br.codec, f.br.err), f.br.err)
		f.err = io.EOF
		if f.opts.Strict {
			f.err = fmt.Errorf("read %s: offset %d: %s: %v: %w", f.name, off, f.br.codec, f.br.err, ErrMalformed)
		}
	default:
		f.err = fmt.Errorf("read %s: offset %d: %w", f.name, off, f.br.err)
	}
	return f.err
}

// malformedTail stops reading: the rest of the input cannot be trusted.
func (f *fileBase) malformedTail(off int64, msg string) error {
	// Count the bytes given up: from the file size when known (no need to
	// read gigabytes of garbage), else by reading them.
	var skipped int64
	if f.size > 0 && f.br.codec == "" {
		skipped = max(0, f.size-off)
	} else {
		// What was read past off already (the block's header), then the rest.
		skipped = max(0, f.br.off-off) + f.br.skip(1<<62)
	}
	f.stats.SkippedBytes += skipped
	f.diags.add("malformed-tail", DiagMalformed, f.where(off), off, skipped,
		fmt.Sprintf("%s; stopped reading, %d bytes skipped", msg, skipped), ErrMalformed)
	f.err = io.EOF
	if f.opts.Strict {
		f.err = fmt.Errorf("read %s: %s: %s: %w", f.name, f.where(off), msg, ErrMalformed)
	}
	return f.err
}

// emit decodes frame into p (whose capture fields the caller has set) and
// counts it.
func (f *fileBase) emit(p *Packet, link LinkType, frame []byte, off int64) error {
	if f.walkOnly {
		f.stats.Packets++
		return nil
	}
	dir := p.Dir
	p.Frame = frame
	if err := f.dec.Decode(link, frame, p); err != nil { // Decode recovers its own panics
		switch p.Kind {
		case KindUnsupportedLink:
			f.stats.Unsupported++
			if e := f.problem(fmt.Sprintf("link-%d", link), DiagUnsupported, off, 0,
				fmt.Sprintf("link type %d not decoded: %v", link, err)); e != nil {
				return e
			}
		default:
			p.Kind = KindMalformed
			f.stats.Malformed++
			if e := f.problem("frame-malformed", DiagMalformed, off, 0, fmt.Sprintf("frame not decoded: %v", err)); e != nil {
				return e
			}
		}
	} else if p.Kind == KindNonIP {
		f.stats.NonIP++
	} else if p.Kind == KindMalformed {
		f.stats.Malformed++
	} else if p.Kind == KindUnsupportedLink {
		f.stats.Unsupported++
	}
	if dir != DirUnknown {
		p.Dir = dir // the capture's own record wins over the link header
	}
	f.stats.Packets++
	f.stats.Bytes += int64(p.WireLen)
	f.stats.CapturedBytes += int64(p.CapLen)
	if p.Truncated {
		f.stats.Truncated++
	}
	return nil
}

// endian reads integers in a file's byte order without an interface call.
type endian struct{ be bool }

func (e endian) u16(b []byte) uint16 {
	if e.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (e endian) u32(b []byte) uint32 {
	if e.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (e endian) u64(b []byte) uint64 {
	if e.be {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

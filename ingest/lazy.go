package ingest

import (
	"errors"
	"fmt"
	"io"
	"syscall"
)

// lazyFile is one capture file of a merge (OpenCaptures), open only while
// the merge needs it: from when the merged stream reaches the file's first
// packet to the file's end. Before that it stands for itself with what a
// first look found (the first packet's time, the interfaces described
// before it); at its end it keeps its interfaces, diagnostics and counters
// and lets the file and its read buffer go. A day of rotated captures
// (tcpdump -G, -C) then holds one or two files open at a time instead of
// thousands of descriptors and buffers.
type lazyFile struct {
	path    string
	opts    Options
	bufSize int
	src     captureReader // open, or nil
	// first is the first packet's TS; pending: the file has not been
	// opened for reading yet (only probed).
	first   int64
	pending bool
	// ifaces, diags and stats stand for the file while it is closed:
	// pending, what the probe saw before the first packet; done, all.
	ifaces []Interface
	diags  []Diagnostic
	stats  SourceStats
	done   bool
	err    error // sticky: io.EOF or the error that ended the file
}

// probeFile opens path, reads its first packet and closes it again. A file
// without packets (or whose first read fails) is read to its end at once.
func probeFile(path string, opts Options, bufSize int) (*lazyFile, error) {
	src, err := openCapture(path, opts, bufSize)
	if err != nil {
		return nil, err
	}
	lf := &lazyFile{path: path, opts: opts, bufSize: bufSize}
	var p Packet
	if err := src.Next(&p); err != nil {
		lf.src = src
		lf.end(err)
		return lf, nil
	}
	lf.first, lf.pending = p.TS, true
	lf.ifaces = src.Interfaces()
	lf.stats = SourceStats{Files: 1}
	return lf, src.Close()
}

// firstTS reports the first packet's time while the file is still pending.
func (lf *lazyFile) firstTS() (int64, bool) { return lf.first, lf.pending }

// end records the file's final state and closes it.
func (lf *lazyFile) end(err error) {
	lf.ifaces, lf.diags, lf.stats = lf.src.Interfaces(), lf.src.Diagnostics(), lf.src.Stats()
	if cerr := lf.src.Close(); cerr != nil && errors.Is(err, io.EOF) {
		err = fmt.Errorf("close %s: %w", lf.path, cerr)
	}
	lf.src, lf.done, lf.err = nil, true, err
}

// Next implements PacketSource.
func (lf *lazyFile) Next(p *Packet) error {
	if lf.err != nil {
		return lf.err
	}
	if lf.src == nil {
		src, err := openCapture(lf.path, lf.opts, lf.bufSize)
		if err != nil {
			if errors.Is(err, syscall.EMFILE) {
				err = fmt.Errorf("%w (files whose times overlap are read together; raise the limit with ulimit -n)", err)
			}
			lf.err = fmt.Errorf("reopen capture: %w", err)
			return lf.err
		}
		lf.src, lf.pending = src, false
	}
	if err := lf.src.Next(p); err != nil {
		lf.end(err)
		return err
	}
	return nil
}

// Interfaces implements PacketSource.
func (lf *lazyFile) Interfaces() []Interface {
	if lf.src != nil {
		return lf.src.Interfaces()
	}
	return append([]Interface(nil), lf.ifaces...)
}

// Diagnostics implements PacketSource.
func (lf *lazyFile) Diagnostics() []Diagnostic {
	if lf.src != nil {
		return lf.src.Diagnostics()
	}
	return append([]Diagnostic(nil), lf.diags...)
}

// Stats implements PacketSource.
func (lf *lazyFile) Stats() SourceStats {
	if lf.src != nil {
		return lf.src.Stats()
	}
	return lf.stats
}

// Close implements PacketSource.
func (lf *lazyFile) Close() error {
	if lf.src == nil {
		return nil
	}
	err := lf.src.Close()
	lf.src = nil
	if lf.err == nil {
		lf.err = io.EOF
	}
	return err
}

// failedFile stands for a capture file of a merge that could not be read at
// all: its error is its diagnostic, and it has no packets.
type failedFile struct{ diag Diagnostic }

func (f failedFile) Next(*Packet) error        { return io.EOF }
func (f failedFile) Interfaces() []Interface   { return nil }
func (f failedFile) Diagnostics() []Diagnostic { return []Diagnostic{f.diag} }
func (f failedFile) Stats() SourceStats        { return SourceStats{} }
func (f failedFile) Close() error              { return nil }

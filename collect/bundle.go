package collect

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowblame/flowblame/ingest"
	"golang.org/x/sys/unix"
)

// jsonlWriter appends JSON lines to a file through a buffer.
type jsonlWriter struct {
	f  *os.File
	bw *bufio.Writer
	n  int64
}

func createJSONL(path string) (*jsonlWriter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return &jsonlWriter{f: f, bw: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (w *jsonlWriter) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	n, err := w.bw.Write(b)
	w.n += int64(n)
	return err
}

func (w *jsonlWriter) flush() error { return w.bw.Flush() }

func (w *jsonlWriter) close() error {
	err := w.bw.Flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// records holds the bundle's JSON-lines files. It is the sockwatch Sink:
// Socket and Process may be called from one goroutine while another
// flushes.
type records struct {
	mu                                sync.Mutex
	sockets, processes, counters, nat *jsonlWriter
	nSockets, nProcesses, nNAT        int64
}

func openRecords(dir string) (*records, error) {
	r := &records{}
	var err error
	if r.sockets, err = createJSONL(filepath.Join(dir, ingest.SocketsFile)); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if r.processes, err = createJSONL(filepath.Join(dir, ingest.ProcessesFile)); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if r.counters, err = createJSONL(filepath.Join(dir, ingest.CountersFile)); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if r.nat, err = createJSONL(filepath.Join(dir, ingest.ConntrackFile)); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	return r, nil
}

// Socket writes one sockets.jsonl line.
func (r *records) Socket(s ingest.SocketRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nSockets++
	return r.sockets.write(s)
}

// Process writes one processes.jsonl line.
func (r *records) Process(p ingest.ProcessInfo) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nProcesses++
	return r.processes.write(p)
}

// natRecord writes one conntrack.jsonl line.
func (r *records) natRecord(n ingest.NATRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nNAT++
	return r.nat.write(n)
}

func (r *records) counter(c ingest.CounterSample) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counters.write(c)
}

// flush pushes all buffers to the files and returns their total size.
func (r *records) flush() (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := errors.Join(r.sockets.flush(), r.processes.flush(), r.counters.flush(), r.nat.flush())
	return r.sockets.n + r.processes.n + r.counters.n + r.nat.n, err
}

func (r *records) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.sockets.close(), r.processes.close(), r.counters.close(), r.nat.close())
}

// errMaxSize says the bundle cannot stay under --max-size even after
// deleting every older capture file.
var errMaxSize = errors.New("bundle reached --max-size")

// captureSet writes the rotated capture/NNNNN.pcapng files and enforces the
// bundle size cap by deleting the oldest capture files.
type captureSet struct {
	mu         sync.Mutex
	dir        string // bundle directory
	app, os    string
	ifaces     []PcapngIface
	rotateSize int64
	maxSize    int64        // 0 = no cap
	other      atomic.Int64 // bytes of the bundle's other files
	stats      func(i int) PcapngStats
	start      time.Time

	seq         int
	f           *os.File
	pw          *PcapngWriter
	name        string
	closed      []capFile
	closedBytes int64
	dropped     []string
	packets     int64
}

type capFile struct {
	name string
	size int64
}

// captureFileName is the bundle-relative name of capture file seq.
func captureFileName(seq int) string {
	return fmt.Sprintf("%s/%05d.pcapng", ingest.CaptureDir, seq)
}

// open starts the next capture file. Caller holds mu (or is single).
func (c *captureSet) open() error {
	c.name = captureFileName(c.seq)
	c.seq++
	f, err := os.OpenFile(filepath.Join(c.dir, c.name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create capture file: %w", err)
	}
	pw, err := NewPcapngWriter(f, c.app, c.os, c.ifaces)
	if err != nil {
		f.Close()
		return err
	}
	c.f, c.pw = f, pw
	return nil
}

// closeCurrent writes the interface statistics blocks, flushes and closes
// the current file.
func (c *captureSet) closeCurrent(now time.Time) error {
	if c.pw == nil {
		return nil
	}
	var errs []error
	for i := range c.ifaces {
		st := PcapngStats{Start: c.start, End: now}
		if c.stats != nil {
			st = c.stats(i)
			st.Start, st.End = c.start, now
		}
		errs = append(errs, c.pw.WriteStats(i, now, st))
	}
	errs = append(errs, c.pw.Flush(), c.f.Close())
	c.closed = append(c.closed, capFile{c.name, c.pw.Size()})
	c.closedBytes += c.pw.Size()
	c.pw, c.f = nil, nil
	return errors.Join(errs...)
}

// addIface adds an interface (the next interface id) to the current and
// later capture files. The caller holds c.mu.
func (c *captureSet) addIface(pi PcapngIface) error {
	c.ifaces = append(c.ifaces, pi)
	if c.pw == nil {
		return nil
	}
	return c.pw.addInterface(pi)
}

// writeLocked writes one frame (time in nanoseconds since the epoch) to
// the current capture file, rotating it and enforcing MaxSize first. The
// caller holds c.mu: a capture ring writes a whole block under one lock.
// It returns errMaxSize when the cap cannot be honoured.
func (c *captureSet) writeLocked(iface int, ts int64, wire int, data []byte, flags uint32) error {
	if c.pw == nil {
		return errMaxSize
	}
	if c.pw.Size() >= c.rotateSize {
		if err := c.closeCurrent(time.Unix(0, ts)); err != nil {
			return err
		}
		if err := c.open(); err != nil {
			return err
		}
	}
	if c.maxSize > 0 {
		need := int64(32 + len(data) + 4)
		for c.closedBytes+c.pw.Size()+c.other.Load()+need > c.maxSize && len(c.closed) > 0 {
			old := c.closed[0]
			if err := os.Remove(filepath.Join(c.dir, old.name)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("drop capture file for --max-size: %w", err)
			}
			c.closed = c.closed[1:]
			c.closedBytes -= old.size
			c.dropped = append(c.dropped, old.name)
		}
		if c.closedBytes+c.pw.Size()+c.other.Load()+need > c.maxSize {
			return errMaxSize
		}
	}
	c.packets++
	return c.pw.writePacketNs(iface, ts, wire, data, flags)
}

// flush pushes buffered packets to the current file (once a second, so a
// SIGKILL leaves a file readable up to the cut).
func (c *captureSet) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pw == nil {
		return nil
	}
	return c.pw.Flush()
}

// finish closes the current file with its statistics blocks.
func (c *captureSet) finish(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCurrent(now)
}

// effectiveRotate clamps the rotation size so that a size cap always
// leaves several files to drop: at most a quarter of the cap, at least
// 1 MiB.
func effectiveRotate(rotate, maxSize int64) int64 {
	if rotate <= 0 {
		rotate = DefaultRotateSize
	}
	if maxSize > 0 && rotate > maxSize/4 {
		rotate = maxSize / 4
	}
	return max(rotate, 1<<20)
}

// diskFree returns the bytes available to unprivileged users and the file
// system's size at path.
func diskFree(path string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// floorFor returns the free-space floor: minFree if > 0, none if < 0, else
// max(1 GiB, 5 % of the file system).
func floorFor(minFree int64, total uint64) uint64 {
	switch {
	case minFree > 0:
		return uint64(minFree)
	case minFree < 0:
		return 0
	}
	return max(1<<30, total/20)
}

// writeTarGz archives dir as out (a .tar.gz whose entries sit under one
// top-level directory named like dir, as `tar czf out dir` would make).
// The archive is written to out.tmp and renamed when complete.
func writeTarGz(dir, out string) error {
	base := filepath.Base(dir)
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	gz, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	files, err := listPaths(dir)
	if err == nil {
		for _, rel := range files {
			if err = addTarFile(tw, filepath.Join(dir, rel), base+"/"+rel); err != nil {
				break
			}
		}
	}
	err = errors.Join(err, tw.Close(), gz.Close(), bw.Flush(), f.Sync(), f.Close())
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write archive: %w", err)
	}
	return os.Rename(tmp, out)
}

// listPaths lists the regular files below dir (relative slash paths,
// manifest.json first so a streaming reader meets it early).
func listPaths(dir string) ([]string, error) {
	entries, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	out := []string{ingest.ManifestFile}
	for _, e := range entries {
		out = append(out, e.Path)
	}
	return out, nil
}

func addTarFile(tw *tar.Writer, path, name string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: st.ModTime().UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}

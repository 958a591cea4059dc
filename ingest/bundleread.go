package ingest

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Limits on what OpenBundle reads into memory.
const (
	maxManifestBytes = 64 << 20 // manifest.json
	maxJSONLine      = 1 << 20  // one line of a .jsonl file
)

// Bundle is an opened capture bundle (a directory, or a .tar.gz / .tar
// whose capture files were extracted to a temporary directory). The socket,
// process and counter files are parsed when the bundle is opened; packets
// are streamed by Packets.
type Bundle struct {
	// Path is the path OpenBundle was given.
	Path string
	// Manifest is manifest.json.
	Manifest Manifest
	// CaptureFiles are the capture files on disk (inside the bundle
	// directory or the extraction directory), sorted by name.
	CaptureFiles []string
	// Observations are the sockets of sockets.jsonl compiled by
	// CompileNative; Coverage the inventories they come from.
	Observations []SocketObservation
	Coverage     Coverage
	// Processes are processes.jsonl by (pid, start). Several lines of one
	// process are merged (later lines win; first/last seen widened).
	Processes map[ProcKey]ProcessInfo
	// Counters are counters.jsonl in file order.
	Counters []CounterSample
	// NAT are conntrack.jsonl's translated connections in file order (none
	// when the host translated nothing or the file is absent).
	NAT []NATRecord
	// Diagnostics: missing files, unparseable lines (with line numbers),
	// files the manifest lists that are absent or of another size.
	Diagnostics []Diagnostic

	opts Options
	tmp  string // extraction directory, removed by Close
}

// IfaceAddrs are one interface's link and network addresses, for deciding
// packet direction.
type IfaceAddrs struct {
	Index int
	Name  string
	// MAC is nil when the manifest has none (or it is unparseable).
	MAC   net.HardwareAddr
	Addrs []netip.Prefix
}

// OpenBundle opens a bundle directory or a .tar.gz/.tar file (recognised by
// content, not name). A missing or invalid manifest.json is fatal (wrapped
// ErrUnrecognized/ErrMalformed); everything else that is missing or broken
// becomes a Diagnostic. Tar archives are streamed once: capture files are
// extracted to a temporary directory (removed by Close), the small files are
// parsed on the fly, so memory stays bounded by the parsed records.
func OpenBundle(p string, opts Options) (*Bundle, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	b := &Bundle{Path: p, opts: opts, Processes: map[ProcKey]ProcessInfo{}}
	if st.IsDir() {
		err = b.readDir(p)
	} else {
		err = b.readTar(p)
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	sort.Strings(b.CaptureFiles)
	if len(b.CaptureFiles) == 0 {
		b.diag(CaptureDir, DiagSkipped, "", "bundle has no capture files")
	}
	return b, nil
}

// Close removes the extraction directory of a tar bundle.
func (b *Bundle) Close() error {
	if b.tmp == "" {
		return nil
	}
	err := os.RemoveAll(b.tmp)
	b.tmp = ""
	return err
}

// Packets opens the bundle's capture files as one time-ordered source.
func (b *Bundle) Packets() (PacketSource, error) {
	if len(b.CaptureFiles) == 0 {
		why := ""
		for _, d := range b.Diagnostics {
			if d.File == CaptureDir && strings.HasPrefix(d.Msg, "not read") {
				why = " (" + d.Msg + ")"
			}
		}
		return nil, fmt.Errorf("open bundle %s: no capture files%s: %w", b.Path, why, ErrUnrecognized)
	}
	return OpenCaptures(b.CaptureFiles, b.opts)
}

// Ifaces returns every interface of the manifest with its MAC and all the
// addresses it had at any time of the capture (addresses added during the
// capture included), in manifest order.
func (b *Bundle) Ifaces() []IfaceAddrs {
	var out []IfaceAddrs
	byName := map[string]int{}
	for _, in := range b.Manifest.Interfaces {
		ia := IfaceAddrs{Index: in.Index, Name: in.Name}
		if mac, err := net.ParseMAC(in.MAC); err == nil {
			ia.MAC = mac
		}
		for _, a := range in.Addrs {
			if pf, ok := parsePrefix(a); ok {
				ia.Addrs = append(ia.Addrs, pf)
			}
		}
		byName[in.Name] = len(out)
		out = append(out, ia)
	}
	for _, c := range b.Manifest.AddrChanges {
		i, ok := byName[c.Iface]
		pf, pok := parsePrefix(c.Addr)
		if !ok || !pok || c.Action != "add" || slices.Contains(out[i].Addrs, pf) {
			continue
		}
		out[i].Addrs = append(out[i].Addrs, pf)
	}
	return out
}

// LocalPrefixes returns the host's own addresses (every interface, every
// address it had during the capture) as single-address prefixes (/32, /128),
// sorted and distinct. These decide direction: a packet from one of them is
// outgoing.
func (b *Bundle) LocalPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, in := range b.Ifaces() {
		for _, a := range in.Addrs {
			out = append(out, netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
		}
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return slices.Compact(out)
}

// HostNetns returns the inode of the network namespace the bundle was
// captured in (the manifest's netns marked host), or 0 if unknown.
func (b *Bundle) HostNetns() uint64 {
	for _, n := range b.Manifest.Netns {
		if n.Host {
			return n.Inode
		}
	}
	return 0
}

// UninventoriedNetns counts the network namespaces the manifest lists
// whose sockets were never inventoried (sockets.jsonl has no snapshot of
// them).
func (b *Bundle) UninventoriedNetns() int {
	n := 0
	for _, ns := range b.Manifest.Netns {
		if len(b.Coverage.Inventories[ns.Inode]) == 0 {
			n++
		}
	}
	return n
}

// checkManifestValues reports the interface addresses and MACs of the
// manifest that cannot be parsed. They are left out of the host's own
// addresses, which decide direction (and so which packets look outgoing and
// spoofed): that must not happen silently. It also reports interface
// counters that went backwards (IfaceInfo.CounterBytes).
func (b *Bundle) checkManifestValues() {
	var bad []string
	for _, in := range b.Manifest.Interfaces {
		if in.MAC != "" {
			if _, err := net.ParseMAC(in.MAC); err != nil {
				bad = append(bad, fmt.Sprintf("%s MAC %q", in.Name, in.MAC))
			}
		}
		for _, a := range in.Addrs {
			if _, ok := parsePrefix(a); !ok {
				bad = append(bad, fmt.Sprintf("%s address %q", in.Name, a))
			}
		}
	}
	for _, c := range b.Manifest.AddrChanges {
		if _, ok := parsePrefix(c.Addr); !ok {
			bad = append(bad, fmt.Sprintf("%s address change %q", c.Iface, c.Addr))
		}
	}
	for _, in := range b.Manifest.Interfaces {
		if _, _, ok := in.CounterBytes(); !ok && in.CountersStart != nil && in.CountersEnd != nil {
			b.diag(ManifestFile, DiagInfo, "interfaces", fmt.Sprintf("%s: the interface counters went backwards during the capture (interface re-created, or a counter wrapped); they are not compared with the capture", in.Name))
		}
	}
	if len(bad) == 0 {
		return
	}
	shown := bad[:min(len(bad), 5)]
	msg := "unparseable interface values left out of the host's own addresses (direction may be wrong; give --local): " +
		strings.Join(shown, ", ")
	if len(bad) > len(shown) {
		msg += fmt.Sprintf(" and %d more", len(bad)-len(shown))
	}
	b.Diagnostics = append(b.Diagnostics, Diagnostic{File: ManifestFile, Kind: DiagMalformed, Where: "interfaces",
		Offset: -1, Count: int64(len(bad)), Msg: msg})
}

// parsePrefix accepts "198.51.100.1/24" or a bare address.
func parsePrefix(s string) (netip.Prefix, bool) {
	if pf, err := netip.ParsePrefix(s); err == nil {
		return pf, true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

func (b *Bundle) diag(file string, kind DiagKind, where, msg string) {
	b.Diagnostics = append(b.Diagnostics, Diagnostic{File: file, Kind: kind, Where: where, Offset: -1, Count: 1, Msg: msg})
}

// isCaptureName says a bundle member is a capture file.
func isCaptureName(name string) bool {
	if path.Dir(name) != CaptureDir {
		return false
	}
	n := strings.TrimSuffix(path.Base(name), ".gz")
	return strings.HasSuffix(n, ".pcapng") || strings.HasSuffix(n, ".pcap")
}

func (b *Bundle) readDir(dir string) error {
	mf, err := openMember(filepath.Join(dir, ManifestFile))
	if err != nil {
		return fmt.Errorf("open bundle %s: %w: %w", dir, ErrUnrecognized, err)
	}
	m, mdiags, err := readManifestLenient(mf)
	mf.Close()
	if err != nil {
		return fmt.Errorf("open bundle %s: %w", dir, err)
	}
	b.Manifest = *m
	b.Diagnostics = append(b.Diagnostics, mdiags...)
	present := map[string]int64{}
	var ents []fs.DirEntry
	capDir := filepath.Join(dir, CaptureDir)
	if st, err := os.Lstat(capDir); err == nil && !st.IsDir() {
		// A symlink (or anything but a directory) would make analyze read
		// captures from outside the bundle.
		present[CaptureDir] = -1
		b.Diagnostics = append(b.Diagnostics, Diagnostic{File: CaptureDir, Kind: DiagSkipped, Offset: -1, Count: 1,
			Msg: fmt.Sprintf("not read: %s is %s, not a directory", CaptureDir, FileKind(st.Mode()))})
	} else if ents, err = os.ReadDir(capDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("open bundle %s: %w", dir, err)
	}
	for _, e := range ents {
		name := CaptureDir + "/" + e.Name()
		if e.Type().IsRegular() && isCaptureName(name) {
			b.CaptureFiles = append(b.CaptureFiles, filepath.Join(dir, CaptureDir, e.Name()))
			if info, err := e.Info(); err == nil {
				present[name] = info.Size()
			}
		}
	}
	for _, name := range []string{SocketsFile, ProcessesFile, CountersFile, ConntrackFile} {
		f, err := openMember(filepath.Join(dir, name))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				// Present but unusable (permission, symlink, FIFO...): say so
				// rather than "missing"; the size check is skipped.
				present[name] = -1
				b.Diagnostics = append(b.Diagnostics, Diagnostic{File: name, Kind: DiagSkipped, Offset: -1, Count: 1,
					Msg: "not read: " + err.Error(), Err: err})
			}
			continue
		}
		if info, err := f.Stat(); err == nil {
			present[name] = info.Size()
		}
		b.readMember(name, f)
		f.Close()
	}
	present[ManifestFile] = -1
	b.finish(present)
	return nil
}

// openMember opens a bundle member of a directory bundle for reading. Only
// regular files are read: a bundle comes from an untrusted host, and a
// symlink (to /etc/shadow, /dev/zero), a FIFO or a device would make
// analyze read outside the bundle or block forever. The opened file is
// checked again, and opened without following a symlink or blocking on a
// FIFO (a member swapped between Lstat and Open).
func openMember(p string) (*os.File, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %s, not a regular file", filepath.Base(p), FileKind(st.Mode()))
	}
	f, err := os.OpenFile(p, os.O_RDONLY|memberOpenFlags, 0)
	if err != nil {
		return nil, err
	}
	if st2, err := f.Stat(); err != nil || !st2.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", filepath.Base(p))
	}
	return f, nil
}

// FileKind names the type of a file that is not what a bundle holds ("a
// symbolic link", "a named pipe", ...): the words analyze and verify use.
func FileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "a special file"
}

func (b *Bundle) readTar(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("open bundle %s: %w: %w", p, ErrMalformed, err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	present := map[string]int64{}
	haveManifest := false
members:
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(present) == 0 {
				return fmt.Errorf("open bundle %s: not a tar archive: %w: %w", p, ErrUnrecognized, err)
			}
			b.Diagnostics = append(b.Diagnostics, Diagnostic{File: p, Kind: DiagTruncated, Where: fmt.Sprintf("after %d members", len(present)),
				Offset: -1, Count: 1, Msg: "bundle archive ends early; members read so far are kept", Err: err})
			break
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := bundleMemberName(h.Name)
		if name == "" {
			continue
		}
		present[name] = h.Size
		switch {
		case name == ManifestFile:
			m, mdiags, err := readManifestLenient(tr)
			if err != nil {
				return fmt.Errorf("open bundle %s: %w", p, err)
			}
			b.Manifest, haveManifest = *m, true
			b.Diagnostics = append(b.Diagnostics, mdiags...)
		case isCaptureName(name):
			err := b.extract(name, tr)
			var cut *memberCutError
			switch {
			case errors.As(err, &cut):
				// The archive ends inside this capture (copied while it was
				// written, or a cut download): its packets so far are read.
				b.Diagnostics = append(b.Diagnostics, Diagnostic{File: name, Kind: DiagTruncated, Where: "archive", Offset: -1, Count: 1,
					Msg: fmt.Sprintf("the archive ends inside this file after %d of %d bytes (%v); the bytes read are analysed, later members are lost",
						cut.n, h.Size, cut.err), Err: err})
				present[name] = cut.n
				break members
			case errors.Is(err, fs.ErrExist):
				b.diag(name, DiagSkipped, "archive", "the archive holds this file twice; the second copy is not read")
			case err != nil:
				return fmt.Errorf("open bundle %s: extract %s: %w", p, name, err)
			}
		case name == SocketsFile || name == ProcessesFile || name == CountersFile || name == ConntrackFile:
			b.readMember(name, tr)
		}
	}
	if !haveManifest {
		return fmt.Errorf("open bundle %s: no %s: %w", p, ManifestFile, ErrUnrecognized)
	}
	present[ManifestFile] = -1
	b.finish(present)
	return nil
}

// memberCutError: the archive ended (or failed) inside a member after n of
// its bytes were extracted.
type memberCutError struct {
	n   int64
	err error
}

func (e *memberCutError) Error() string {
	return fmt.Sprintf("archive cut after %d bytes: %v", e.n, e.err)
}

func (e *memberCutError) Unwrap() error { return e.err }

// readErrs remembers a read error of the underlying reader (an archive cut
// short), as opposed to a write error.
type readErrs struct {
	r   io.Reader
	err error
}

func (r *readErrs) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// bundleMemberName maps a tar member name to its bundle-relative name: the
// bundle may be archived with a top directory ("bundle-x/manifest.json").
// Unsafe names return "".
func bundleMemberName(n string) string {
	n = strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(n, "./")), "/")
	if !fs.ValidPath(n) || n == "." {
		return ""
	}
	parts := strings.Split(n, "/")
	switch {
	case len(parts) == 1:
		return n
	case len(parts) == 2 && parts[0] == CaptureDir:
		return n
	case len(parts) >= 2 && parts[0] != CaptureDir:
		return strings.Join(parts[1:], "/")
	}
	return ""
}

func (b *Bundle) extract(name string, r io.Reader) error {
	if b.tmp == "" {
		d, err := os.MkdirTemp("", "flowblame-bundle-")
		if err != nil {
			return err
		}
		b.tmp = d
	}
	dst := filepath.Join(b.tmp, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	rr := &readErrs{r: r}
	n, err := io.Copy(f, rr)
	if err != nil && rr.err == nil {
		f.Close()
		return err
	}
	if cerr := f.Close(); cerr != nil {
		return cerr
	}
	b.CaptureFiles = append(b.CaptureFiles, dst)
	if err != nil {
		return &memberCutError{n: n, err: rr.err}
	}
	return nil
}

// finish compiles the sockets and compares the manifest's file list with
// what the bundle holds.
func (b *Bundle) finish(present map[string]int64) {
	b.checkManifestValues()
	for _, name := range []string{SocketsFile, ProcessesFile, CountersFile} {
		if _, ok := present[name]; !ok {
			msg := "file missing from bundle"
			if name == SocketsFile {
				msg += ": no socket data, traffic cannot be attributed to processes"
			}
			b.diag(name, DiagSkipped, "", msg)
		}
	}
	if len(b.Manifest.Files) > 0 { // a finished collection lists its files
		listed := map[string]bool{}
		for _, fe := range b.Manifest.Files {
			listed[fe.Path] = true
		}
		var extra []string
		for name := range present {
			if isCaptureName(name) && !listed[name] {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		for _, name := range extra {
			b.diag(name, DiagInfo, "", "capture file not listed in the manifest; analysed with the others (if it is a copy of one, its packets count twice)")
		}
	}
	for _, fe := range b.Manifest.Files {
		size, ok := present[fe.Path]
		switch {
		case !ok:
			b.diag(fe.Path, DiagSkipped, "", "listed in manifest but missing from bundle")
		case size >= 0 && size != fe.Size:
			b.diag(fe.Path, DiagMalformed, "", fmt.Sprintf("size %d, manifest says %d", size, fe.Size))
		}
	}
}

// readMember parses one of the .jsonl files.
func (b *Bundle) readMember(name string, r io.Reader) {
	switch name {
	case SocketsFile:
		nc := NewNativeCompiler()
		b.Diagnostics = append(b.Diagnostics, readSocketsJSONL(r, name, nc.Add)...)
		obs, cov, cd := nc.Finish()
		b.Observations, b.Coverage = obs, cov
		b.Diagnostics = append(b.Diagnostics, cd...)
	case ProcessesFile:
		b.Diagnostics = append(b.Diagnostics, readJSONL(r, name, func(line []byte) error {
			var p ProcessInfo
			if err := json.Unmarshal(line, &p); err != nil {
				return err
			}
			b.addProcess(p)
			return nil
		})...)
	case CountersFile:
		b.Diagnostics = append(b.Diagnostics, readJSONL(r, name, func(line []byte) error {
			var c CounterSample
			if err := json.Unmarshal(line, &c); err != nil {
				return err
			}
			b.Counters = append(b.Counters, c)
			return nil
		})...)
	case ConntrackFile:
		b.Diagnostics = append(b.Diagnostics, readJSONL(r, name, func(line []byte) error {
			var n NATRecord
			if err := json.Unmarshal(line, &n); err != nil {
				return err
			}
			for _, e := range []string{n.OrigSrc, n.OrigDst, n.ReplySrc, n.ReplyDst} {
				if _, err := ParseEndpoint(e); err != nil {
					return err
				}
			}
			b.NAT = append(b.NAT, n)
			return nil
		})...)
	}
}

func (b *Bundle) addProcess(p ProcessInfo) {
	k := p.Key()
	if old, ok := b.Processes[k]; ok {
		if old.FirstSeen != 0 && (p.FirstSeen == 0 || old.FirstSeen < p.FirstSeen) {
			p.FirstSeen = old.FirstSeen
		}
		p.LastSeen = max(p.LastSeen, old.LastSeen)
		if p.Exited == 0 {
			p.Exited = old.Exited
		}
	}
	b.Processes[k] = p
}

// ReadManifest decodes a bundle's manifest.json (reading at most 64 MiB). It
// rejects other format versions (ErrUnrecognized), undecodable JSON and file
// paths that are absolute or leave the bundle (ErrMalformed). OpenBundle,
// `flowblame verify` and the collector's own checks all use it.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	br := bufio.NewReader(io.LimitReader(r, maxManifestBytes))
	if bom, _ := br.Peek(3); bytes.Equal(bom, utf8BOM) {
		br.Discard(3) // a byte-order mark (an editor on Windows)
	}
	dec := json.NewDecoder(br)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %w", ManifestFile, ErrMalformed, err)
	}
	if err := checkFormat(&m); err != nil {
		return nil, err
	}
	for _, f := range m.Files {
		if !safeManifestPath(f.Path) {
			return nil, fmt.Errorf("%s: file path %q: %w", ManifestFile, f.Path, ErrMalformed)
		}
	}
	return &m, nil
}

// checkFormat refuses a manifest of another bundle format.
func checkFormat(m *Manifest) error {
	if m.Format != BundleFormat {
		return fmt.Errorf("%s format %d, want %d: %w", ManifestFile, m.Format, BundleFormat, ErrUnrecognized)
	}
	return nil
}

// safeManifestPath: a manifest file entry's path stays inside the bundle.
func safeManifestPath(p string) bool {
	return p != "" && !strings.HasPrefix(p, "/") && fs.ValidPath(p)
}

// utf8BOM is the byte-order mark an editor on Windows may put first.
var utf8BOM = []byte("\xef\xbb\xbf")

// readManifestLenient reads a bundle's manifest keeping what it can: when
// a field has the wrong type or an out-of-range value (a damaged or
// hand-edited manifest), the other fields are still read and the bad one is
// a diagnostic, as is a file entry with an unsafe path. Only a manifest that
// is not a JSON object, or not of this format, is an error.
func readManifestLenient(r io.Reader) (*Manifest, []Diagnostic, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", ManifestFile, err)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	var m Manifest
	var diags []Diagnostic
	if err := json.Unmarshal(data, &m); err != nil {
		var fields map[string]json.RawMessage
		if jerr := json.Unmarshal(data, &fields); jerr != nil {
			return nil, nil, fmt.Errorf("decode %s: %w: %w", ManifestFile, ErrMalformed, err)
		}
		m = Manifest{}
		v := reflect.ValueOf(&m).Elem()
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			raw, ok := fields[name]
			if !ok || name == "" || name == "-" {
				continue
			}
			if ferr := json.Unmarshal(raw, v.Field(i).Addr().Interface()); ferr != nil {
				v.Field(i).SetZero()
				diags = append(diags, Diagnostic{File: ManifestFile, Kind: DiagMalformed, Where: name, Offset: -1, Count: 1,
					Msg: fmt.Sprintf("field %q not read: %v", name, ferr), Err: ferr})
			}
		}
	}
	if err := checkFormat(&m); err != nil {
		return nil, nil, err
	}
	kept := m.Files[:0]
	for _, f := range m.Files {
		if !safeManifestPath(f.Path) {
			diags = append(diags, Diagnostic{File: ManifestFile, Kind: DiagMalformed, Where: "files", Offset: -1, Count: 1,
				Msg: fmt.Sprintf("file entry with an unsafe path %q left out", f.Path)})
			continue
		}
		kept = append(kept, f)
	}
	m.Files = kept
	return &m, diags, nil
}

// readSocketsJSONL parses sockets.jsonl, handing each record to add; bad
// lines are skipped with a Diagnostic giving the line number.
func readSocketsJSONL(r io.Reader, name string, add func(SocketRecord)) []Diagnostic {
	return readJSONL(r, name, func(line []byte) error {
		var rec SocketRecord
		if !decodeSocketRecord(line, &rec) { // the collector's own lines; anything else goes to encoding/json
			rec = SocketRecord{}
			if err := json.Unmarshal(line, &rec); err != nil {
				return err
			}
		}
		if rec.Kind == "" {
			return errors.New("record without kind")
		}
		add(rec)
		return nil
	})
}

// readJSONL calls fn for every non-blank line of r (at most maxJSONLine
// bytes; longer lines are skipped). Lines fn rejects, over-long lines and a
// last line cut without newline that fn rejects become folded Diagnostics
// with 1-based line numbers.
func readJSONL(r io.Reader, name string, fn func(line []byte) error) []Diagnostic {
	folder := newDiagFolder(name, 0)
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, n, long, err := readLine(br)
		where := "line " + strconv.Itoa(lineNo)
		start := off
		off += n
		if long {
			folder.add("long-line", DiagSkipped, where, start, n, fmt.Sprintf("line longer than %d bytes skipped", maxJSONLine), nil)
		} else if t := bytes.TrimSpace(line); len(t) > 0 {
			if ferr := fn(t); ferr != nil {
				if err == io.EOF && !bytes.HasSuffix(line, []byte("\n")) {
					folder.add("truncated", DiagTruncated, where, start, n, "last line cut short", ferr)
				} else {
					folder.add("bad-json", DiagMalformed, where, start, n, "unparseable line skipped: "+shortErr(ferr), ferr)
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				folder.add("read-error", DiagTruncated, where, off, 0, "read error: "+err.Error(), err)
			}
			return folder.diagnostics()
		}
	}
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

// readLine returns the next line (with its newline), the bytes consumed, and
// whether it was too long (then line is nil and the rest was discarded).
func readLine(br *bufio.Reader) (line []byte, n int64, long bool, err error) {
	var buf []byte
	for {
		chunk, e := br.ReadSlice('\n')
		n += int64(len(chunk))
		if !long {
			if len(buf)+len(chunk) > maxJSONLine {
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if e == bufio.ErrBufferFull {
			continue
		}
		if long {
			return nil, n, true, e
		}
		return buf, n, false, e
	}
}

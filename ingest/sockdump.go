package ingest

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
)

// Foreign socket dumps: text written by ss, lsof, netstat, Windows netstat
// -ano (+ tasklist) or PowerShell, possibly many snapshots in one file, each
// introduced by a timestamp line (see isTimestampLine). This file holds the
// format detection, the splitting into timestamp blocks and the helpers the
// per-tool parsers share; each tool has its own file (ss.go, lsof.go, ...).

// Limits on foreign dumps.
const (
	// maxDumpLine is the longest line kept; longer lines are cut (with a
	// diagnostic). ss -i lines are a few hundred bytes, but ss -p lists
	// every process holding a socket on its line, ~27 bytes each: a prefork
	// server's listener held by thousands of workers makes lines of
	// hundreds of kB. 4 MiB keeps about 150,000 holders.
	maxDumpLine = 4 << 20
	// sniffBytes is how much of a dump the format detection looks at first;
	// it looks at up to maxSniffBytes when that is only timestamp lines.
	sniffBytes    = 64 << 10
	maxSniffBytes = 4 << 20
	// maxDumpBytes bounds how much of one dump file is read.
	maxDumpBytes = 4 << 30
)

// dumpLine is one input line (without its line terminator) with its 1-based
// line number and the byte offset of its start in the (decoded) input.
type dumpLine struct {
	n   int
	off int64
	s   string
}

// dumpFormat is one supported foreign format.
type dumpFormat struct {
	name  SocketFormat
	sniff func(head []byte) bool
	parse func(lines []dumpLine, b *snapBuilder, ds *diagSink)
}

// dumpFormats is the detection order: the most distinctive shapes first.
func dumpFormats() []dumpFormat {
	return []dumpFormat{
		{FormatPowerShell, sniffPowerShell, parsePowerShellLines},
		{FormatNetstatANO, sniffNetstatANO, parseNetstatANOLines},
		{FormatLsofF, sniffLsofF, parseLsofFLines},
		{FormatLsof, sniffLsof, parseLsofLines},
		{FormatNetstat, sniffNetstat, parseNetstatLines},
		{FormatSS, sniffSS, parseSSLines},
	}
}

// DetectSocketDump names the format of a foreign socket dump from its first
// bytes (timestamp lines are ignored), or returns ErrUnrecognized.
func DetectSocketDump(head []byte) (SocketFormat, error) {
	f, err := detectDump(head)
	if err != nil {
		return "", err
	}
	return f.name, nil
}

func detectDump(head []byte) (dumpFormat, error) {
	head = stripTimestampLines(decodeText(head))
	for _, f := range dumpFormats() {
		if f.sniff(head) {
			return f, nil
		}
	}
	if lsofFPidsRE.Match(bytes.ReplaceAll(head, []byte{0}, []byte("\n"))) {
		// Process sets without names or file sets (lsof -Fpc).
		return dumpFormat{}, fmt.Errorf("detect socket dump: lsof -F output without the n field (socket addresses): take it with lsof -i -n -P -F pcuLftPnT: %w", ErrUnrecognized)
	}
	return dumpFormat{}, fmt.Errorf("detect socket dump: %w", ErrUnrecognized)
}

// stripTimestampLines removes timestamp lines and CRs so sniffers see only
// tool output.
func stripTimestampLines(head []byte) []byte {
	var out []byte
	for _, l := range strings.Split(string(head), "\n") {
		l = strings.TrimRight(l, "\r")
		if _, ok, _ := isTimestampLine(l); ok {
			continue
		}
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

// ReadSocketDumps reads foreign socket dumps (ss, lsof, netstat, Windows
// netstat -ano + tasklist, PowerShell CSV/JSON; optionally gzip-compressed
// or UTF-16) and returns their snapshots sorted by time (ties keep file
// order). A file that cannot be opened or whose format is not recognised is
// a fatal error. With opts.Strict, any record-level problem is fatal too.
func ReadSocketDumps(paths []string, opts Options) ([]SocketSnapshot, []Diagnostic, error) {
	var snaps []SocketSnapshot
	var diags []Diagnostic
	for _, p := range paths {
		s, d, err := readSocketDump(p, opts)
		diags = append(diags, d...)
		if err != nil {
			return snaps, diags, err
		}
		if opts.Strict {
			for _, x := range d {
				if x.Kind != DiagInfo {
					return snaps, diags, fmt.Errorf("read socket dump %s: %s: %s: %w", p, x.Where, x.Msg, ErrMalformed)
				}
			}
		}
		snaps = append(snaps, s...)
	}
	sort.SliceStable(snaps, func(i, j int) bool { return snaps[i].Taken < snaps[j].Taken })
	return snaps, diags, nil
}

// CompileSocketDumps is ReadSocketDumps followed by CompileSnapshots without
// holding every dump in memory: the files are parsed side by side and their
// dumps compiled as they come, merged in time order, so an hour-long ss
// loop costs the memory of its sockets' lifetimes, not of its listings.
// When a file's dumps are not in time order (a clock step), or with
// opts.Strict, it reads everything first, as ReadSocketDumps does; the
// result is the same either way.
func CompileSocketDumps(paths []string, opts Options) ([]SocketObservation, Coverage, map[ProcKey]ProcessInfo, []Diagnostic, error) {
	if !opts.Strict {
		if obs, cov, procs, diags, ok, err := compileDumpStream(paths, opts); ok {
			return obs, cov, procs, diags, err
		}
	}
	snaps, diags, err := ReadSocketDumps(paths, opts)
	if err != nil {
		return nil, Coverage{}, nil, diags, err
	}
	obs, cov, procs := CompileSnapshots(snaps)
	return obs, cov, procs, diags, nil
}

// compileDumpStream is CompileSocketDumps' streaming path; ok is false when
// a file's dumps turned out not to be in time order, or a file could not be
// read (the other path then reports it). Files are opened in the order of
// their first dump's time, each only once the merge has reached that time,
// so rotated dumps (one file after another) are read one at a time.
func compileDumpStream(paths []string, opts Options) (obs []SocketObservation, cov Coverage, procs map[ProcKey]ProcessInfo, diags []Diagnostic, ok bool, err error) {
	parse := func(p string, emit func(SocketSnapshot) bool) ([]Diagnostic, error) {
		return parseDumpFile(p, opts.MaxDiagnostics, emit)
	}
	// The first dump's time of each file (a file without dumps goes last).
	first := make([]int64, len(paths))
	for i, p := range paths {
		first[i] = math.MaxInt64
		if _, err := parse(p, func(s SocketSnapshot) bool { first[i] = s.Taken; return false }); err != nil {
			return nil, Coverage{}, nil, nil, false, nil
		}
	}
	order := make([]int, len(paths))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(first[a], first[b]) })

	type result struct {
		diags []Diagnostic
		err   error
	}
	stop := make(chan struct{})
	chans := make([]chan SocketSnapshot, len(paths))
	results := make([]result, len(paths))
	var wg sync.WaitGroup
	heads := make([]*SocketSnapshot, len(paths))
	next := func(i int) bool { // false: file i went back in time
		s, more := <-chans[i]
		if !more {
			heads[i] = nil
			return true
		}
		if heads[i] != nil && s.Taken < heads[i].Taken {
			return false
		}
		heads[i] = &s
		return true
	}
	start := func(i int) bool {
		chans[i] = make(chan SocketSnapshot, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(chans[i])
			results[i].diags, results[i].err = parse(paths[i], func(s SocketSnapshot) bool {
				select {
				case chans[i] <- s:
					return true
				case <-stop:
					return false
				}
			})
		}()
		return next(i)
	}
	c := NewSnapshotCompiler()
	opened := 0
	ok = true
	for ok {
		best := -1
		for i, h := range heads {
			if h != nil && (best < 0 || h.Taken < heads[best].Taken) {
				best = i
			}
		}
		// Open the next file once the merge has reached its first dump
		// (or nothing else is left): it may hold the earliest dump now.
		if opened < len(order) && (best < 0 || first[order[opened]] <= heads[best].Taken) {
			ok = start(order[opened])
			opened++
			continue
		}
		if best < 0 {
			break
		}
		c.Add(heads[best])
		ok = next(best)
	}
	close(stop)
	for _, ch := range chans[:] {
		if ch == nil {
			continue
		}
		for range ch { // let the readers see stop
		}
	}
	wg.Wait()
	if !ok || opened < len(paths) {
		return nil, Coverage{}, nil, nil, false, nil
	}
	for _, r := range results {
		diags = append(diags, r.diags...)
		if r.err != nil {
			return nil, Coverage{}, nil, diags, true, r.err
		}
	}
	obs, cov, procs = c.Finish()
	return obs, cov, procs, diags, true, nil
}

func readSocketDump(path string, opts Options) ([]SocketSnapshot, []Diagnostic, error) {
	var snaps []SocketSnapshot
	diags, err := parseDumpFile(path, opts.MaxDiagnostics, func(s SocketSnapshot) bool { snaps = append(snaps, s); return true })
	return snaps, diags, err
}

// parseDumpFile is parseSocketDumpEach on the file at path, dated by its
// mtime when it has no timestamp lines.
func parseDumpFile(path string, maxDiag int, emit func(SocketSnapshot) bool) ([]Diagnostic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read socket dump: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read socket dump: %w", err)
	}
	return parseSocketDumpEach(f, path, st.ModTime(), maxDiag, emit)
}

// ParseSocketDump parses one foreign socket dump read from r; name is used in
// diagnostics and SocketSnapshot.File, mtime stands in for the time of a dump
// without timestamp lines (TimeFromMtime is then set, with an info
// diagnostic). It returns one snapshot per timestamp block. The error is
// non-nil only when the input cannot be read or is in no supported format
// (ErrUnrecognized); bad lines are skipped and reported as diagnostics.
func ParseSocketDump(r io.Reader, name string, mtime time.Time) ([]SocketSnapshot, []Diagnostic, error) {
	return parseSocketDump(r, name, mtime, 0)
}

func parseSocketDump(r io.Reader, name string, mtime time.Time, maxDiag int) ([]SocketSnapshot, []Diagnostic, error) {
	var snaps []SocketSnapshot
	diags, err := parseSocketDumpEach(r, name, mtime, maxDiag, func(s SocketSnapshot) bool { snaps = append(snaps, s); return true })
	return snaps, diags, err
}

// parseSocketDumpEach is parseSocketDump handing each snapshot to emit as
// soon as it is parsed, in file order; emit returns false to stop reading.
func parseSocketDumpEach(r io.Reader, name string, mtime time.Time, maxDiag int, emit func(SocketSnapshot) bool) ([]Diagnostic, error) {
	ds := newDiagSink(name, maxDiag)
	br := bufio.NewReaderSize(io.LimitReader(r, maxDumpBytes), 64<<10)
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("parse socket dump %s: %w: %v", name, ErrMalformed, err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(io.LimitReader(zr, maxDumpBytes), 64<<10)
	}
	text := textReader(br)
	tr := bufio.NewReaderSize(text, sniffBytes) // grown below only when the sniff needs more
	// A loop started while nothing was listening prints only its timestamp
	// lines for a while (ss -H and lsof print nothing then): look further
	// until the tool's output shows.
	var f dumpFormat
	for size := sniffBytes; ; size *= 4 {
		tr = bufio.NewReaderSize(tr, size) // tr itself while it is big enough
		head, err := tr.Peek(size)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, fmt.Errorf("parse socket dump %s: %w", name, err)
		}
		if f, err = detectDump(head); err == nil {
			break
		}
		more := len(head) == size
		if i := bytes.LastIndexByte(head, '\n'); more && i >= 0 {
			head = head[:i+1] // the last line is cut: judge the whole ones
		}
		blank := len(bytes.TrimSpace(stripTimestampLines(decodeText(head)))) == 0
		if blank && more && size < maxSniffBytes {
			continue // only timestamps so far, and more follows
		}
		if blank {
			ds.add(DiagSkipped, dumpLine{n: 1}, "dump-empty", "the dump holds no tool output (only timestamp lines, or nothing): no sockets from it")
			return ds.list(), nil
		}
		return nil, fmt.Errorf("parse socket dump %s: %w", name, err)
	}
	var (
		own     ownerCount
		stopped bool // emit said stop
		block   []dumpLine
		inBlock bool // a timestamp line opened the current block
		blockTS int64
		blockTL dumpLine
		// blockMtime: the block's timestamp line was unreadable.
		blockMtime bool
		noTSMode   = true
		pre        []dumpLine // content before the first timestamp line
	)
	flush := func(last bool) {
		if !inBlock || stopped {
			return
		}
		if last && len(nonBlank(block)) == 0 {
			ds.add(DiagTruncated, blockTL, "empty-last-block", "last timestamp has no output after it (loop interrupted?); dropped")
			return
		}
		b := newSnapBuilder(f.name, name)
		b.sizeFor(len(block))
		f.parse(block, b, ds)
		s := b.finish()
		s.Taken = blockTS
		s.TimeFromMtime = blockMtime
		own.add(&s)
		stopped = !emit(s)
	}
	lr := newLineReader(tr, ds)
	for !stopped {
		l, ok := lr.next()
		if !ok {
			break
		}
		if l.s == "" || l.s[0] == ' ' || l.s[0] == '\t' {
			// Timestamp lines start at column 0 (never indented).
		} else if t, isTS, warn := isTimestampLine(l.s); isTS {
			flush(false)
			noTSMode = false
			inBlock, block, blockTL = true, nil, l
			blockMtime = t.IsZero()
			if warn != "" {
				key := "timestamp-zone"
				if blockMtime {
					key = "timestamp-unreadable"
				}
				ds.add(DiagInfo, l, key, warn)
			}
			if blockMtime {
				blockTS = mtime.UnixNano()
			} else {
				blockTS = t.UnixNano()
			}
			continue
		}
		if noTSMode {
			pre = append(pre, l)
			continue
		}
		block = append(block, l)
	}
	if stopped {
		return ds.list(), nil
	}
	if err := lr.err; err != nil {
		return ds.list(), fmt.Errorf("parse socket dump %s: %w", name, err)
	}
	if lr.cutTail {
		ds.add(DiagTruncated, lr.last, "no-final-newline", "file does not end with a newline; the last line may be cut")
	}
	if noTSMode {
		b := newSnapBuilder(f.name, name)
		f.parse(pre, b, ds)
		s := b.finish()
		s.Taken = mtime.UnixNano()
		s.TimeFromMtime = true
		ds.add(DiagInfo, dumpLine{n: 1}, "time-from-mtime", fmt.Sprintf("no timestamp lines; snapshot time is the file's mtime %s", mtime.UTC().Format(time.RFC3339Nano)))
		own.add(&s)
		own.report(ds)
		emit(s)
		return ds.list(), nil
	}
	if len(nonBlank(pre)) > 0 {
		p := nonBlank(pre)
		ds.add(DiagSkipped, p[0], "before-first-timestamp", "output before the first timestamp line skipped")
	}
	flush(true)
	own.report(ds)
	return ds.list(), nil
}

// ownerCount counts a dump's socket listings and whether any names its
// process.
type ownerCount struct {
	n     int
	owned bool
}

func (o *ownerCount) add(s *SocketSnapshot) {
	for i := range s.Sockets {
		o.owned = o.owned || len(s.Sockets[i].Holders) > 0
	}
	o.n += len(s.Sockets)
}

// report says so when a dump lists sockets but never the process of any:
// it was taken without the tool's process option (ss -tuna, netstat -tuna)
// or without the rights to see other users' processes, and nothing in it
// can be attributed.
func (o *ownerCount) report(ds *diagSink) {
	if o.n > 0 && !o.owned {
		ds.add(DiagInfo, dumpLine{n: 1}, "no-processes", fmt.Sprintf("none of the %d socket listings names its process: take the dump as root with the process option (ss -tunap, netstat -tunap, lsof -i)", o.n))
	}
}

func nonBlank(ls []dumpLine) []dumpLine {
	var out []dumpLine
	for _, l := range ls {
		if strings.TrimSpace(l.s) != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseSingle is the body of every parseX(r io.Reader): one snapshot, no
// timestamp handling, Taken left zero.
func parseSingle(r io.Reader, format SocketFormat, parse func([]dumpLine, *snapBuilder, *diagSink)) (SocketSnapshot, []Diagnostic, error) {
	ds := newDiagSink("", 0)
	lr := newLineReader(bufio.NewReaderSize(textReader(bufio.NewReader(io.LimitReader(r, maxDumpBytes))), 64<<10), ds)
	var lines []dumpLine
	for {
		l, ok := lr.next()
		if !ok {
			break
		}
		lines = append(lines, l)
	}
	b := newSnapBuilder(format, "")
	parse(lines, b, ds)
	if lr.err != nil {
		return b.finish(), ds.list(), fmt.Errorf("parse %s dump: %w", format, lr.err)
	}
	return b.finish(), ds.list(), nil
}

// readSingle is the body of every readX(path).
func readSingle(path string, parse func(io.Reader) (SocketSnapshot, []Diagnostic, error)) (SocketSnapshot, []Diagnostic, error) {
	f, err := os.Open(path)
	if err != nil {
		return SocketSnapshot{}, nil, fmt.Errorf("read socket dump: %w", err)
	}
	defer f.Close()
	s, d, err := parse(f)
	s.File = path
	for i := range d {
		d[i].File = path
	}
	return s, d, err
}

// ---- text decoding and lines ----

// textReader strips a UTF-8 BOM and converts UTF-16 (with BOM, as Windows
// PowerShell 5.1's `>` writes) to UTF-8.
func textReader(br *bufio.Reader) io.Reader {
	m, _ := br.Peek(3)
	switch {
	case len(m) >= 3 && m[0] == 0xef && m[1] == 0xbb && m[2] == 0xbf:
		br.Discard(3)
	case len(m) >= 2 && m[0] == 0xff && m[1] == 0xfe:
		br.Discard(2)
		return &utf16Reader{r: br, le: true}
	case len(m) >= 2 && m[0] == 0xfe && m[1] == 0xff:
		br.Discard(2)
		return &utf16Reader{r: br}
	}
	return br
}

// decodeText applies textReader to an in-memory head.
func decodeText(b []byte) []byte {
	out, _ := io.ReadAll(textReader(bufio.NewReader(bytes.NewReader(b))))
	return out
}

// utf16Reader converts a UTF-16 stream to UTF-8.
type utf16Reader struct {
	r    *bufio.Reader
	le   bool
	out  []byte
	hi   uint16 // pending high surrogate
	done bool
}

func (u *utf16Reader) Read(p []byte) (int, error) {
	for len(u.out) == 0 {
		if u.done {
			return 0, io.EOF
		}
		var buf [4096]byte
		n, err := io.ReadFull(u.r, buf[:])
		if n%2 == 1 {
			n-- // odd trailing byte: dropped
		}
		for i := 0; i+1 < n; i += 2 {
			var c uint16
			if u.le {
				c = uint16(buf[i]) | uint16(buf[i+1])<<8
			} else {
				c = uint16(buf[i])<<8 | uint16(buf[i+1])
			}
			switch {
			case utf16.IsSurrogate(rune(c)) && c < 0xdc00:
				u.hi = c
				continue
			case utf16.IsSurrogate(rune(c)) && u.hi != 0:
				u.out = append(u.out, string(utf16.DecodeRune(rune(u.hi), rune(c)))...)
			default:
				u.out = append(u.out, string(rune(c))...)
			}
			u.hi = 0
		}
		if err != nil {
			u.done = true
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				if len(u.out) == 0 {
					return 0, err
				}
			}
		}
	}
	n := copy(p, u.out)
	u.out = u.out[n:]
	return n, nil
}

// lineReader yields lines with CR stripped, NULs (lsof -F0) turned into line
// breaks, and over-long lines cut with a diagnostic.
type lineReader struct {
	r       *bufio.Reader
	ds      *diagSink
	n       int
	off     int64
	pending []dumpLine
	err     error
	eof     bool
	cutTail bool
	last    dumpLine
}

func newLineReader(r *bufio.Reader, ds *diagSink) *lineReader { return &lineReader{r: r, ds: ds} }

func (lr *lineReader) next() (dumpLine, bool) {
	for len(lr.pending) == 0 {
		if lr.eof {
			return dumpLine{}, false
		}
		var line []byte
		long := false
		start := lr.off
		for {
			frag, err := lr.r.ReadSlice('\n')
			lr.off += int64(len(frag))
			if len(line)+len(frag) > maxDumpLine {
				long = true
				if room := maxDumpLine - len(line); room > 0 {
					line = append(line, frag[:room]...)
				}
			} else {
				line = append(line, frag...)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				lr.eof = true
				if len(line) > 0 && line[len(line)-1] != '\n' {
					lr.cutTail = true
				}
			} else if err != nil {
				lr.eof = true
				lr.err = err
			}
			break
		}
		if lr.eof && len(line) == 0 {
			return dumpLine{}, false
		}
		lr.n++
		line = bytes.TrimRight(line, "\r\n")
		if long {
			lr.ds.add(DiagTruncated, dumpLine{n: lr.n, off: start}, "long-line", fmt.Sprintf("line longer than %d bytes cut", maxDumpLine))
		}
		if bytes.IndexByte(line, 0) >= 0 {
			for _, part := range bytes.Split(line, []byte{0}) {
				if len(part) > 0 {
					lr.pending = append(lr.pending, dumpLine{n: lr.n, off: start, s: string(part)})
				}
			}
			continue
		}
		lr.pending = append(lr.pending, dumpLine{n: lr.n, off: start, s: string(line)})
	}
	l := lr.pending[0]
	lr.pending = lr.pending[1:]
	lr.last = l
	return l, true
}

// ---- timestamp lines ----

var (
	epochRE   = regexp.MustCompile(`^[0-9]{9,11}(\.[0-9]{1,9})?$`)
	isoRE     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})$`)
	dateCmdRE = regexp.MustCompile(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun),? `)
	// intEpochRE is date +%s%3N, +%s%6N or +%s%N: whole milli-, micro- or
	// nanoseconds.
	intEpochRE = regexp.MustCompile(`^[0-9]{10}(?:[0-9]{3}|[0-9]{6}|[0-9]{9})$`)
)

// zoneOffsets are the UTC offsets, in hours, of the time zone abbreviations
// `date` prints (without -u) that mean one thing only; ambiguous ones (CST,
// IST, BST) stay UTC with a diagnostic.
var zoneOffsets = map[string]float64{
	"WET": 0, "WEST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
	"EST": -5, "EDT": -4, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8,
	"HST": -10, "NST": -3.5, "NDT": -2.5, "AST": -4, "ADT": -3,
	"JST": 9, "KST": 9, "HKT": 8, "SGT": 8, "AWST": 8, "ACST": 9.5, "ACDT": 10.5, "AEST": 10, "AEDT": 11,
	"NZST": 12, "NZDT": 13, "WIB": 7, "PKT": 5,
}

// dateLayouts are `date` default outputs (C and en_US/en_GB locales) after
// collapsing runs of spaces.
var dateLayouts = []string{
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 03:04:05 PM MST 2006",
	"Mon 2 Jan 2006 15:04:05 MST",
	"Mon 2 Jan 2006 03:04:05 PM MST",
	"Mon Jan 2 15:04:05.999999999 MST 2006",
	"Mon, 02 Jan 2006 15:04:05 -0700", // date -R
}

// flowblameTSMarker introduces an explicit timestamp line.
const flowblameTSMarker = "# flowblame-ts:"

// isTimestampLine recognises the timestamp lines of the documented loops:
// `date -u +%s.%N` (or +%s), `date -u --iso-8601=ns|seconds` (RFC 3339 with
// a comma or dot), `date -u` default format, a bare RFC 3339 time and
// "# flowblame-ts: <RFC3339>". A marker line with an unreadable time returns
// ok with a zero time and a warning. warn is also set when a `date` zone
// abbreviation other than UTC/GMT was assumed to be UTC.
func isTimestampLine(s string) (t time.Time, ok bool, warn string) {
	s = strings.TrimRight(s, "\r")
	if strings.HasPrefix(s, flowblameTSMarker) {
		v := strings.TrimSpace(s[len(flowblameTSMarker):])
		if t, ok := parseISOTime(v); ok {
			return t, true, ""
		}
		if epochRE.MatchString(v) {
			return parseEpoch(v), true, ""
		}
		return time.Time{}, true, fmt.Sprintf("unreadable time %q in timestamp marker; using the file's mtime", v)
	}
	s = strings.TrimSpace(s)
	if len(s) < 9 || len(s) > 64 {
		return time.Time{}, false, ""
	}
	if epochRE.MatchString(s) {
		return parseEpoch(s), true, ""
	}
	if intEpochRE.MatchString(s) {
		return parseEpoch(s[:10] + "." + s[10:]), true, ""
	}
	if isoRE.MatchString(s) {
		if t, ok := parseISOTime(s); ok {
			return t, true, ""
		}
		return time.Time{}, false, ""
	}
	if dateCmdRE.MatchString(s) {
		c := strings.Join(strings.Fields(s), " ")
		for _, layout := range dateLayouts {
			t, err := time.Parse(layout, c)
			if err != nil {
				continue
			}
			zone, _ := t.Zone()
			if zone != "UTC" && zone != "GMT" && zone != "Z" && zone != "" { // "": a numeric offset
				if _, off := t.Zone(); off == 0 {
					if h, ok := zoneOffsets[zone]; ok {
						// time.Parse gives unknown abbreviations offset 0.
						return t.Add(-time.Duration(h * float64(time.Hour))).UTC(), true, ""
					}
					warn = fmt.Sprintf("time zone %q of date line %q assumed to be UTC (use date -u)", zone, s)
				}
			}
			return t.UTC(), true, warn
		}
	}
	return time.Time{}, false, ""
}

func parseEpoch(s string) time.Time {
	sec, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		ns, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(n, ns).UTC()
}

// parseISOTime parses RFC 3339 with a dot or comma before the fraction, a
// missing seconds field, or a +hhmm offset.
func parseISOTime(s string) (time.Time, bool) {
	s = strings.Replace(s, ",", ".", 1)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05.999999999Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// ---- diagnostics ----

// diagSink adapts diagFolder (diag.go) to line-oriented dumps: it folds
// repeats of the same kind and key into one Diagnostic with a Count, located
// at the first occurrence's line.
type diagSink struct{ f *diagFolder }

func newDiagSink(file string, max int) *diagSink { return &diagSink{f: newDiagFolder(file, max)} }

// add records one problem at line l; key groups repeats (e.g. "ss-addr").
func (d *diagSink) add(kind DiagKind, l dumpLine, key, msg string) {
	off := l.off
	if l.n == 0 {
		off = -1
	}
	d.f.add(key, kind, fmt.Sprintf("line %d", l.n), off, 0, msg, diagErr(kind, msg))
}

func diagErr(kind DiagKind, msg string) error {
	switch kind {
	case DiagMalformed, DiagSkipped:
		return fmt.Errorf("%s: %w", msg, ErrMalformed)
	case DiagTruncated:
		return fmt.Errorf("%s: %w", msg, ErrTruncated)
	case DiagUnsupported:
		return fmt.Errorf("%s: %w", msg, ErrUnrecognized)
	}
	return nil
}

func (d *diagSink) list() []Diagnostic { return d.f.diagnostics() }

// ---- snapshot building ----

type sockKey struct {
	proto         uint8
	local, remote netip.AddrPort
	inode         uint64
}

// snapBuilder accumulates one snapshot: sockets merged by identity (a
// socket shared by several processes is listed once per holder by lsof),
// and process facts by PID (start times arrive after the socket rows in
// Windows dumps and are applied in finish).
type snapBuilder struct {
	snap  SocketSnapshot
	index map[sockKey]int
	procs map[int]ProcessInfo
	order []int // PIDs in first-seen order
}

func newSnapBuilder(f SocketFormat, file string) *snapBuilder {
	return &snapBuilder{snap: SocketSnapshot{Source: f, File: file}, index: map[sockKey]int{}, procs: map[int]ProcessInfo{}}
}

// sizeFor makes room for about n sockets (a dump of n lines).
func (b *snapBuilder) sizeFor(n int) {
	b.snap.Sockets = make([]SocketEntry, 0, n)
	b.index = make(map[sockKey]int, n)
}

// add appends socket e (or merges it into an identical one) and records the
// holder pid (pid ≤ 0: none) with its comm.
func (b *snapBuilder) add(e SocketEntry, pid int, comm string) {
	k := sockKey{e.Proto, e.Local, e.Remote, e.Inode}
	i, ok := b.index[k]
	if !ok {
		i = len(b.snap.Sockets)
		b.index[k] = i
		e.Holders, e.Comms = nil, nil
		b.snap.Sockets = append(b.snap.Sockets, e)
	} else {
		s := &b.snap.Sockets[i]
		if s.UID < 0 {
			s.UID = e.UID
		}
		if s.State == "" {
			s.State = e.State
		}
		s.BytesAcked = max(s.BytesAcked, e.BytesAcked)
		s.BytesReceived = max(s.BytesReceived, e.BytesReceived)
		if s.Cookie == 0 {
			s.Cookie = e.Cookie
		}
	}
	if pid > 0 {
		b.holder(i, pid, comm)
	}
}

func (b *snapBuilder) holder(i, pid int, comm string) {
	s := &b.snap.Sockets[i]
	for _, h := range s.Holders {
		if h.PID == pid {
			return
		}
	}
	s.Holders = append(s.Holders, ProcKey{PID: pid})
	s.Comms = append(s.Comms, comm)
	b.proc(ProcessInfo{PID: pid, Comm: comm, UID: -1})
}

// proc merges process facts: non-empty fields of p win over empty ones.
func (b *snapBuilder) proc(p ProcessInfo) {
	if p.PID <= 0 && p.Comm == "" {
		return
	}
	q, ok := b.procs[p.PID]
	if !ok {
		b.order = append(b.order, p.PID)
		b.procs[p.PID] = p
		return
	}
	if q.Comm == "" {
		q.Comm = p.Comm
	}
	if q.Exe == "" {
		q.Exe = p.Exe
	}
	if q.Start == 0 {
		q.Start = p.Start
	}
	if q.PPID == 0 {
		q.PPID = p.PPID
	}
	if q.UID < 0 {
		q.UID = p.UID
	}
	if q.User == "" {
		q.User = p.User
	}
	b.procs[p.PID] = q
}

// finish resolves holder start times and comms from the process facts,
// sorts holders by PID and returns the snapshot.
func (b *snapBuilder) finish() SocketSnapshot {
	s := b.snap
	for i := range s.Sockets {
		e := &s.Sockets[i]
		for j := range e.Holders {
			p := b.procs[e.Holders[j].PID]
			e.Holders[j].Start = p.Start
			if e.Comms[j] == "" {
				e.Comms[j] = p.Comm
			}
		}
		sort.Sort(holderSort{e})
	}
	if len(b.procs) > 0 {
		s.Procs = make(map[ProcKey]ProcessInfo, len(b.procs))
		for _, pid := range b.order {
			p := b.procs[pid]
			p.FirstSeen, p.LastSeen = 0, 0
			s.Procs[p.Key()] = p
		}
	}
	return s
}

type holderSort struct{ e *SocketEntry }

func (h holderSort) Len() int           { return len(h.e.Holders) }
func (h holderSort) Less(i, j int) bool { return h.e.Holders[i].PID < h.e.Holders[j].PID }
func (h holderSort) Swap(i, j int) {
	h.e.Holders[i], h.e.Holders[j] = h.e.Holders[j], h.e.Holders[i]
	h.e.Comms[i], h.e.Comms[j] = h.e.Comms[j], h.e.Comms[i]
}

// checkSnapshot verifies the invariants every parser guarantees: TCP/UDP
// only, valid unzoned local addresses, holders and comms aligned, and every
// holder described in Procs.
func checkSnapshot(s SocketSnapshot) error {
	if s.Source == "" {
		return errors.New("snapshot without source")
	}
	for i, e := range s.Sockets {
		if e.Proto != ProtoTCP && e.Proto != ProtoUDP {
			return fmt.Errorf("socket %d: proto %d", i, e.Proto)
		}
		if !e.Local.IsValid() || e.Local.Addr().Zone() != "" {
			return fmt.Errorf("socket %d: local %v", i, e.Local)
		}
		if e.Remote.IsValid() && (e.Remote.Addr().Zone() != "" || e.Remote.Addr().IsUnspecified()) {
			return fmt.Errorf("socket %d: remote %v", i, e.Remote)
		}
		if len(e.Comms) != len(e.Holders) {
			return fmt.Errorf("socket %d: %d comms for %d holders", i, len(e.Comms), len(e.Holders))
		}
		for j, h := range e.Holders {
			if h.PID <= 0 {
				return fmt.Errorf("socket %d: holder pid %d", i, h.PID)
			}
			if j > 0 && e.Holders[j-1].PID >= h.PID {
				return fmt.Errorf("socket %d: holders not sorted", i)
			}
			if _, ok := s.Procs[h]; !ok {
				return fmt.Errorf("socket %d: holder %v not in Procs", i, h)
			}
		}
	}
	for k, p := range s.Procs {
		if p.Key() != k {
			return fmt.Errorf("proc %v keyed %v", p.Key(), k)
		}
	}
	return nil
}

// ---- shared field parsing ----

// tcpStates maps the state spellings of ss, netstat, lsof, Windows netstat
// (English, German) and PowerShell (names and numbers) to ss names.
var tcpStates = map[string]string{
	"ESTAB": "ESTAB", "ESTABLISHED": "ESTAB", "HERGESTELLT": "ESTAB", "5": "ESTAB",
	"LISTEN": "LISTEN", "LISTENING": "LISTEN", "ABHÖREN": "LISTEN", "ABH\x99REN": "LISTEN", "2": "LISTEN",
	"UNCONN": "UNCONN", "CLOSE": "CLOSE", "CLOSED": "CLOSE", "1": "CLOSE",
	"TIME-WAIT": "TIME-WAIT", "TIME_WAIT": "TIME-WAIT", "TIMEWAIT": "TIME-WAIT", "WARTEND": "TIME-WAIT", "11": "TIME-WAIT",
	"CLOSE-WAIT": "CLOSE-WAIT", "CLOSE_WAIT": "CLOSE-WAIT", "CLOSEWAIT": "CLOSE-WAIT", "SCHLIESSEN_WARTEN": "CLOSE-WAIT", "8": "CLOSE-WAIT",
	"SYN-SENT": "SYN-SENT", "SYN_SENT": "SYN-SENT", "SYNSENT": "SYN-SENT", "SYN_GESENDET": "SYN-SENT", "3": "SYN-SENT",
	"SYN-RECV": "SYN-RECV", "SYN_RECV": "SYN-RECV", "SYN_RECEIVED": "SYN-RECV", "SYNRECEIVED": "SYN-RECV", "SYN_EMPFANGEN": "SYN-RECV", "4": "SYN-RECV",
	"FIN-WAIT-1": "FIN-WAIT-1", "FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT_1": "FIN-WAIT-1", "FINWAIT1": "FIN-WAIT-1", "6": "FIN-WAIT-1",
	"FIN-WAIT-2": "FIN-WAIT-2", "FIN_WAIT2": "FIN-WAIT-2", "FIN_WAIT_2": "FIN-WAIT-2", "FINWAIT2": "FIN-WAIT-2", "7": "FIN-WAIT-2",
	"LAST-ACK": "LAST-ACK", "LAST_ACK": "LAST-ACK", "LASTACK": "LAST-ACK", "10": "LAST-ACK",
	"CLOSING": "CLOSING", "9": "CLOSING",
	"DELETETCB": "DELETE-TCB", "DELETE_TCB": "DELETE-TCB", "12": "DELETE-TCB",
	"BOUND": "BOUND", "100": "BOUND",
	"NEW-SYN-RECV": "SYN-RECV", "IDLE": "UNCONN",
}

// normState maps a tool's state spelling to the ss name; unknown spellings
// are returned upper-cased with ok false.
func normState(s string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if v, ok := tcpStates[u]; ok {
		return v, true
	}
	return u, u == ""
}

// services maps the service names tools print without -n/-P (from
// /etc/services) to ports.
var services = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "bootps": 67, "bootpc": 68,
	"tftp": 69, "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "sunrpc": 111, "auth": 113, "ntp": 123,
	"epmap": 135, "netbios-ns": 137, "netbios-dgm": 138, "netbios-ssn": 139, "imap": 143, "imap2": 143,
	"snmp": 161, "ldap": 389, "https": 443, "microsoft-ds": 445, "isakmp": 500, "syslog": 514, "submission": 587,
	"ldaps": 636, "imaps": 993, "pop3s": 995, "socks": 1080, "openvpn": 1194, "ms-sql-s": 1433, "mysql": 3306,
	"ms-wbt-server": 3389, "postgresql": 5432, "mdns": 5353, "llmnr": 5355, "amqp": 5672, "x11": 6000,
	"http-alt": 8080, "webcache": 8080, "ipp": 631, "rsync": 873, "domain-s": 853, "ipsec-nat-t": 4500,
	"redis": 6379, "xmpp-client": 5222, "wsdapi": 5357, "wsman": 5985, "wsmans": 5986, "ms-sql-m": 1434,
	"nfs": 2049, "sip": 5060, "rdp": 3389,
}

// errWildcardPort is returned by parseEndpoint for a "*" port.
var errWildcardPort = errors.New("wildcard port")

// parseEndpoint parses "addr:port" as ss, lsof and netstat print it:
// "198.51.100.1:22", "[2001:db8::1]:443", "[fe80::1]%eth0:5353",
// "127.0.0.53%lo:53", "[fe80::1%12]:49712", ":::22", "::ffff:1.2.3.4:80",
// "*:22", "0.0.0.0:*". The interface zone is dropped (packets carry none).
// wild6 says which family "*" stands for. A "*" port yields port 0 with
// errWildcardPort. Host names other than localhost are errors; service names
// are mapped by the services table.
func parseEndpoint(s string, wild6 bool) (netip.AddrPort, error) {
	var host, port string
	if strings.HasPrefix(s, "[") {
		end := strings.LastIndex(s, "]")
		if end < 0 {
			return netip.AddrPort{}, fmt.Errorf("unbalanced brackets in %q", s)
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.HasPrefix(rest, "%") { // ss: [fe80::1]%eth0:5353
			i := strings.LastIndexByte(rest, ':')
			if i < 0 {
				return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
			}
			rest = rest[i:]
		}
		if !strings.HasPrefix(rest, ":") {
			return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
		}
		port = rest[1:]
	} else {
		i := strings.LastIndexByte(s, ':')
		if i < 0 {
			return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
		}
		host, port = s[:i], s[i+1:]
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	var addr netip.Addr
	switch host {
	case "*", "":
		if wild6 {
			addr = netip.IPv6Unspecified()
		} else {
			addr = netip.IPv4Unspecified()
		}
	case "localhost", "localhost4", "localhost.localdomain":
		// The usual reverse name of 127.0.0.1 (also inside IPv6 sockets,
		// where lsof and netstat print v4-mapped peers as IPv4).
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case "ip6-localhost", "ip6-loopback", "localhost6":
		addr = netip.IPv6Loopback()
	default:
		a, err := netip.ParseAddr(host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("host %q is not an IP address (rerun the tool with -n)", host)
		}
		addr = a.WithZone("")
	}
	if port == "*" {
		return netip.AddrPortFrom(addr, 0), errWildcardPort
	}
	p, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addr, p), nil
}

func parsePort(s string) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	if p, ok := services[strings.ToLower(s)]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("port %q is not a number or a known service name (rerun the tool with -n/-P)", s)
}

// parseLocal parses a local endpoint; a "*" port is kept as 0.
func parseLocal(s string, wild6 bool) (netip.AddrPort, error) {
	ap, err := parseEndpoint(s, wild6)
	if err == errWildcardPort {
		err = nil
	}
	return ap, err
}

// parseRemote parses a peer endpoint; "*:*", "0.0.0.0:*", "[::]:0" and the
// like (no peer) become the zero AddrPort.
func parseRemote(s string, wild6 bool) (netip.AddrPort, error) {
	ap, err := parseEndpoint(s, wild6)
	if err == errWildcardPort {
		if ap.Addr().IsUnspecified() {
			return netip.AddrPort{}, nil
		}
		return ap, nil
	}
	if err != nil {
		return ap, err
	}
	if ap.Addr().IsUnspecified() {
		return netip.AddrPort{}, nil
	}
	return ap, nil
}

// asTCPAndUDP returns e as a TCP and as a UDP socket, for a listing that
// does not say which (ss without its Netid column, lsof -F without P). A
// missing state is LISTEN for the TCP socket when it has no peer, and the
// UDP socket's follows from its peer.
func asTCPAndUDP(e SocketEntry) [2]SocketEntry {
	t, u := e, e
	t.Proto, u.Proto = ProtoTCP, ProtoUDP
	if e.State == "" {
		if !e.Remote.IsValid() {
			t.State, _ = normState("LISTEN")
		}
		u.State = udpState(e.Remote)
	}
	return [2]SocketEntry{t, u}
}

// udpState is the state of a UDP socket whose tool prints none.
func udpState(remote netip.AddrPort) string {
	if remote.IsValid() {
		return "ESTAB"
	}
	return "UNCONN"
}

func atoiPos(s string) (int, bool) {
	if len(s) == 0 || len(s) > 18 || !allDigits(s) {
		if len(s) > 0 && (s[0] < '0' || s[0] > '9') && s[0] != '+' && s[0] != '-' {
			return 0, false // not a number (no error value to build)
		}
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

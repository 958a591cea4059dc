package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMerge(t *testing.T) {
	f := udpFrame(t, "198.51.100.7", "203.0.113.1", 5000, 443, "abc")
	n := uint32(len(f))
	// File A (pcap, one interface): TS 1, 3, 3, 9 s.
	a := joinBytes(pcapHeader(false, 2, 4, 65535, 1),
		pcapRecord(false, 1, 0, n, n, nil, f), pcapRecord(false, 3, 0, n, n, nil, f),
		pcapRecord(false, 3, 0, n, n, nil, f), pcapRecord(false, 9, 0, n, n, nil, f))
	// File B (pcapng, two interfaces, the second used first): TS 2, 3, 10 s.
	b := newNG(false)
	b.idb(uint16(LinkEthernet), 0, b.opt(optIfName, []byte("b0")), b.opt(optIfTsresol, []byte{0}))
	b.idb(uint16(LinkEthernet), 0, b.opt(optIfName, []byte("b1")), b.opt(optIfTsresol, []byte{0}))
	b.epb(1, 2, f, n)
	b.epb(1, 3, f, n)
	b.epb(0, 10, f, n)
	// File C: empty pcap with an unused interface.
	c := pcapHeader(false, 2, 4, 65535, 101)
	dir := t.TempDir()
	var paths []string
	for name, data := range map[string][]byte{"a.pcap": a, "b.pcapng": b.buf.Bytes(), "c.pcap.gz": gzipData(c)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	paths = []string{filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcapng"), filepath.Join(dir, "c.pcap.gz")}
	src, err := OpenCaptures(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	type ti struct {
		TS    int64
		Iface int
	}
	var got []ti
	var p Packet
	for {
		if err := src.Next(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		got = append(got, ti{p.TS / 1e9, p.Iface})
		if st := src.Stats(); st.Packets != int64(len(got)) {
			t.Fatalf("after %d packets Stats.Packets = %d", len(got), st.Packets)
		}
	}
	// Global interfaces in order of first appearance: a's (0), b1 (1), b0 (2), then c's (3).
	want := []ti{{1, 0}, {2, 1}, {3, 0}, {3, 0}, {3, 1}, {9, 0}, {10, 2}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	var names []string
	for _, i := range src.Interfaces() {
		names = append(names, filepath.Base(i.File)+":"+i.Name)
	}
	if d := cmp.Diff([]string{"a.pcap:", "b.pcapng:b1", "b.pcapng:b0", "c.pcap.gz:"}, names); d != "" {
		t.Errorf("interfaces (-want +got):\n%s", d)
	}
	st := src.Stats()
	if st.Files != 3 || st.Packets != 7 || st.Bytes != 7*int64(n) {
		t.Errorf("stats %+v", st)
	}
	if src.Next(&p) != io.EOF {
		t.Errorf("EOF not sticky")
	}
}

func TestMergeError(t *testing.T) {
	f := udpFrame(t, "198.51.100.7", "203.0.113.1", 5000, 443, "abc")
	n := uint32(len(f))
	good := joinBytes(pcapHeader(false, 2, 4, 65535, 1), pcapRecord(false, 1, 0, n, n, nil, f), pcapRecord(false, 5, 0, n, n, nil, f))
	ok := pcapRecord(false, 2, 0, n, n, nil, f)
	bad := joinBytes(pcapHeader(false, 2, 4, 65535, 1), ok, ok, ok, pcapRecord(false, 3, 0, 1<<30, n, nil, f))
	s1, _ := NewReader(bytes.NewReader(good), "good", Options{Strict: true})
	s2, _ := NewReader(bytes.NewReader(bad), "bad", Options{Strict: true})
	m := Merge(s1, s2)
	var p Packet
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = m.Next(&p)
	}
	if err == nil || err == io.EOF {
		t.Fatalf("err = %v, want the strict error of file bad", err)
	}
	if m.Next(&p) != err {
		t.Errorf("error not sticky")
	}
}

// eagerOpen is what OpenCaptures did before files were opened lazily:
// every file open from the start.
func eagerOpen(t *testing.T, paths []string) PacketSource {
	t.Helper()
	var srcs []PacketSource
	for _, p := range paths {
		s, err := OpenCapture(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	return Merge(srcs...)
}

// drain reads src to its end, calling each (if not nil) after every frame,
// and returns what a consumer sees.
func drain(t *testing.T, src PacketSource, each func()) ([]frameView, []Interface, []Diagnostic, SourceStats) {
	t.Helper()
	var got []frameView
	var p Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, viewPacket(&p))
		if each != nil {
			each()
		}
	}
	return got, src.Interfaces(), src.Diagnostics(), src.Stats()
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestOpenCapturesLazy: merging many files gives exactly what merging them
// all open gives (frames, interfaces, diagnostics, counters), while only
// the files the merge is reading are open: 300 rotated files need no more
// descriptors than two. Overlapping files (several interfaces at once), a
// file without packets and a truncated one are mixed in.
func TestOpenCapturesLazy(t *testing.T) {
	f := udpFrame(t, "198.51.100.7", "203.0.113.1", 5000, 443, "abc")
	n := uint32(len(f))
	dir := t.TempDir()
	var rotated []string
	for i := range 300 { // rotated files: 3 packets each, one second apart
		var recs [][]byte
		for j := range 3 {
			recs = append(recs, pcapRecord(false, uint32(1000+3*i+j), 0, n, n, nil, f))
		}
		data := joinBytes(append([][]byte{pcapHeader(false, 2, 4, 65535, 1)}, recs...)...)
		if i == 150 {
			data = data[:len(data)-10] // cut: a truncated tail
		}
		p := filepath.Join(dir, fmt.Sprintf("ring-%03d.pcap", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		rotated = append(rotated, p)
	}
	empty := filepath.Join(dir, "empty.pcap")
	if err := os.WriteFile(empty, pcapHeader(false, 2, 4, 65535, 101), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := append([]string{empty, filepath.Join(fixtureDir, "two-links.pcapng"), filepath.Join(fixtureDir, "small.pcap.gz")}, rotated...)

	want, wantIfs, wantDiags, wantStats := drain(t, eagerOpen(t, paths), nil)
	before := openFDs(t)
	src, err := OpenCaptures(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if open := openFDs(t) - before; open > 0 {
		t.Errorf("%d files open before reading", open)
	}
	maxOpen := 0
	got, gotIfs, gotDiags, gotStats := drain(t, src, func() { maxOpen = max(maxOpen, openFDs(t)-before) })
	if maxOpen > 3 {
		t.Errorf("up to %d files open at once, want at most 3", maxOpen)
	}
	copts := cmp.Options{cmp.Comparer(func(a, b error) bool { return (a == nil) == (b == nil) }),
		cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{})}
	if d := cmp.Diff(want, got, copts); d != "" {
		t.Errorf("frames (-eager +lazy):\n%s", d)
	}
	if d := cmp.Diff(wantIfs, gotIfs, copts); d != "" {
		t.Errorf("interfaces (-eager +lazy):\n%s", d)
	}
	if d := cmp.Diff(wantDiags, gotDiags, copts); d != "" {
		t.Errorf("diagnostics (-eager +lazy):\n%s", d)
	}
	if d := cmp.Diff(wantStats, gotStats); d != "" {
		t.Errorf("stats (-eager +lazy):\n%s", d)
	}
	if len(got) < 900 || wantStats.Files != len(paths) {
		t.Errorf("%d frames from %d files", len(got), wantStats.Files)
	}
	if err := src.Close(); err != nil {
		t.Error(err)
	}
	if open := openFDs(t) - before; open > 0 {
		t.Errorf("%d files still open after Close", open)
	}
}

// TestOpenCapturesSkipsUnreadable: a file that cannot be read at all (gone,
// empty as after a rotation, not a capture) is a diagnostic, not the end of
// the analysis; only when every file is like that, or under Strict, is it
// an error.
func TestOpenCapturesSkipsUnreadable(t *testing.T) {
	dir := t.TempDir()
	empty, text := filepath.Join(dir, "00001.pcapng"), filepath.Join(dir, "notes.txt")
	os.WriteFile(empty, nil, 0o644)
	os.WriteFile(text, []byte("not a capture at all"), 0o644)
	good := filepath.Join(fixtureDir, "small.pcap")
	bad := []string{filepath.Join(dir, "gone.pcap"), empty, text}
	src, err := OpenCaptures(append([]string{good}, bad...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	frames, _, diags, st := drain(t, src, nil)
	if len(frames) != 23 || st.Packets != 23 {
		t.Errorf("%d frames (stats %d), want small.pcap's 23", len(frames), st.Packets)
	}
	var skipped []string
	for _, d := range diags {
		if d.Kind == DiagSkipped && strings.HasPrefix(d.Msg, "not read: ") {
			skipped = append(skipped, filepath.Base(d.File))
		}
	}
	if d := cmp.Diff([]string{"gone.pcap", "00001.pcapng", "notes.txt"}, skipped); d != "" {
		t.Errorf("skipped files (-want +got):\n%s", d)
	}
	if _, err := OpenCaptures(bad, Options{}); err == nil {
		t.Error("no readable file: no error")
	}
	if _, err := OpenCaptures(append([]string{good}, bad...), Options{Strict: true}); err == nil {
		t.Error("Strict: no error")
	}
}

// TestOpenCapturesFragmentsAcrossFiles: the files of a merge share one
// fragment table, so a datagram whose fragments a capture's rotation put
// in two files keeps its ports in the second (as in the file before it was
// split, and as tshark on the merged stream), and the frame completing it
// decodes what it carries.
func TestOpenCapturesFragmentsAcrossFiles(t *testing.T) {
	const a, b = "198.51.100.1", "203.0.113.2"
	body := udp(5000, 53, make([]byte, 100)) // 108 bytes: fragments of 56 and 52
	frames := [][]byte{
		ip4f(ProtoUDP, a, b, 77, 0, true, body[:56]),
		ip4f(ProtoUDP, a, b, 77, 56, false, body[56:]),
		ip4f(ProtoUDP, b, a, 78, 0, true, body[:56]),
		ip4f(ProtoUDP, b, a, 78, 56, false, body[56:]),
	}
	file := func(name string, from, to int) string {
		recs := [][]byte{pcapHeader(false, 2, 4, 65535, 101)}
		for i := from; i < to; i++ {
			n := uint32(len(frames[i]))
			recs = append(recs, pcapRecord(false, uint32(1000+i), 0, n, n, nil, frames[i]))
		}
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, joinBytes(recs...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	whole, err := OpenCapture(file("whole.pcap", 0, 4), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _, _, _ := drain(t, whole, nil)
	// Rotated after the first and third frame: each datagram straddles a
	// file boundary.
	src, err := OpenCaptures([]string{file("r0.pcap", 0, 1), file("r1.pcap", 1, 3), file("r2.pcap", 3, 4)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, _, _, _ := drain(t, src, nil)
	// Each file's interface is an interface of the merge of its own.
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}), cmpopts.IgnoreFields(frameView{}, "Iface")); d != "" {
		t.Errorf("frames (-one file +rotated):\n%s", d)
	}
	if len(got) != 4 || got[1].Tuple != tup(ProtoUDP, a+":5000", b+":53") || got[3].Tuple != tup(ProtoUDP, b+":5000", a+":53") {
		t.Errorf("last fragments: %+v", got)
	}
}

// FuzzMerge: two files of any content merged by OpenCaptures (lazily
// opened, one fragment table) give every packet each gives alone — same
// count, bytes and interface range — or, when one cannot be read at all, a
// diagnostic; never a panic.
func FuzzMerge(f *testing.F) {
	var seeds [][]byte
	for _, row := range readManifest(f) {
		data, err := os.ReadFile(filepath.Join(corpusDir, row.file))
		if err == nil && len(data) < 16<<10 {
			seeds = append(seeds, data)
		}
	}
	for i := 0; i+1 < len(seeds) && i < 40; i += 2 {
		f.Add(seeds[i], seeds[i+1])
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		dir := t.TempDir()
		paths := []string{filepath.Join(dir, "a"), filepath.Join(dir, "b")}
		var want SourceStats
		readable := 0
		for i, data := range [][]byte{a, b} {
			if err := os.WriteFile(paths[i], data, 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := OpenCapture(paths[i], Options{})
			if err != nil {
				continue
			}
			readable++
			var p Packet
			for src.Next(&p) == nil {
			}
			st := src.Stats()
			want.Packets += st.Packets
			want.Bytes += st.Bytes
			src.Close()
		}
		src, err := OpenCaptures(paths, Options{})
		if err != nil {
			if readable > 0 {
				t.Fatalf("%d readable files, merge failed: %v", readable, err)
			}
			if !errors.Is(err, ErrUnrecognized) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		var p Packet
		var got SourceStats
		var end error
		for {
			if end = src.Next(&p); end != nil {
				break
			}
			got.Packets++
			got.Bytes += int64(p.WireLen)
			if p.Iface < 0 || p.Iface >= len(src.Interfaces()) {
				t.Fatalf("packet %d: interface %d of %d", got.Packets, p.Iface, len(src.Interfaces()))
			}
		}
		if errors.Is(end, io.EOF) && got != want {
			t.Fatalf("merged %+v, the files alone %+v", got, want)
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

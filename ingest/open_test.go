package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

const corpusDir = "../../shared/corpus"

// manifestRow is one line of the corpus MANIFEST.tsv.
type manifestRow struct {
	file    string
	packets int // -1 when capinfos gave no count
	notes   string
}

func readManifest(t testing.TB) []manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "MANIFEST.tsv"))
	if err != nil {
		t.Skipf("corpus not available: %v", err)
	}
	defer f.Close()
	var rows []manifestRow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 {
			continue
		}
		n, err := strconv.Atoi(c[5])
		if err != nil {
			n = -1
		}
		rows = append(rows, manifestRow{file: c[0], packets: n, notes: c[6]})
	}
	return rows
}

// TestCorpusWalk opens every corpus capture: no panic, no hang (bounded
// iterations), counts equal to capinfos' where it could read the file, and
// an error or diagnostics for files tshark cannot read.
func TestCorpusWalk(t *testing.T) {
	for _, row := range readManifest(t) {
		t.Run(row.file, func(t *testing.T) {
			path := filepath.Join(corpusDir, row.file)
			src, err := OpenCapture(path, Options{})
			unreadable := strings.Contains(row.notes, "TSHARK-UNREADABLE")
			if err != nil {
				if !unreadable && row.packets > 0 {
					t.Fatalf("OpenCapture: %v (capinfos counted %d packets)", err, row.packets)
				}
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrUnrecognized) {
					t.Errorf("error %v wraps no sentinel", err)
				}
				return
			}
			// The iteration bound stands in for a time budget: every record
			// takes at least 12 input bytes (gzip expands at most ~1032×).
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			bound := fuzzBound(int(fi.Size()))
			if strings.HasSuffix(row.file, ".gz") {
				bound *= 1100
			}
			n := checkSource(t, src, bound) // also checks Stats against the packets
			if row.packets >= 0 && !unreadable && n != row.packets {
				t.Errorf("read %d packets, capinfos %d; diagnostics: %v", n, row.packets, src.Diagnostics())
			}
			if unreadable && !hasKind(src.Diagnostics(), DiagUnsupported) && !hasKind(src.Diagnostics(), DiagMalformed) {
				t.Errorf("tshark cannot read this file, but it gave no error and no diagnostic")
			}
			if strings.Contains(row.notes, "CUT-OFF") || strings.Contains(row.notes, "cut short") {
				if !hasKind(src.Diagnostics(), DiagTruncated) && !hasKind(src.Diagnostics(), DiagMalformed) {
					t.Errorf("cut-off file without truncated diagnostic: %v", src.Diagnostics())
				}
			}
		})
	}
}

func hasKind(ds []Diagnostic, k DiagKind) bool {
	for _, d := range ds {
		if d.Kind == k {
			return true
		}
	}
	return false
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr error
		msg     string // in the message, when set
	}{
		{"empty", nil, ErrTruncated, ""},
		{"short magic", []byte{0xd4, 0xc3}, ErrTruncated, ""},
		{"unknown magic", []byte("GIF89a.........................."), ErrUnrecognized, `magic "GIF8" is not pcap, pcapng, gzip, zstd or lz4`},
		{"pcap header cut", []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0}, ErrTruncated, ""},
		{"pcap version 1", pcapHeader(false, 1, 4, 65535, 1), ErrMalformed, ""},
		{"pcap reserved bits", pcapHeader(false, 2, 4, 65535, 0x00300000), ErrMalformed, ""},
		{"gzip garbage", []byte{0x1f, 0x8b, 0, 0, 0, 0}, ErrTruncated, ""},
		{"gzip of garbage", gzipData([]byte("hello world, not a capture")), ErrUnrecognized, `gzip content: magic "hell" is not pcap or pcapng`},
		{"zstd of garbage", zstdData([]byte("hello world, not a capture")), ErrUnrecognized, `zstd content: magic "hell" is not pcap or pcapng`},
		{"lz4 of garbage", lz4Data([]byte("hello world, not a capture")), ErrUnrecognized, `lz4 content: magic "hell" is not pcap or pcapng`},
		{"zstd garbage", []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff}, ErrMalformed, "zstd"},
		{"zstd window too big", zstdLong(), ErrMalformed, "the frame's window is above 128 MiB"},
		{"lz4 header cut", []byte{0x04, 0x22, 0x4d, 0x18, 0x64}, ErrTruncated, "lz4"},
		{"pcapng shb cut", []byte{0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a}, ErrTruncated, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewReader(bytes.NewReader(tt.data), tt.name, Options{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %v, want it to say %q", err, tt.msg)
			}
			if src != nil {
				t.Errorf("non-nil source with error")
			}
		})
	}
}

func gzipData(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdData(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zstd.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// zstdLong is a zstd frame with a 256 MiB window, as zstd --long=28 writes
// a stream of unknown size: frame header descriptor 0 (no checksum, no
// content size), window descriptor 0x90 (2^28), then one raw last block.
func zstdLong() []byte {
	return []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x90, 0x21, 0x00, 0x00, 'a', 'b', 'c', 'd'}
}

func lz4Data(b []byte) []byte {
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	w.Apply(lz4.BlockSizeOption(lz4.Block64Kb))
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// TestOpenCompressed: a zstd- or LZ4-compressed capture gives the frames of
// the plain one; cut inside the compressed stream, the frames before the
// cut and a truncation diagnostic naming the format; corrupt, a diagnostic.
func TestOpenCompressed(t *testing.T) {
	plain, err := os.ReadFile(filepath.Join(fixtureDir, "stacked.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string, data []byte) ([]frameView, []Diagnostic) {
		src, err := NewReader(bytes.NewReader(data), name, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer src.Close()
		var got []frameView
		var p Packet
		for src.Next(&p) == nil {
			got = append(got, viewPacket(&p))
		}
		return got, src.Diagnostics()
	}
	want, _ := read("plain", plain)
	copts := cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})
	for _, c := range []struct {
		codec string
		data  []byte
	}{{"zstd", zstdData(plain)}, {"lz4", lz4Data(plain)}} {
		got, diags := read(c.codec, c.data)
		if d := cmp.Diff(want, got, copts); d != "" || len(diags) != len(plainDiags(t, plain)) {
			t.Errorf("%s: frames differ (-plain +%s):\n%s\ndiagnostics %v", c.codec, c.codec, d, diags)
		}
		cut, diags := read(c.codec+" cut", c.data[:len(c.data)*6/10])
		if len(cut) == 0 || len(cut) >= len(want) || cmp.Diff(want[:len(cut)], cut, copts) != "" {
			t.Errorf("%s cut: %d of %d frames, or not the first ones", c.codec, len(cut), len(want))
		}
		if last := diags[len(diags)-1]; last.Kind != DiagTruncated || !strings.Contains(last.Msg, c.codec+" stream cut short") {
			t.Errorf("%s cut: last diagnostic %+v", c.codec, last)
		}
		bad := bytes.Clone(c.data)
		bad[len(bad)/2] ^= 0xff
		_, diags = read(c.codec+" corrupt", bad)
		if !hasKind(diags, DiagMalformed) && !hasKind(diags, DiagTruncated) {
			t.Errorf("%s corrupt: diagnostics %v", c.codec, diags)
		}
	}
}

// plainDiags returns the diagnostics of reading data uncompressed.
func plainDiags(t *testing.T, data []byte) []Diagnostic {
	src, err := NewReader(bytes.NewReader(data), "plain", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var p Packet
	for src.Next(&p) == nil {
	}
	return src.Diagnostics()
}

func TestOpenCaptureMissing(t *testing.T) {
	_, err := OpenCapture(filepath.Join(t.TempDir(), "nope.pcap"), Options{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

const fixtureDir = "../fixtures/captures"

// TestFixtures reads the crafted captures of fixtures/captures.
func TestFixtures(t *testing.T) {
	type summary struct {
		Packets, Comments, Hints, In, Out, Truncated int
		Links                                        []LinkType
		Stats                                        []string
		DiagKinds                                    []DiagKind
		FirstTS                                      int64
	}
	tests := []struct {
		file string
		want summary
	}{
		{"two-links.pcapng", summary{Packets: 31, Comments: 19, Hints: 19, In: 8, Out: 22, Truncated: 17,
			Links: []LinkType{LinkEthernet, LinkRaw}, Stats: []string{"40/3", "8/0"}, FirstTS: 1714564800000000000}},
		{"two-links.truncated-tail.pcapng", summary{Packets: 30, Comments: 19, Hints: 19, In: 8, Out: 22, Truncated: 17,
			Links: []LinkType{LinkEthernet, LinkRaw}, Stats: []string{"-", "-"}, DiagKinds: []DiagKind{DiagTruncated}, FirstTS: 1714564800000000000}},
		{"small.pcap", summary{Packets: 23, Truncated: 17, Links: []LinkType{LinkEthernet}, Stats: []string{"-"}, FirstTS: 1714564800000000000}},
		{"small-ns.pcap", summary{Packets: 23, Truncated: 17, Links: []LinkType{LinkEthernet}, Stats: []string{"-"}, FirstTS: 1714564800000000123}},
		{"small.pcap.gz", summary{Packets: 23, Truncated: 17, Links: []LinkType{LinkEthernet}, Stats: []string{"-"}, FirstTS: 1714564800000000000}},
		{"small.truncated-tail.pcap", summary{Packets: 22, Truncated: 17, Links: []LinkType{LinkEthernet}, Stats: []string{"-"},
			DiagKinds: []DiagKind{DiagTruncated}, FirstTS: 1714564800000000000}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := OpenCapture(filepath.Join(fixtureDir, tt.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var s summary
			var p Packet
			for {
				if err := src.Next(&p); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				if s.Packets == 0 {
					s.FirstTS = p.TS
				}
				s.Packets++
				if p.Comment != "" {
					s.Comments++
				}
				if p.Hint != nil && p.Hint.PID == 812 && p.Hint.Comm == "nginx" {
					s.Hints++
				}
				switch p.Dir {
				case DirIn:
					s.In++
				case DirOut:
					s.Out++
				}
				if p.Truncated {
					s.Truncated++
				}
				if p.Kind != KindIP {
					t.Errorf("packet %d: kind %v", s.Packets, p.Kind)
				}
			}
			if tt.want.In == 0 { // pcap: direction unknown
				s.In, s.Out = 0, 0
			}
			for _, i := range src.Interfaces() {
				s.Links = append(s.Links, i.Link)
				st := "-"
				if i.HasStats {
					st = fmt.Sprintf("%d/%d", i.Received, i.Dropped)
				}
				s.Stats = append(s.Stats, st)
			}
			for _, d := range src.Diagnostics() {
				s.DiagKinds = append(s.DiagKinds, d.Kind)
			}
			if d := cmp.Diff(tt.want, s); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestCorpusRecords pins timestamps, interfaces and lengths of a few corpus
// files against tshark 4.0 (`tshark -T fields -e frame.time_epoch -e
// frame.interface_id -e frame.len -e frame.cap_len`): a big-endian pcap, a
// nanosecond pcap, a pcapng with µs and ns interfaces, and a multi-section
// pcapng. For the last one the interface indices are per the pcapng spec
// (each SHB starts a new interface list; indices are global here): tshark
// 4.0 reports the section-local ids 0, 0, 0, 1 instead, although the
// 128-byte captures of packets 2 and 3 only fit the snaplen-128 interface
// of section 2.
func TestCorpusRecords(t *testing.T) {
	type rec struct {
		n               int // 1-based packet number
		ts              int64
		iface, len, cap int
	}
	tests := []struct {
		file string
		want []rec
	}{
		{"tcpdump/pptp.pcap", []rec{{1, 954147395148077000, 0, 62, 62}, {4, 954147395148666000, 0, 60, 60}}},
		{"tcpdump/tcp-handshake-nano.pcap", []rec{{1, 1418145369924505488, 0, 76, 76}, {3, 1418145370052115157, 0, 68, 68}}},
		{"zeek/pcapng-multi-interface.pcapng", []rec{{1, 1767663089500330493, 0, 96, 96}, {3, 1767663437111897000, 1, 70, 70}}},
		{"gopacket/pcapgo/tests/be/test201.pcapng", []rec{{1, 1340954905298858000, 0, 314, 96},
			{2, 1340954905298858000, 2, 342, 128}, {3, 1340954905298858000, 2, 314, 128}, {4, 1340954905301858000, 4, 168, 168}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src, err := OpenCapture(filepath.Join(corpusDir, tt.file), Options{})
			if err != nil {
				if os.IsNotExist(errors.Unwrap(err)) {
					t.Skip("corpus not available")
				}
				t.Fatal(err)
			}
			defer src.Close()
			var got []rec
			var p Packet
			for n := 1; src.Next(&p) == nil; n++ {
				for _, w := range tt.want {
					if w.n == n {
						got = append(got, rec{n, p.TS, p.Iface, p.WireLen, p.CapLen})
					}
				}
			}
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(rec{})); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

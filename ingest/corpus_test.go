package ingest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// tsharkCorpusDir is the shared capture corpus, relative to this package.
const tsharkCorpusDir = "../../shared/corpus"

// differencesFile lists every accepted difference from tshark's oracle.
const differencesFile = "../fixtures/corpus-differences.tsv"

// corpusFiles lists every capture file of the corpus, sorted.
func corpusFiles(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat(tsharkCorpusDir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("corpus missing: %v", err)
		}
		t.Skipf("corpus not available at %s: %v", tsharkCorpusDir, err)
	}
	var files []string
	err := filepath.WalkDir(tsharkCorpusDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || strings.HasSuffix(name, ".txt") || strings.HasSuffix(name, ".tsv") ||
			strings.HasSuffix(name, ".md") || name == "SHA256SUMS" {
			return nil
		}
		rel, _ := filepath.Rel(tsharkCorpusDir, path)
		files = append(files, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	return files
}

// forEachCorpusPacket reads a corpus file with OpenCapture and calls fn for
// every packet. It returns the error that ended reading (io.EOF at a clean
// end).
func forEachCorpusPacket(rel string, fn func(p *Packet)) error {
	src, err := OpenCapture(filepath.Join(tsharkCorpusDir, rel), Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	var p Packet
	for {
		if err := src.Next(&p); err != nil {
			return err
		}
		fn(&p)
	}
}

// TestCorpusNoPanic reads every corpus file to the end with OpenCapture (no
// panic, no decoder panic turned into a diagnostic), and decodes every frame
// that gopacket's independent pcapgo reader finds, checking the decoder's
// invariants on each.
func TestCorpusNoPanic(t *testing.T) {
	frames := 0
	for _, rel := range corpusFiles(t) {
		path := filepath.Join(tsharkCorpusDir, rel)
		if src, err := OpenCapture(path, Options{}); err == nil {
			var p Packet
			for src.Next(&p) == nil {
			}
			for _, d := range src.Diagnostics() {
				if strings.Contains(d.Msg, "panic") {
					t.Errorf("%s: %v", rel, d)
				}
			}
			src.Close()
		}
		d := NewDecoder()
		rawFrames(path, -1, func(link LinkType, frame []byte) {
			frames++
			var p Packet
			err := d.Decode(link, frame, &p)
			checkDecoded(t, link, frame, &p, err)
		})
	}
	t.Logf("%d raw frames decoded", frames)
}

// pairKey is an unordered address pair, A < B.
type pairKey struct{ A, B netip.Addr }

// pairCounts are frames and bytes in each direction of a pair.
type pairCounts struct{ FramesAB, BytesAB, FramesBA, BytesBA int64 }

func newPairKey(a, b netip.Addr) (pairKey, bool) {
	if b.Less(a) {
		return pairKey{b, a}, true
	}
	return pairKey{a, b}, false
}

func (c *pairCounts) add(swapped bool, bytes int64) {
	if swapped {
		c.FramesBA++
		c.BytesBA += bytes
	} else {
		c.FramesAB++
		c.BytesAB += bytes
	}
}

func (c pairCounts) String() string {
	return fmt.Sprintf("%d/%d %d/%d", c.FramesAB, c.BytesAB, c.FramesBA, c.BytesBA)
}

// countPairs counts, like tshark's field walk over ip.src/ip.dst and
// ipv6.src/ipv6.dst, every IP header of every frame: the outer one and each
// Inner layer, with the frame's original length.
func countPairs(p *Packet, m map[pairKey]*pairCounts) {
	if p.Kind != KindIP {
		return
	}
	add := func(src, dst netip.Addr) {
		k, sw := newPairKey(src, dst)
		c := m[k]
		if c == nil {
			c = &pairCounts{}
			m[k] = c
		}
		c.add(sw, int64(p.WireLen))
	}
	add(p.Tuple.Src.Addr(), p.Tuple.Dst.Addr())
	for i := 0; i < int(p.NInner); i++ {
		add(p.Inner[i].Src, p.Inner[i].Dst)
	}
}

// readTSV reads a tab-separated file with a header line.
func readTSV(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if i == 0 || line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rows = append(rows, strings.Split(line, "\t"))
	}
	return rows
}

// loadConvExact reads CONV_EXACT.tsv: per file, per pair, exact counts.
func loadConvExact(t *testing.T) map[string]map[pairKey]pairCounts {
	t.Helper()
	out := map[string]map[pairKey]pairCounts{}
	for _, r := range readTSV(t, filepath.Join(tsharkCorpusDir, "CONV_EXACT.tsv")) {
		if len(r) < 8 {
			t.Fatalf("CONV_EXACT.tsv: short row %q", r)
		}
		var n [4]int64
		for i := range n {
			v, err := strconv.ParseInt(r[4+i], 10, 64)
			if err != nil {
				t.Fatalf("CONV_EXACT.tsv: %q: %v", r, err)
			}
			n[i] = v
		}
		k, sw := newPairKey(netip.MustParseAddr(r[2]), netip.MustParseAddr(r[3]))
		c := pairCounts{n[0], n[1], n[2], n[3]}
		if sw {
			c = pairCounts{n[2], n[3], n[0], n[1]}
		}
		if out[r[0]] == nil {
			out[r[0]] = map[pairKey]pairCounts{}
		}
		out[r[0]][k] = c
	}
	return out
}

// TestCorpusAgainstTshark compares per-pair frames and bytes with tshark's
// oracle for every corpus file tshark could read. Every difference must be
// listed in fixtures/corpus-differences.tsv, and every listed difference
// must still occur.
func TestCorpusAgainstTshark(t *testing.T) {
	files := corpusFiles(t)
	want := loadConvExact(t)
	listed := map[string]string{} // "file\tA\tB" → reason
	for _, r := range readTSV(t, differencesFile) {
		if len(r) < 4 || r[3] == "" {
			t.Fatalf("%s: row %q needs file, addr_a, addr_b, reason", differencesFile, r)
		}
		k, _ := newPairKey(netip.MustParseAddr(r[1]), netip.MustParseAddr(r[2]))
		listed[r[0]+"\t"+k.A.String()+"\t"+k.B.String()] = r[3]
	}
	seen := map[string]bool{}
	var unlisted []string
	for _, rel := range files {
		if _, err := os.Stat(filepath.Join(tsharkCorpusDir, rel+".conv.txt")); err != nil {
			continue // tshark could not read it: no oracle
		}
		got := map[pairKey]*pairCounts{}
		err := forEachCorpusPacket(rel, func(p *Packet) { countPairs(p, got) })
		if err != nil && !errors.Is(err, io.EOF) {
			t.Logf("%s: read error (counts cover the packets before it): %v", rel, err)
		}
		keys := map[pairKey]bool{}
		for k := range got {
			keys[k] = true
		}
		for k := range want[rel] {
			keys[k] = true
		}
		for k := range keys {
			var g pairCounts
			if c := got[k]; c != nil {
				g = *c
			}
			w := want[rel][k]
			if g == w {
				continue
			}
			id := rel + "\t" + k.A.String() + "\t" + k.B.String()
			seen[id] = true
			if _, ok := listed[id]; !ok {
				unlisted = append(unlisted, fmt.Sprintf("%s\ttshark %v, flowblame %v", id, w, g))
			}
		}
	}
	sort.Strings(unlisted)
	for _, u := range unlisted {
		t.Errorf("unlisted difference (A→B frames/bytes, B→A frames/bytes): %s", u)
	}
	var stale []string
	for id := range listed {
		if !seen[id] {
			stale = append(stale, id)
		}
	}
	sort.Strings(stale)
	for _, s := range stale {
		t.Errorf("listed difference no longer occurs, remove it from %s: %s", differencesFile, s)
	}
}

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

const corpusDir = "../../../shared/corpus"

// flowCounts is what a round trip must keep of every flow: its key and the
// packets and wire bytes each way.
type flowCounts map[string][4]int64

// analyzeFlows analyses path as analyze does a bare capture (the engine
// alone: no geo database to load, which would make 2,000 runs slow); ok is
// false when it cannot be read.
func analyzeFlows(t *testing.T, path string) (flowCounts, bool) {
	t.Helper()
	src, err := ingest.OpenCapture(path, ingest.Options{})
	if err != nil {
		return nil, false
	}
	defer src.Close()
	r, err := analyze.Analyze(context.Background(), src, analyze.Options{})
	if err != nil {
		return nil, false
	}
	fc := flowCounts{}
	for _, f := range r.Flows {
		k := f.Key
		fc[fmt.Sprint(k.Proto, k.A, k.B, k.Oriented, k.Folded)] = [4]int64{f.Traffic.Out.Packets, f.Traffic.Out.Wire, f.Traffic.In.Packets, f.Traffic.In.Wire}
	}
	return fc, true
}

// TestCorpusRoundTrips: every corpus capture analyze reads gives the same
// flows (keys, packets and bytes each way) when it is read compressed
// (gzip, zstd, LZ4) and when the capture export --pcapng wrote of it is
// analysed again (its direction flags included).
func TestCorpusRoundTrips(t *testing.T) {
	mf, err := os.Open(filepath.Join(corpusDir, "MANIFEST.tsv"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer mf.Close()
	var files []string
	sc := bufio.NewScanner(mf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if f, _, _ := strings.Cut(sc.Text(), "\t"); f != "file" {
			files = append(files, f)
		}
	}
	dir := t.TempDir()
	n := 0
	for _, f := range files {
		path := filepath.Join(corpusDir, f)
		want, ok := analyzeFlows(t, path)
		if !ok || strings.HasSuffix(f, ".gz") {
			continue
		}
		n++
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, ext := range []string{"gz", "zst", "lz4"} {
			p := filepath.Join(dir, "c."+ext)
			if err := os.WriteFile(p, compress(ext, data), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, _ := analyzeFlows(t, p); !equalFlows(got, want) {
				t.Errorf("%s: %s-compressed gives other flows", f, ext)
			}
		}
		exp := filepath.Join(dir, "export.pcapng")
		if _, _, err := runArgs(t, "export", "--pcapng", exp, path); err != nil {
			t.Errorf("%s: export --pcapng: %v", f, err)
			continue
		}
		if got, _ := analyzeFlows(t, exp); !equalFlows(got, want) {
			t.Errorf("%s: the exported capture gives other flows", f)
		}
	}
	if n < 300 {
		t.Errorf("only %d corpus captures checked", n)
	}
}

func equalFlows(a, b flowCounts) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// compress returns b gzip-, zstd- or LZ4-compressed (ext gz, zst, lz4).
func compress(ext string, b []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch ext {
	case "gz":
		w = gzip.NewWriter(&buf)
	case "zst":
		w, _ = zstd.NewWriter(&buf)
	default:
		w = lz4.NewWriter(&buf)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

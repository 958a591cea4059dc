package ingest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// readPackets reads src to the end with Next, copying what aliases the
// read buffer.
func readPackets(src PacketSource) ([]Packet, error) {
	var out []Packet
	var p Packet
	for {
		if err := src.Next(&p); err != nil {
			return out, err
		}
		q := p
		q.Payload, q.Frame = bytes.Clone(p.Payload), bytes.Clone(p.Frame)
		out = append(out, q)
	}
}

// TestPcapShortPath reads every classic pcap of the corpus with and
// without pcapReader's short path for plain records and with a small and
// the default read buffer: the same packets, stats, diagnostics and end.
func TestPcapShortPath(t *testing.T) {
	checked, short := 0, 0
	for _, rel := range corpusFiles(t) {
		data, err := os.ReadFile(filepath.Join(tsharkCorpusDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		type run struct {
			pkts  []Packet
			err   error
			stats SourceStats
			diags []string
		}
		read := func(bufSize int, plain bool) (run, bool) {
			src, err := newReader(bytes.NewReader(data), rel, Options{}, bufSize)
			if err != nil {
				return run{}, false
			}
			defer src.Close()
			pr, ok := src.(*pcapReader)
			if !ok {
				return run{}, false
			}
			if pr.plain {
				short++
			}
			pr.plain = pr.plain && plain
			var out run
			out.pkts, out.err = readPackets(src)
			out.stats = src.Stats()
			for _, d := range src.Diagnostics() {
				out.diags = append(out.diags, d.String())
			}
			return out, true
		}
		want, ok := read(readBufSize, false)
		if !ok {
			continue
		}
		checked++
		for _, bufSize := range []int{300, readBufSize} {
			got, _ := read(bufSize, true)
			if (got.err == io.EOF) != (want.err == io.EOF) || (got.err != io.EOF && got.err.Error() != want.err.Error()) {
				t.Fatalf("%s (buffer %d): end %v, general path %v", rel, bufSize, got.err, want.err)
			}
			if len(got.pkts) != len(want.pkts) {
				t.Fatalf("%s (buffer %d): %d packets, general path %d", rel, bufSize, len(got.pkts), len(want.pkts))
			}
			for i := range got.pkts {
				if !reflect.DeepEqual(got.pkts[i], want.pkts[i]) {
					t.Fatalf("%s (buffer %d): packet %d:\n got %+v\nwant %+v", rel, bufSize, i+1, got.pkts[i], want.pkts[i])
				}
			}
			if got.stats != want.stats || !slices.Equal(got.diags, want.diags) {
				t.Fatalf("%s (buffer %d): stats %+v %q, general path %+v %q", rel, bufSize, got.stats, got.diags, want.stats, want.diags)
			}
		}
	}
	if checked < 50 || short < 50 {
		t.Fatalf("only %d classic pcap files checked, %d with the short path", checked, short)
	}
	t.Logf("%d classic pcap files, %d runs on the short path", checked, short)
}

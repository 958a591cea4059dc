package report

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// FuzzPipeline runs a capture of any content through the whole analysis:
// read, analyse (with a low --max-flows), find, build the report and render
// it in every format, and the iftop view. Nothing may panic; the result must
// validate; every renderer must succeed.
func FuzzPipeline(f *testing.F) {
	for _, name := range []string{"tcpdump/afs.pcap", "zeek/tunnels/vxlan.pcap", "gopacket/pcapgo/tests/le/test201.pcapng",
		"zeek/linux_dlt_sll2.pcap", "zeek/http-vlan-0.pcap"} {
		if b, err := os.ReadFile(filepath.Join("../../shared/corpus", name)); err == nil {
			f.Add(b[:min(len(b), 8<<10)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := ingest.NewReader(bytes.NewReader(data), "fuzz", ingest.Options{})
		if err != nil {
			return
		}
		sig := analyze.NewSignalSource(src, nil, nil)
		res, err := analyze.Analyze(context.Background(), sig, analyze.Options{MaxFlows: 20})
		src.Close()
		if res == nil {
			t.Fatalf("no result: %v", err)
		}
		if verr := res.Validate(); verr != nil {
			t.Fatal(verr)
		}
		fs := analyze.Findings(analyze.FindingInput{Result: res, Signals: sig.Signals()})
		d, err := Build(Input{Result: res, Findings: fs}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range Formats() {
			r, err := RendererFor(format)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Render(io.Discard, d); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
		}
		src, err = ingest.NewReader(bytes.NewReader(data), "fuzz", ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		scr, err := analyze.Iftop(context.Background(), src, analyze.IftopOptions{At: 10, Lines: 10})
		if err == nil {
			if err := RenderIftop(io.Discard, scr); err != nil {
				t.Fatalf("iftop: %v", err)
			}
		}
	})
}

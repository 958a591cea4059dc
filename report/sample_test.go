package report

import (
	"bytes"
	"context"
	"testing"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// sampleDoc analyses the miner fixture bundle the way `flowblame analyze`
// does and builds its Document.
func sampleDoc(t *testing.T) *Document {
	t.Helper()
	b, err := ingest.OpenBundle("../fixtures/bundles/miner", ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	src, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	local := b.LocalPrefixes()
	attr := analyze.NewSocketIndex(b.Observations, b.Processes, b.Coverage, analyze.JoinOptions{HostPrefixes: local})
	sig := analyze.NewSignalSource(src, local, nil)
	res, err := analyze.Analyze(context.Background(), sig, analyze.Options{Local: local, Attributor: attr})
	if err != nil {
		t.Fatal(err)
	}
	fs := analyze.Findings(analyze.FindingInput{Result: res, Procs: b.Processes, Manifest: &b.Manifest, Signals: sig.Signals()})
	d, err := Build(Input{Result: res, Procs: b.Processes, Manifest: &b.Manifest, Findings: fs}, Options{Tool: "flowblame test", Command: "flowblame analyze miner"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// renderAs renders d in format (a name RendererFor knows).
func renderAs(t *testing.T, d *Document, format string) []byte {
	t.Helper()
	r, err := RendererFor(format)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.Render(&buf, d); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

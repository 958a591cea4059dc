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
	b, src := openMiner(t)
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

// openMiner opens the miner fixture bundle and its packets, closed when the
// test ends.
func openMiner(t *testing.T) (*ingest.Bundle, ingest.PacketSource) {
	t.Helper()
	b, err := ingest.OpenBundle("../fixtures/bundles/miner", ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	src, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return b, src
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

// TestCaptureFilterLine: a bundle collected with --filter says so in the
// Capture section and the JSON.
func TestCaptureFilterLine(t *testing.T) {
	b, src := openMiner(t)
	res, err := analyze.Analyze(context.Background(), src, analyze.Options{Local: b.LocalPrefixes()})
	if err != nil {
		t.Fatal(err)
	}
	man := b.Manifest
	man.Capture.Filter = "not port 22"
	d, err := Build(Input{Result: res, Manifest: &man}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	text := string(renderAs(t, d, "text"))
	if !bytes.Contains([]byte(text), []byte(`capture filter "not port 22": what it kept out is in no total or table`)) ||
		!bytes.Contains(renderAs(t, d, "json"), []byte(`"filter": "not port 22"`)) {
		t.Errorf("no filter line or field:\n%s", text)
	}
}

package collect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
)

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "capture"), 0o755)
	os.WriteFile(filepath.Join(dir, "capture", "00000.pcapng"), []byte("abc"), 0o644)
	os.WriteFile(filepath.Join(dir, "counters.jsonl"), nil, 0o644)
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []ingest.FileEntry{
		{Path: "capture/00000.pcapng", Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{Path: "counters.jsonl", Size: 0, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	if d := cmp.Diff(want, files); d != "" {
		t.Fatalf("files (-want +got):\n%s", d)
	}
	m := &ingest.Manifest{Format: ingest.BundleFormat, Tool: "flowblame test", Files: files,
		Interfaces: []ingest.IfaceInfo{{Index: 1, Name: "lo", Addrs: []string{"127.0.0.1/8"}}}}
	if err := writeManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, ingest.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ingest.ReadManifest(f)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, got); d != "" {
		t.Errorf("manifest (-want +got):\n%s", d)
	}
	// the manifest itself is never listed
	files2, _ := listFiles(dir)
	if len(files2) != 2 {
		t.Errorf("listFiles after manifest: %v", files2)
	}
}

func TestParseBootTime(t *testing.T) {
	bt, err := parseBootTime(strings.NewReader("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"))
	if err != nil || bt != 1700000000e9 {
		t.Errorf("parseBootTime = %d, %v", bt, err)
	}
	if _, err := parseBootTime(strings.NewReader("cpu 1\n")); !errors.Is(err, ingest.ErrMalformed) {
		t.Errorf("no btime: %v", err)
	}
	if _, err := parseBootTime(strings.NewReader("btime x\n")); !errors.Is(err, ingest.ErrMalformed) {
		t.Errorf("bad btime: %v", err)
	}
}

func TestHostInfo(t *testing.T) {
	h, _ := hostInfo()
	if h.OS != "linux" || h.Kernel == "" {
		t.Errorf("hostInfo = %+v", h)
	}
}

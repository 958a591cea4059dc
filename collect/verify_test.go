package collect

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/internal/fixturecopy"
	"github.com/google/go-cmp/cmp"
)

// sealedBundle writes a small bundle directory with a manifest.
func sealedBundle(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := makeBundleDir(dir); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"capture/00000.pcapng": "pcapng bytes",
		ingest.SocketsFile:     `{"kind":"snapshot"}` + "\n",
		ingest.CountersFile:    "",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeManifest(dir, &ingest.Manifest{Format: ingest.BundleFormat, Files: files}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(dir string)
		want   VerifyReport
	}{
		{"intact", func(string) {}, VerifyReport{Listed: 3, OK: 3}},
		{"modified same size", func(d string) {
			os.WriteFile(filepath.Join(d, "capture/00000.pcapng"), []byte("PCAPNG bytes"), 0o644)
		}, VerifyReport{Listed: 3, OK: 2, Mismatch: []string{"capture/00000.pcapng: sha256 "}}},
		{"truncated", func(d string) {
			os.WriteFile(filepath.Join(d, ingest.SocketsFile), []byte("{"), 0o644)
		}, VerifyReport{Listed: 3, OK: 2, Mismatch: []string{"sockets.jsonl: size 1, manifest says 20"}}},
		{"missing and extra", func(d string) {
			os.Rename(filepath.Join(d, ingest.CountersFile), filepath.Join(d, "other.jsonl"))
		}, VerifyReport{Listed: 3, OK: 2, Missing: []string{"counters.jsonl"}, Extra: []string{"other.jsonl"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := sealedBundle(t)
			tc.tamper(dir)
			for _, archived := range []string{"", ".tar.gz", ".tar"} {
				p := dir + archived
				if archived != "" {
					if err := writeTarGz(dir, dir+".tar.gz"); err != nil {
						t.Fatal(err)
					}
				}
				if archived == ".tar" { // the same archive, not compressed
					zf, err := os.Open(dir + ".tar.gz")
					if err != nil {
						t.Fatal(err)
					}
					zr, err := gzip.NewReader(zf)
					if err != nil {
						t.Fatal(err)
					}
					plain, _ := io.ReadAll(zr)
					zf.Close()
					os.WriteFile(p, plain, 0o644)
				}
				r, err := VerifyBundle(p)
				if err != nil {
					t.Fatal(err)
				}
				// keep only the stable prefix of hash mismatches
				for i, m := range r.Mismatch {
					if j := strings.Index(m, "sha256 "); j >= 0 {
						r.Mismatch[i] = m[:j+len("sha256 ")]
					}
				}
				if d := cmp.Diff(&tc.want, r); d != "" {
					t.Errorf("archived=%q report (-want +got):\n%s", archived, d)
				}
				err = Verify(p, io.Discard)
				if tc.want.OK == tc.want.Listed && len(tc.want.Extra) == 0 {
					if err != nil {
						t.Errorf("Verify: %v", err)
					}
				} else if !errors.Is(err, ErrBundleMismatch) {
					t.Errorf("Verify err = %v, want ErrBundleMismatch", err)
				}
			}
		})
	}
}

func TestVerifyUnreadable(t *testing.T) {
	dir := t.TempDir()
	if _, err := VerifyBundle(filepath.Join(dir, "nope")); err == nil {
		t.Error("missing bundle: no error")
	}
	if _, err := VerifyBundle(dir); err == nil {
		t.Error("no manifest: no error")
	}
	p := filepath.Join(dir, "x.tar.gz")
	os.WriteFile(p, []byte("not gzip"), 0o644)
	if _, err := VerifyBundle(p); !errors.Is(err, ingest.ErrUnrecognized) {
		t.Errorf("not gzip: %v", err)
	}
}

func FuzzReadTarGz(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "b")
	os.MkdirAll(filepath.Join(dir, "capture"), 0o755)
	os.WriteFile(filepath.Join(dir, "capture", "00000.pcapng"), []byte("x"), 0o644)
	files, _ := listFiles(dir)
	writeManifest(dir, &ingest.Manifest{Format: 1, Files: files})
	writeTarGz(dir, dir+".tar.gz")
	b, _ := os.ReadFile(dir + ".tar.gz")
	f.Add(b)
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, found, err := readTarGz(bytes.NewReader(b))
		if err != nil {
			return
		}
		if m == nil || found == nil {
			t.Fatal("nil result without error")
		}
		compare(m, found)
	})
}

// TestVerifySpecialFiles: a listed file that is a symbolic link (to a copy
// outside the bundle) is a mismatch, not "intact", and a symlink to a
// directory is an extra entry, not an error; neither is followed.
func TestVerifySpecialFiles(t *testing.T) {
	dir := fixturecopy.Bundle(t, "../fixtures/bundles/miner", nil)
	// The capture lives outside, linked in.
	capPath := filepath.Join(dir, "capture", "00000.pcapng")
	outside := filepath.Join(t.TempDir(), "00000.pcapng")
	if err := os.Rename(capPath, outside); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, capPath); err != nil {
		t.Skip(err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "loop")); err != nil {
		t.Skip(err)
	}
	r, err := VerifyBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Intact() || len(r.Mismatch) != 1 || !strings.Contains(r.Mismatch[0], "a symbolic link, not a regular file") ||
		len(r.Extra) != 1 || r.Extra[0] != "loop (a symbolic link)" {
		t.Errorf("report %+v", r)
	}
}

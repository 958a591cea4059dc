package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	// sha256("abc")
	manifest := `{"format":1,"files":[{"path":"a.txt","size":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]}`
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("abc"), 0o644)
	run := func() (int, string) {
		var out, errw bytes.Buffer
		err := newApp(&out, &errw).RunContext(context.Background(), []string{"flowblame", "verify", dir})
		return exitCode(err), out.String()
	}
	if code, out := run(); code != exitOK || !strings.Contains(out, "intact") {
		t.Errorf("intact bundle: exit %d, %q", code, out)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("abd"), 0o644)
	if code, out := run(); code != exitError || !strings.Contains(out, "MISMATCH a.txt") {
		t.Errorf("tampered bundle: exit %d, %q", code, out)
	}
}

// Package fixturecopy copies fixture bundles for tests that damage or edit
// them (the committed fixtures are never written to).
package fixturecopy

import (
	"os"
	"path/filepath"
	"testing"
)

// Bundle copies the bundle directory src into a new temporary directory and
// returns its path. edit, when not nil, gets each file's bundle-relative
// path (slash-separated) and contents and returns what to write.
func Bundle(t testing.TB, src string, edit func(rel string, data []byte) []byte) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if edit != nil {
			data = edit(filepath.ToSlash(rel), data)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy bundle %s: %v", src, err)
	}
	return dir
}

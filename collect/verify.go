package collect

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// ErrBundleMismatch says a bundle does not match its manifest: files are
// missing, extra, or differ in size or SHA-256.
var ErrBundleMismatch = errors.New("bundle does not match its manifest")

// VerifyReport is the outcome of checking a bundle against its manifest.
type VerifyReport struct {
	Listed   int      // files listed in the manifest
	OK       int      // listed files present with the right size and hash
	Missing  []string // listed but absent
	Extra    []string // present but not listed (manifest.json excluded)
	Mismatch []string // "path: size 10 != 12" / "path: sha256 ..."
	// Unfinished: the manifest is the partial one written at the start of
	// a collection that never finished (killed): it lists no files.
	Unfinished bool
}

// Intact says every listed file matched and nothing else was present.
func (r *VerifyReport) Intact() bool {
	return !r.Unfinished && len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.Mismatch) == 0
}

// fileSum is the size and SHA-256 of one file found in a bundle.
type fileSum struct {
	size int64
	sum  string
	// special names what the entry is when it is not a regular file (a
	// symbolic link, a named pipe...): it is not hashed, and it matches
	// nothing (analyze does not read it either).
	special string
}

// VerifyBundle checks a bundle directory or .tar.gz against its
// manifest.json. The error is for an unreadable bundle or manifest; file
// problems are in the report.
func VerifyBundle(p string) (*VerifyReport, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	var (
		m     *ingest.Manifest
		found map[string]fileSum
	)
	if st.IsDir() {
		mp := filepath.Join(p, ingest.ManifestFile)
		if mst, err := os.Lstat(mp); err == nil && !mst.Mode().IsRegular() {
			return nil, fmt.Errorf("verify %s: %s is not a regular file (%s): %w", p, ingest.ManifestFile, mst.Mode().Type(), ingest.ErrUnrecognized)
		}
		f, err := os.Open(mp)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		m, err = ingest.ReadManifest(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", p, err)
		}
		found, err = sumDir(p)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	} else {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		defer f.Close()
		m, found, err = readTarGz(f)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", p, err)
		}
	}
	return compare(m, found), nil
}

// Verify checks a bundle and writes a human-readable report to w. It
// returns an error wrapping ErrBundleMismatch when the bundle is not intact.
func Verify(p string, w io.Writer) error {
	r, err := VerifyBundle(p)
	if err != nil {
		return err
	}
	if r.Unfinished {
		fmt.Fprintf(w, "%s: the collection never finished (killed?): its manifest is the partial one written at the start and lists no hashes\n", p)
	}
	for _, s := range r.Missing {
		fmt.Fprintf(w, "MISSING  %s\n", s)
	}
	for _, s := range r.Extra {
		fmt.Fprintf(w, "EXTRA    %s\n", s)
	}
	for _, s := range r.Mismatch {
		fmt.Fprintf(w, "MISMATCH %s\n", s)
	}
	if !r.Intact() {
		fmt.Fprintf(w, "%s: %d of %d files OK, %d missing, %d extra, %d mismatched\n",
			p, r.OK, r.Listed, len(r.Missing), len(r.Extra), len(r.Mismatch))
		return fmt.Errorf("verify %s: %w", p, ErrBundleMismatch)
	}
	fmt.Fprintf(w, "%s: intact (%d files, SHA-256 verified)\n", p, r.Listed)
	return nil
}

func compare(m *ingest.Manifest, found map[string]fileSum) *VerifyReport {
	r := &VerifyReport{Listed: len(m.Files), Unfinished: m.Capture.StopReason == StopRunning}
	listed := map[string]bool{}
	for _, f := range m.Files {
		listed[f.Path] = true
		got, ok := found[f.Path]
		switch {
		case !ok:
			r.Missing = append(r.Missing, f.Path)
		case got.special != "":
			r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s: %s, not a regular file", f.Path, got.special))
		case got.size != f.Size:
			r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s: size %d, manifest says %d", f.Path, got.size, f.Size))
		case !strings.EqualFold(got.sum, f.SHA256):
			r.Mismatch = append(r.Mismatch, fmt.Sprintf("%s: sha256 %s, manifest says %s", f.Path, got.sum, f.SHA256))
		default:
			r.OK++
		}
	}
	for p, got := range found {
		if !listed[p] && p != ingest.ManifestFile {
			if got.special != "" {
				p += " (" + got.special + ")"
			}
			r.Extra = append(r.Extra, p)
		}
	}
	slices.Sort(r.Missing)
	slices.Sort(r.Extra)
	slices.Sort(r.Mismatch)
	return r
}

func sumDir(dir string) (map[string]fileSum, error) {
	found := map[string]fileSum{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if t := d.Type(); t != 0 { // not a regular file: never followed or read
			found[filepath.ToSlash(rel)] = fileSum{special: ingest.FileKind(t)}
			return nil
		}
		n, sum, err := hashFile(p)
		if err != nil {
			return err
		}
		found[filepath.ToSlash(rel)] = fileSum{size: n, sum: sum}
		return nil
	})
	return found, err
}

// readTarGz hashes every regular file of a .tar.gz (or plain .tar) bundle and decodes its
// manifest. Entries may sit under one top-level directory (as `tar czf
// b.tar.gz b` makes); that prefix is stripped.
func readTarGz(r io.Reader) (*ingest.Manifest, map[string]fileSum, error) {
	br := bufio.NewReader(r)
	var in io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("open gzip: %w: %w", ingest.ErrUnrecognized, err)
		}
		in = gz
	} // else a plain tar, as analyze reads it
	tr := tar.NewReader(in)
	raw := map[string]fileSum{}
	manifests := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(raw) == 0 {
				return nil, nil, fmt.Errorf("not a tar or tar.gz archive: %w: %w", ingest.ErrUnrecognized, err)
			}
			return nil, nil, fmt.Errorf("read tar: %w: %w", ingest.ErrTruncated, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		hs := sha256.New()
		var buf bytes.Buffer
		dst := io.Writer(hs)
		if path.Base(name) == ingest.ManifestFile && strings.Count(name, "/") <= 1 {
			dst = io.MultiWriter(hs, &buf)
		}
		n, err := io.Copy(dst, io.LimitReader(tr, max(h.Size, 0)))
		if err != nil {
			return nil, nil, fmt.Errorf("read tar entry %q: %w: %w", name, ingest.ErrTruncated, err)
		}
		if buf.Len() > 0 || dst != io.Writer(hs) {
			manifests[name] = buf.Bytes()
		}
		raw[name] = fileSum{size: n, sum: hex.EncodeToString(hs.Sum(nil))}
	}
	prefix := ""
	mb, ok := manifests[ingest.ManifestFile]
	if !ok {
		var names []string
		for n := range manifests {
			names = append(names, n)
		}
		if len(names) != 1 {
			return nil, nil, fmt.Errorf("no single %s in archive: %w", ingest.ManifestFile, ingest.ErrMalformed)
		}
		mb = manifests[names[0]]
		prefix = path.Dir(names[0]) + "/"
	}
	m, err := ingest.ReadManifest(bytes.NewReader(mb))
	if err != nil {
		return nil, nil, err
	}
	found := map[string]fileSum{}
	for n, s := range raw {
		if rel, ok := strings.CutPrefix(n, prefix); ok {
			found[rel] = s
		} else {
			found["../"+n] = s // outside the bundle directory: reported as extra
		}
	}
	return m, found, nil
}

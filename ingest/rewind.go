package ingest

import (
	"bytes"
	"errors"
	"io"
)

// ErrRewindLimit is returned by a Rewinder's look-ahead readers once they
// have pulled more than the Rewinder keeps.
var ErrRewindLimit = errors.New("look-ahead limit reached")

// Rewinder reads a stream that can be read only once (standard input) as if
// it could be opened several times from its start, provided the earlier
// readers only look at its beginning: whatever they pull from the stream is
// kept (up to a limit) and replayed to every later reader. The last reader,
// from Final, keeps nothing, so the whole stream is never held in memory.
// A Rewinder is not safe for concurrent use.
type Rewinder struct {
	src   io.Reader
	kept  []byte
	limit int
	err   error // the stream's error, once seen (io.EOF at its end)
	final bool
}

// NewRewinder returns a Rewinder over src that keeps at most limit bytes
// for its look-ahead readers.
func NewRewinder(src io.Reader, limit int) *Rewinder {
	return &Rewinder{src: src, limit: limit}
}

// Open returns a reader from the start of the stream. What it reads beyond
// what earlier readers pulled is kept for the readers after it; past the
// limit it fails with ErrRewindLimit. Open must not be called after Final.
func (w *Rewinder) Open() io.Reader {
	if w.final {
		panic("ingest: Rewinder.Open after Final")
	}
	return &rewindReader{w: w}
}

// Final returns the last reader: the stream from its start, the kept bytes
// first, then the rest straight from the stream.
func (w *Rewinder) Final() io.Reader {
	w.final = true
	kept := w.kept
	w.kept = nil
	if w.err != nil {
		return io.MultiReader(bytes.NewReader(kept), errReader{w.err})
	}
	return io.MultiReader(bytes.NewReader(kept), w.src)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type rewindReader struct {
	w   *Rewinder
	pos int
}

func (r *rewindReader) Read(p []byte) (int, error) {
	w := r.w
	if w.final {
		return 0, errors.New("ingest: Rewinder reader used after Final")
	}
	if r.pos < len(w.kept) {
		n := copy(p, w.kept[r.pos:])
		r.pos += n
		return n, nil
	}
	if w.err != nil {
		return 0, w.err
	}
	room := w.limit - len(w.kept)
	if room <= 0 {
		return 0, ErrRewindLimit
	}
	n, err := w.src.Read(p[:min(len(p), room)])
	w.kept = append(w.kept, p[:n]...)
	r.pos += n
	if err != nil {
		w.err = err
	}
	return n, err
}

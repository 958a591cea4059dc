package ingest

import (
	"bytes"
	"errors"
	"io"
)

// ErrRewindLimit is returned by a Rewinder's look-ahead readers once they
// have pulled more than the Rewinder keeps.
var ErrRewindLimit = errors.New("look-ahead limit reached")

// rewindChunk is the size of the pieces a Rewinder keeps (no doubling
// copies: what is kept is what was read, plus at most one chunk).
const rewindChunk = 1 << 20

// Rewinder reads a stream that can be read only once (standard input) as if
// it could be opened several times from its start, provided the earlier
// readers only look at its beginning: whatever they pull from the stream is
// kept (up to a limit) and replayed to every later reader. The last reader,
// from Final, keeps nothing, so the whole stream is never held in memory.
// A Rewinder is not safe for concurrent use.
type Rewinder struct {
	src      io.Reader
	chunks   [][]byte // kept bytes, each chunk full but the last
	n        int      // bytes kept
	limit    int
	err      error // the stream's error, once seen (io.EOF at its end)
	final    bool
	exceeded bool
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

// Exceeded reports whether a look-ahead reader wanted more than the limit:
// it failed with ErrRewindLimit (which a reader above it, such as gzip, may
// have turned into an error of its own).
func (w *Rewinder) Exceeded() bool { return w.exceeded }

// Stop ends the stream where the look-aheads left it: Final then gives the
// kept bytes only (the reading was interrupted).
func (w *Rewinder) Stop() { w.err = io.EOF }

// Final returns the last reader: the stream from its start, the kept bytes
// first, then the rest straight from the stream.
func (w *Rewinder) Final() io.Reader {
	w.final = true
	rs := make([]io.Reader, 0, len(w.chunks)+1)
	for _, c := range w.chunks {
		rs = append(rs, bytes.NewReader(c))
	}
	w.chunks = nil
	if w.err != nil {
		return io.MultiReader(append(rs, errReader{w.err})...)
	}
	return io.MultiReader(append(rs, w.src)...)
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
	if len(p) == 0 {
		return 0, nil
	}
	if r.pos < w.n {
		c := w.chunks[r.pos/rewindChunk]
		n := copy(p, c[r.pos%rewindChunk:])
		r.pos += n
		return n, nil
	}
	if w.err != nil {
		return 0, w.err
	}
	// At the limit, one more byte tells a stream that ends exactly there
	// from a longer one.
	room := w.limit - w.n
	if room <= 0 {
		if w.n > w.limit {
			w.exceeded = true
			return 0, ErrRewindLimit
		}
		room = 1
	}
	last := len(w.chunks) - 1
	if last < 0 || len(w.chunks[last]) == rewindChunk {
		w.chunks = append(w.chunks, make([]byte, 0, rewindChunk))
		last++
	}
	c := w.chunks[last]
	m := min(len(p), room, rewindChunk-len(c))
	n, err := w.src.Read(c[len(c) : len(c)+m])
	w.chunks[last] = c[:len(c)+n]
	w.n += n
	if err != nil {
		w.err = err
	}
	if w.n > w.limit {
		w.exceeded = true
		// The byte beyond the limit is kept for the readers to come but not
		// given to this one.
		return 0, ErrRewindLimit
	}
	n = copy(p, w.chunks[last][len(c):len(c)+n])
	r.pos += n
	return n, err
}

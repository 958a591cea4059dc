package report

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"
)

// safeRenderer renders for people: what the captured host wrote (process
// names and command lines, hostnames, interface names, payload excerpts)
// is attacker-controlled, and must not reach the reader's terminal, ticket
// or browser as anything but text. Control characters (terminal escape
// sequences, carriage returns that overwrite a line, BEL), bidirectional
// overrides that reorder what is shown, and invalid UTF-8 become U+FFFD;
// in Markdown, < and > outside code blocks become entities, so no HTML
// reaches the renderer of the ticket system. JSON keeps the raw strings
// (escaped by the encoder): it is the forensic record.
type safeRenderer struct {
	inner    Renderer
	markdown bool
}

// Render implements Renderer.
func (s safeRenderer) Render(w io.Writer, d *Document) error {
	var buf bytes.Buffer
	if err := s.inner.Render(&buf, d); err != nil {
		return err
	}
	_, err := io.WriteString(w, sanitizeOutput(buf.String(), s.markdown))
	return err
}

// unsafeRune reports whether r must not be printed as is.
func unsafeRune(r rune) bool {
	switch {
	case r == '\n' || r == '\t':
		return false
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f): // C0, DEL, C1
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return r == utf8.RuneError
}

// sanitizeOutput replaces unsafe runes (and, for Markdown, escapes < and >
// outside fenced code blocks).
func sanitizeOutput(s string, markdown bool) string {
	var b strings.Builder
	b.Grow(len(s))
	inFence := false
	for line := range strings.SplitAfterSeq(s, "\n") {
		if markdown && strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		for _, r := range line {
			switch {
			case unsafeRune(r): // also an invalid byte, which ranges as U+FFFD
				b.WriteRune(utf8.RuneError)
			case markdown && !inFence && r == '<':
				b.WriteString("&lt;")
			case markdown && !inFence && r == '>':
				b.WriteString("&gt;")
			default:
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

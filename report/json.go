package report

import (
	"encoding/json"
	"io"
)

// JSONRenderer writes the Document as indented JSON (raw numbers only; the
// schema is documented in README.md and versioned by Document.Schema).
type JSONRenderer struct{}

// Render implements Renderer.
func (JSONRenderer) Render(w io.Writer, d *Document) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(d)
}

package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Renderer prints a Document. Renderers are pure: no analysis, no sorting
// decisions, no filesystem or clock access.
type Renderer interface {
	Render(w io.Writer, d *Document) error
}

// renderers is the one place that maps format names to renderers.
func renderers() map[string]Renderer {
	return map[string]Renderer{
		"text":  safeRenderer{inner: TextRenderer{}},
		"json":  JSONRenderer{},
		"md":    safeRenderer{inner: MarkdownRenderer{}, markdown: true},
		"html":  safeRenderer{inner: HTMLRenderer{}},
		"brief": safeRenderer{inner: BriefRenderer{}},
	}
}

// Formats lists the document formats, sorted (the iftop view is separate:
// RenderIftop).
func Formats() []string {
	var fs []string
	for k := range renderers() {
		fs = append(fs, k)
	}
	slices.Sort(fs)
	return fs
}

// RendererFor returns the renderer of a format name.
func RendererFor(format string) (Renderer, error) {
	r, ok := renderers()[format]
	if !ok {
		return nil, fmt.Errorf("unknown format %q (want one of %s, iftop)", format, strings.Join(Formats(), ", "))
	}
	return r, nil
}

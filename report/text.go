package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// TextRenderer prints the report as console tables (tablewriter).
type TextRenderer struct{}

func table(w io.Writer, header []string, rows [][]string) error {
	t := tablewriter.NewTable(w,
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoFormat(tw.Off),
	)
	t.Header(header)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return err
		}
	}
	return t.Render()
}

// Render implements Renderer.
func (TextRenderer) Render(w io.Writer, d *Document) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	title := "flowblame report"
	if d.Host != nil && d.Host.Hostname != "" {
		title += " — " + d.Host.Hostname
	}
	p("%s\n%s\n\n", title, strings.Repeat("=", len([]rune(title))))
	p("VERDICT [%s]: %s\n", strings.ToUpper(d.Verdict.Severity), d.Verdict.Summary)
	if d.Verdict.Next != "" {
		p("NEXT: %s\n", d.Verdict.Next)
	}
	p("\n")
	if len(d.Findings) > 0 {
		p("Findings\n--------\n")
		for _, f := range d.Findings {
			p("[%s] %s: %s\n", strings.ToUpper(f.Severity), f.ID, f.Summary)
			for _, e := range f.Evidence {
				p("    - %s\n", e)
			}
			if f.Next != "" {
				p("    next: %s\n", f.Next)
			}
		}
		p("\n")
	}
	p("Capture\n-------\n")
	for _, l := range d.Capture.Text {
		p("%s\n", l)
	}
	p("units: %s\n\n", d.Units.Note)
	if ew.err != nil {
		return ew.err
	}

	if len(d.Processes) > 0 {
		p("Top processes (wire bytes; rates are TX+RX %s)\n", d.Units.Rates)
		var rows [][]string
		for _, r := range d.Processes {
			rows = append(rows, []string{r.Fmt["proc"], r.User, r.Fmt["tx"], r.Fmt["rx"], r.Fmt["share"], r.Fmt["2s"], r.Fmt["10s"], r.Fmt["40s"], r.Fmt["peak"], r.Fmt["flows"], r.Fmt["method"], r.Fmt["exe"], r.Fmt["notes"]})
		}
		if err := table(ew, []string{"process", "user", "tx", "rx", "share", "2s", "10s", "40s", "peak", "flows", "attributed by", "exe", "notes"}, rows); err != nil {
			return err
		}
		p("\n")
	}
	if h, rows := groupCells(d); len(rows) > 0 {
		p("By user and container\n")
		if err := table(ew, h, rows); err != nil {
			return err
		}
		p("\n")
	}
	if len(d.Remotes) > 0 {
		p("Top remote hosts (country/ASN: %s)\n", geoNote(d.Geo))
		var rows [][]string
		for _, r := range d.Remotes {
			rows = append(rows, []string{r.Addr, r.Fmt["where"], r.Fmt["tx"], r.Fmt["rx"], r.Fmt["2s"], r.Fmt["10s"], r.Fmt["40s"], r.Fmt["peak"], r.Fmt["flows"], r.Fmt["procs"]})
		}
		if err := table(ew, []string{"remote", "where", "tx", "rx", "2s", "10s", "40s", "peak", "flows", "processes"}, rows); err != nil {
			return err
		}
		p("\n")
	}
	if len(d.Conversations) > 0 {
		p("Top conversations by %s (group: %s; out = A→B, in = B→A; → means A is local)\n", d.Sort, d.Group)
		h, rows := conversationCells(d, nil)
		if err := table(ew, h, rows); err != nil {
			return err
		}
		p("\n")
	}
	if len(d.Tunnels) > 0 {
		p("Inside tunnels (whole frames, counted in their outer flow above; A→B / B→A by the inner header)\n")
		h, rows := tunnelCells(d, nil)
		if err := table(ew, h, rows); err != nil {
			return err
		}
		p("\n")
	}
	if len(d.TunnelProcesses) > 0 {
		p("Processes inside tunnels (the owned inner flows above, summed per process; TX = what its end sent)\n")
		h, rows := tunnelProcCells(d)
		if err := table(ew, h, rows); err != nil {
			return err
		}
		p("\n")
	}
	p("Attribution coverage\n--------------------\n")
	for _, l := range d.Coverage.Text {
		p("%s\n", l)
	}
	if len(d.Diagnostics) > 0 {
		p("\nInput diagnostics\n-----------------\n")
		for _, dg := range d.Diagnostics {
			cnt := ""
			if dg.Count > 1 {
				cnt = fmt.Sprintf(" (%d times)", dg.Count)
			}
			file := ""
			if dg.File != "" { // the analysis's own diagnostics name no file
				file = dg.File + ": "
			}
			p("%s%s: %s: %s%s\n", file, dg.Where, dg.Kind, dg.Message, cnt)
		}
	}
	if d.Command != "" {
		p("\nreproduce: %s\n", d.Command)
	}
	return ew.err
}

func geoNote(g GeoSource) string {
	var s []string
	if g.Country != "" {
		s = append(s, g.Country)
	}
	if g.ASN != "" {
		s = append(s, g.ASN)
	}
	if len(s) == 0 {
		if g.Note != "" {
			return g.Note
		}
		return "special ranges only"
	}
	return strings.Join(s, "; ")
}

// errWriter keeps the first write error so renderers can check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	e.err = err
	return n, err
}

// conversationCells is the conversation table shared by the text and
// Markdown renderers; code, when not nil, wraps the conversation cell (as
// a Markdown code span).
func conversationCells(d *Document, code func(string) string) ([]string, [][]string) {
	var rows [][]string
	for _, c := range d.Conversations {
		row := []string{wrapCode(code, c.Fmt["pair"]), c.Fmt["out"], c.Fmt["in"], c.Fmt["out2s"] + " / " + c.Fmt["in2s"], c.Fmt["out10s"] + " / " + c.Fmt["in10s"], c.Fmt["out40s"] + " / " + c.Fmt["in40s"], c.Fmt["peak"]}
		if d.Group == "flow" {
			row = append(row, c.Fmt["owner"])
		}
		rows = append(rows, row)
	}
	h := []string{"conversation", "out", "in", "2s out/in", "10s out/in", "40s out/in", "peak"}
	if d.Group == "flow" {
		h = append(h, "process")
	}
	return h, rows
}

// tunnelCells is the inside-tunnels table shared by the text, Markdown and
// HTML renderers.
func tunnelCells(d *Document, code func(string) string) ([]string, [][]string) {
	owners := slices.ContainsFunc(d.Tunnels, func(t TunnelRow) bool { return t.Owner != "" })
	var rows [][]string
	for _, t := range d.Tunnels {
		row := []string{wrapCode(code, t.Fmt["inner"]), wrapCode(code, t.Fmt["outer"]), t.Fmt["ab"], t.Fmt["ba"], t.Fmt["10s"], t.Fmt["peak"], t.Fmt["pkts"]}
		if owners {
			row = append(row, t.Fmt["owner"])
		}
		rows = append(rows, row)
	}
	h := []string{"inner flow", "carried by", "A→B", "B→A", "10s A→B / B→A", "peak", "frames"}
	if owners {
		h = append(h, "process (end)")
	}
	return h, rows
}

// tunnelProcCells is the processes-inside-tunnels table shared by the text,
// Markdown and HTML renderers.
func tunnelProcCells(d *Document) ([]string, [][]string) {
	var rows [][]string
	for _, t := range d.TunnelProcesses {
		rows = append(rows, []string{t.Fmt["process"], t.Fmt["tx"], t.Fmt["rx"], t.Fmt["10s"], t.Fmt["flows"], t.Fmt["share"], t.Fmt["exe"]})
	}
	return []string{"process", "tx", "rx", "10s tx / rx", "inner flows", "share", "exe"}, rows
}

// groupCells is the user/container table shared by the text, Markdown and
// HTML renderers.
func groupCells(d *Document) ([]string, [][]string) {
	var rows [][]string
	for _, kind := range []struct {
		name string
		g    []GroupRow
	}{{"user", d.Users}, {"container", d.Containers}} {
		for _, g := range kind.g {
			rows = append(rows, []string{kind.name, g.Name, g.Fmt["procs"], g.Fmt["tx"], g.Fmt["rx"], g.Fmt["share"], g.Fmt["10s"]})
		}
	}
	return []string{"by", "name", "processes", "tx", "rx", "share", "10s"}, rows
}

// wrapCode applies code to s when code is not nil.
func wrapCode(code func(string) string, s string) string {
	if code == nil {
		return s
	}
	return code(s)
}

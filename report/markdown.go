package report

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownRenderer prints a ticket-ready report: the verdict first, then the
// findings with their evidence, the top processes, remote hosts and
// conversations, coverage, and the evidence needed to reproduce it.
type MarkdownRenderer struct{}

// mdCode puts s in a Markdown code span that s cannot end: the fence is
// one backtick longer than the longest run of backticks in s, with spaces
// around s when it begins or ends with one (CommonMark, code spans). A
// process name is chosen by whoever runs it.
func mdCode(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// mdCell escapes a table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if s == "" {
		return " "
	}
	return s
}

func mdTable(w io.Writer, header []string, rows [][]string) {
	fmt.Fprintf(w, "| %s |\n|", strings.Join(header, " | "))
	for range header {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}

// Render implements Renderer.
func (MarkdownRenderer) Render(w io.Writer, d *Document) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	// The first line is the verdict: it is what a ticket's title is made of.
	p("**Verdict (%s):** %s\n\n", d.Verdict.Severity, d.Verdict.Summary)
	if d.Verdict.Next != "" {
		p("**Next step:** %s\n\n", d.Verdict.Next)
	}
	host := "the captured host"
	if d.Host != nil && d.Host.Hostname != "" {
		host = mdCode(d.Host.Hostname)
	}
	p("# flowblame report for %s\n\n", host)
	p("Capture %s → %s (%s). %s\n\n", d.Capture.First.Format("2006-01-02 15:04:05Z"), d.Capture.Last.Format("2006-01-02 15:04:05Z"),
		fmtDuration(d.Capture.Duration), d.Units.Note)

	p("## Findings\n\n")
	if len(d.Findings) == 0 {
		p("No rule fired.\n\n")
	}
	for _, f := range d.Findings {
		p("### [%s] %s\n\n%s\n\n", strings.ToUpper(f.Severity), f.ID, f.Summary)
		for _, e := range f.Evidence {
			p("- %s\n", e)
		}
		if len(f.Evidence) > 0 {
			p("\n")
		}
		if f.Next != "" {
			p("*Next:* %s\n\n", f.Next)
		}
	}

	p("## Top processes\n\n")
	if len(d.Processes) == 0 {
		p("No socket data: traffic is not attributed to processes.\n\n")
	} else {
		var rows [][]string
		for _, r := range d.Processes {
			rows = append(rows, []string{mdCode(r.Fmt["proc"]), r.User, r.Fmt["exe"], r.Fmt["tx"], r.Fmt["rx"], r.Fmt["share"], r.Fmt["10s"], r.Fmt["peak"], r.Fmt["method"], r.Fmt["notes"]})
		}
		mdTable(ew, []string{"process", "user", "exe", "TX", "RX", "share", "10 s rate", "peak", "attributed by", "notes"}, rows)
	}

	if h, rows := groupCells(d); len(rows) > 0 {
		p("## By user and container\n\n")
		mdTable(ew, h, rows)
	}
	p("## Top remote hosts\n\nLocation: %s.\n\n", geoNote(d.Geo))
	{
		var rows [][]string
		for _, r := range d.Remotes {
			rows = append(rows, []string{mdCode(r.Addr), r.Fmt["where"], r.Fmt["tx"], r.Fmt["rx"], r.Fmt["2s"], r.Fmt["10s"], r.Fmt["40s"], r.Fmt["peak"], r.Fmt["procs"]})
		}
		mdTable(ew, []string{"remote", "where", "TX", "RX", "2 s", "10 s", "40 s", "peak", "processes"}, rows)
	}

	p("## Top conversations (%s, by %s)\n\nOut is A→B, in is B→A; `→` means A is a local address. Rates are %s.\n\n", d.Group, d.Sort, d.Units.Rates)
	h, rows := conversationCells(d, mdCode)
	mdTable(ew, h, rows)

	if len(d.Tunnels) > 0 {
		p("## Inside tunnels\n\nFlows carried inside tunnels (VXLAN, Geneve, GRE, IP-in-IP, ...), by the innermost header; their whole frames are counted in the outer flow above.\n\n")
		h, rows := tunnelCells(d, mdCode)
		mdTable(ew, h, rows)
	}
	if len(d.TunnelProcesses) > 0 {
		p("## Processes inside tunnels\n\nThe owned flows above, summed per process (TX is what its end sent): the process table counts the outer flows, so these do not show there.\n\n")
		h, rows := tunnelProcCells(d)
		mdTable(ew, h, rows)
	}

	p("## Capture and coverage\n\n")
	for _, l := range d.Capture.Text {
		p("- %s\n", l)
	}
	for _, l := range d.Coverage.Text {
		p("- %s\n", strings.TrimSpace(l))
	}
	p("\n")
	if len(d.Diagnostics) > 0 {
		p("## Input diagnostics\n\n")
		for _, dg := range d.Diagnostics {
			file := ""
			if dg.File != "" { // the analysis's own diagnostics name no file
				file = mdCode(dg.File) + " "
			}
			p("- %s%s: %s: %s (%d×)\n", file, dg.Where, dg.Kind, dg.Message, dg.Count)
		}
		p("\n")
	}
	p("## Evidence\n\n")
	if d.Command != "" {
		p("Reproduce with:\n\n```sh\n%s\n```\n\n", d.Command)
	}
	if d.Tool != "" {
		p("Report by %s", d.Tool)
		if d.Evidence.Collector != "" {
			p(" from a bundle written by %s", d.Evidence.Collector)
		}
		p(".\n\n")
	}
	if len(d.Evidence.Files) > 0 {
		var rows [][]string
		for _, f := range d.Evidence.Files {
			rows = append(rows, []string{mdCode(f.Path), fmt.Sprint(f.Size), mdCode(f.SHA256)})
		}
		mdTable(ew, []string{"bundle file", "bytes", "SHA-256"}, rows)
	}
	if d.Geo.Country != "" && strings.Contains(d.Geo.Country, "DB-IP") {
		p("IP geolocation by [DB-IP](https://db-ip.com) (CC BY 4.0).\n")
	}
	return ew.err
}

package report

import (
	"fmt"
	"io"
	"strings"
)

// BriefRenderer prints the short on-host answer `flowblame collect` shows on
// the console when it stops (and `analyze -f brief`): the verdict, the top
// processes and remote hosts by bytes with their rates, and the coverage.
// It fits an 80-column VNC console.
type BriefRenderer struct{}

// Render implements Renderer.
func (BriefRenderer) Render(w io.Writer, d *Document) error {
	ew := &errWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(ew, format, a...) }
	p("VERDICT [%s]: %s\n", strings.ToUpper(d.Verdict.Severity), d.Verdict.Summary)
	if d.Verdict.Next != "" {
		p("NEXT: %s\n", d.Verdict.Next)
	}
	p("\nTOP PROCESSES (%s, %s)\n", fmtDuration(d.Capture.Duration), d.Units.Rates)
	for i, r := range d.Processes {
		if i == 5 {
			break
		}
		notes := ""
		if r.Fmt["notes"] != "" {
			notes = "  [" + r.Fmt["notes"] + "]"
		}
		p("  %-24s TX %-9s RX %-9s 10s %-11s peak %s%s\n", trunc(r.Fmt["proc"], 24), r.Fmt["tx"], r.Fmt["rx"], r.Fmt["10s"], r.Fmt["peak"], notes)
		if r.Exe != "" {
			p("  %-24s %s\n", "", trunc(r.Fmt["exe"], 54))
		}
	}
	if len(d.Processes) == 0 {
		p("  (no socket data)\n")
	}
	p("\nTOP REMOTE HOSTS\n")
	for i, r := range d.Remotes {
		if i == 5 {
			break
		}
		p("  %-39s TX %-9s RX %-9s %s  %s\n", trunc(r.Addr, 39), r.Fmt["tx"], r.Fmt["rx"], trunc(r.Fmt["where"], 24), trunc(r.Fmt["procs"], 30))
	}
	if len(d.Coverage.Text) > 0 {
		p("\n%s\n", d.Coverage.Text[0])
	}
	if fs := d.Capture.Folded; fs != nil {
		p("more than %d flows: later new flows are aggregates without their processes (analyze the bundle with a higher --max-flows for the detail)\n", fs.MaxFlows)
	}
	return ew.err
}

func trunc(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

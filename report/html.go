package report

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

//go:embed assets/report.html
var htmlTemplate string

// HTMLRenderer writes one self-contained HTML page: no scripts to run, no
// network access, charts drawn as inline SVG; the Document is embedded as
// JSON (script type application/json) for anyone who wants the raw numbers.
type HTMLRenderer struct{}

var pageTmpl = template.Must(template.New("report").Parse(htmlTemplate))

// palette for process series (colour-blind-friendly, Okabe–Ito order).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999"}

type htmlPage struct {
	Doc                                   *Document
	TimeChart, RemoteChart, TimelineChart template.HTML
	ConvHeader                            []string
	ConvRows                              [][]string
	TunnelHeader                          []string
	TunnelRows                            [][]string
	TunnelProcHeader                      []string
	TunnelProcRows                        [][]string
	GroupHeader                           []string
	GroupRows                             [][]string
	GeoNote                               string
	DBIP                                  bool
	JSON                                  template.JS
	SeriesOmitted                         bool // the embedded data has no per-second series
}

// maxEmbeddedSeconds bounds the per-second series the page embeds (6 h).
const maxEmbeddedSeconds = 6 * 3600

// Render implements Renderer.
func (HTMLRenderer) Render(w io.Writer, d *Document) error {
	// The page carries the report's data, but not per-second series of
	// more than maxEmbeddedSeconds (a day-long capture would make the page
	// tens of megabytes); -f json has them.
	embedded := *d
	omitted := false
	if n := len(d.Series); n > maxEmbeddedSeconds {
		embedded.Series, embedded.ProcessSeries, omitted = nil, nil, true
	}
	js, err := json.Marshal(&embedded)
	if err != nil {
		return err
	}
	h, rows := conversationCells(d, nil)
	gh, grows := groupCells(d)
	th, trows := tunnelCells(d, nil)
	tph, tprows := tunnelProcCells(d)
	page := htmlPage{GroupHeader: gh, GroupRows: grows, TunnelHeader: th, TunnelRows: trows, TunnelProcHeader: tph, TunnelProcRows: tprows, Doc: d, TimeChart: timeChart(d), RemoteChart: remoteChart(d), TimelineChart: timelineChart(d),
		ConvHeader: h, ConvRows: rows, GeoNote: geoNote(d.Geo), DBIP: strings.Contains(d.Geo.Country, "DB-IP"),
		JSON: template.JS(strings.ReplaceAll(string(js), "</", `<\/`)), SeriesOmitted: omitted}
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, page); err != nil {
		return fmt.Errorf("render html: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

// niceMax rounds v up to 1, 2 or 5 × 10^n for axis labels.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

// timeChart stacks the per-second bytes of the top processes (and the rest)
// as bars, one per second.
// maxChartCols bounds the columns of the bandwidth chart (about 2 px each).
const maxChartCols = 510

func timeChart(d *Document) template.HTML {
	if len(d.Series) == 0 {
		return template.HTML(`<p class="muted">no traffic</p>`)
	}
	const W, H, L, B, T = 1100.0, 260.0, 70.0, 28.0, 10.0
	first, last := d.Series[0].Sec, d.Series[len(d.Series)-1].Sec
	// One column per second, or per `width` seconds (their average rate)
	// when the capture is longer than maxChartCols seconds: a week-long
	// capture would otherwise draw 600,000 bars per process.
	width := (last - first + maxChartCols) / maxChartCols
	col := func(sec int64) int64 { return (sec - first) / width }
	n := float64(col(last) + 1)
	tfmt := "15:04:05"
	if last-first >= 86400 {
		tfmt = "Jan 2 15:04"
	}
	when := func(c int64) string {
		s := time.Unix(first+c*width, 0).UTC().Format(tfmt)
		if width > 1 {
			s += "–" + time.Unix(first+(c+1)*width-1, 0).UTC().Format(tfmt)
		}
		return s
	}
	total := map[int64]float64{}
	var cols []int64 // the columns with traffic, in order
	for _, b := range d.Series {
		c := col(b.Sec)
		if _, ok := total[c]; !ok {
			cols = append(cols, c)
		}
		total[c] += float64(b.Out+b.In+b.Unknown) / float64(width)
	}
	peak := 0.0
	for _, v := range total {
		peak = max(peak, v)
	}
	f := formatter{bits: d.Units.Rates == "bits/s"}
	ymax := niceMax(peak)
	if f.bits {
		ymax = niceMax(peak*8) / 8
	}
	bw := (W - L - 10) / n
	y := func(v float64) float64 { return T + (H-T-B)*(1-v/ymax) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="bandwidth over time by process" class="chart-svg">`, W, H+24)
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&sb, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e4e7ec"/><text x="%.0f" y="%.1f" font-size="11" text-anchor="end" fill="#5d6676">%s</text>`,
			L, W-10, y(v), y(v), L-6, y(v)+4, esc(f.rate(v)))
	}
	base := map[int64]float64{}
	for i, ps := range d.ProcessSeries {
		clr := palette[i%len(palette)]
		vals := map[int64]float64{}
		var pcols []int64
		for _, b := range ps.Series {
			c := col(b.Sec)
			if _, ok := vals[c]; !ok {
				pcols = append(pcols, c)
			}
			vals[c] += float64(b.Out+b.In+b.Unknown) / float64(width)
		}
		for _, c := range pcols {
			v := vals[c]
			if v <= 0 {
				continue
			}
			x := L + float64(c)*bw
			y0 := y(base[c])
			y1 := y(base[c] + v)
			fmt.Fprintf(&sb, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, y1, max(bw-0.5, 0.5), y0-y1, clr, esc(ps.Label), when(c), esc(f.rate(v)))
			base[c] += v
		}
	}
	for _, c := range cols {
		rest := total[c] - base[c]
		if rest <= 0 {
			continue
		}
		x := L + float64(c)*bw
		fmt.Fprintf(&sb, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#b8bec9"><title>other/unattributed %s: %s</title></rect>`,
			x, y(total[c]), max(bw-0.5, 0.5), y(base[c])-y(total[c]), when(c), esc(f.rate(rest)))
	}
	for i := 0; i <= 5; i++ {
		s := first + int64(float64(last-first)*float64(i)/5)
		x := L + float64(s-first)/float64(width)*bw
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.0f" font-size="11" text-anchor="middle" fill="#5d6676">%s</text>`, x, H-B+16, time.Unix(s, 0).UTC().Format(tfmt))
	}
	lx := L
	for i, ps := range d.ProcessSeries {
		fmt.Fprintf(&sb, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f" font-size="11">%s</text>`,
			lx, H+8, palette[i%len(palette)], lx+14, H+17, esc(ps.Label))
		lx += 24 + 7*float64(len(ps.Label))
	}
	fmt.Fprintf(&sb, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="#b8bec9"/><text x="%.0f" y="%.0f" font-size="11">other / unattributed</text>`, lx, H+8, lx+14, H+17)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// remoteChart draws TX and RX bars per remote host.
func remoteChart(d *Document) template.HTML {
	if len(d.Remotes) == 0 {
		return template.HTML(`<p class="muted">no remote hosts</p>`)
	}
	const W, L, R, row = 1100.0, 260.0, 160.0, 22.0
	H := row*float64(len(d.Remotes)) + 30
	var mx int64
	for _, r := range d.Remotes {
		mx = max(mx, r.TX.Wire, r.RX.Wire)
	}
	f := formatter{}
	scale := (W - L - R) / float64(max(mx, 1))
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="TX and RX per remote host" class="chart-svg">`, W, H)
	for i, r := range d.Remotes {
		y := 8 + float64(i)*row
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.1f" font-size="11" text-anchor="end">%s %s</text>`, L-8, y+13, esc(r.Addr), esc(r.Fmt["where"]))
		fmt.Fprintf(&sb, `<rect x="%.0f" y="%.1f" width="%.2f" height="8" fill="#D55E00"><title>TX %s</title></rect>`, L, y+2, float64(r.TX.Wire)*scale, esc(f.bytes(r.TX.Wire)))
		fmt.Fprintf(&sb, `<rect x="%.0f" y="%.1f" width="%.2f" height="8" fill="#0072B2"><title>RX %s</title></rect>`, L, y+10, float64(r.RX.Wire)*scale, esc(f.bytes(r.RX.Wire)))
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10" fill="#5d6676">%s / %s</text>`, L+float64(max(r.TX.Wire, r.RX.Wire))*scale+6, y+14, esc(f.bytes(r.TX.Wire)), esc(f.bytes(r.RX.Wire)))
	}
	fmt.Fprintf(&sb, `<rect x="%.0f" y="%.0f" width="10" height="8" fill="#D55E00"/><text x="%.0f" y="%.0f" font-size="11">TX (sent)</text><rect x="%.0f" y="%.0f" width="10" height="8" fill="#0072B2"/><text x="%.0f" y="%.0f" font-size="11">RX (received)</text>`,
		L, H-14, L+14, H-6, L+100, H-14, L+114, H-6)
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

// timelineChart draws each big connection as a bar from first to last packet.
func timelineChart(d *Document) template.HTML {
	if len(d.Timeline) == 0 {
		return template.HTML(`<p class="muted">no connections</p>`)
	}
	const W, L, row = 1100.0, 430.0, 18.0
	H := row*float64(len(d.Timeline)) + 26
	t0, t1 := d.Capture.FirstNS, d.Capture.LastNS
	span := float64(max(t1-t0, 1))
	x := func(t int64) float64 { return L + (W-L-20)*float64(t-t0)/span }
	owners := map[string]string{}
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="100%%" role="img" aria-label="timeline of connections" class="chart-svg">`, W, H)
	for i, r := range d.Timeline {
		col, ok := owners[r.Owner]
		if !ok {
			col = palette[len(owners)%len(palette)]
			if r.Owner == "(unattributed)" {
				col = "#b8bec9"
			}
			owners[r.Owner] = col
		}
		y := 4 + float64(i)*row
		fmt.Fprintf(&sb, `<text x="%.0f" y="%.1f" font-size="10.5" text-anchor="end"><tspan font-family="monospace">%s</tspan> %s</text>`, L-8, y+11, esc(r.Label), esc(r.Owner))
		fmt.Fprintf(&sb, `<rect x="%.2f" y="%.1f" width="%.2f" height="11" rx="2" fill="%s"><title>%s %s, %s</title></rect>`,
			x(r.First), y+2, max(x(r.Last)-x(r.First), 2), col, esc(r.Label), esc(r.Owner), esc(formatter{}.bytes(r.Bytes)))
	}
	for i := 0; i <= 4; i++ {
		t := t0 + int64(span*float64(i)/4)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.0f" font-size="11" text-anchor="middle" fill="#5d6676">%s</text>`, x(t), H-6, time.Unix(0, t).UTC().Format("15:04:05"))
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String())
}

package report

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/analyze"
)

// TestHTMLSelfContained checks the page loads nothing from anywhere: no
// scripts or styles by URL, no images, no fonts.
func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := (HTMLRenderer{}).Render(&buf, sampleDoc(t)); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script[^>]+src=`), regexp.MustCompile(`(?i)<link[^>]+href=`),
		regexp.MustCompile(`(?i)<img`), regexp.MustCompile(`(?i)url\(`), regexp.MustCompile(`(?i)@import`),
	} {
		if bad.MatchString(page) {
			t.Errorf("page refers to an outside resource: %s", bad)
		}
	}
	if n := strings.Count(page, `class="chart-svg"`); n != 3 {
		t.Errorf("want 3 inline SVG charts, found %d", n)
	}
	if !strings.Contains(page, `id="report-data"`) {
		t.Error("page lacks the embedded JSON document")
	}
}

// TestHTMLInChromium renders the page in headless Chromium with networking
// off, takes a screenshot, and checks the rendered DOM still holds the
// charts. Skips when Chromium is absent, except in CI (CI installs it).
func TestHTMLInChromium(t *testing.T) {
	bin := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(b); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed (CI installs Debian's chromium)")
		}
		t.Skip("chromium not installed; CI runs this test")
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if err := (HTMLRenderer{}).Render(&buf, sampleDoc(t)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", // any network fetch would fail
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--window-size=1280,2200"}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	// A rendered page has many distinct colours (charts, badges); a blank or
	// error page has very few.
	colours := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
		}
	}
	if len(colours) < 20 {
		t.Errorf("screenshot has only %d colours: the page did not render", len(colours))
	}
	if os.Getenv("FLOWBLAME_KEEP_SCREENSHOT") != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(os.Getenv("FLOWBLAME_KEEP_SCREENSHOT"), data, 0o644)
	}
	cmd = exec.CommandContext(ctx, bin, append(flags, "--dump-dom", "file://"+page)...)
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium dump-dom: %v", err)
	}
	if n := strings.Count(string(dom), `class="chart-svg"`); n != 3 {
		t.Errorf("rendered DOM has %d SVG charts, want 3", n)
	}
	if n := strings.Count(string(dom), "<rect"); n < 20 {
		t.Errorf("rendered DOM has only %d SVG rects: charts are empty", n)
	}
	if !strings.Contains(string(dom), "Verdict") && !strings.Contains(string(dom), `id="verdict"`) {
		t.Error("rendered DOM lacks the verdict")
	}
}

// TestTimeChartLongCapture: a capture longer than maxChartCols seconds is
// drawn as at most maxChartCols columns of average rates (a week would
// otherwise be 600,000 bars per process), with dates in the labels.
func TestTimeChartLongCapture(t *testing.T) {
	const week = 7 * 86400
	start := int64(1_767_225_600)
	d := &Document{Units: Units{Rates: "bits/s"}}
	var proc []analyze.SecondBucket
	for s := int64(0); s < week; s += 7 {
		d.Series = append(d.Series, analyze.SecondBucket{Sec: start + s, Out: 1000, In: 500})
		proc = append(proc, analyze.SecondBucket{Sec: start + s, Out: 1000})
	}
	d.ProcessSeries = []ProcSeries{{Label: "nginx[1]", Series: proc}}
	svg := string(timeChart(d))
	bars := strings.Count(svg, "<rect") - 2 // the two legend squares
	if bars > 2*maxChartCols || bars < maxChartCols {
		t.Errorf("%d bars for a week in 2 series, want %d..%d", bars, maxChartCols, 2*maxChartCols)
	}
	// nginx sends 1000 bytes every 7 s: 143 B/s, 1.1 kb/s on average.
	if !strings.Contains(svg, "nginx[1] Jan 1 00:00–Jan 1 00:19: 1.1 kb/s") {
		t.Errorf("no averaged, dated first column in %.600s", svg)
	}
	if len(svg) > 200_000 {
		t.Errorf("chart is %d bytes", len(svg))
	}
	// The page embeds the report's data without that long a series.
	var page bytes.Buffer
	if err := (HTMLRenderer{}).Render(&page, d); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), `"series":`) || !strings.Contains(page.String(), "leaves out the per-second series") || page.Len() > 500_000 {
		t.Errorf("a week of series embedded in the page (%d bytes)", page.Len())
	}
	d.Series, d.ProcessSeries = d.Series[:100], nil
	page.Reset()
	if err := (HTMLRenderer{}).Render(&page, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `"series":`) || strings.Contains(page.String(), "leaves out the per-second series") {
		t.Error("a short series is not embedded")
	}
}

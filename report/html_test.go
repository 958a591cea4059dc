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

package report

import (
	"encoding/json"
	"strings"
	"testing"
)

// evil is a process name an attacker on the captured host could choose:
// a terminal escape (colours, then clear screen), BEL, a carriage return
// that would overwrite the line, a right-to-left override, HTML and
// Markdown.
const evil = "xmrig\x1b[31m\x1b[2J\a\rnginx\u202egnp.exe<script>alert(1)</script>[ok](http://x)\xff"

// TestRenderersNeutraliseHostileStrings: what the captured host controls
// reaches the human formats as text only; JSON keeps it as data.
func TestRenderersNeutraliseHostileStrings(t *testing.T) {
	d := sampleDoc(t)
	if len(d.Processes) == 0 {
		t.Fatal("sample has no processes")
	}
	d.Processes[0].Comm = evil
	d.Processes[0].Fmt["proc"] = evil
	d.Verdict.Summary = evil
	for _, format := range Formats() {
		raw := renderAs(t, d, format)
		out := string(raw)
		if format == "json" {
			var back Document
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			if back.Processes[0].Comm != strings.ToValidUTF8(evil, "\uFFFD") {
				t.Errorf("json: comm %q, want the raw string", back.Processes[0].Comm)
			}
			continue
		}
		bad := []string{"\x1b", "\a", "\r", "\u202e", "\xff"}
		if format == "md" || format == "html" { // markup, not just text
			bad = append(bad, "<script>")
		}
		for _, b := range bad {
			if strings.Contains(out, b) {
				t.Errorf("%s: output contains %q", format, b)
			}
		}
		if !strings.Contains(out, "xmrig") || !strings.Contains(out, "gnp.exe") {
			t.Errorf("%s: the name's text is gone", format)
		}
		if format == "md" && !strings.Contains(out, "&lt;script&gt;") {
			t.Errorf("md: < and > not escaped")
		}
	}
}

func TestSanitizeOutput(t *testing.T) {
	for _, c := range []struct {
		in       string
		markdown bool
		want     string
	}{
		{"a\tb\nc", false, "a\tb\nc"},
		{"a\x1b[0mb", false, "a\uFFFD[0mb"},
		{"\u0085x\u2066y\u2069", false, "\uFFFDx\uFFFDy\uFFFD"},
		{"ok \uFFFD kept", false, "ok \uFFFD kept"},
		{"1 < 2 > 0", true, "1 &lt; 2 &gt; 0"},
		{"```sh\nflowblame analyze <x>\n```\n<b>", true, "```sh\nflowblame analyze <x>\n```\n&lt;b&gt;"},
	} {
		if got := sanitizeOutput(c.in, c.markdown); got != c.want {
			t.Errorf("sanitizeOutput(%q, %v) = %q, want %q", c.in, c.markdown, got, c.want)
		}
	}
}

func TestMdCode(t *testing.T) {
	for in, want := range map[string]string{
		"nginx[1301]":    "`nginx[1301]`",
		"a`b":            "``a`b``",
		"x``y`":          "``` x``y` ```",
		"`[x](http://e)": "`` `[x](http://e) ``",
	} {
		if got := mdCode(in); got != want {
			t.Errorf("mdCode(%q) = %q, want %q", in, got, want)
		}
	}
}

package main

import (
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/flowblame/flowblame/report"
)

// TestREADMEDocumentsEveryFlag: every command and every flag of every
// command is named in the README, so the reference there cannot fall
// behind --help.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	app := newApp(io.Discard, io.Discard)
	for _, c := range app.Commands {
		if c.Name == "help" {
			continue
		}
		if !strings.Contains(readme, "flowblame "+c.Name) {
			t.Errorf("README does not name the command %q", c.Name)
		}
		for _, f := range c.Flags {
			for _, n := range f.Names() {
				if n == "help" || n == "h" {
					continue
				}
				dash := "--" + n
				if len(n) == 1 {
					dash = "-" + n
				}
				if !regexp.MustCompile(regexp.QuoteMeta(dash) + `\b`).MatchString(readme) {
					t.Errorf("README does not document %s %s", c.Name, dash)
				}
			}
		}
	}
}

// TestFormatUsageListsEveryFormat: analyze --help names every format the
// renderer accepts, and the README's format row too.
func TestFormatUsageListsEveryFormat(t *testing.T) {
	app := newApp(io.Discard, io.Discard)
	var usage string
	for _, c := range app.Commands {
		if c.Name != "analyze" {
			continue
		}
		for _, f := range c.Flags {
			if slices.Contains(f.Names(), "format") {
				usage = f.(*cli.StringFlag).Usage
			}
		}
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, fm := range append(report.Formats(), "iftop") {
		if !regexp.MustCompile(`\b` + fm + `\b`).MatchString(usage) {
			t.Errorf("analyze --format usage %q does not name %s", usage, fm)
		}
		if !strings.Contains(string(b), "`"+fm+"`") {
			t.Errorf("README does not name format `%s`", fm)
		}
	}
}

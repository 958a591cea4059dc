package main

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"123", 123, false},
		{"64MiB", 64 << 20, false},
		{"64M", 64 << 20, false},
		{"1.5G", 3 << 29, false},
		{"2 gib", 2 << 30, false},
		{"500k", 500 << 10, false},
		{"1T", 1 << 40, false},
		{"-1", 0, true},
		{"12furlongs", 0, true},
		{"MiB", 0, true},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestCollectUsageErrors(t *testing.T) {
	cases := [][]string{
		{"flowblame", "collect", "extra-arg"},
		{"flowblame", "collect", "--max-size", "lots"},
		{"flowblame", "collect", "--snaplen", "-5"},
		{"flowblame", "verify"},
	}
	if _, err := exec.LookPath("tcpdump"); err == nil {
		cases = append(cases, []string{"flowblame", "collect", "--filter", "port nonsense!", "-d", "1s"})
	}
	for _, args := range cases {
		var out, errw bytes.Buffer
		err := newApp(&out, &errw).RunContext(context.Background(), args)
		if code := exitCode(err); code != exitUsage {
			t.Errorf("%v: exit %d (%v), want %d", args, code, err, exitUsage)
		}
	}
}

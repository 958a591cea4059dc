package ingest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcessHint(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *ProcessHint
	}{
		{"ptcpdump", "PID: 1234\nCmd: /usr/bin/curl\nArgs: curl -v https://example.com",
			&ProcessHint{PID: 1234, Comm: "curl", Cmd: "curl -v https://example.com", Source: HintSourceComment}},
		{"ptcpdump with thread and parent", "PID: 7\nCmd: /opt/very-long-binary-name-here\nArgs: \nThreadId: 8\nParentPID: 1\nParentCmd: /sbin/init",
			&ProcessHint{PID: 7, Comm: "very-long-binar", Cmd: "/opt/very-long-binary-name-here", Source: HintSourceComment}},
		{"key=value", "pid=99 comm=sshd", &ProcessHint{PID: 99, Comm: "sshd", Source: HintSourceComment}},
		{"args with colons", "PID: 5\nArgs: python3 -c print('a:b')", &ProcessHint{PID: 5, Cmd: "python3 -c print('a:b')", Source: HintSourceComment}},
		{"no pid", "Cmd: /bin/true", nil},
		{"parent only", "ParentPID: 1", nil},
		{"bad pid", "PID: -3", nil},
		{"free text", "retransmission seen here", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, ParseProcessHint(tt.in)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func FuzzParseProcessHint(f *testing.F) {
	f.Add("PID: 1234\nCmd: /usr/bin/curl\nArgs: curl -v")
	f.Add("pid=1 comm=x")
	f.Fuzz(func(t *testing.T, s string) {
		h := ParseProcessHint(s)
		if h != nil && (h.PID <= 0 || len(h.Comm) > maxCommLen) {
			t.Errorf("invalid hint %+v", h)
		}
	})
}

package ingest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTasklistRow(t *testing.T) {
	tests := []struct {
		name    string
		rec     []string
		want    ProcessInfo
		wantErr bool
	}{
		{"csv", []string{"svchost.exe", "1264", "Services", "0", "10,120 K"}, ProcessInfo{PID: 1264, Comm: "svchost.exe", UID: -1}, false},
		{"verbose", []string{"updater.exe", "4321", "Console", "1", "52,880 K", "Running", `WIN-7\alice`, "0:04:51", "N/A"},
			ProcessInfo{PID: 4321, Comm: "updater.exe", UID: -1, User: `WIN-7\alice`}, false},
		{"verbose-na-user", []string{"System", "4", "Services", "0", "144 K", "Unknown", "N/A", "0:10:02", "N/A"}, ProcessInfo{PID: 4, Comm: "System", UID: -1}, false},
		{"bad-pid", []string{"x.exe", "pid"}, ProcessInfo{}, true},
		{"short", []string{"x.exe"}, ProcessInfo{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tasklistRow(tc.rec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestUnderlineTable(t *testing.T) {
	u := newUnderlineTable("========================= ======== ================ =========== ============")
	if u == nil {
		t.Fatal("underline not recognised")
	}
	tests := []struct {
		name string
		line string
		want []string
	}{
		{"spaces-in-name", "System Idle Process              0 Services                   0          8 K", []string{"System Idle Process", "0", "Services", "0", "8 K"}},
		{"short-line", "svchost.exe                   1264", []string{"svchost.exe", "1264", "", "", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, u.fields(tc.line)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	for _, s := range []string{"", "=====", "Image Name   PID", "== == x"} {
		if newUnderlineTable(s) != nil {
			t.Errorf("newUnderlineTable(%q) != nil", s)
		}
	}
}

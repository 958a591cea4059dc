package sockwatch

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// degradedReport is what runDegraded prints.
type degradedReport struct {
	Stats     Stats
	Kinds     map[string]int
	Err       string
	Snapshots int
}

// runDegraded is the "degraded" helper: it drops root (uid/gid 65534) when
// it has it, runs Run for 1.5 s and prints a degradedReport as JSON.
func runDegraded() error {
	if os.Geteuid() == 0 {
		if err := unix.Setgroups(nil); err != nil {
			return err
		}
		if err := unix.Setgid(65534); err != nil {
			return err
		}
		if err := unix.Setuid(65534); err != nil {
			return err
		}
	}
	sink := &memSink{}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, Config{Interval: 500 * time.Millisecond}, sink)
	rep := degradedReport{Stats: st, Kinds: map[string]int{}}
	if err != nil {
		rep.Err = err.Error()
	}
	for _, r := range sink.socks {
		rep.Kinds[r.Kind]++
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}

// TestRunUnprivileged runs Run without root: it must work, say what it
// cannot see, and still inventory sockets.
func TestRunUnprivileged(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "SOCKWATCH_HELPER=degraded")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var rep degradedReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("helper said %q: %v", out, err)
	}
	if rep.Err != "" {
		t.Fatalf("Run failed without root: %s", rep.Err)
	}
	t.Logf("unprivileged: %d events, records %v, notes %q", rep.Stats.Events, rep.Kinds, rep.Stats.Notes)
	notes := strings.Join(rep.Stats.Notes, "\n")
	// Destroy groups and the proc connector need CAP_NET_ADMIN on some
	// kernels only (Linux 6.18 lets anyone listen), so only "not root" is
	// certain.
	for _, want := range []string{"not root"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if rep.Kinds["snapshot"] < 2 || rep.Stats.Snapshots < 2 {
		t.Errorf("only %d snapshot records, %d inventories", rep.Kinds["snapshot"], rep.Stats.Snapshots)
	}
}

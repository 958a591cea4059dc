package sockwatch

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (sshd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 1 0 98765 12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 81926 0 0 0 17 0 0 0 0 0 0\n",
			want: procStat{Comm: "sshd", PPID: 1, StartTick: 98765},
		},
		{
			name: "comm with spaces and parentheses",
			in:   "77 (a) b (c)) R 5 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42 0 0\n",
			want: procStat{Comm: "a) b (c)", PPID: 5, StartTick: 42},
		},
		{name: "no comm", in: "77 a R 5", wantErr: true},
		{name: "too few fields", in: "77 (x) R 5 6 7", wantErr: true},
		{name: "bad ppid", in: "77 (x) R x 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseStatusUID(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"Name:\tsshd\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n", 1000, true},
		{"Name:\tx\n", 0, false},
		{"Uid:\n", 0, false},
		{"Uid:\tabc\t0\t0\t0", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseStatusUID([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseStatusUID(%q) = %d, %v", tt.in, got, ok)
		}
	}
}

func TestParseCgroupAndContainer(t *testing.T) {
	const id = "3f2a6b1c9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"
	tests := []struct {
		name, in, cgroup, container string
	}{
		{"v2 systemd service", "0::/system.slice/sshd.service\n", "/system.slice/sshd.service", ""},
		{"v2 docker scope", "0::/system.slice/docker-" + id + ".scope\n", "/system.slice/docker-" + id + ".scope", id},
		{"v1 docker", "12:pids:/docker/" + id + "\n11:cpu:/docker/" + id + "\n", "/docker/" + id, id},
		{"containerd cri", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope\n",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/cri-containerd-" + id + ".scope", id},
		{"kubepods cgroupfs", "0::/kubepods/besteffort/pod0a1b/" + id + "\n", "/kubepods/besteffort/pod0a1b/" + id, id},
		{"podman", "0::/machine.slice/libpod-" + id + ".scope/container\n", "/machine.slice/libpod-" + id + ".scope/container", id},
		{"crio", "0::/crio-" + id + ".scope\n", "/crio-" + id + ".scope", id},
		{"mixed v1 then v2 wins", "1:name=systemd:/user.slice\n0::/init.scope\n", "/init.scope", ""},
		{"hex too short", "0::/docker/abc123\n", "/docker/abc123", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cg := parseCgroup([]byte(tt.in))
			if cg != tt.cgroup {
				t.Errorf("cgroup %q, want %q", cg, tt.cgroup)
			}
			if c := containerID(cg); c != tt.container {
				t.Errorf("container %q, want %q", c, tt.container)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/usr/sbin/sshd\x00-D\x00", []string{"/usr/sbin/sshd", "-D"}},
		{"", nil},
		{"\x00\x00", nil},
		{"kdevtmpfsi", []string{"kdevtmpfsi"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, parseCmdline([]byte(tt.in))); d != "" {
			t.Errorf("%q: %s", tt.in, d)
		}
	}
}

func TestParsePasswd(t *testing.T) {
	in := "# comment\nroot:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbroken line\nbad:x:notanumber:0::/:/bin/sh\ntoor:x:0:0::/:/bin/sh\n"
	want := map[int]string{0: "root", 33: "www-data"}
	if d := cmp.Diff(want, parsePasswd(strings.NewReader(in))); d != "" {
		t.Error(d)
	}
}

// TestProcReaderSelf reads this test process's own facts, which needs no
// privileges.
func TestProcReaderSelf(t *testing.T) {
	pr := newProcReader("/proc", BootTimeNs(), DefaultHashMaxBytes, DefaultHashBudget)
	pid := os.Getpid()
	p, err := pr.info(pid, 1, DefaultHashMaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != pid || p.PPID != os.Getppid() || p.UID != os.Getuid() || p.Start <= 0 || p.Comm == "" {
		t.Errorf("facts: %+v", p)
	}
	exe, _ := os.Executable()
	if p.Exe != exe || p.ExeSize <= 0 || len(p.ExeSHA256) != 64 || p.Netns == 0 {
		t.Errorf("exe facts: exe %q (want %q) size %d sha %q netns %d", p.Exe, exe, p.ExeSize, p.ExeSHA256, p.Netns)
	}
	// A second read uses the hash cache and the same start time.
	q, _ := pr.info(pid, 2, DefaultHashMaxBytes)
	if q.Start != p.Start || q.ExeSHA256 != p.ExeSHA256 || pr.hashUsed != p.ExeSize {
		t.Errorf("second read differs: start %d/%d, hashed %d bytes", q.Start, p.Start, pr.hashUsed)
	}
	// Caps: a tiny per-file cap skips hashing and says why.
	small := newProcReader("/proc", BootTimeNs(), 1, DefaultHashBudget)
	if p, _ := small.info(pid, 1, 1); p.ExeSHA256 != "" {
		t.Error("hash computed despite the cap")
	}
	if n := small.notes(); len(n) != 1 || !strings.Contains(n[0], "larger than 1 bytes") {
		t.Errorf("notes %q", n)
	}
	// A limit below the file size defers hashing without a note; a later
	// call with the full cap hashes it.
	lazy := newProcReader("/proc", BootTimeNs(), DefaultHashMaxBytes, DefaultHashBudget)
	lp, _ := lazy.info(pid, 1, 1)
	if lp.ExeSHA256 != "" || len(lazy.notes()) != 0 {
		t.Errorf("deferred hash: %q, notes %q", lp.ExeSHA256, lazy.notes())
	}
	if lazy.hashExe(pid, &lp, DefaultHashMaxBytes); lp.ExeSHA256 != p.ExeSHA256 {
		t.Errorf("deferred hash %q, want %q", lp.ExeSHA256, p.ExeSHA256)
	}
	budget := newProcReader("/proc", BootTimeNs(), DefaultHashMaxBytes, 1)
	if p, _ := budget.info(pid, 1, DefaultHashMaxBytes); p.ExeSHA256 != "" || !strings.Contains(strings.Join(budget.notes(), ""), "budget") {
		t.Errorf("budget not applied: %v", budget.notes())
	}
}

// FuzzParseProcFiles feeds arbitrary text to the /proc and /etc/passwd
// parsers: none may panic, and a parsed stat has its comm inside the input.
func FuzzParseProcFiles(f *testing.F) {
	f.Add([]byte("1234 (sshd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 5 3 0 0 20 0 1 0 98765 12345678 900\n"))
	f.Add([]byte("Uid:\t1000\t0\t0\t0\n0::/system.slice/docker-3f2a6b1c9d8e7f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718.scope\n"))
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\n/usr/bin/x\x00-a\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ps, err := parseProcStat(b); err == nil && !strings.Contains(string(b), ps.Comm) {
			t.Fatalf("comm %q not in input", ps.Comm)
		}
		_, _ = parseStatusUID(b)
		_ = containerID(parseCgroup(b))
		_ = parseCmdline(b)
		_ = parsePasswd(strings.NewReader(string(b)))
		_, _ = parseSocketLink(b)
		_, _ = atoiBytes(b)
	})
}

// TestProcReaderReplacedExe runs two copies of sleep and, while they run,
// replaces the first one's file (as a package upgrade does: a new file
// renamed over the path) and deletes the second's: the first is replaced,
// the second deleted.
func TestProcReaderReplacedExe(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1)")
	}
	dir := t.TempDir()
	bin, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	pr := newProcReader("/proc", BootTimeNs(), DefaultHashMaxBytes, DefaultHashBudget)
	for _, tc := range []struct {
		name              string
		deleted, replaced bool
		afterStart        func(path string) error
	}{
		{"upgraded", true, true, func(path string) error {
			if err := os.WriteFile(path+".new", bin, 0o755); err != nil {
				return err
			}
			return os.Rename(path+".new", path)
		}},
		{"deleted", true, false, os.Remove},
		{"unchanged", false, false, func(string) error { return nil }},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(path, "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		if err := tc.afterStart(path); err != nil {
			t.Fatal(err)
		}
		var p ingest.ProcessInfo
		for range 100 { // until the child has exec'd its file
			if p, err = pr.info(cmd.Process.Pid, 1, DefaultHashMaxBytes); err == nil && p.Exe == path {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if p.Exe != path || p.ExeDeleted != tc.deleted || p.ExeReplaced != tc.replaced || len(p.ExeSHA256) != 64 {
			t.Errorf("%s: exe %q deleted %v replaced %v sha %q; want %q, %v, %v", tc.name, p.Exe, p.ExeDeleted, p.ExeReplaced, p.ExeSHA256, path, tc.deleted, tc.replaced)
		}
	}
}

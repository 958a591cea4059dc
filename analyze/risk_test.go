package analyze

import (
	"path"
	"slices"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

func TestProcessRisk(t *testing.T) {
	systemd := &ingest.ProcessInfo{PID: 1, Comm: "systemd", Exe: "/usr/lib/systemd/systemd"}
	bash := &ingest.ProcessInfo{PID: 500, Comm: "bash", Exe: "/usr/bin/bash"}
	tests := []struct {
		name   string
		p      ingest.ProcessInfo
		parent *ingest.ProcessInfo
		want   []string // fact IDs, in order
	}{
		{name: "clean sshd", p: ingest.ProcessInfo{PID: 700, PPID: 1, Comm: "sshd", Exe: "/usr/sbin/sshd"}, parent: systemd},
		{name: "sshd session child of sshd", p: ingest.ProcessInfo{PID: 701, PPID: 700, Comm: "sshd", Exe: "/usr/sbin/sshd"},
			parent: &ingest.ProcessInfo{PID: 700, Comm: "sshd", Exe: "/usr/sbin/sshd"}},
		{name: "journald under /usr/lib/systemd", p: ingest.ProcessInfo{Comm: "systemd-journal", Exe: "/usr/lib/systemd/systemd-journald"}},
		{name: "miner in /tmp", p: ingest.ProcessInfo{Comm: "kdevtmpfsi", Exe: "/tmp/kdevtmpfsi"},
			want: []string{"exe-in-tmp", "kthread-name-with-exe"}},
		{name: "dev shm hidden", p: ingest.ProcessInfo{Comm: "x", Exe: "/dev/shm/.x/x"},
			want: []string{"exe-in-tmp", "exe-hidden-dir"}},
		{name: "var tmp", p: ingest.ProcessInfo{Comm: "a", Exe: "/var/tmp/a"}, want: []string{"exe-in-tmp"}},
		{name: "go run", p: ingest.ProcessInfo{Comm: "server", Exe: "/tmp/go-build2741389263/b001/exe/server"}, want: []string{"exe-go-run"}},
		{name: "go run look-alike deeper", p: ingest.ProcessInfo{Comm: "x", Exe: "/tmp/go-build1/b001/exe/.x/x"}, want: []string{"exe-in-tmp", "exe-hidden-dir"}},
		{name: "hidden dir in home", p: ingest.ProcessInfo{Comm: "xmrig", Exe: "/root/.cache/xmrig"}, want: []string{"exe-hidden-dir"}},
		{name: "deleted exe", p: ingest.ProcessInfo{Comm: "updater", Exe: "/usr/local/bin/updater (deleted)"}, want: []string{"exe-deleted"}},
		{name: "deleted flag", p: ingest.ProcessInfo{Comm: "updater", Exe: "/usr/local/bin/updater", ExeDeleted: true}, want: []string{"exe-deleted"}},
		{name: "comm truncated is fine", p: ingest.ProcessInfo{Comm: "a-very-long-pro", Exe: "/opt/x/a-very-long-program-name"}},
		{name: "comm mismatch", p: ingest.ProcessInfo{Comm: "nginx", Exe: "/opt/x/xmrig"}, want: []string{"comm-exe-mismatch"}},
		{name: "comm mismatch, argv0 another name", p: ingest.ProcessInfo{Comm: "nginx", Exe: "/opt/x/xmrig", Cmdline: []string{"/opt/x/xmrig", "-o", "pool:3333"}},
			want: []string{"comm-exe-mismatch"}},
		{name: "started through a symlink", p: ingest.ProcessInfo{Comm: "mysqld", Exe: "/usr/sbin/mariadbd", Cmdline: []string{"/usr/sbin/mysqld"}}},
		{name: "alternatives symlink, bare argv0", p: ingest.ProcessInfo{Comm: "uwsgi", Exe: "/usr/bin/uwsgi-core", Cmdline: []string{"uwsgi", "--ini", "app.ini"}}},
		{name: "interpreter comm is the script", p: ingest.ProcessInfo{Comm: "myscript.py", Exe: "/usr/bin/python3.11"}},
		{name: "bracketed argv0 with exe", p: ingest.ProcessInfo{Comm: "kworker/0:1", Exe: "/usr/local/bin/kw", Cmdline: []string{"[kworker/0:1]"}},
			want: []string{"kthread-name-with-exe", "comm-exe-mismatch"}},
		{name: "real kernel thread has no exe", p: ingest.ProcessInfo{PID: 12, PPID: 2, Comm: "kworker/0:1"}},
		{name: "sshd at odd path", p: ingest.ProcessInfo{Comm: "sshd", Exe: "/usr/local/games/sshd"},
			want: []string{"system-name-odd-path"}},
		{name: "systemd-x at odd path", p: ingest.ProcessInfo{Comm: "systemd-resolve", Exe: "/opt/systemd-resolved"},
			want: []string{"system-name-odd-path"}},
		{name: "cron with odd parent", p: ingest.ProcessInfo{PID: 900, PPID: 500, Comm: "cron", Exe: "/usr/sbin/cron"}, parent: bash,
			want: []string{"system-name-odd-parent"}},
		{name: "sshd under a container init", p: ingest.ProcessInfo{PID: 4250, PPID: 4242, Comm: "sshd", Exe: "/usr/sbin/sshd"},
			parent: &ingest.ProcessInfo{PID: 4242, Comm: "tini", Exe: "/usr/bin/tini"}},
		{name: "cron under supervisord", p: ingest.ProcessInfo{PID: 90, PPID: 8, Comm: "cron", Exe: "/usr/sbin/cron"},
			parent: &ingest.ProcessInfo{PID: 8, Comm: "supervisord", Exe: "/usr/bin/python3.11"}},
		{name: "sshd from init as a user", p: ingest.ProcessInfo{PID: 910, PPID: 1, UID: 1000, User: "bob", Comm: "sshd", Exe: "/usr/sbin/sshd"}, parent: systemd,
			want: []string{"system-name-odd-user"}},
		{name: "sshd session as a user under sshd", p: ingest.ProcessInfo{PID: 911, PPID: 700, UID: 1000, Comm: "sshd", Exe: "/usr/sbin/sshd"},
			parent: &ingest.ProcessInfo{PID: 700, Comm: "sshd", Exe: "/usr/sbin/sshd"}},
		{name: "windows svchost in system32", p: ingest.ProcessInfo{Comm: "svchost.exe", Exe: `C:\Windows\System32\svchost.exe`}},
		{name: "windows svchost case-insensitive", p: ingest.ProcessInfo{Comm: "svchost.exe", Exe: `c:\WINDOWS\system32\SVCHOST.EXE`}},
		{name: "windows svchost elsewhere", p: ingest.ProcessInfo{Comm: "svchost.exe", Exe: `C:\Windows\svchost.exe`},
			want: []string{"windows-system-name-odd-path"}},
		{name: "windows lsass in temp", p: ingest.ProcessInfo{Comm: "lsass.exe", Exe: `C:\Users\bob\AppData\Local\Temp\lsass.exe`},
			want: []string{"windows-system-name-odd-path", "windows-exe-in-temp"}},
		{name: "windows explorer in windows dir", p: ingest.ProcessInfo{Comm: "explorer.exe", Exe: `C:\Windows\explorer.exe`}},
		{name: "sshd built from source", p: ingest.ProcessInfo{PID: 700, PPID: 1, Comm: "sshd", Exe: "/usr/local/sbin/sshd"}, parent: systemd},
		{name: "containerd as its install guide puts it", p: ingest.ProcessInfo{PID: 800, PPID: 1, Comm: "containerd", Exe: "/usr/local/bin/containerd"}, parent: systemd},
		{name: "sshd on NixOS", p: ingest.ProcessInfo{PID: 700, PPID: 1, Comm: "sshd", Exe: "/nix/store/0c6b4kq6n5x1x1j7z1s8c3v9dvq1n2mx-openssh-9.7p1/bin/sshd"}, parent: systemd},
		{name: "k3s containerd", p: ingest.ProcessInfo{PID: 900, PPID: 800, Comm: "containerd", Exe: "/var/lib/rancher/k3s/data/6c1a0f0e7e1b/bin/containerd"},
			parent: &ingest.ProcessInfo{PID: 800, Comm: "k3s-server", Exe: "/usr/local/bin/k3s"}},
		{name: "k3s names itself by role", p: ingest.ProcessInfo{PID: 800, PPID: 1, Comm: "k3s-server", Exe: "/usr/local/bin/k3s"}, parent: systemd},
		{name: "docker snap", p: ingest.ProcessInfo{PID: 810, PPID: 1, Comm: "dockerd", Exe: "/snap/docker/2976/bin/dockerd"}, parent: systemd},
		{name: "microk8s containerd", p: ingest.ProcessInfo{PID: 820, PPID: 1, Comm: "containerd", Exe: "/snap/microk8s/7229/bin/containerd"}, parent: systemd},
		{name: "a user's systemd manager", p: ingest.ProcessInfo{PID: 1200, PPID: 1, UID: 1000, Comm: "systemd", Exe: "/usr/lib/systemd/systemd", Cmdline: []string{"/usr/lib/systemd/systemd", "--user"}}, parent: systemd},
		{name: "its PAM helper", p: ingest.ProcessInfo{PID: 1201, PPID: 1200, UID: 1000, Comm: "(sd-pam)", Exe: "/usr/lib/systemd/systemd"},
			parent: &ingest.ProcessInfo{PID: 1200, Comm: "systemd", Exe: "/usr/lib/systemd/systemd"}},
		{name: "parenthesised name on another program", p: ingest.ProcessInfo{Comm: "(sd-pam)", Exe: "/tmp/x"}, want: []string{"exe-in-tmp", "comm-exe-mismatch"}},
		{name: "prefix without a separator is a mismatch", p: ingest.ProcessInfo{Comm: "k3sx", Exe: "/usr/local/bin/k3s"}, want: []string{"comm-exe-mismatch"}},
		{name: "sshd in a user-writable tree", p: ingest.ProcessInfo{Comm: "sshd", Exe: "/var/lib/rancher/sshd"}, want: []string{"system-name-odd-path"}},
		{name: "vendor agent", p: ingest.ProcessInfo{Comm: "YDService", Exe: "/usr/local/qcloud/YunJing/YDEyes/YDService"},
			want: []string{"vendor-agent"}},
		{name: "vendor name in tmp", p: ingest.ProcessInfo{Comm: "YDService", Exe: "/tmp/YDService"},
			want: []string{"exe-in-tmp", "vendor-name-odd-path"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			facts := ProcessRisk(tc.p, tc.parent)
			var got []string
			for _, f := range facts {
				got = append(got, f.ID)
				if f.Text == "" || f.Severity == "" {
					t.Errorf("fact without text/severity: %+v", f)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("facts = %v (%+v); want %v", got, facts, tc.want)
			}
		})
	}
}

func TestHiddenDirToolchains(t *testing.T) {
	for exe, want := range map[string]string{
		"/root/.pyenv/versions/3.11.7/bin/python3.11":    "",
		"/home/alice/.cargo/bin/rg":                      "",
		"/home/alice/.local/bin/uvicorn":                 "",
		"/home/alice/.cache/.x/miner":                    RiskMedium,
		"/opt/app/.hidden/agent":                         RiskMedium,
		"/var/tmp/.x/dbus-daemon":                        RiskHigh,
		"/usr/lib/.sysd/sshd":                            RiskHigh,
		"/srv/.pyenv/bin/python3":                        RiskMedium, // not in a home directory
		"/home/alice/projects/.pyenv/versions/3/bin/py3": RiskMedium,
	} {
		got := ""
		for _, f := range ProcessRisk(ingest.ProcessInfo{PID: 10, Comm: path.Base(exe), Exe: exe, Cmdline: []string{exe}}, nil) {
			if f.ID == "exe-hidden-dir" {
				got = f.Severity
			}
		}
		if got != want {
			t.Errorf("%s: exe-hidden-dir severity %q, want %q", exe, got, want)
		}
	}
}

// TestReplacedExeIsNoFinding: a process whose binary a package upgrade
// replaced (a file is at the path again) is a low fact, not a suspicious
// process; one whose binary is gone for good is.
func TestReplacedExeIsNoFinding(t *testing.T) {
	upgraded := ingest.ProcessInfo{PID: 700, PPID: 1, Comm: "sshd", Exe: "/usr/sbin/sshd", ExeDeleted: true, ExeReplaced: true}
	facts := ProcessRisk(upgraded, &ingest.ProcessInfo{PID: 1, Comm: "systemd", Exe: "/usr/lib/systemd/systemd"})
	if len(facts) != 1 || facts[0].ID != "exe-replaced" || facts[0].Severity != RiskLow {
		t.Errorf("upgraded sshd: %+v", facts)
	}
	if got := upgraded.ExeLabel(); got != "/usr/sbin/sshd (replaced)" {
		t.Errorf("label %q", got)
	}
	gone := upgraded
	gone.ExeReplaced = false
	if facts := ProcessRisk(gone, nil); len(facts) != 1 || facts[0].ID != "exe-deleted" || facts[0].Severity != RiskHigh {
		t.Errorf("deleted sshd: %+v", facts)
	}
	if got := gone.ExeLabel(); got != "/usr/sbin/sshd (deleted)" {
		t.Errorf("label %q", got)
	}
}

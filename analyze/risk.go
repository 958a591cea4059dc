package analyze

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// Risk severities (RiskFact.Severity), most severe first.
const (
	RiskHigh   = "high"
	RiskMedium = "medium"
	RiskLow    = "low"
	RiskInfo   = "info"
)

// RiskFact is one fact about a process that makes it more (or less) likely
// to be malicious: the runbook's "is this process normal?" step.
type RiskFact struct {
	// ID is stable: "exe-in-tmp", "exe-hidden-dir", "exe-deleted",
	// "comm-exe-mismatch", "kthread-name-with-exe", "system-name-odd-path",
	// "system-name-odd-parent", "system-name-odd-user", "windows-system-name-odd-path",
	// "windows-exe-in-temp", "vendor-agent", "vendor-name-odd-path".
	ID string `json:"id"`
	// Severity is RiskHigh, RiskMedium, RiskLow or RiskInfo.
	Severity string `json:"severity"`
	// Text is a one-line explanation with the evidence.
	Text string `json:"text"`
}

// systemDirs hold the executables of system daemons on Linux.
// /usr/local/{s,}bin hold what the administrator installed by hand (the
// containerd install guide puts it there; sshd built from source).
var systemDirs = []string{"/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/", "/usr/lib/systemd/", "/lib/systemd/",
	"/usr/local/sbin/", "/usr/local/bin/"}

// packageTrees are root-owned trees a package manager or a distribution
// unpacks programs into, at any depth: the FHS library trees, Nix and Guix
// stores, snaps (read-only squashfs mounts), and the data directories k3s
// and RKE2 unpack their bundled containerd, runc and CNI plugins into.
var packageTrees = []string{"/usr/lib/", "/lib/", "/usr/libexec/", "/usr/lib64/", "/nix/store/", "/gnu/store/",
	"/snap/", "/var/lib/snapd/snap/", "/var/lib/rancher/k3s/data/", "/var/lib/rancher/rke2/data/"}

// systemDaemons are names that malware likes to borrow.
var systemDaemons = []string{"sshd", "cron", "crond", "atd", "anacron", "rsyslogd", "syslogd", "syslog-ng", "dbus-daemon",
	"dbus-broker", "init", "agetty", "udevd", "auditd", "polkitd", "irqbalance", "chronyd", "ntpd", "containerd", "dockerd",
	"snapd", "NetworkManager", "dhclient", "accounts-daemon", "avahi-daemon", "cupsd", "rpcbind", "acpid"}

// rootDaemons run as root when started by init (their per-session or
// privilege-separated children run as other users but have another parent).
// (Not systemd: init starts a user's own manager, `systemd --user`, as that
// user.)
var rootDaemons = []string{"sshd", "cron", "crond", "atd", "auditd", "init", "systemd-logind", "udevd", "systemd-udevd"}

func userSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " (" + u + ")"
}

// systemDaemonParents are parents a system daemon normally has.
var systemDaemonParents = []string{"systemd", "init", "containerd-shim", "runc", "crun", "conmon", "sshd", "cron", "crond", "master",
	// Container inits and process supervisors start daemons too.
	"tini", "dumb-init", "docker-init", "catatonit", "s6-supervise", "runsv", "supervisord", "supervise-daemon", "start-stop-daem", "monit",
	// Kubernetes distributions that run their own containerd; dockerd runs containerd too.
	"k3s-server", "k3s-agent", "rke2", "kubelite", "dockerd"}

// kthreadPrefixes are kernel thread names; a process with an exe cannot be
// one.
var kthreadPrefixes = []string{"kworker", "kthreadd", "ksoftirqd", "kswapd", "migration/", "rcu_", "watchdog", "kdevtmpfs",
	"kblockd", "kcompactd", "khugepaged", "kintegrityd", "kauditd", "jbd2/", "ext4-", "xfs", "scsi_", "irq/", "cpuhp/",
	"idle_inject", "oom_reaper", "writeback", "kstrp", "ipv6_addrconf", "md", "kthrotld", "kpsmoused", "ttm_swap",
	"netns", "khungtaskd", "ksmd", "edac-poller", "devfreq_wq", "kworker/"}

// windowsSystemNames live in C:\Windows\System32 (or SysWOW64); explorer.exe
// lives in C:\Windows.
var windowsSystemNames = []string{"svchost.exe", "lsass.exe", "csrss.exe", "smss.exe", "wininit.exe", "winlogon.exe",
	"services.exe", "spoolsv.exe", "taskhostw.exe", "taskhost.exe", "lsm.exe", "dllhost.exe", "conhost.exe",
	"rundll32.exe", "dwm.exe", "runtimebroker.exe", "sihost.exe", "wmiprvse.exe", "searchindexer.exe", "ctfmon.exe",
	"fontdrvhost.exe", "audiodg.exe", "explorer.exe", "regsvr32.exe", "msiexec.exe", "taskmgr.exe", "wuauclt.exe"}

// interpreters run scripts: their comm is the script's name, not the exe's.
var interpreters = []string{"python", "perl", "ruby", "node", "java", "php", "bash", "sh", "dash", "busybox", "lua",
	"pwsh", "dotnet", "mono", "tclsh", "env"}

// ProcessRisk returns the risk facts of p (parent is its parent process, nil
// if unknown), most severe first, deterministic order. Facts are derived from
// the exe path, comm, cmdline, user and parent only; no file is read.
func ProcessRisk(p ingest.ProcessInfo, parent *ingest.ProcessInfo) []RiskFact {
	var out []RiskFact
	add := func(id, sev, format string, args ...any) {
		out = append(out, RiskFact{ID: id, Severity: sev, Text: fmt.Sprintf(format, args...)})
	}
	exe := strings.TrimSuffix(p.Exe, " (deleted)")
	deleted := p.ExeDeleted || strings.HasSuffix(p.Exe, " (deleted)")
	windows := isWindowsPath(exe) || strings.HasSuffix(strings.ToLower(p.Comm), ".exe")
	base := baseName(exe)
	argv0 := ""
	if len(p.Cmdline) > 0 {
		argv0 = p.Cmdline[0]
	}
	vendor := matchVendor(p)

	if windows {
		lexe := strings.ToLower(exe)
		name := strings.ToLower(base)
		if name == "" {
			name = strings.ToLower(p.Comm)
		}
		if slices.Contains(windowsSystemNames, name) && exe != "" && !windowsSystemPath(lexe, name) {
			add("windows-system-name-odd-path", RiskHigh, "%s runs from %s, not from C:\\Windows\\System32", base, exe)
		}
		if strings.Contains(lexe, `\temp\`) || strings.Contains(lexe, `\users\public\`) || strings.Contains(lexe, `\appdata\local\temp\`) {
			add("windows-exe-in-temp", RiskHigh, "executable %s is in a temporary or public directory", exe)
		}
	} else {
		if goRunBuild.MatchString(exe) {
			add("exe-go-run", RiskLow, "executable %s is a `go run` build (Go builds and runs programs from /tmp/go-build…)", exe)
		} else {
			for _, d := range []string{"/tmp/", "/var/tmp/", "/dev/shm/"} {
				if strings.HasPrefix(exe, d) {
					add("exe-in-tmp", RiskHigh, "executable %s is under %s (world-writable scratch space)", exe, d)
					break
				}
			}
		}
		if c := hiddenComponent(exe); c != "" && !toolchainDir(exe, c) {
			// Malware hides in dot directories (/tmp/.x, /var/tmp/.ICE-unix);
			// elsewhere a dot directory is merely unusual for a service.
			sev := RiskMedium
			if strings.HasPrefix(exe, "/tmp/") || strings.HasPrefix(exe, "/var/tmp/") || strings.HasPrefix(exe, "/dev/shm/") ||
				strings.HasPrefix(exe, "/usr/") || strings.HasPrefix(exe, "/etc/") || strings.HasPrefix(exe, "/lib") || strings.HasPrefix(exe, "/bin/") ||
				strings.HasPrefix(exe, "/sbin/") || strings.HasPrefix(exe, "/var/") || strings.HasPrefix(exe, "/dev/") || strings.HasPrefix(exe, "/boot/") {
				sev = RiskHigh
			}
			add("exe-hidden-dir", sev, "executable %s is in a hidden path component %q", exe, c)
		}
		switch {
		case deleted && p.ExeReplaced:
			add("exe-replaced", RiskLow, "executable %s was replaced since the process started (a package upgrade or a deploy; restart it to run the new file)", exe)
		case deleted:
			add("exe-deleted", RiskHigh, "executable %s was deleted after the process started", exe)
		}
		if kthreadLike(p.Comm, argv0) && exe != "" {
			add("kthread-name-with-exe", RiskHigh, "name %q looks like a kernel thread but the process runs %s", kthreadName(p.Comm, argv0), exe)
		}
		if name := daemonName(p.Comm, base); name != "" && exe != "" && vendor == nil {
			if !inDirs(exe, systemDirs) {
				add("system-name-odd-path", RiskHigh, "system daemon name %q runs from %s, not a system directory", name, exe)
			} else if parent != nil && p.PPID > 1 && !slices.Contains(systemDaemonParents, parent.Comm) && parent.Comm != p.Comm {
				add("system-name-odd-parent", RiskMedium, "system daemon %q has parent %s (pid %d), not systemd/init", name, parent.Comm, parent.PID)
			} else if p.PPID == 1 && p.UID > 0 && slices.Contains(rootDaemons, name) {
				add("system-name-odd-user", RiskMedium, "system daemon %q started by init runs as uid %d%s, not root", name, p.UID, userSuffix(p.User))
			}
		}
		// The kernel names a process after the path it was started by, so
		// a program run through a symlink (/usr/sbin/mysqld → mariadbd,
		// uwsgi → uwsgi-core, alternatives) has argv[0]'s name, not the
		// executable's: that is no mismatch.
		if exe != "" && p.Comm != "" && !commMatches(p.Comm, base) && !commMatches(p.Comm, baseName(argv0)) && !interpreter(base) && vendor == nil {
			add("comm-exe-mismatch", RiskMedium, "process name %q differs from its executable %s", p.Comm, base)
		}
	}
	if vendor != nil {
		if exe != "" && !vendorDir(vendor, exe) && !inDirs(exe, systemDirs) && !interpreter(base) {
			add("vendor-name-odd-path", RiskHigh, "%s agent name runs from unexpected path %s", vendor.vendor, exe)
		} else {
			add("vendor-agent", RiskInfo, "%s agent (%s): open a ticket with the vendor if it is the bandwidth hog", vendor.vendor, firstNonEmpty(base, p.Comm))
		}
	}
	order := map[string]int{RiskHigh: 0, RiskMedium: 1, RiskLow: 2, RiskInfo: 3}
	slices.SortStableFunc(out, func(a, b RiskFact) int { return order[a.Severity] - order[b.Severity] })
	return out
}

// goRunBuild matches where `go run` puts the program it builds and runs.
var goRunBuild = regexp.MustCompile(`^/tmp/go-build[0-9]+/b[0-9]+/exe/[^/]+$`)

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func isWindowsPath(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') || strings.HasPrefix(p, `\\`)
}

func windowsSystemPath(lexe, name string) bool {
	lexe = strings.ReplaceAll(lexe, "/", `\`)
	dir := strings.TrimSuffix(lexe, name)
	switch dir {
	case `c:\windows\system32\`, `c:\windows\syswow64\`, `c:\windows\system32\wbem\`, `c:\windows\syswow64\wbem\`:
		return true
	case `c:\windows\`:
		return name == "explorer.exe"
	}
	return false
}

// toolchainDirs are dot directories in a home directory where language
// version managers and user-level installers keep real executables.
var toolchainDirs = []string{".pyenv", ".rbenv", ".nvm", ".cargo", ".rustup", ".local", ".sdkman", ".asdf", ".volta",
	".deno", ".bun", ".dotnet", ".vscode-server", ".cursor-server", ".goenv", ".jenv", ".plenv", ".nodenv", ".linuxbrew",
	".krew", ".pulumi", ".rye", ".poetry", ".conda", ".miniconda3", ".jdks", ".m2", ".gradle", ".npm", ".yarn"}

// toolchainDir reports whether hidden component c of exe is a known
// toolchain directory directly under /root or /home/USER.
func toolchainDir(exe, c string) bool {
	if !slices.Contains(toolchainDirs, c) {
		return false
	}
	return strings.HasPrefix(exe, "/root/"+c+"/") || (strings.HasPrefix(exe, "/home/") && strings.Count(exe[:strings.Index(exe, "/"+c+"/")+1], "/") == 3)
}

// hiddenComponent returns the first directory or file name of path that
// starts with a dot ("." and ".." excluded).
func hiddenComponent(path string) string {
	for _, c := range strings.Split(path, "/") {
		if strings.HasPrefix(c, ".") && c != "." && c != ".." {
			return c
		}
	}
	return ""
}

func kthreadName(comm, argv0 string) string {
	if strings.HasPrefix(argv0, "[") {
		return argv0
	}
	return comm
}

// kthreadLike: the comm or argv[0] is bracketed like ps shows kernel threads,
// or the comm starts like a kernel thread name.
func kthreadLike(comm, argv0 string) bool {
	for _, s := range []string{comm, strings.TrimSpace(argv0)} {
		if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			return true
		}
	}
	for _, k := range kthreadPrefixes {
		if k == "md" || k == "xfs" || k == "netns" {
			if comm == k {
				return true
			}
			continue
		}
		if strings.HasPrefix(comm, k) {
			return true
		}
	}
	return false
}

// daemonName returns the system daemon name p goes by (comm or exe base,
// including "systemd-*"), or "".
func daemonName(comm, base string) string {
	for _, n := range []string{comm, base} {
		if n == "" {
			continue
		}
		if slices.Contains(systemDaemons, n) || n == "systemd" || strings.HasPrefix(n, "systemd-") {
			return n
		}
	}
	return ""
}

// inDirs: exe is directly in one of dirs, or anywhere below the
// packageTrees.
func inDirs(exe string, dirs []string) bool {
	for _, d := range dirs {
		if !strings.HasPrefix(exe, d) {
			continue
		}
		if !strings.Contains(exe[len(d):], "/") {
			return true
		}
	}
	for _, d := range packageTrees {
		if strings.HasPrefix(exe, d) {
			return true
		}
	}
	return false
}

// commMatches: comm is the exe basename, allowing the kernel's 15-byte
// truncation.
//
// A program may name its processes after their role, "k3s" as "k3s-server"
// or "k3s-agent": the executable's name, a separator and more. systemd
// names the helpers it forks in parentheses, "(sd-pam)" for a user
// manager's PAM session, "(sd-executor)".
func commMatches(comm, base string) bool {
	if comm == base || comm == truncComm(base) {
		return true
	}
	if rest, ok := strings.CutPrefix(comm, base); ok && base != "" && rest != "" && strings.ContainsRune("-:_.", rune(rest[0])) {
		return true
	}
	return base == "systemd" && strings.HasPrefix(comm, "(") && strings.HasSuffix(comm, ")")
}

func interpreter(base string) bool {
	b := strings.TrimRight(base, "0123456789.")
	return slices.Contains(interpreters, b)
}

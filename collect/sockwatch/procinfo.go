package sockwatch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// userHZ is the unit of /proc/PID/stat times (USER_HZ, 100 on every Linux
// architecture's user ABI).
const userHZ = 100

// BootTimeNs returns the boot time as Unix nanoseconds, computed as
// CLOCK_REALTIME − CLOCK_BOOTTIME. This is precise to microseconds, unlike
// /proc/stat btime (whole seconds), and it matches the clock that
// /proc/PID/stat starttime counts from. Process start times in the records
// are BootTimeNs() + starttime × 10 ms, so the same process always gets the
// same ProcKey within one run.
func BootTimeNs() int64 {
	var rt, bt unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &rt) != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt) != nil {
		return 0
	}
	ns := rt.Nano() - bt.Nano()
	// Round to the millisecond so two calls in one run agree.
	return (ns + 500_000) / 1_000_000 * 1_000_000
}

// procStat is what sockwatch needs from /proc/PID/stat.
type procStat struct {
	Comm      string
	PPID      int
	StartTick uint64
}

// parseProcStat decodes /proc/PID/stat. comm is in parentheses and may
// contain spaces and parentheses, so the fields start after the last ')'.
func parseProcStat(b []byte) (procStat, error) {
	var ps procStat
	open := bytes.IndexByte(b, '(')
	cl := bytes.LastIndexByte(b, ')')
	if open < 0 || cl < open {
		return ps, fmt.Errorf("parse stat: no comm in %q", truncate(b, 64))
	}
	ps.Comm = string(b[open+1 : cl])
	f := bytes.Fields(b[cl+1:])
	// f[0]=state(3) f[1]=ppid(4) ... f[19]=starttime(22)
	if len(f) < 20 {
		return ps, fmt.Errorf("parse stat: %d fields after comm", len(f))
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return ps, fmt.Errorf("parse stat ppid %q: %w", f[1], err)
	}
	st, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return ps, fmt.Errorf("parse stat starttime %q: %w", f[19], err)
	}
	ps.PPID, ps.StartTick = ppid, st
	return ps, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// parseStatusUID returns the real uid from /proc/PID/status ("Uid:\t0\t0\t0\t0").
func parseStatusUID(b []byte) (int, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			uid, err := strconv.Atoi(string(f[0]))
			return uid, err == nil
		}
	}
	return 0, false
}

// parseCgroup returns the cgroup path of /proc/PID/cgroup: the v2 entry
// ("0::/path") when present, else the first v1 entry.
func parseCgroup(b []byte) string {
	first := ""
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if first == "" {
			first = parts[2]
		}
	}
	return first
}

// containerRE matches the container id in cgroup paths of docker
// (/docker/<id>, docker-<id>.scope), containerd (cri-containerd-<id>.scope),
// CRI-O (crio-<id>.scope), podman (libpod-<id>.scope) and kubepods
// (/kubepods/.../pod<uid>/<id>).
var containerRE = regexp.MustCompile(`(?:docker[-/]|cri-containerd-|crio-|libpod-|containerd[-/]|kubepods[^ ]*/)([0-9a-f]{64})(?:\.scope)?(?:/|$)`)

// containerID extracts a container id from a cgroup path ("" if none).
func containerID(cgroup string) string {
	m := containerRE.FindAllStringSubmatch(cgroup, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// parseCmdline splits /proc/PID/cmdline at NULs.
func parseCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\x00")
}

// parsePasswd maps uid → user name from /etc/passwd content.
func parsePasswd(r io.Reader) map[int]string {
	b, _ := io.ReadAll(io.LimitReader(r, 16<<20))
	m := map[int]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, ":", 4)
		if len(f) < 4 {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if _, dup := m[uid]; !dup {
			m[uid] = f[0]
		}
	}
	return m
}

// exeKey identifies an executable file version for hashing once.
type exeKey struct {
	Dev, Ino uint64
	Mtime    int64
}

// procReader reads process facts from /proc.
type procReader struct {
	proc     string
	bootNs   int64
	users    map[int]string
	hashMax  int64
	budget   int64 // remaining
	hashes   map[exeKey]string
	skipped  map[string]int // reason → processes
	hashUsed int64
	mu       sync.Mutex // guards the hash state: the prober reads facts too
}

func newProcReader(proc string, bootNs, hashMax, budget int64) *procReader {
	pr := &procReader{proc: proc, bootNs: bootNs, hashMax: hashMax, budget: budget,
		hashes: map[exeKey]string{}, skipped: map[string]int{}}
	if f, err := os.Open("/etc/passwd"); err == nil {
		pr.users = parsePasswd(f)
		f.Close()
	}
	return pr
}

func (pr *procReader) path(pid int, name string) string {
	return pr.proc + "/" + strconv.Itoa(pid) + "/" + name
}

// startOf returns the process identity of pid from /proc/PID/stat.
func (pr *procReader) stat(pid int) (procStat, int64, error) {
	b, err := os.ReadFile(pr.path(pid, "stat"))
	if err != nil {
		return procStat{}, 0, err
	}
	ps, err := parseProcStat(b)
	if err != nil {
		return ps, 0, err
	}
	return ps, pr.bootNs + int64(ps.StartTick)*(int64(time.Second)/userHZ), nil
}

// info reads the facts of a process. Fields that cannot be read stay empty.
// Executables up to limit bytes are hashed now (see hashExe).
func (pr *procReader) info(pid int, now, limit int64) (ingest.ProcessInfo, error) {
	ps, start, err := pr.stat(pid)
	if err != nil {
		return ingest.ProcessInfo{}, err
	}
	p := ingest.ProcessInfo{PID: pid, Start: start, PPID: ps.PPID, Comm: ps.Comm, UID: -1, FirstSeen: now, LastSeen: now}
	if b, err := os.ReadFile(pr.path(pid, "status")); err == nil {
		if uid, ok := parseStatusUID(b); ok {
			p.UID = uid
			p.User = pr.users[uid]
		}
	}
	if exe, err := os.Readlink(pr.path(pid, "exe")); err == nil {
		p.Exe, p.ExeDeleted = strings.CutSuffix(exe, " (deleted)")
		// A file at the path now, seen from the process's own root: the
		// binary was replaced (an upgrade), not deleted for good.
		if st, err := os.Stat(pr.path(pid, "root") + p.Exe); p.ExeDeleted && err == nil && st.Mode().IsRegular() {
			p.ExeReplaced = true
		}
	}
	if b, err := os.ReadFile(pr.path(pid, "cmdline")); err == nil {
		p.Cmdline = parseCmdline(b)
	}
	if cwd, err := os.Readlink(pr.path(pid, "cwd")); err == nil {
		p.Cwd = cwd
	}
	if b, err := os.ReadFile(pr.path(pid, "cgroup")); err == nil {
		p.Cgroup = parseCgroup(b)
		p.Container = containerID(p.Cgroup)
	}
	var st unix.Stat_t
	if unix.Stat(pr.path(pid, "ns/net"), &st) == nil {
		p.Netns = st.Ino
	}
	if p.Exe != "" {
		pr.hashExe(pid, &p, limit)
	}
	return p, nil
}

// hashExe fills ExeSize, ExeMtime and ExeSHA256 through /proc/PID/exe, which
// still opens the binary after it was deleted or replaced; when the process
// is gone it falls back to the path if the file there has the same size and
// mtime. Each distinct (dev, inode, mtime) is hashed once; files over
// hashMax and hashing past the budget are skipped (counted in pr.skipped).
// Files over limit are left for a later call without counting them as
// skipped.
func (pr *procReader) hashExe(pid int, p *ingest.ProcessInfo, limit int64) {
	f, err := os.Open(pr.path(pid, "exe"))
	if err != nil && p.Exe != "" && !p.ExeDeleted && p.ExeSize > 0 {
		f, err = os.Open(p.Exe)
	}
	if err != nil {
		pr.mu.Lock()
		pr.skipped["exe not readable"]++
		pr.mu.Unlock()
		return
	}
	defer f.Close()
	pr.hashFile(f, p, limit)
}

// hashFile is hashExe on an open executable (the prober opens
// /proc/PID/exe while the process lives and lets the main loop hash it).
func (pr *procReader) hashFile(f *os.File, p *ingest.ProcessInfo, limit int64) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return
	}
	if p.ExeSize > 0 && (st.Size != p.ExeSize || st.Mtim.Nano() != p.ExeMtime) {
		pr.skipped["exe replaced before it could be hashed"]++
		return
	}
	p.ExeSize = st.Size
	p.ExeMtime = st.Mtim.Nano()
	k := exeKey{Dev: st.Dev, Ino: st.Ino, Mtime: p.ExeMtime}
	if h, ok := pr.hashes[k]; ok {
		p.ExeSHA256 = h
		return
	}
	switch {
	case st.Size > pr.hashMax:
		pr.skipped[fmt.Sprintf("exe larger than %d bytes", pr.hashMax)]++
		return
	case st.Size > pr.budget-pr.hashUsed:
		pr.skipped[fmt.Sprintf("hash budget of %d bytes used up", pr.budget)]++
		return
	case st.Size > limit:
		return // deferred
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, pr.hashMax+1))
	pr.hashUsed += n
	if err != nil || n != st.Size {
		pr.skipped["exe changed or unreadable while hashing"]++
		return
	}
	p.ExeSHA256 = hex.EncodeToString(h.Sum(nil))
	pr.hashes[k] = p.ExeSHA256
}

// notes describes skipped hashes, sorted.
func (pr *procReader) notes() []string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var out []string
	for why, n := range pr.skipped {
		out = append(out, fmt.Sprintf("exe SHA-256 left empty for %d process(es): %s", n, why))
	}
	sortStrings(out)
	return out
}

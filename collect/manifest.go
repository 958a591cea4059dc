package collect

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/flowblame/flowblame/collect/sockwatch"
	"github.com/flowblame/flowblame/ingest"
	"golang.org/x/sys/unix"
)

// hostInfo describes the local host. Facts that cannot be read are left
// empty and named in the returned notes.
func hostInfo() (ingest.HostInfo, []string) {
	var notes []string
	h := ingest.HostInfo{OS: "linux", ClockTicks: 100}
	var err error
	if h.Hostname, err = os.Hostname(); err != nil {
		notes = append(notes, "hostname: "+err.Error())
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		h.Kernel = unix.ByteSliceToString(u.Release[:])
	} else {
		notes = append(notes, "uname: "+err.Error())
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(b))
	} else {
		notes = append(notes, "boot id: "+err.Error())
	}
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		sum := sha256.Sum256(bytes.TrimSpace(b))
		h.MachineIDHash = hex.EncodeToString(sum[:])
	} else {
		notes = append(notes, "machine id: "+err.Error())
	}
	// The socket watcher converts process start times with the nanosecond
	// boot time (realtime − boottime clocks); the manifest must use the same
	// one, /proc/stat's btime (whole seconds) only as a fallback.
	if bt := sockwatch.BootTimeNs(); bt > 0 {
		h.BootTime = bt
	} else if f, err := os.Open("/proc/stat"); err == nil {
		bt, err := parseBootTime(f)
		f.Close()
		if err == nil {
			h.BootTime = bt
		} else {
			notes = append(notes, "boot time: "+err.Error())
		}
	}
	return h, notes
}

// parseBootTime reads the "btime SECONDS" line of /proc/stat and returns
// Unix ns.
func parseBootTime(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	sc.Buffer(make([]byte, 0, 4096), 1<<16)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse btime %q: %w", rest, ingest.ErrMalformed)
			}
			return s * 1e9, nil
		}
	}
	return 0, fmt.Errorf("no btime line: %w", ingest.ErrMalformed)
}

// clocks returns CLOCK_REALTIME and CLOCK_MONOTONIC in ns.
func clocks() (real, mono int64) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &ts) == nil {
		real = ts.Nano()
	}
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		mono = ts.Nano()
	}
	return real, mono
}

// selfUsage fills the collector's CPU and peak RSS from getrusage.
func selfUsage(u *ingest.CollectorUsage) {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return
	}
	u.UserCPU = float64(ru.Utime.Nano()) / 1e9
	u.SysCPU = float64(ru.Stime.Nano()) / 1e9
	u.MaxRSS = ru.Maxrss * 1024
}

// hashFile returns the size and SHA-256 of one file.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// listFiles hashes every regular file below dir except manifest.json and
// returns them sorted by slash-separated relative path.
func listFiles(dir string) ([]ingest.FileEntry, error) {
	var out []ingest.FileEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ingest.ManifestFile || strings.HasSuffix(rel, ".tmp") {
			return nil
		}
		n, sum, err := hashFile(p)
		if err != nil {
			return err
		}
		out = append(out, ingest.FileEntry{Path: rel, Size: n, SHA256: sum})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list bundle files: %w", err)
	}
	slices.SortFunc(out, func(a, b ingest.FileEntry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// writeManifest writes dir/manifest.json atomically (temp file + rename),
// so a reader or a SIGKILL never sees half a manifest.
func writeManifest(dir string, m *ingest.Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	b = append(b, '\n')
	tmp := filepath.Join(dir, ingest.ManifestFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ingest.ManifestFile)); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

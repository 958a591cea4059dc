package ingest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// lsof table output: `lsof -i -n -P` (also without -n/-P: names are mapped
// where possible, otherwise reported).

// parseLsof parses the table output of one `lsof -i -n -P` run.
func parseLsof(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatLsof, parseLsofLines)
}

// readLsof parses an lsof table dump file as one snapshot.
func readLsof(path string) (SocketSnapshot, []Diagnostic, error) { return readSingle(path, parseLsof) }

var (
	lsofHeaderRE = regexp.MustCompile(`^COMMAND\s+PID\s+(TID\s+(TASKCMD\s+)?)?USER\s+FD\s+TYPE\s+DEVICE\s+SIZE/OFF\s+NODE\s+NAME`)
	lsofRowRE    = regexp.MustCompile(`(?m)^\S+\s+\d+\s.*\s(IPv4|IPv6)\s+\S+\s+\S+\s+(TCP|UDP)\s+\S`)
)

// sniffLsof reports whether head looks like lsof table output.
func sniffLsof(head []byte) bool {
	for _, l := range bytes.Split(head, []byte("\n")) {
		if lsofHeaderRE.Match(l) {
			return true
		}
	}
	return lsofRowRE.Match(head)
}

func parseLsofLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	for _, l := range lines {
		s := l.s
		if strings.TrimSpace(s) == "" || lsofHeaderRE.MatchString(s) {
			continue
		}
		if strings.HasPrefix(s, "lsof: ") || strings.HasPrefix(s, "      Output information may be incomplete") {
			ds.add(DiagInfo, l, "lsof-warning", fmt.Sprintf("lsof warning: %s", clip(s)))
			continue
		}
		// Sample (lsof 4.95.0, `lsof -i -n -P`):
		// COMMAND  PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME
		// python3 7029 root    7u  IPv4  10695      0t0  TCP 198.51.100.1:22->198.51.100.2:50670 (ESTABLISHED)
		// The columns are located by shape rather than by position: TYPE is
		// IPv4/IPv6 and NODE, three fields later, is TCP/UDP; an optional
		// TID/TASKCMD pair after PID (lsof -K) shifts nothing else.
		// SIZE/OFF may be blank (lsof 4.95 leaves it empty for some
		// sockets): NODE is then two fields after TYPE.
		f := strings.Fields(s)
		ti, ni := -1, -1
		for i := 3; i+2 < len(f) && ti < 0; i++ {
			if f[i] != "IPv4" && f[i] != "IPv6" {
				continue
			}
			for _, j := range []int{i + 3, i + 2} {
				if j < len(f) && (f[j] == "TCP" || f[j] == "UDP") {
					ti, ni = i, j
					break
				}
			}
		}
		if ti < 0 || ni+1 >= len(f) {
			if len(f) >= 5 && (strings.Contains(s, " IPv4 ") || strings.Contains(s, " IPv6 ") || strings.Contains(s, " sock ")) {
				ds.add(DiagSkipped, l, "lsof-other", fmt.Sprintf("non-TCP/UDP inet socket skipped: %q", clip(s)))
			} else {
				ds.add(DiagMalformed, l, "lsof-row", fmt.Sprintf("not an lsof inet row: %q", clip(s)))
			}
			continue
		}
		pid, ok := atoiPos(f[1])
		if !ok || pid == 0 {
			ds.add(DiagMalformed, l, "lsof-pid", fmt.Sprintf("lsof PID %q is not a number", f[1]))
			continue
		}
		comm := lsofUnescape(f[0])
		user := f[ti-2]
		name := strings.Join(f[ni+1:], " ")
		inode, _ := strconv.ParseUint(f[ti+1], 10, 64)
		e, err := lsofName(f[ni], f[ti] == "IPv6", name)
		if err != nil {
			ds.add(DiagUnsupported, l, "lsof-name", fmt.Sprintf("lsof NAME %q: %v", clip(name), err))
			continue
		}
		e.Inode = inode
		p := ProcessInfo{PID: pid, Comm: comm, UID: -1}
		switch uid, ok := atoiPos(user); {
		case ok:
			p.UID = uid
		case user == "root":
			p.UID, p.User = 0, user
		default:
			p.User = user
		}
		e.UID = p.UID
		b.proc(p)
		b.add(e, pid, comm)
	}
}

// lsofName decodes an lsof NAME column (also the -F n field plus the state):
// "198.51.100.1:22->198.51.100.2:50670 (ESTABLISHED)", "*:22 (LISTEN)",
// "[::1]:631", "*:53".
func lsofName(node string, v6 bool, name string) (SocketEntry, error) {
	e := SocketEntry{UID: -1}
	switch node {
	case "TCP":
		e.Proto = ProtoTCP
	case "UDP":
		e.Proto = ProtoUDP
	default:
		return e, fmt.Errorf("protocol %q", node)
	}
	addrs, state, _ := strings.Cut(strings.TrimSpace(name), " ")
	state = strings.Trim(strings.TrimSpace(state), "()")
	lo, re, connected := strings.Cut(addrs, "->")
	var err error
	if e.Local, err = parseLocal(lo, v6); err != nil {
		return e, err
	}
	if connected {
		if e.Remote, err = parseRemote(re, v6); err != nil {
			return e, err
		}
	}
	if state != "" {
		e.State, _ = normState(state)
	} else if e.Proto == ProtoUDP {
		e.State = udpState(e.Remote)
	}
	return e, nil
}

// lsofUnescape undoes lsof's \xNN escaping of command names.
func lsofUnescape(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				out.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		out.WriteByte(s[i])
	}
	return out.String()
}

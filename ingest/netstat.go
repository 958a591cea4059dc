package ingest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Linux net-tools `netstat -tunap` (also -W, and without -n).

// parseNetstat parses the output of one Linux `netstat -tunap` run.
func parseNetstat(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatNetstat, parseNetstatLines)
}

// readNetstat parses a Linux netstat dump file as one snapshot.
func readNetstat(path string) (SocketSnapshot, []Diagnostic, error) {
	return readSingle(path, parseNetstat)
}

var (
	netstatHeaderRE = regexp.MustCompile(`^Proto\s+Recv-Q\s+Send-Q\s+Local Address\s+Foreign Address`)
	netstatRowRE    = regexp.MustCompile(`(?m)^(tcp|udp|tcp6|udp6|udpl|udpl6|raw|raw6)\s+\d+\s+\d+\s+\S+\s+\S+`)
)

// netstatAddrWidth is the width of net-tools' address columns without -W:
// longer addresses are cut to fit, so a 23-character field may be cut.
const netstatAddrWidth = 23

// sniffNetstat reports whether head looks like Linux netstat output.
func sniffNetstat(head []byte) bool {
	for _, l := range bytes.Split(head, []byte("\n")) {
		if netstatHeaderRE.Match(l) {
			return true
		}
	}
	// ss with a state filter has netstat's columns but ss's users:((
	// process field.
	return netstatRowRE.Match(head) && !bytes.Contains(head, []byte("users:(("))
}

func parseNetstatLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	for _, l := range lines {
		s := l.s
		t := strings.TrimSpace(s)
		// "Proto RefCnt Flags Type State I-Node ..." heads netstat -a's UNIX
		// socket section.
		if t == "" || strings.HasPrefix(t, "Active ") || netstatHeaderRE.MatchString(s) || strings.HasPrefix(t, "Proto RefCnt ") ||
			strings.HasPrefix(t, "(Not all processes") || strings.HasPrefix(t, "will not be shown") ||
			strings.HasPrefix(t, "(No info could be read") {
			continue
		}
		// Sample (net-tools 2.10, `netstat -tunap`):
		// Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name
		// tcp        0      0 198.51.100.1:22         198.51.100.2:50670      ESTABLISHED 7029/python3
		// udp     1664      0 0.0.0.0:53              0.0.0.0:*                           7029/python3
		// UDP rows usually have no State; PID/Program is "-" when unknown; the
		// program name may contain spaces.
		f, rest := cutFields(s, 6)
		if len(f) < 5 {
			ds.add(DiagMalformed, l, "netstat-short", fmt.Sprintf("netstat line has %d fields: %q", len(f), clip(s)))
			continue
		}
		var proto uint8
		switch f[0] {
		case "tcp", "tcp6":
			proto = ProtoTCP
		case "udp", "udp6":
			proto = ProtoUDP
		case "udpl", "udpl6", "raw", "raw6", "unix":
			ds.add(DiagSkipped, l, "netstat-other", fmt.Sprintf("non-TCP/UDP socket (%s) skipped", f[0]))
			continue
		default:
			ds.add(DiagMalformed, l, "netstat-proto", fmt.Sprintf("unknown netstat protocol %q in %q", f[0], clip(s)))
			continue
		}
		if _, ok := atoiPos(f[1]); !ok {
			ds.add(DiagMalformed, l, "netstat-queue", fmt.Sprintf("netstat Recv-Q %q is not a number", f[1]))
			continue
		}
		v6 := strings.HasSuffix(f[0], "6")
		local, err := parseLocal(f[3], v6)
		if err != nil {
			ds.add(DiagUnsupported, l, "netstat-addr", fmt.Sprintf("netstat local address: %v", err))
			continue
		}
		remote, err := parseRemote(f[4], v6)
		if err != nil {
			ds.add(DiagUnsupported, l, "netstat-addr", fmt.Sprintf("netstat foreign address: %v", err))
			continue
		}
		for _, a := range f[3:5] {
			if v6 && len(a) == netstatAddrWidth && strings.Count(a, ":") > 1 {
				ds.add(DiagTruncated, l, "netstat-cut-addr", fmt.Sprintf("IPv6 address %q fills the column and may have been cut by netstat (use netstat -W)", a))
			}
		}
		// After the addresses: the State (UDP rows usually have none), with
		// -e the User and Inode columns, the PID/Program name (with -p), and
		// with -o the Timer.
		tail := ""
		if len(f) == 6 {
			tail = f[5] + " " + rest
		}
		state, pidprog, ok := netstatTail(tail)
		if !ok {
			ds.add(DiagMalformed, l, "netstat-pid", fmt.Sprintf("netstat PID/Program in %q not understood", clip(strings.TrimSpace(tail))))
		}
		e := SocketEntry{Proto: proto, Local: local, Remote: remote, UID: -1}
		if state != "" {
			e.State, _ = normState(state)
		} else if proto == ProtoUDP {
			e.State = udpState(remote)
		}
		pid, comm := 0, ""
		if ok && pidprog != "" && pidprog != "-" {
			p, c, ok := strings.Cut(pidprog, "/")
			n, nok := atoiPos(p)
			if !ok || !nok || n == 0 {
				ds.add(DiagMalformed, l, "netstat-pid", fmt.Sprintf("netstat PID/Program %q not understood", clip(pidprog)))
			} else {
				pid, comm = n, strings.TrimSpace(c)
			}
		}
		b.add(e, pid, comm)
	}
}

// netstatTimerRE matches the Timer column netstat -o adds at the end of a
// row: "off (0.00/0/0)", "keepalive (7197.61/0/0)", "timewait (3.54/0/0)".
var netstatTimerRE = regexp.MustCompile(`\s*\b(?:off|on|keepalive|timewait|probe|unkn-\d+)\s+\([^()]*\)\s*$`)

// netstatStateRE matches a state netstat may print that normState does not
// know ("UNKNOWN", "BOUND"): upper case, unlike user names (netstat -e).
var netstatStateRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// netstatPIDRE matches a PID/Program name field's start.
var netstatPIDRE = regexp.MustCompile(`^[0-9]+/`)

// netstatTail splits what follows a netstat row's addresses: an optional
// State, then (netstat -e) the User and Inode columns, then the PID/Program
// name (which may contain spaces; "-" when unknown; absent without -p),
// then (netstat -o) the Timer. ok is false when there are columns left but
// none is a PID/Program name.
func netstatTail(tail string) (state, pidprog string, ok bool) {
	tail = netstatTimerRE.ReplaceAllString(strings.TrimSpace(tail), "")
	toks := strings.Fields(tail)
	if len(toks) == 0 {
		return "", "", true
	}
	if _, known := normState(toks[0]); known || netstatStateRE.MatchString(toks[0]) {
		state, toks = toks[0], toks[1:]
	}
	for i, t := range toks {
		if netstatPIDRE.MatchString(t) {
			return state, strings.Join(toks[i:], " "), true
		}
	}
	switch {
	case len(toks) == 0:
		return state, "", true
	case toks[len(toks)-1] == "-":
		return state, "-", true
	case len(toks) == 2 && isUint(toks[1]):
		// -e without -p: User and Inode only.
		return state, "", true
	}
	return state, "", false
}

package ingest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ss (iproute2) socket tables: `ss -tunap`, with or without -H (header),
// -e (uid:, ino:, sk: cookie), -i (tcp_info continuation lines), -n or not.

// parseSS parses the output of one `ss -tunap[eiH]` run.
func parseSS(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatSS, parseSSLines)
}

// readSS parses an ss dump file as one snapshot.
func readSS(path string) (SocketSnapshot, []Diagnostic, error) { return readSingle(path, parseSS) }

var (
	ssHeaderRE = regexp.MustCompile(`^(Netid\s+)?(State\s+)?Recv-Q\s+Send-Q\s`)
	// ssNoStateRowRE matches the rows of ss with a state filter (ss -tunap
	// state established), which have no State column, with or without the
	// Netid column; the users:(( field tells them from netstat's.
	ssNoStateRowRE = regexp.MustCompile(`(?m)^(?:(?:tcp|udp)\s+)?\d+\s+\d+\s+\S+\s+\S+\s+users:\(\(`)
	ssRowRE        = regexp.MustCompile(`(?m)^(tcp|udp|raw|u_str|u_dgr|u_seq|nl|p_raw|p_dgr|sctp|mptcp|tipc|xdp|v_str|v_dgr)?\s*(ESTAB|LISTEN|UNCONN|TIME-WAIT|SYN-SENT|SYN-RECV|FIN-WAIT-1|FIN-WAIT-2|CLOSE-WAIT|LAST-ACK|CLOSING|CLOSE|UNKNOWN)\s+\d+\s+\d+\s+\S+\s+\S+`)
)

// sniffSS reports whether head looks like ss output: its header line, or
// socket rows of netid, state, two queue sizes and two endpoints.
func sniffSS(head []byte) bool {
	for _, l := range bytes.Split(head, []byte("\n")) {
		if ssHeaderRE.Match(l) {
			return true
		}
	}
	return ssRowRE.Match(head) || ssNoStateRowRE.Match(head)
}

// ssNetids are the netids ss prints; only tcp and udp are kept.
var ssNetids = map[string]uint8{
	"tcp": ProtoTCP, "udp": ProtoUDP, "raw": 0, "u_str": 0, "u_dgr": 0, "u_seq": 0, "nl": 0, "p_raw": 0,
	"p_dgr": 0, "sctp": 0, "mptcp": 0, "tipc": 0, "xdp": 0, "v_str": 0, "v_dgr": 0, "icmp6": 0,
}

// ssPending is the socket row whose -i continuation lines may follow.
type ssPending struct {
	e     SocketEntry
	users []ssUser
	ok    bool
	// alsoUDP: the row has no Netid and an ESTAB state, or no State
	// column, which a TCP connection and a connected UDP socket both show
	// (ss -tanp, ss -uanp, ss -tnp state established): it is entered for
	// both protocols.
	alsoUDP bool
}

type ssUser struct {
	comm string
	pid  int
}

func parseSSLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	var pend ssPending
	flush := func() {
		if !pend.ok {
			return
		}
		entries := []SocketEntry{pend.e}
		if pend.alsoUDP {
			both := asTCPAndUDP(pend.e)
			entries = both[:]
		}
		for _, e := range entries {
			if len(pend.users) == 0 {
				b.add(e, 0, "")
			}
			for _, u := range pend.users {
				b.add(e, u.pid, u.comm)
			}
		}
		pend = ssPending{}
	}
	hasNetid, hasState := -1, -1 // unknown until a header or the row says
	for _, l := range lines {
		s := l.s
		if strings.TrimSpace(s) == "" {
			continue
		}
		if s[0] == ' ' || s[0] == '\t' {
			// -i continuation line, e.g.
			// "\t ts sack cubic wscale:7,7 ... bytes_sent:5000 bytes_acked:5000 bytes_received:100000 ..."
			if pend.ok {
				ssTCPInfo(s, &pend.e)
			} else {
				ds.add(DiagSkipped, l, "ss-orphan-info", "indented line without a socket line before it skipped")
			}
			continue
		}
		if m := ssHeader(s); m != nil {
			flush()
			hasNetid, hasState = b2i(m[1] != ""), b2i(m[2] != "")
			continue
		}
		flush()
		// Sample (ss -tunapeH, iproute2 6.1.0; -H drops the header, -e adds
		// ino:, sk: (cookie, hex) and uid: (only when non-zero)):
		// tcp ESTAB  0      0      198.51.100.1:22  198.51.100.2:50670 users:(("python3",pid=7029,fd=7)) ino:10695 sk:3 cgroup:unreachable:1 <->
		// Without -t/-u mixing, ss omits the Netid column:
		// ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:(("sshd",pid=812,fd=4))
		//
		// With a state filter (ss -tunap state established) there is no
		// State column either. Missing columns are read as empty.
		netidCol, stateCol := hasNetid, hasState
		if netidCol < 0 || stateCol < 0 {
			first, _ := cutFields(s, 2)
			if netidCol < 0 {
				_, isNetid := ssNetids[first[0]]
				netidCol = b2i(isNetid || !isUint(first[0]) && !ssIsState(first[0]))
			}
			if stateCol < 0 {
				stateCol = 0
				if len(first) > netidCol && !isUint(first[netidCol]) {
					stateCol = 1
				}
			}
		}
		tok, rest := cutFields(s, 4+netidCol+stateCol)
		if len(tok) < 4+netidCol+stateCol {
			ds.add(DiagMalformed, l, "ss-short", fmt.Sprintf("ss line has %d fields, want at least %d: %q", len(tok), 4+netidCol+stateCol, clip(s)))
			continue
		}
		if stateCol == 0 {
			tok = slices.Insert(tok, netidCol, "")
		}
		if netidCol == 0 {
			tok = slices.Insert(tok, 0, "")
		}
		var proto uint8
		alsoUDP := false
		if netidCol == 0 {
			proto = ProtoTCP
			switch tok[1] {
			case "UNCONN":
				proto = ProtoUDP
			case "ESTAB", "":
				alsoUDP = true
			}
			ds.add(DiagInfo, l, "ss-no-netid", "ss output has no Netid column (single protocol): UNCONN rows are taken as udp, ESTAB rows and rows without a State column as tcp and udp (a connected UDP socket shows ESTAB too), the others as tcp (use ss -tunap)")
		} else {
			p, known := ssNetids[tok[0]]
			if !known {
				ds.add(DiagMalformed, l, "ss-netid", fmt.Sprintf("unknown ss netid %q in %q", tok[0], clip(s)))
				continue
			}
			if p == 0 {
				ds.add(DiagSkipped, l, "ss-other-netid", fmt.Sprintf("non-TCP/UDP socket (netid %s) skipped", tok[0]))
				continue
			}
			proto = p
		}
		state, _ := normState(tok[1])
		if _, err := strconv.ParseUint(tok[2], 10, 64); err != nil {
			ds.add(DiagMalformed, l, "ss-queue", fmt.Sprintf("ss Recv-Q %q is not a number", tok[2]))
			continue
		}
		local, err := parseLocal(tok[4], true)
		if err != nil {
			ds.add(DiagUnsupported, l, "ss-addr", fmt.Sprintf("ss local address: %v", err))
			continue
		}
		remote, err := parseRemote(tok[5], true)
		if err != nil {
			ds.add(DiagUnsupported, l, "ss-addr", fmt.Sprintf("ss peer address: %v", err))
			continue
		}
		if tok[1] == "" && !remote.IsValid() && proto == ProtoTCP && !alsoUDP {
			state, _ = normState("LISTEN") // a TCP socket without a peer listens
		}
		if tok[1] == "" && proto == ProtoUDP && !alsoUDP {
			state = udpState(remote)
		}
		e := SocketEntry{Proto: proto, Local: local, Remote: remote, State: state, UID: -1}
		users, rest, err := ssUsers(rest)
		switch {
		case err != nil && len(s) > 60000:
			// iproute2 stops writing a socket's process list near 64 KiB
			// (thousands of forked holders); it lists the newest PIDs first,
			// so the parent is the one left out.
			ds.add(DiagTruncated, l, "ss-users-cut", fmt.Sprintf("ss cut the process list of %s after %d processes (it stops near 64 KiB): the socket may be charged to a child instead of its owner (lsof -i or netstat -tunap list them all)", tok[4], len(users)))
		case err != nil:
			ds.add(DiagMalformed, l, "ss-users", fmt.Sprintf("ss users field: %v", err))
		}
		sawIno, sawUID := false, false
		for _, f := range strings.Fields(rest) {
			k, v, ok := strings.Cut(f, ":")
			if !ok {
				continue
			}
			switch k {
			case "uid":
				if n, ok := atoiPos(v); ok {
					e.UID, sawUID = n, true
				}
			case "ino":
				if n, err := strconv.ParseUint(v, 10, 64); err == nil {
					e.Inode, sawIno = n, true
				}
			case "sk":
				if n, err := strconv.ParseUint(v, 16, 64); err == nil {
					e.Cookie = n
				}
			}
		}
		if sawIno && !sawUID {
			e.UID = 0 // ss -e prints uid: only when it is not 0
		}
		pend = ssPending{e: e, users: users, ok: true, alsoUDP: alsoUDP}
	}
	flush()
}

// isUint reports whether s is a decimal number (a queue size, an inode).
func isUint(s string) bool {
	if len(s) > 0 && len(s) < 20 && allDigits(s) {
		return true // cannot overflow
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// allDigits reports whether s has only ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ssIsState reports whether s is a state as ss prints it.
func ssIsState(s string) bool {
	_, known := normState(s)
	return known && s != ""
}

// ssHeader matches the header line (cheaply rejecting socket rows).
func ssHeader(s string) []string {
	if !strings.HasPrefix(s, "Netid") && !strings.HasPrefix(s, "State") && !strings.HasPrefix(s, "Recv-Q") {
		return nil
	}
	return ssHeaderRE.FindStringSubmatch(s)
}

// ssTCPInfo picks the byte counters out of a -i continuation line.
func ssTCPInfo(s string, e *SocketEntry) {
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		switch k {
		case "bytes_acked":
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				e.BytesAcked = n
			}
		case "bytes_received":
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				e.BytesReceived = n
			}
		}
	}
}

// ssUsers extracts `users:(("nginx",pid=123,fd=6),("nginx",pid=124,fd=6))`
// from rest and returns the users and rest without it. Comms may contain
// spaces, commas and parentheses; ss does not escape them.
func ssUsers(rest string) ([]ssUser, string, error) {
	i := strings.Index(rest, "users:(")
	if i < 0 {
		return nil, rest, nil
	}
	before, s := rest[:i], rest[i+len("users:("):]
	var users []ssUser
	for {
		if strings.HasPrefix(s, ")") {
			return users, before + " " + s[1:], nil
		}
		if strings.HasPrefix(s, ",") {
			s = s[1:]
			continue
		}
		if !strings.HasPrefix(s, `("`) {
			return users, before + " " + s, fmt.Errorf("want (\"comm\",pid=N,...) at %q", clip(s))
		}
		s = s[2:]
		j := strings.Index(s, `",`)
		if j < 0 {
			return users, before, fmt.Errorf("unterminated comm in %q", clip(s))
		}
		comm := s[:j]
		s = s[j+2:]
		k := strings.IndexByte(s, ')')
		if k < 0 {
			return users, before, fmt.Errorf("unterminated user in %q", clip(s))
		}
		u := ssUser{comm: comm}
		for i, kv := range strings.Split(s[:k], ",") {
			v, ok := strings.CutPrefix(kv, "pid=")
			if !ok && i == 0 && !strings.Contains(kv, "=") {
				v, ok = kv, true // iproute2 < 3.18: ("sshd",1234,3)
			}
			if n, isNum := atoiPos(v); ok && isNum && n > 0 {
				u.pid = n
			}
		}
		s = s[k+1:]
		if u.pid > 0 {
			users = append(users, u)
		}
	}
}

// cutFields splits off the first n whitespace-separated fields of s and
// returns them with the remainder (leading spaces trimmed).
func cutFields(s string, n int) ([]string, string) {
	out := make([]string, 0, n)
	for len(out) < n {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		i := strings.IndexAny(s, " \t")
		if i < 0 {
			out = append(out, s)
			s = ""
			break
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out, strings.TrimLeft(s, " \t")
}

// clip shortens s for a diagnostic message.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

package ingest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Windows `netstat -ano` (also -anob, and localised), optionally followed in
// the same block by a process table: `tasklist /fo csv` (or /v, /nh, or the
// default table) or `Get-Process | Select Id,ProcessName,Path,StartTime |
// ConvertTo-Csv`. Rows are recognised by shape (TCP/UDP, endpoints, a
// trailing PID), so localised titles and states ("Aktive Verbindungen",
// "ABHÖREN") work; known German state names are mapped.

// parseNetstatANO parses the output of one Windows `netstat -ano` run (plus
// any tasklist / Get-Process CSV in the same input).
func parseNetstatANO(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatNetstatANO, parseNetstatANOLines)
}

// readNetstatANO parses a Windows netstat -ano dump file as one snapshot.
func readNetstatANO(path string) (SocketSnapshot, []Diagnostic, error) {
	return readSingle(path, parseNetstatANO)
}

var winRowRE = regexp.MustCompile(`(?m)^\s+(TCP|UDP)\s+(\[[0-9a-fA-F:.%]+\]|[0-9.]+|\*):[0-9*]+\s+\S+`)

// sniffNetstatANO reports whether head looks like Windows netstat output:
// indented rows starting with upper-case TCP/UDP.
func sniffNetstatANO(head []byte) bool {
	return winRowRE.Match(head) || bytes.Contains(head, []byte("Active Connections")) && bytes.Contains(head, []byte("  TCP "))
}

func parseNetstatANOLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	var (
		csvs    csvTables
		table   *underlineTable
		lastPID int
	)
	for _, l := range lines {
		s := l.s
		t := strings.TrimSpace(s)
		if t == "" {
			table = nil
			continue
		}
		if table != nil {
			p, err := tasklistRow(table.fields(s))
			if err != nil {
				ds.add(DiagMalformed, l, "tasklist", err.Error())
			} else {
				b.proc(p)
			}
			continue
		}
		if u := newUnderlineTable(s); u != nil {
			table = u
			continue
		}
		f := strings.Fields(t)
		if len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP") {
			// Sample (Windows `netstat -ano`):
			//   Proto  Local Address          Foreign Address        State           PID
			//   TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1264
			//   TCP    [::]:135               [::]:0                 LISTENING       1264
			//   UDP    0.0.0.0:500            *:*                                    4321
			lastPID = 0
			e, pid, err := winRow(f)
			if err != nil {
				ds.add(DiagUnsupported, l, "win-row", fmt.Sprintf("netstat row %q: %v", clip(t), err))
				continue
			}
			lastPID = pid
			b.add(e, pid, "")
			continue
		}
		// netstat -b: the image name in brackets on its own line after the row.
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") && !strings.Contains(t, " ") {
			if lastPID > 0 {
				b.proc(ProcessInfo{PID: lastPID, Comm: t[1 : len(t)-1], UID: -1})
			}
			continue
		}
		if csvs.line(l, b, ds) {
			continue
		}
		// Titles, column headers ("Proto  Local Address ..."), netstat -b
		// service names and "Can not obtain ownership information".
		if strings.Contains(t, ":") && (strings.Contains(t, ".") || strings.Contains(t, "[")) && !strings.HasPrefix(t, "Can not") {
			ds.add(DiagMalformed, l, "win-line", fmt.Sprintf("line not understood: %q", clip(t)))
		}
	}
}

// winRow decodes the fields of one netstat -ano row.
func winRow(f []string) (SocketEntry, int, error) {
	e := SocketEntry{UID: -1}
	tcp := f[0] == "TCP"
	if tcp {
		e.Proto = ProtoTCP
	} else {
		e.Proto = ProtoUDP
	}
	local, err := parseLocal(f[1], strings.HasPrefix(f[1], "["))
	if err != nil {
		return e, 0, err
	}
	remote, err := parseRemote(f[2], strings.HasPrefix(f[1], "["))
	if err != nil {
		return e, 0, err
	}
	e.Local, e.Remote = local, remote
	rest := f[3:]
	pid := 0
	if n := len(rest); n > 0 {
		if p, ok := atoiPos(rest[n-1]); ok {
			pid = p
			rest = rest[:n-1]
		}
	}
	if tcp {
		if len(rest) == 0 {
			return e, 0, fmt.Errorf("no state")
		}
		st, known := normState(strings.Join(rest, "_"))
		if !known && !remote.IsValid() {
			// A localised state we do not know, on a socket without a peer
			// (0.0.0.0:0, [::]:0): only listeners look like that.
			st = "LISTEN"
		}
		e.State = st
	} else {
		e.State = udpState(remote)
	}
	return e, pid, nil
}

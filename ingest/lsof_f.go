package ingest

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// lsof field output: `lsof -i -n -P -F pcuLftPnT` (or plain -F, or -F0 with
// NUL-terminated fields). Each line is one field: a one-letter identifier
// followed by its value. A process set starts with p; a file set with f.

// parseLsofF parses the field output of one `lsof -i -n -P -F ...` run.
func parseLsofF(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatLsofF, parseLsofFLines)
}

// readLsofF parses an lsof -F dump file as one snapshot.
func readLsofF(path string) (SocketSnapshot, []Diagnostic, error) {
	return readSingle(path, parseLsofF)
}

// lsofFProcRE matches the start of an lsof -F process set: a p<pid> line,
// other fields, then a file set (f) or, for a field list without f
// (-Fpcn, -FpcPn), a name (n). (-F0 ends the fields with NULs, read here
// as line breaks.)
var lsofFProcRE = regexp.MustCompile(`(?m)^p[0-9]+\r?\n(?:(?:[a-zA-Z][^\n]*)?\n)*?[fn]`)

// lsofFPidsRE matches a process set with a command name: lsof -F output,
// even when it has no sockets to read (-Fpc).
var lsofFPidsRE = regexp.MustCompile(`(?m)^p[0-9]+\r?\n(?:(?:[gRuLK][^\n]*)?\n)*c`)

// sniffLsofF reports whether head looks like lsof -F output: a p<pid> line
// followed by process fields and an f<fd> (or n<name>) line.
func sniffLsofF(head []byte) bool {
	return lsofFProcRE.Match(bytes.ReplaceAll(head, []byte{0}, []byte("\n")))
}

func parseLsofFLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	// Sample (lsof 4.95.0, `lsof -i -n -P -F pcuLftPnT`), one field a line:
	//   p7029 / cpython3 / u0 / Lroot / f7 / tIPv4 / PTCP /
	//   n198.51.100.1:22->198.51.100.2:50670 / TST=ESTABLISHED / TQR=0 / TQS=0
	// plain -F adds g (pgid), R (ppid), a, l, G, d (device = socket inode), o.
	//
	// A field list may leave out f (the file set then starts at its first
	// field: lsof writes t, P, n in that order), t (the family: the name
	// tells it) or P (the protocol). Without P a socket name is entered as
	// TCP and as UDP (a connected UDP socket looks the same), one without a
	// peer as a TCP listener and an unconnected UDP socket; a flow of one
	// protocol never matches the entry of the other, so only a TCP and a
	// UDP socket with the same addresses can be confused.
	var (
		proc      ProcessInfo
		haveP     bool
		file      struct{ typ, proto, name, state, dev string }
		haveF     bool
		implicit  bool // the file set has no f line
		fileAt    dumpLine
		badProc   bool
		looseSaid bool
	)
	startFile := func(l dumpLine, imp bool) {
		haveF, implicit, fileAt = true, imp, l
		file.typ, file.proto, file.name, file.state, file.dev = "", "", "", "", ""
	}
	flushFile := func() {
		if !haveF {
			return
		}
		haveF = false
		if !haveP || badProc {
			ds.add(DiagMalformed, fileAt, "lsofF-nopid", "lsof -F file set without a valid p (process) field skipped")
			return
		}
		if file.typ != "" && file.typ != "IPv4" && file.typ != "IPv6" {
			ds.add(DiagSkipped, fileAt, "lsofF-other", fmt.Sprintf("non-inet file (type %q) skipped", file.typ))
			return
		}
		if file.name == "" {
			if file.typ != "" || file.proto != "" {
				ds.add(DiagMalformed, fileAt, "lsofF-noname", "lsof -F socket without an n (name) field skipped")
			}
			return
		}
		protos := []string{file.proto}
		switch file.proto {
		case "TCP", "UDP":
		case "":
			protos = []string{"TCP", "UDP"}
			if !looseSaid {
				looseSaid = true
				ds.add(DiagInfo, fileAt, "lsofF-no-protocol", "lsof -F output without the P (protocol) field: each socket name is taken as TCP and as UDP (take it with lsof -i -n -P -F pcuLftPnT)")
			}
		default:
			ds.add(DiagSkipped, fileAt, "lsofF-other", fmt.Sprintf("non-TCP/UDP socket (protocol %q) skipped", file.proto))
			return
		}
		name := file.name
		if file.state != "" {
			name += " (" + file.state + ")"
		}
		// Without t, "*" stands for both families, as in ss.
		e, err := lsofName(protos[0], file.typ != "IPv4", name)
		if err != nil {
			if file.typ == "" && file.proto == "" {
				ds.add(DiagSkipped, fileAt, "lsofF-other", fmt.Sprintf("lsof n field %q is not a socket address: skipped", clip(file.name)))
			} else {
				ds.add(DiagUnsupported, fileAt, "lsofF-name", fmt.Sprintf("lsof n field %q: %v", clip(file.name), err))
			}
			return
		}
		e.Inode, _ = strconv.ParseUint(file.dev, 10, 64)
		e.UID = proc.UID
		entries := []SocketEntry{e}
		if len(protos) > 1 {
			both := asTCPAndUDP(e)
			entries = both[:]
		}
		for _, e := range entries {
			b.add(e, proc.PID, proc.Comm)
		}
	}
	// fileField opens an implicit file set for a file field that comes
	// without an f line, or after the implicit set's name.
	fileField := func(l dumpLine) {
		if !haveF || implicit && file.name != "" {
			flushFile()
			startFile(l, true)
		}
	}
	for _, l := range lines {
		s := l.s
		if s == "" {
			continue
		}
		id, v := s[0], s[1:]
		switch id {
		case 'p':
			flushFile()
			if haveP && !badProc {
				b.proc(proc)
			}
			pid, ok := atoiPos(v)
			badProc = !ok || pid == 0
			if badProc {
				ds.add(DiagMalformed, l, "lsofF-pid", fmt.Sprintf("lsof -F pid %q is not a number", clip(v)))
			}
			proc, haveP = ProcessInfo{PID: pid, UID: -1}, true
		case 'c':
			proc.Comm = lsofUnescape(v)
		case 'u':
			if n, ok := atoiPos(v); ok {
				proc.UID = n
			}
		case 'L':
			proc.User = v
		case 'R':
			if n, ok := atoiPos(v); ok {
				proc.PPID = n
			}
		case 'f':
			flushFile()
			startFile(l, false)
		case 't':
			fileField(l)
			file.typ = v
		case 'P':
			fileField(l)
			file.proto = v
		case 'n':
			fileField(l)
			file.name = v
		case 'd':
			fileField(l)
			file.dev = v
		case 'T':
			if st, ok := strings.CutPrefix(v, "ST="); ok {
				file.state = st
			}
		case 'g', 'a', 'l', 'G', 'o', 'i', 's', 'D', 'k', 'K', 'S', 'N', 'Z', 'C', 'F', 'M':
		default:
			ds.add(DiagMalformed, l, "lsofF-field", fmt.Sprintf("unknown lsof -F field %q", clip(s)))
		}
	}
	flushFile()
	if haveP && !badProc {
		b.proc(proc)
	}
}

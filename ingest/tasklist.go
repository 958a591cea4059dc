package ingest

import (
	"fmt"
	"strings"
)

// Windows `tasklist` process tables, found inside netstat -ano dumps (the
// documented loop prints netstat -ano then tasklist /fo csv): `tasklist /fo
// csv`, `tasklist /v /fo csv`, `/nh` (no header) and the default table with
// its ===== underline. Columns are taken by position, so localised headers
// ("Abbildname","PID","Sitzungsname",...) work too:
//
//	"Image Name","PID","Session Name","Session#","Mem Usage"
//	"svchost.exe","1024","Services","0","12,344 K"
//
// /v adds "Status","User Name","CPU Time","Window Title".

// tasklistRow turns one tasklist CSV record into process facts: image name
// (column 0) → Comm, PID (column 1), and with /v the user (column 6).
func tasklistRow(rec []string) (ProcessInfo, error) {
	if len(rec) < 2 {
		return ProcessInfo{}, fmt.Errorf("tasklist row has %d columns", len(rec))
	}
	pid, ok := atoiPos(strings.TrimSpace(rec[1]))
	if !ok {
		return ProcessInfo{}, fmt.Errorf("tasklist PID %q is not a number", clip(rec[1]))
	}
	p := ProcessInfo{PID: pid, Comm: strings.TrimSpace(rec[0]), UID: -1}
	if len(rec) >= 9 {
		if u := strings.TrimSpace(rec[6]); u != "" && u != "N/A" {
			p.User = u
		}
	}
	return p, nil
}

// isTasklistHeader reports whether a CSV record is a tasklist header: five
// (or nine, with /v) columns whose second one is not a number.
func isTasklistHeader(rec []string) bool {
	if len(rec) != 5 && len(rec) != 9 {
		return false
	}
	_, num := atoiPos(strings.TrimSpace(rec[1]))
	return !num
}

// underlineTable parses the fixed-width tables that tasklist (no /fo) prints:
//
//	Image Name                     PID Session Name        Session#    Mem Usage
//	========================= ======== ================ =========== ============
//	System Idle Process              0 Services                   0          8 K
//
// The underline gives the column spans; rows end at a blank line.
type underlineTable struct {
	spans [][2]int
}

// newUnderlineTable returns the table described by an underline of runs of
// '=' separated by spaces, or nil if s is not one.
func newUnderlineTable(s string) *underlineTable {
	t := strings.TrimRight(s, " ")
	if len(t) < 10 || strings.Trim(t, "= ") != "" || !strings.Contains(t, "==") {
		return nil
	}
	var u underlineTable
	start := -1
	for i := 0; i <= len(t); i++ {
		if i < len(t) && t[i] == '=' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			u.spans = append(u.spans, [2]int{start, i})
			start = -1
		}
	}
	if len(u.spans) < 2 {
		return nil
	}
	return &u
}

// fields cuts s into the table's columns (trimmed).
func (u *underlineTable) fields(s string) []string {
	out := make([]string, len(u.spans))
	for i, sp := range u.spans {
		a, z := sp[0], sp[1]
		if i == len(u.spans)-1 {
			z = len(s)
		}
		if a >= len(s) {
			break
		}
		out[i] = strings.TrimSpace(s[a:min(z, len(s))])
	}
	return out
}

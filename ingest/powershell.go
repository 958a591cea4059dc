package ingest

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PowerShell exports: Get-NetTCPConnection / Get-NetUDPEndpoint and
// Get-Process (or Get-CimInstance Win32_Process) written with Export-Csv /
// ConvertTo-Csv (with or without the #TYPE line) or ConvertTo-Json. One
// block may hold several tables (connections, endpoints, processes), each
// CSV table starting with its header line. Columns are found by name
// (PowerShell property names are not localised).

// parsePowerShell parses one PowerShell export (CSV or JSON).
func parsePowerShell(r io.Reader) (SocketSnapshot, []Diagnostic, error) {
	return parseSingle(r, FormatPowerShell, parsePowerShellLines)
}

// readPowerShell parses a PowerShell export file as one snapshot.
func readPowerShell(path string) (SocketSnapshot, []Diagnostic, error) {
	return readSingle(path, parsePowerShell)
}

var (
	psCSVHeaderRE = regexp.MustCompile(`(?im)^"?(LocalAddress|Id|ProcessId|ProcessName)"?,`)
	psTableRE     = regexp.MustCompile(`(?m)^LocalAddress +LocalPort +.*\r?\n-{12} +-{9} `)
	psJSONRE      = regexp.MustCompile(`"(LocalPort|OwningProcess|ProcessName)"\s*:`)
)

// sniffPowerShell reports whether head is a PowerShell CSV export (a #TYPE
// line or a header naming LocalAddress/LocalPort/OwningProcess) or a JSON
// array/object with those properties.
func sniffPowerShell(head []byte) bool {
	t := bytes.TrimSpace(head)
	if len(t) == 0 {
		return false
	}
	if t[0] == '[' || t[0] == '{' {
		return psJSONRE.Match(t)
	}
	if bytes.HasPrefix(t, []byte("#TYPE ")) && bytes.Contains(t, []byte("NetTCPConnection")) ||
		bytes.Contains(t, []byte("NetUDPEndpoint")) {
		return true
	}
	if psTableRE.Match(t) {
		return true
	}
	return psCSVHeaderRE.Match(t) && (bytes.Contains(t, []byte("LocalPort")) || bytes.Contains(t, []byte("OwningProcess")))
}

func parsePowerShellLines(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	first := ""
	for _, l := range lines {
		if t := strings.TrimSpace(l.s); t != "" {
			first = t
			break
		}
	}
	if strings.HasPrefix(first, "[") || strings.HasPrefix(first, "{") {
		psJSON(lines, b, ds)
		return
	}
	var (
		c       csvTables
		table   *psTable
		pending *dumpLine // a line that may be a console table header
	)
	unknown := func(l dumpLine) {
		ds.add(DiagMalformed, l, "ps-line", fmt.Sprintf("line not understood: %q", clip(strings.TrimSpace(l.s))))
	}
	for i, l := range lines {
		if strings.TrimSpace(l.s) == "" {
			table = nil
			if pending != nil {
				unknown(*pending)
				pending = nil
			}
			continue
		}
		if pending != nil {
			h := *pending
			pending = nil
			if table = newPSTable(h.s, l.s); table != nil {
				continue
			}
			unknown(h)
		}
		if table != nil {
			table.line(l, b, ds)
			continue
		}
		if !c.line(l, b, ds) {
			pending = &lines[i]
		}
	}
	if pending != nil {
		unknown(*pending)
	}
}

// ---- CSV ----

// csvKind says what a CSV table holds.
type csvKind int

const (
	csvNone     csvKind = iota
	csvTCP              // Get-NetTCPConnection
	csvUDP              // Get-NetUDPEndpoint
	csvProcess          // Get-Process / Win32_Process
	csvTasklist         // tasklist /fo csv (positional)
)

// csvTables follows the CSV tables of one block: each header line starts a
// new table; tasklist tables are recognised by shape.
type csvTables struct {
	kind csvKind
	cols map[string]int
}

// line consumes one line; it reports false for lines that are not CSV (so
// netstat -ano can handle them).
func (c *csvTables) line(l dumpLine, b *snapBuilder, ds *diagSink) bool {
	t := strings.TrimSpace(l.s)
	if t == "" {
		return true
	}
	if strings.HasPrefix(t, "#TYPE") {
		c.kind = csvNone
		return true
	}
	if !strings.HasPrefix(t, `"`) && !strings.Contains(t, ",") {
		return false
	}
	rd := csv.NewReader(strings.NewReader(t))
	rd.LazyQuotes = true
	rd.FieldsPerRecord = -1
	rec, err := rd.Read()
	if err != nil || len(rec) < 2 {
		if !strings.HasPrefix(t, `"`) {
			return false
		}
		ds.add(DiagMalformed, l, "csv", fmt.Sprintf("unreadable CSV line %q", clip(t)))
		return true
	}
	if k, cols := csvHeader(rec); k != csvNone {
		c.kind, c.cols = k, cols
		return true
	}
	if c.kind == csvNone {
		if _, num := atoiPos(strings.TrimSpace(rec[1])); num && (len(rec) == 5 || len(rec) == 9) {
			c.kind = csvTasklist // tasklist /fo csv /nh
		} else if !strings.HasPrefix(t, `"`) {
			return false
		} else {
			ds.add(DiagMalformed, l, "csv-noheader", fmt.Sprintf("CSV line without a known header: %q", clip(t)))
			return true
		}
	}
	c.row(rec, l, b, ds)
	return true
}

// row handles one data record of the current table.
func (c *csvTables) row(rec []string, l dumpLine, b *snapBuilder, ds *diagSink) {
	get := func(names ...string) string {
		for _, n := range names {
			if i, ok := c.cols[strings.ToLower(n)]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
		}
		return ""
	}
	switch c.kind {
	case csvTasklist:
		p, err := tasklistRow(rec)
		if err != nil {
			ds.add(DiagMalformed, l, "tasklist", err.Error())
			return
		}
		b.proc(p)
	case csvProcess:
		p, err := psProcess(get, ds, l)
		if err != nil {
			ds.add(DiagMalformed, l, "ps-process", err.Error())
			return
		}
		b.proc(p)
	case csvTCP, csvUDP:
		e, pid, err := psSocket(c.kind == csvTCP, get)
		if err != nil {
			ds.add(DiagMalformed, l, "ps-socket", err.Error())
			return
		}
		b.add(e, pid, "")
	}
}

// ---- console tables ----

// psTable is a PowerShell console table (Format-Table, the default output
// of Get-NetTCPConnection and Get-Process when redirected to a file):
//
//	LocalAddress                        LocalPort RemoteAddress                       RemotePort State       AppliedSetting OwningProcess
//	------------                        --------- -------------                       ---------- -----       -------------- -------------
//	198.51.100.7                        49712     203.0.113.9                         443        Established Internet       4321
//
// The dash underline gives the column spans; each blank-separated value of
// a row belongs to the span it overlaps most (values are left- or right-
// aligned). Cells PowerShell cut to fit end in "..." or "…"; such rows are
// skipped with a diagnostic.
type psTable struct {
	csvTables
	spans [][2]int
}

// newPSTable builds a table from its header line and dash underline, or
// returns nil if they are not one.
func newPSTable(header, underline string) *psTable {
	u := strings.TrimRight(underline, " ")
	if len(u) < 2 || strings.Trim(u, "- ") != "" || !strings.Contains(u, "--") {
		return nil
	}
	var t psTable
	for _, tok := range blankFields(u) {
		t.spans = append(t.spans, [2]int{tok.start, tok.end})
	}
	names := make([]string, len(t.spans))
	for _, tok := range blankFields(header) {
		if i := t.column(tok.start, tok.end); i >= 0 {
			names[i] = strings.TrimSpace(names[i] + " " + tok.s)
		}
	}
	t.kind, t.cols = csvHeader(names)
	if t.kind == csvNone || t.kind == csvTasklist {
		return nil
	}
	return &t
}

// column returns the span that [a, z) overlaps most, else the nearest one.
func (t *psTable) column(a, z int) int {
	best, bestOv, bestDist := -1, 0, int(^uint(0)>>1)
	for i, sp := range t.spans {
		ov := min(z, sp[1]) - max(a, sp[0])
		dist := max(sp[0]-z, a-sp[1], 0)
		if ov > bestOv || bestOv == 0 && ov <= 0 && dist < bestDist {
			best, bestOv, bestDist = i, max(ov, 0), dist
		}
	}
	return best
}

// line handles one row of the table.
func (t *psTable) line(l dumpLine, b *snapBuilder, ds *diagSink) {
	rec := make([]string, len(t.spans))
	for _, tok := range blankFields(l.s) {
		if strings.HasSuffix(tok.s, "...") || strings.HasSuffix(tok.s, "…") {
			ds.add(DiagTruncated, l, "ps-table-cut", fmt.Sprintf("value %q was cut by PowerShell to fit the console; row skipped (export with Export-Csv or ConvertTo-Json)", clip(tok.s)))
			return
		}
		if i := t.column(tok.start, tok.end); i >= 0 {
			rec[i] = strings.TrimSpace(rec[i] + " " + tok.s)
		}
	}
	t.row(rec, l, b, ds)
}

type blankField struct {
	s          string
	start, end int
}

// blankFields splits s at runs of blanks, keeping byte positions.
func blankFields(s string) []blankField {
	var out []blankField
	start := -1
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ' ' && s[i] != '\t' {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, blankField{s[start:i], start, i})
			start = -1
		}
	}
	return out
}

// csvHeader recognises a header record and indexes its columns by lower-cased
// name.
func csvHeader(rec []string) (csvKind, map[string]int) {
	cols := make(map[string]int, len(rec))
	for i, n := range rec {
		n = strings.ToLower(strings.TrimSpace(n))
		if _, dup := cols[n]; !dup {
			cols[n] = i
		}
	}
	has := func(n string) bool { _, ok := cols[n]; return ok }
	switch {
	case has("localport") && (has("remoteport") || has("state")):
		return csvTCP, cols
	case has("localport"):
		return csvUDP, cols
	case has("id") && (has("processname") || has("name")), has("processid") && has("name"):
		return csvProcess, cols
	case isTasklistHeader(rec):
		return csvTasklist, cols
	}
	return csvNone, nil
}

// psSocket builds a socket from Get-NetTCPConnection/Get-NetUDPEndpoint
// properties.
//
//	"LocalAddress","LocalPort","RemoteAddress","RemotePort","State","OwningProcess","CreationTime"
//	"198.51.100.7","49712","203.0.113.9","443","Established","4321","11/28/2026 3:20:00 PM"
func psSocket(tcp bool, get func(...string) string) (SocketEntry, int, error) {
	e := SocketEntry{Proto: ProtoUDP, UID: -1}
	if tcp {
		e.Proto = ProtoTCP
	}
	la, err := psAddrPort(get("LocalAddress"), get("LocalPort"))
	if err != nil {
		return e, 0, fmt.Errorf("local endpoint: %v", err)
	}
	e.Local = la
	if tcp {
		ra, err := psAddrPort(get("RemoteAddress"), get("RemotePort"))
		if err != nil {
			return e, 0, fmt.Errorf("remote endpoint: %v", err)
		}
		if !ra.Addr().IsUnspecified() {
			e.Remote = ra
		}
		st, _ := normState(get("State"))
		e.State = st
	} else {
		e.State = "UNCONN"
	}
	pid := 0
	if s := get("OwningProcess"); s != "" {
		n, ok := atoiPos(s)
		if !ok {
			return e, 0, fmt.Errorf("OwningProcess %q is not a number", clip(s))
		}
		pid = n
	}
	return e, pid, nil
}

func psAddrPort(addr, port string) (ap netip.AddrPort, err error) {
	if addr == "" {
		return ap, fmt.Errorf("no address")
	}
	a := strings.Trim(addr, "[]")
	return parseLocal("["+a+"]:"+port, strings.Contains(a, ":"))
}

// psProcess builds process facts from Get-Process (Id, ProcessName, Path,
// StartTime, UserName) or Win32_Process (ProcessId, Name, ExecutablePath,
// ParentProcessId, CreationDate) properties.
func psProcess(get func(...string) string, ds *diagSink, l dumpLine) (ProcessInfo, error) {
	id := get("Id", "ProcessId")
	pid, ok := atoiPos(id)
	if !ok {
		return ProcessInfo{}, fmt.Errorf("process Id %q is not a number", clip(id))
	}
	p := ProcessInfo{PID: pid, UID: -1, Comm: get("ProcessName", "Name"), Exe: get("Path", "ExecutablePath"), User: get("UserName")}
	if pp, ok := atoiPos(get("ParentProcessId")); ok {
		p.PPID = pp
	}
	if st := get("StartTime", "CreationDate"); st != "" {
		ns, exact, err := parsePSTime(st)
		if err != nil {
			ds.add(DiagMalformed, l, "ps-time", fmt.Sprintf("process start time: %v", err))
		} else {
			p.Start = ns
			if !exact {
				ds.add(DiagInfo, l, "ps-time-zone", fmt.Sprintf("start time %q has no time zone; assumed UTC (export with .ToUniversalTime().ToString('o') for exact process identity)", st))
			}
		}
	}
	return p, nil
}

var (
	psDateRE = regexp.MustCompile(`^\\?/Date\((-?[0-9]+)([+-][0-9]{4})?\)\\?/$`)
	wmiRE    = regexp.MustCompile(`^([0-9]{14})\.([0-9]{6})([+-][0-9]{3})$`)
)

// psLocalLayouts are culture formats of DateTime.ToString() without a zone.
var psLocalLayouts = []string{
	"1/2/2006 3:04:05 PM", "1/2/2006 15:04:05", "2.1.2006 15:04:05", "02.01.2006 15:04:05", "2/1/2006 15:04:05",
	"2006-01-02 15:04:05", "2006-01-02T15:04:05.9999999", "2006/01/02 15:04:05", "2006-01-02T15:04:05",
}

// parsePSTime parses PowerShell/WMI time stamps: "/Date(ms)/" (JSON, UTC),
// RFC 3339 ("o" format), WMI CIM_DATETIME, and culture formats without a
// zone (exact false: assumed UTC).
func parsePSTime(s string) (ns int64, exact bool, err error) {
	s = strings.TrimSpace(s)
	if m := psDateRE.FindStringSubmatch(s); m != nil {
		ms, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || ms > math.MaxInt64/1_000_000 || ms < math.MinInt64/1_000_000 {
			return 0, false, fmt.Errorf("bad /Date()/ value %q", s)
		}
		return ms * 1e6, true, nil
	}
	if m := wmiRE.FindStringSubmatch(s); m != nil {
		t, err := time.Parse("20060102150405", m[1])
		if err == nil {
			us, _ := strconv.ParseInt(m[2], 10, 64)
			off, _ := strconv.Atoi(m[3])
			return t.Add(time.Duration(us)*time.Microsecond - time.Duration(off)*time.Minute).UnixNano(), true, nil
		}
	}
	if t, ok := parseISOTime(s); ok {
		return t.UnixNano(), true, nil
	}
	for _, layout := range psLocalLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixNano(), false, nil
		}
	}
	return 0, false, fmt.Errorf("unrecognised time %q", clip(s))
}

// ---- JSON ----

// psJSON decodes the concatenated JSON values of a block (ConvertTo-Json
// emits an array, or an object for a single item).
func psJSON(lines []dumpLine, b *snapBuilder, ds *diagSink) {
	var sb strings.Builder
	starts := make([]int, len(lines)) // byte offset of each line in sb
	for i, l := range lines {
		starts[i] = sb.Len()
		sb.WriteString(l.s)
		sb.WriteByte('\n')
	}
	text := sb.String()
	lineAt := func(off int64) dumpLine {
		// The last line starting at or before off (JSON skips leading blanks).
		i := sort.Search(len(starts), func(i int) bool { return int64(starts[i]) > off }) - 1
		if i < 0 {
			return dumpLine{}
		}
		return lines[i]
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	fail := func(off int64, err error) {
		kind := DiagMalformed
		rest := strings.TrimSpace(text[min(int(off), len(text)):])
		if err == io.ErrUnexpectedEOF || !strings.HasSuffix(rest, "]") && !strings.HasSuffix(rest, "}") {
			kind = DiagTruncated // the export was cut: keep what was read
		}
		ds.add(kind, lineAt(off), "ps-json", fmt.Sprintf("JSON: %v; rest of block skipped", err))
	}
	item := func(off int64, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			ds.add(DiagMalformed, lineAt(off), "ps-json-item", "JSON item is not an object; skipped")
			return
		}
		psJSONObject(obj, b, ds, lineAt(off))
	}
	for {
		off := dec.InputOffset()
		rest := strings.TrimLeft(text[off:], " \t\r\n")
		if rest == "" {
			return
		}
		if rest[0] != '[' {
			var v any
			if err := dec.Decode(&v); err != nil {
				fail(off, err)
				return
			}
			item(off, v)
			continue
		}
		// An array: decode element by element so a cut export keeps the
		// complete elements before the cut.
		if _, err := dec.Token(); err != nil {
			fail(off, err)
			return
		}
		for dec.More() {
			eoff := dec.InputOffset()
			var v any
			if err := dec.Decode(&v); err != nil {
				fail(eoff, err)
				return
			}
			item(eoff, v)
		}
		if _, err := dec.Token(); err != nil {
			fail(dec.InputOffset(), err)
			return
		}
	}
}

func psJSONObject(obj map[string]any, b *snapBuilder, ds *diagSink, l dumpLine) {
	lower := make(map[string]any, len(obj))
	for k, v := range obj {
		lower[strings.ToLower(k)] = v
	}
	get := func(names ...string) string {
		for _, n := range names {
			if v, ok := lower[strings.ToLower(n)]; ok && v != nil {
				return jsonScalar(v)
			}
		}
		return ""
	}
	_, hasLP := lower["localport"]
	_, hasRP := lower["remoteport"]
	_, hasState := lower["state"]
	switch {
	case hasLP:
		e, pid, err := psSocket(hasRP || hasState, get)
		if err != nil {
			ds.add(DiagMalformed, l, "ps-socket", err.Error())
			return
		}
		b.add(e, pid, "")
	case get("Id", "ProcessId") != "":
		p, err := psProcess(get, ds, l)
		if err != nil {
			ds.add(DiagMalformed, l, "ps-process", err.Error())
			return
		}
		b.proc(p)
	default:
		ds.add(DiagSkipped, l, "ps-json-unknown", "JSON object is neither a connection nor a process; skipped")
	}
}

// jsonScalar renders a decoded JSON value as PowerShell would print it. A
// DateTime that PowerShell 5.1 serialised as an object ({"value": "/Date(..)/",
// "DateTime": "..."}) yields its value.
func jsonScalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		for _, k := range []string{"value", "Value"} {
			if y, ok := x[k]; ok && y != nil {
				if _, nested := y.(map[string]any); !nested {
					return jsonScalar(y)
				}
			}
		}
	}
	return ""
}

package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/tools/txtar"
)

// sockFixtures is where the socket-dump txtar fixtures live.
const sockFixtures = "../fixtures/sockets"

// fixtureMtime stands in for the file mtime of fixture inputs.
var fixtureMtime = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// goldenDump is the JSON form of ParseSocketDump's result in goldens.
type goldenDump struct {
	Format      SocketFormat     `json:"format"`
	Error       string           `json:"error,omitempty"`
	Snapshots   []goldenSnapshot `json:"snapshots"`
	Diagnostics []Diagnostic     `json:"diagnostics"`
}

type goldenSnapshot struct {
	Taken         string         `json:"taken"`
	Source        SocketFormat   `json:"source"`
	TimeFromMtime bool           `json:"time_from_mtime,omitempty"`
	Sockets       []goldenSocket `json:"sockets"`
	Procs         []ProcessInfo  `json:"procs,omitempty"`
}

type goldenSocket struct {
	Proto         string   `json:"proto"`
	Local         string   `json:"local"`
	Remote        string   `json:"remote,omitempty"`
	State         string   `json:"state,omitempty"`
	Inode         uint64   `json:"inode,omitempty"`
	Cookie        uint64   `json:"cookie,omitempty"`
	UID           int      `json:"uid"`
	Holders       []string `json:"holders,omitempty"` // "pid" or "pid@start"
	Comms         []string `json:"comms,omitempty"`
	BytesAcked    uint64   `json:"bytes_acked,omitempty"`
	BytesReceived uint64   `json:"bytes_received,omitempty"`
}

func toGolden(s SocketSnapshot) goldenSnapshot {
	g := goldenSnapshot{
		Taken:         time.Unix(0, s.Taken).UTC().Format(time.RFC3339Nano),
		Source:        s.Source,
		TimeFromMtime: s.TimeFromMtime,
		Sockets:       []goldenSocket{},
	}
	for _, e := range s.Sockets {
		r := ""
		if e.Remote.IsValid() {
			r = e.Remote.String()
		}
		g.Sockets = append(g.Sockets, goldenSocket{
			Proto: ProtoName(e.Proto), Local: e.Local.String(), Remote: r, State: e.State, Inode: e.Inode,
			Cookie: e.Cookie, UID: e.UID, Holders: goldenHolders(e.Holders), Comms: e.Comms,
			BytesAcked: e.BytesAcked, BytesReceived: e.BytesReceived,
		})
	}
	for _, p := range s.Procs {
		g.Procs = append(g.Procs, p)
	}
	sort.Slice(g.Procs, func(i, j int) bool {
		if g.Procs[i].PID != g.Procs[j].PID {
			return g.Procs[i].PID < g.Procs[j].PID
		}
		return g.Procs[i].Start < g.Procs[j].Start
	})
	return g
}

func goldenHolders(hs []ProcKey) []string {
	var out []string
	for _, h := range hs {
		s := strconv.Itoa(h.PID)
		if h.Start != 0 {
			s += "@" + time.Unix(0, h.Start).UTC().Format(time.RFC3339Nano)
		}
		out = append(out, s)
	}
	return out
}

func dumpJSON(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	snaps, diags, err := ParseSocketDump(bytes.NewReader(data), name, fixtureMtime)
	g := goldenDump{Snapshots: []goldenSnapshot{}, Diagnostics: diags}
	if f, derr := DetectSocketDump(data[:min(len(data), sniffBytes)]); derr == nil {
		g.Format = f
	}
	if err != nil {
		g.Error = err.Error()
	}
	for _, s := range snaps {
		if cerr := checkSnapshot(s); cerr != nil {
			t.Errorf("%s: invalid snapshot: %v", name, cerr)
		}
		g.Snapshots = append(g.Snapshots, toGolden(s))
	}
	if g.Diagnostics == nil {
		g.Diagnostics = []Diagnostic{}
	}
	out, jerr := json.MarshalIndent(g, "", "  ")
	if jerr != nil {
		t.Fatalf("%s: marshal: %v", name, jerr)
	}
	return append(out, '\n')
}

// TestSocketDumpGoldens parses every input of every fixtures/sockets/*.txtar
// archive and compares the decoded dump with the archive's NAME.json member.
// With -update the archives' .json members are rewritten.
func TestSocketDumpGoldens(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sockFixtures, "*.txtar"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", sockFixtures, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			golden := map[string]int{}
			for i, f := range ar.Files {
				golden[f.Name] = i
			}
			var out []txtar.File
			changed := false
			for _, f := range ar.Files {
				if _, isGolden := golden[strings.TrimSuffix(f.Name, ".json")]; isGolden && strings.HasSuffix(f.Name, ".json") {
					continue
				}
				got := dumpJSON(t, f.Name, f.Data)
				out = append(out, f, txtar.File{Name: f.Name + ".json", Data: got})
				i, ok := golden[f.Name+".json"]
				if !ok || !bytes.Equal(ar.Files[i].Data, got) {
					changed = true
					if !*update {
						var want []byte
						if ok {
							want = ar.Files[i].Data
						}
						t.Errorf("%s: decoded dump differs from golden (-want +got):\n%s", f.Name, cmp.Diff(string(want), string(got)))
					}
				}
			}
			if *update && changed {
				ar.Files = out
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestTimestampLines(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     string // RFC3339Nano, "" for zero
		ok       bool
		wantWarn bool
	}{
		{"epoch-ns", "1795867294.123456789", "2026-11-28T12:01:34.123456789Z", true, false},
		{"epoch-s", "1795867294", "2026-11-28T12:01:34Z", true, false},
		{"iso-ns-comma", "2026-11-28T12:01:34,123456789+00:00", "2026-11-28T12:01:34.123456789Z", true, false},
		{"iso-s-offset", "2026-11-28T13:01:34+01:00", "2026-11-28T12:01:34Z", true, false},
		{"date-default", "Sat Nov 28 12:01:34 UTC 2026", "2026-11-28T12:01:34Z", true, false},
		{"date-padded-day", "Sun Nov  1 02:03:04 UTC 2026", "2026-11-01T02:03:04Z", true, false},
		{"date-en-us-pm", "Sat Nov 28 01:01:34 PM UTC 2026", "2026-11-28T13:01:34Z", true, false},
		{"date-en-gb", "Sat 28 Nov 2026 12:01:34 UTC", "2026-11-28T12:01:34Z", true, false},
		{"date-ambiguous-zone", "Sat Nov 28 12:01:34 CST 2026", "2026-11-28T12:01:34Z", true, true},
		{"date-cet", "Sat Nov 28 13:01:34 CET 2026", "2026-11-28T12:01:34Z", true, false},
		{"date-pdt", "Wed Jul  1 05:01:34 PDT 2026", "2026-07-01T12:01:34Z", true, false},
		{"date-acst", "Sat Nov 28 21:31:34 ACST 2026", "2026-11-28T12:01:34Z", true, false},
		{"date-R", "Sat, 28 Nov 2026 13:01:34 +0100", "2026-11-28T12:01:34Z", true, false},
		{"date-R-utc", "Sat, 28 Nov 2026 12:01:34 +0000", "2026-11-28T12:01:34Z", true, false},
		{"epoch-ms", "1795867294123", "2026-11-28T12:01:34.123Z", true, false},
		{"epoch-us", "1795867294123456", "2026-11-28T12:01:34.123456Z", true, false},
		{"epoch-ns-int", "1795867294123456789", "2026-11-28T12:01:34.123456789Z", true, false},
		{"number-14", "17958672941234", "", false, false},
		{"marker", "# flowblame-ts: 2026-11-28T12:01:34.1234567Z", "2026-11-28T12:01:34.1234567Z", true, false},
		{"marker-crlf", "# flowblame-ts: 2026-11-28T12:01:34.1234567Z\r", "2026-11-28T12:01:34.1234567Z", true, false},
		{"marker-bad", "# flowblame-ts: yesterday", "", true, true},
		{"bare-o-format", "2026-11-28T12:01:34.1234567Z", "2026-11-28T12:01:34.1234567Z", true, false},
		{"ss-row", "tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670", "", false, false},
		{"number-too-short", "12345", "", false, false},
		{"header", "Active Connections", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, warn := isTimestampLine(tc.in)
			if ok != tc.ok || (warn != "") != tc.wantWarn {
				t.Fatalf("isTimestampLine(%q) ok=%v warn=%q, want ok=%v warn=%v", tc.in, ok, warn, tc.ok, tc.wantWarn)
			}
			gs := ""
			if !got.IsZero() {
				gs = got.Format(time.RFC3339Nano)
			}
			if gs != tc.want {
				t.Errorf("isTimestampLine(%q) = %s, want %s", tc.in, gs, tc.want)
			}
		})
	}
}

func TestParseDumpEndpoint(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wild6   bool
		remote  bool
		want    string // "" zero AddrPort
		wantErr bool
	}{
		{"v4", "198.51.100.1:22", false, false, "198.51.100.1:22", false},
		{"v6-bracket", "[2001:db8::1]:443", true, false, "[2001:db8::1]:443", false},
		{"ss-zone-after-bracket", "[fe80::1]%eth0:5353", true, false, "[fe80::1]:5353", false},
		{"v4-zone", "127.0.0.53%lo:53", false, false, "127.0.0.53:53", false},
		{"win-zone-inside", "[fe80::1%12]:49712", true, false, "[fe80::1]:49712", false},
		{"netstat-unbracketed", ":::22", true, false, "[::]:22", false},
		{"mapped-kept", "[::ffff:198.51.100.1]:8443", true, false, "[::ffff:198.51.100.1]:8443", false},
		{"mapped-unbracketed", "::ffff:198.51.100.1:80", true, false, "[::ffff:198.51.100.1]:80", false},
		{"star-local-v6", "*:8443", true, false, "[::]:8443", false},
		{"star-local-v4", "*:53", false, false, "0.0.0.0:53", false},
		{"service", "198.51.100.1:ssh", false, false, "198.51.100.1:22", false},
		{"localhost", "localhost:8443", false, false, "127.0.0.1:8443", false},
		{"remote-star", "*:*", true, true, "", false},
		{"remote-any-star", "0.0.0.0:*", false, true, "", false},
		{"remote-any-zero", "[::]:0", true, true, "", false},
		{"hostname", "Ridge-PC:54581", false, true, "", true},
		{"unknown-service", "198.51.100.1:frobnicate", false, false, "", true},
		{"no-port", "198.51.100.1", false, false, "", true},
		{"bad-bracket", "[2001:db8::1:80", true, false, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got netip.AddrPort
			var err error
			if tc.remote {
				got, err = parseRemote(tc.in, tc.wild6)
			} else {
				got, err = parseLocal(tc.in, tc.wild6)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("parse(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			gs := ""
			if got.IsValid() {
				gs = got.String()
			}
			if gs != tc.want {
				t.Errorf("parse(%q) = %q, want %q", tc.in, gs, tc.want)
			}
		})
	}
}

func TestDetectSocketDump(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    SocketFormat
		wantErr bool
	}{
		{"ss", "tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:((\"sshd\",pid=1,fd=3))\n", FormatSS, false},
		{"ss-header", "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n", FormatSS, false},
		{"lsof", "COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME\n", FormatLsof, false},
		{"lsof-F", "p1\ncsshd\nf3\ntIPv4\n", FormatLsofF, false},
		{"netstat", "tcp        0      0 198.51.100.1:22         0.0.0.0:*               LISTEN      7/sshd\n", FormatNetstat, false},
		{"netstat-ano", "\nActive Connections\n\n  Proto  Local Address          Foreign Address        State           PID\n  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1264\n", FormatNetstatANO, false},
		{"ps-csv", "#TYPE Selected.Microsoft.Management.Infrastructure.CimInstance\n\"LocalAddress\",\"LocalPort\",\"OwningProcess\"\n", FormatPowerShell, false},
		{"ps-json", "[{\"LocalAddress\":\"::\",\"LocalPort\":135,\"OwningProcess\":4}]", FormatPowerShell, false},
		{"timestamps-only-skipped", "1795874494.1\ntcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:5 \n", FormatSS, false},
		{"utf16", string(utf16le("  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1264\r\n")), FormatNetstatANO, false},
		{"garbage", "hello world\n", "", true},
		{"empty", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DetectSocketDump([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrUnrecognized) {
				t.Errorf("err = %v, want ErrUnrecognized", err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// utf16le encodes s as UTF-16LE with a BOM, as Windows PowerShell 5.1's `>`
// writes files.
func utf16le(s string) []byte {
	out := []byte{0xff, 0xfe}
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			hi, lo := 0xd800+(r>>10), 0xdc00+(r&0x3ff)
			out = append(out, byte(hi), byte(hi>>8), byte(lo), byte(lo>>8))
			continue
		}
		out = append(out, byte(r), byte(r>>8))
	}
	return out
}

func TestParseSocketDumpUTF16AndGzip(t *testing.T) {
	plain := "# flowblame-ts: 2026-11-28T12:00:01Z\r\n  TCP    198.51.100.7:49712   203.0.113.9:443   ESTABLISHED   4321\r\n\"svchost.exe\",\"4321\",\"Services\",\"0\",\"12,344 K\"\r\n"
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"utf16", utf16le(plain)},
		{"gzip", gzipBytes(t, []byte(plain))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snaps, diags, err := ParseSocketDump(bytes.NewReader(tc.data), tc.name, fixtureMtime)
			if err != nil {
				t.Fatal(err)
			}
			if len(snaps) != 1 || len(snaps[0].Sockets) != 1 {
				t.Fatalf("snaps = %+v, diags = %v", snaps, diags)
			}
			e := snaps[0].Sockets[0]
			want := SocketEntry{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:49712"),
				Remote: netip.MustParseAddrPort("203.0.113.9:443"), State: "ESTAB", UID: -1,
				Holders: []ProcKey{{PID: 4321}}, Comms: []string{"svchost.exe"}}
			if d := cmp.Diff(want, e, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("socket (-want +got):\n%s", d)
			}
			if snaps[0].Taken != time.Date(2026, 11, 28, 12, 0, 1, 0, time.UTC).UnixNano() {
				t.Errorf("Taken = %d", snaps[0].Taken)
			}
		})
	}
}

func TestReadSocketDumpsStrict(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ss")
	bad := filepath.Join(dir, "bad.ss")
	os.WriteFile(good, []byte("1795874494\ntcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670\n"), 0o644)
	os.WriteFile(bad, []byte("1795874490\ntcp ESTAB 0 0 198.51.100.1:22 nohost:50670\n"), 0o644)
	tests := []struct {
		name      string
		paths     []string
		strict    bool
		wantSnaps int
		wantErr   error
	}{
		{"good", []string{good}, false, 1, nil},
		{"bad-lenient", []string{good, bad}, false, 2, nil},
		{"bad-strict", []string{good, bad}, true, 1, ErrMalformed},
		{"missing", []string{filepath.Join(dir, "nope")}, false, 0, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			snaps, _, err := ReadSocketDumps(tc.paths, Options{Strict: tc.strict})
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(snaps) != tc.wantSnaps {
				t.Fatalf("%d snapshots, want %d", len(snaps), tc.wantSnaps)
			}
			for i := 1; i < len(snaps); i++ {
				if snaps[i-1].Taken > snaps[i].Taken {
					t.Errorf("snapshots not sorted by time")
				}
			}
		})
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seedDumps adds every input member of fixtures/sockets/<archive> whose name
// ends in suffix to the fuzz corpus.
func seedDumps(f *testing.F, archive, suffix string) {
	f.Helper()
	ar, err := txtar.ParseFile(filepath.Join(sockFixtures, archive))
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range ar.Files {
		if strings.HasSuffix(m.Name, suffix) && !strings.HasSuffix(m.Name, suffix+".json") {
			f.Add(m.Data)
		}
	}
}

// fuzzParser is the body of every per-format fuzz target: no panic, and a
// snapshot that passes checkSnapshot whenever err is nil.
func fuzzParser(f *testing.F, parse func(r io.Reader) (SocketSnapshot, []Diagnostic, error)) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, diags, err := parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		if cerr := checkSnapshot(s); cerr != nil {
			t.Fatalf("invalid snapshot: %v", cerr)
		}
		for _, d := range diags {
			if d.Count < 1 {
				t.Fatalf("diagnostic with count %d: %v", d.Count, d)
			}
		}
	})
}

func FuzzParseSocketDump(f *testing.F) {
	for _, a := range []string{"ss.txtar", "lsof.txtar", "netstat.txtar", "netstat-ano.txtar", "powershell.txtar", "garbled.txtar"} {
		seedDumps(f, a, "")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snaps, _, err := ParseSocketDump(bytes.NewReader(data), "fuzz", fixtureMtime)
		if err != nil {
			if !errors.Is(err, ErrUnrecognized) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		for _, s := range snaps {
			if cerr := checkSnapshot(s); cerr != nil {
				t.Fatalf("invalid snapshot: %v", cerr)
			}
		}
		obs, _, _ := CompileSnapshots(snaps) // the compiler must take whatever the parser gives
		for _, o := range obs {
			if o.Last < o.First {
				t.Fatalf("observation ends before it starts: %+v", o)
			}
		}
	})
}

func TestParseSocketDumpNoFinalNewline(t *testing.T) {
	in := "1795867294\ntcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:((\"sshd\",pid=812,fd=4))\n1795867295\ntcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:5067"
	snaps, diags, err := ParseSocketDump(strings.NewReader(in), "cut.ss", fixtureMtime)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	found := false
	for _, d := range diags {
		if d.Kind == DiagTruncated && d.Where == "line 4" && errors.Is(d.Err, ErrTruncated) {
			found = true
		}
	}
	if !found {
		t.Errorf("no truncated diagnostic for the cut last line: %v", diags)
	}
}

// TestParseSocketDumpManyHolders: a listener held by 20,000 processes
// (a 560 kB ss line) keeps every holder.
func TestParseSocketDumpManyHolders(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(")
	for i := range 20000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, "(\"nginx\",pid=%d,fd=6)", 100000+i)
	}
	sb.WriteString(")\n")
	snaps, diags, err := ParseSocketDump(strings.NewReader(sb.String()), "many.ss", fixtureMtime)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || len(snaps[0].Sockets) != 1 || len(snaps[0].Sockets[0].Holders) != 20000 {
		t.Fatalf("want 1 socket with 20000 holders, got %d snapshots", len(snaps))
	}
	for _, d := range diags {
		if d.Kind != DiagInfo {
			t.Errorf("diagnostic %+v", d)
		}
	}
}

func TestParseSocketDumpLongLine(t *testing.T) {
	in := "tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:((\"" + strings.Repeat("x", maxDumpLine+10) + "\",pid=812,fd=4))\n" +
		"tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50671\n"
	snaps, diags, err := ParseSocketDump(strings.NewReader(in), "long.ss", fixtureMtime)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || len(snaps[0].Sockets) != 2 {
		t.Fatalf("snaps = %+v", snaps)
	}
	if !snaps[0].TimeFromMtime || snaps[0].Taken != fixtureMtime.UnixNano() {
		t.Errorf("want time from mtime, got %+v", snaps[0])
	}
	var kinds []DiagKind
	for _, d := range diags {
		kinds = append(kinds, d.Kind)
	}
	if !slices.Contains(kinds, DiagTruncated) {
		t.Errorf("no diagnostic for the long line: %v", diags)
	}
}

// benchDump builds an ss -tunapeH loop dump: snaps blocks of n sockets.
func benchDump(snaps, n int) []byte {
	var b strings.Builder
	for s := 0; s < snaps; s++ {
		fmt.Fprintf(&b, "%d.%09d\n", 1795867294+s, 0)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "tcp ESTAB 0 0 198.51.100.%d:%d 203.0.113.%d:443 users:((\"worker\",pid=%d,fd=%d)) uid:1000 ino:%d sk:%x <->\n",
				1+i%200, 1024+i%60000, 1+i%250, 1000+i%500, 3+i%1000, 100000+i, 0x1000+i)
		}
	}
	return []byte(b.String())
}

// BenchmarkParseSocketDumpSS measures ss parsing throughput (bytes and
// sockets per second) on 5 snapshots of 4,000 sockets.
func BenchmarkParseSocketDumpSS(b *testing.B) {
	data := benchDump(5, 4000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		snaps, _, err := ParseSocketDump(bytes.NewReader(data), "bench.ss", fixtureMtime)
		if err != nil || len(snaps) != 5 {
			b.Fatalf("%d snaps, err %v", len(snaps), err)
		}
	}
	b.ReportMetric(float64(5*4000*b.N)/b.Elapsed().Seconds(), "sockets/s")
}

// TestReadFormats runs each readX on a fixture written to a file: the
// snapshot and its diagnostics name the file.
func TestReadFormats(t *testing.T) {
	tests := []struct {
		name    string
		archive string
		member  string
		read    func(string) (SocketSnapshot, []Diagnostic, error)
		sockets int
	}{
		{"ss", "ss.txtar", "tunap.ss", readSS, 12},
		{"lsof", "lsof.txtar", "inP.lsof", readLsof, 12},
		{"lsof-F", "lsof.txtar", "F.lsof", readLsofF, 12},
		{"netstat", "netstat.txtar", "tunap.netstat", readNetstat, 12},
		{"netstat-ano", "netstat-ano.txtar", "ano-tasklist.netstat", readNetstatANO, 16},
		{"powershell", "powershell.txtar", "tcp.csv", readPowerShell, 6},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ar, err := txtar.ParseFile(filepath.Join(sockFixtures, tc.archive))
			if err != nil {
				t.Fatal(err)
			}
			var data []byte
			for _, f := range ar.Files {
				if f.Name == tc.member {
					data = f.Data
				}
			}
			path := filepath.Join(dir, tc.member)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			s, diags, err := tc.read(path)
			if err != nil {
				t.Fatal(err)
			}
			if s.File != path || len(s.Sockets) != tc.sockets {
				t.Errorf("File %q, %d sockets; want %q, %d", s.File, len(s.Sockets), path, tc.sockets)
			}
			for _, d := range diags {
				if d.File != path {
					t.Errorf("diagnostic names %q", d.File)
				}
			}
			if _, _, err := tc.read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("missing file: err = %v", err)
			}
		})
	}
}

// BenchmarkParsePowerShellJSON checks that JSON exports parse in linear
// time (20,000 connections).
func BenchmarkParsePowerShellJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[\n")
	for i := 0; i < 20000; i++ {
		if i > 0 {
			sb.WriteString(",\n")
		}
		fmt.Fprintf(&sb, "    {\n        \"LocalAddress\":  \"198.51.100.7\",\n        \"LocalPort\":  %d,\n        \"RemoteAddress\":  \"203.0.113.9\",\n        \"RemotePort\":  443,\n        \"State\":  5,\n        \"OwningProcess\":  %d\n    }", 1024+i%60000, 100+i%300)
	}
	sb.WriteString("\n]\n")
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		s, _, err := parsePowerShell(bytes.NewReader(data))
		if err != nil || len(s.Sockets) != 20000 {
			b.Fatalf("%d sockets, err %v", len(s.Sockets), err)
		}
	}
}

// TestSocketDumpLeadingEmptyIterations: a loop started while nothing was
// listening prints only timestamps for a while (ss -H and lsof print
// nothing then); the dump is still recognised from its later output, and a
// dump with no output at all is a diagnostic, not an error.
func TestSocketDumpLeadingEmptyIterations(t *testing.T) {
	var b strings.Builder
	for i := range 5000 { // about 180 kB of timestamp lines
		fmt.Fprintf(&b, "2026-11-29T02:55:%02d,%09d+00:00\n", i%60, i)
	}
	empty := b.String()
	b.WriteString("2026-11-29T02:56:00,000000000+00:00\n")
	b.WriteString(`tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:(("sshd",pid=812,fd=4))` + "\n")
	snaps, _, err := ParseSocketDump(strings.NewReader(b.String()), "late.txt", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range snaps {
		n += len(s.Sockets)
	}
	if n != 1 {
		t.Errorf("%d sockets from %d snapshots, want 1", n, len(snaps))
	}
	for _, in := range []string{empty, ""} {
		snaps, diags, err := ParseSocketDump(strings.NewReader(in), "empty.txt", time.Unix(0, 0))
		if err != nil || len(snaps) != 0 || len(diags) != 1 || !strings.Contains(diags[0].Msg, "no tool output") {
			t.Errorf("%d bytes of timestamps only: %d snapshots, %v, err %v", len(in), len(snaps), diags, err)
		}
	}
}

// TestSocketDumpLsofFWithoutFileFields: lsof -F with a field list without
// file sets (-Fpcn) has socket names but neither family nor protocol: each
// name is entered as TCP and as UDP (a listener and an unconnected socket
// when it has no peer), with one diagnostic. Without names (-Fpc) there is
// nothing to read, and the error says which fields to ask for.
func TestSocketDumpLsofFWithoutFileFields(t *testing.T) {
	for _, in := range []string{
		"p812\ncsshd\nn198.51.100.1:22->198.51.100.2:50670\np901\ncnginx\nn*:80\n",
		"p812\x00csshd\x00\nn198.51.100.1:22->198.51.100.2:50670\x00\np901\x00cnginx\x00\nn*:80\x00\n",
	} {
		snaps, diags, err := ParseSocketDump(strings.NewReader(in), "fpcn.txt", time.Unix(0, 0))
		if err != nil || len(snaps) != 1 {
			t.Fatalf("%d snapshots, err %v", len(snaps), err)
		}
		type row struct {
			proto  uint8
			local  string
			remote string
			state  string
			pid    string
		}
		var got []row
		for _, e := range snaps[0].Sockets {
			r := row{proto: e.Proto, local: e.Local.String(), state: e.State}
			for _, h := range e.Holders {
				r.pid += fmt.Sprint(h.PID)
			}
			if e.Remote.IsValid() {
				r.remote = e.Remote.String()
			}
			got = append(got, r)
		}
		want := []row{
			{ProtoTCP, "198.51.100.1:22", "198.51.100.2:50670", "", "812"},
			{ProtoUDP, "198.51.100.1:22", "198.51.100.2:50670", "ESTAB", "812"},
			{ProtoTCP, "[::]:80", "", "LISTEN", "901"},
			{ProtoUDP, "[::]:80", "", "UNCONN", "901"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("sockets\n got %v\nwant %v", got, want)
		}
		n := 0
		for _, d := range diags {
			if strings.Contains(d.Msg, "taken as TCP and as UDP") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d protocol diagnostics, want 1: %v", n, diags)
		}
	}
	_, _, err := ParseSocketDump(strings.NewReader("p812\ncsshd\np901\ncnginx\n"), "fpc.txt", time.Unix(0, 0))
	if !errors.Is(err, ErrUnrecognized) || !strings.Contains(err.Error(), "-F pcuLftPnT") {
		t.Errorf("-Fpc: err = %v", err)
	}
}

// TestSocketDumpNoProcesses: a dump taken without the process option lists
// sockets but no owner; one diagnostic says how to take it.
func TestSocketDumpNoProcesses(t *testing.T) {
	in := "1795928687.6\nNetid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" +
		"tcp ESTAB 0 0 198.51.100.1:40001 198.51.100.2:9000\nudp UNCONN 0 0 0.0.0.0:40005 0.0.0.0:*\n" +
		"1795928688.1\ntcp ESTAB 0 0 198.51.100.1:40001 198.51.100.2:9000\n"
	_, diags, err := ParseSocketDump(strings.NewReader(in), "tuna.ss", fixtureMtime)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range diags {
		if strings.Contains(d.Msg, "none of the 3 socket listings names its process") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("want one no-processes diagnostic, got %v", diags)
	}
	_, diags, _ = ParseSocketDump(strings.NewReader(in+"tcp ESTAB 0 0 198.51.100.1:40001 198.51.100.2:9000 users:((\"x\",pid=5,fd=3))\n"), "tunap.ss", fixtureMtime)
	for _, d := range diags {
		if strings.Contains(d.Msg, "names its process") {
			t.Errorf("a dump with an owner: %v", d)
		}
	}
}

// TestParseSocketDumpSSCutUsers: iproute2 stops a socket's process list near
// 64 KiB, mid-entry; the diagnostic says the owner may be missing.
func TestParseSocketDumpSSCutUsers(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("tcp ESTAB 0 0 198.51.100.1:40020 198.51.100.2:9000 users:(")
	for i := 0; sb.Len() < 65600; i++ {
		fmt.Fprintf(&sb, "(\"holderprocess%d\",pid=%d,fd=3),", i, 40000-i)
	}
	sb.WriteString("(\"holderp\n")
	_, diags, err := ParseSocketDump(strings.NewReader(sb.String()), "cut.ss", fixtureMtime)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range diags {
		found = found || d.Kind == DiagTruncated && strings.Contains(d.Msg, "ss cut the process list of 198.51.100.1:40020")
	}
	if !found {
		t.Errorf("no diagnostic for the cut process list: %v", diags)
	}
}

// TestCompileSocketDumpsStreams: the streaming compile gives what reading
// every dump first and compiling them gives, for every fixture dump alone,
// for all of them at once (interleaved in time), for a loop whose clock
// steps back (the in-memory path), and for a file that cannot be read.
func TestCompileSocketDumpsStreams(t *testing.T) {
	dir := t.TempDir()
	var all []string
	files, err := filepath.Glob(filepath.Join(sockFixtures, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ar.Files {
			if strings.HasSuffix(m.Name, ".json") {
				continue
			}
			p := filepath.Join(dir, filepath.Base(file)+"-"+strings.ReplaceAll(m.Name, "/", "_"))
			if err := os.WriteFile(p, m.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(p, fixtureMtime, fixtureMtime); err != nil {
				t.Fatal(err)
			}
			all = append(all, p)
		}
	}
	// Two loops of the same sockets, interleaved, and one whose clock steps back.
	loop := func(name string, start, step int64, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%d.000000000\n", start+int64(i)*step)
			for j := range 3 {
				if (i+j)%4 != 0 {
					fmt.Fprintf(&b, "tcp   ESTAB  0      0      198.51.100.1:%d   203.0.113.%d:443 users:((\"app%d\",pid=%d,fd=5))\n", 40000+j, 1+j, j, 100+j+i/5)
				}
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := loop("a.ss", 1796205600, 2, 20), loop("b.ss", 1796205601, 2, 20)
	back := loop("back.ss", 1796205700, -1, 10)
	var rotated []string // one file a minute, given out of order, two overlapping at the ends
	for i := range 30 {
		rotated = append(rotated, loop(fmt.Sprintf("rot-%02d.ss", (i*7)%30), 1796206000+int64((i*7)%30)*60, 1, 61))
	}
	for name, paths := range map[string][]string{"all fixtures": all, "interleaved": {a, b}, "clock step back": {a, back}, "one": {a}, "rotated": rotated} {
		snaps, wantDiags, err := ReadSocketDumps(paths, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantObs, wantCov, wantProcs := CompileSnapshots(snaps)
		obs, cov, procs, diags, err := CompileSocketDumps(paths, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		addrs := cmpopts.EquateComparable(netip.AddrPort{})
		if d := cmp.Diff(wantObs, obs, addrs); d != "" {
			t.Errorf("%s: observations (-read all +streamed):\n%s", name, d)
		}
		if d := cmp.Diff(wantCov, cov); d != "" {
			t.Errorf("%s: coverage:\n%s", name, d)
		}
		if d := cmp.Diff(wantProcs, procs, addrs); d != "" {
			t.Errorf("%s: processes:\n%s", name, d)
		}
		if d := cmp.Diff(wantDiags, diags, cmpopts.IgnoreFields(Diagnostic{}, "Err")); d != "" {
			t.Errorf("%s: diagnostics:\n%s", name, d)
		}
		if name == "interleaved" && (len(obs) == 0 || len(cov.Inventories[0]) != 40) {
			t.Errorf("interleaved: %d observations, %d inventories", len(obs), len(cov.Inventories[0]))
		}
	}
	if _, _, _, _, err := CompileSocketDumps([]string{a, filepath.Join(dir, "missing")}, Options{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestNumberFastPaths: atoiPos and isUint agree with strconv on every kind
// of input (their fast paths skip building error values).
func TestNumberFastPaths(t *testing.T) {
	for _, s := range []string{"", "0", "7", "007", "-1", "+5", "-0", "1a", " 1", "1 ", "123456789012345678", "1234567890123456789",
		"9223372036854775807", "9223372036854775808", "18446744073709551615", "18446744073709551616", "99999999999999999999", "users:((", "٣"} {
		n, err := strconv.Atoi(s)
		wantN, wantOK := n, err == nil && n >= 0
		if gotN, gotOK := atoiPos(s); gotOK != wantOK || (gotOK && gotN != wantN) {
			t.Errorf("atoiPos(%q) = %d, %v; want %d, %v", s, gotN, gotOK, wantN, wantOK)
		}
		_, err = strconv.ParseUint(s, 10, 64)
		if got := isUint(s); got != (err == nil) {
			t.Errorf("isUint(%q) = %v", s, got)
		}
	}
}

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/collect"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/internal/fixturecopy"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files in fixtures/golden")

var bundles = []string{"webserver", "miner", "floodbot", "exfil", "masquerade", "cloudagent", "container", "ddostarget", "httpflood", "dnsflood"}

// scrub removes what cannot be deterministic across builds (the tool
// version), in one place.
func scrub(s string) string {
	return strings.ReplaceAll(s, "flowblame "+version, "flowblame VERSION")
}

func golden(t *testing.T, name string, got string) {
	t.Helper()
	p := filepath.Join("..", "..", "fixtures", "golden", name)
	if *update {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden (run go test ./cmd/flowblame -update): %v", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs from golden (-want +got; regenerate with -update and review the diff):\n%s", name, d)
	}
}

func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp(&out, &errb)
	app.Metadata = map[string]any{"command": "flowblame " + strings.Join(args, " ")}
	full := append([]string{"flowblame"}, args...)
	err := app.RunContext(context.Background(), interspersed(app, full))
	return out.String(), errb.String(), err
}

func TestAnalyzeGoldens(t *testing.T) {
	for _, b := range bundles {
		for _, format := range []string{"text", "json", "md", "html", "iftop", "brief"} {
			t.Run(b+"."+format, func(t *testing.T) {
				out, _, err := runArgs(t, "analyze", "--format", format, filepath.Join("..", "..", "fixtures", "bundles", b))
				if err != nil {
					t.Fatal(err)
				}
				golden(t, b+"."+format, scrub(out))
			})
		}
	}
}

// TestVerdicts is the acceptance of the report: each scenario's verdict is
// the first line of the Markdown report, and the normal web server has no
// high-severity finding.
func TestVerdicts(t *testing.T) {
	want := map[string]string{
		"webserver":  "**Verdict (info):** nginx[1301]",
		"miner":      "**Verdict (critical):** crypto mining: kdevtmpfsi[4242]",
		"floodbot":   "**Verdict (high):** DDoS participation: dbus-daemon[31337]",
		"exfil":      "**Verdict (medium):** possible exfiltration: python3[5150]",
		"masquerade": "**Verdict (high):** suspicious process: [kworker/0:2][6666]",
		"cloudagent": "**Verdict (medium):** YDService[888]",
		// Masqueraded on the uplink: found through conntrack (method nat).
		"container": "**Verdict (critical):** crypto mining: xmrig[27001]",
		// An attack on the host: not scanning (the host never sent to the
		// reflectors), not nginx's bandwidth.
		"ddostarget": "**Verdict (high):** inbound DDoS: this host is the target of a SYN flood on port 443 (600 half-open connections/s from 7200 addresses) and a UDP reflection flood from NTP (123) and memcached (11211)",
		// Bots reconnecting: not nginx's capacity problem alone.
		"httpflood": "**Verdict (high):** inbound DDoS: this host is the target of an HTTP flood on port 443 (45 short connections/s from 60 addresses)",
		// Answered queries: only the names show the flood.
		"dnsflood": "**Verdict (high):** inbound DDoS: this host is the target of a random-subdomain (water torture) DNS flood (800 queries/s for random names under shop.example from 30 addresses)",
	}
	for _, b := range bundles {
		out, _, err := runArgs(t, "analyze", "-f", "md", filepath.Join("..", "..", "fixtures", "bundles", b))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(out, "\n")
		if !strings.HasPrefix(first, want[b]) {
			t.Errorf("%s: first line %q, want prefix %q", b, first, want[b])
		}
	}
	// With no flags, the embedded DB-IP database answers, and says so.
	out, _, err := runArgs(t, "analyze", "-f", "md", filepath.Join("..", "..", "fixtures", "bundles", "miner"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "| `45.9.148.21` | NL |") || !strings.Contains(out, "Location: country ipvAll (embedded") || !strings.Contains(out, "DB-IP") {
		t.Errorf("the miner report should locate its pool in NL and name the embedded DB-IP database:\n%s", out)
	}
	out, _, err = runArgs(t, "analyze", "-f", "json", filepath.Join("..", "..", "fixtures", "bundles", "ddostarget"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []struct{ ID, Severity string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(doc.Findings); got != "[{ddos-target high} {bandwidth-hog info}]" {
		t.Errorf("DDoS target findings: %s, want the inbound DDoS and nginx's (normal) bandwidth only", got)
	}
	_, _, err = runArgs(t, "analyze", "--fail-on", "high", filepath.Join("..", "..", "fixtures", "bundles", "webserver"))
	if err != nil {
		t.Errorf("normal web server: --fail-on high returned %v, want no high finding", err)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"analyze", "../../fixtures/bundles/miner"}, exitOK},
		{"findings", []string{"analyze", "--fail-on", "high", "../../fixtures/bundles/miner"}, exitFindings},
		{"below threshold", []string{"analyze", "--fail-on", "critical", "../../fixtures/bundles/exfil"}, exitOK},
		{"bad flag", []string{"analyze", "--no-such-flag", "../../fixtures/bundles/miner"}, exitUsage},
		{"bad format", []string{"analyze", "-f", "pdf", "../../fixtures/bundles/miner"}, exitUsage},
		{"bad severity", []string{"analyze", "--fail-on", "severe", "../../fixtures/bundles/miner"}, exitUsage},
		{"nothing", []string{"analyze"}, exitUsage},
		{"interface captured", []string{"analyze", "-i", "eth0", "../../fixtures/bundles/miner"}, exitOK},
		{"interface not captured", []string{"analyze", "-i", "wlan0", "../../fixtures/bundles/miner"}, exitUsage},
		{"iftop on two interfaces", []string{"analyze", "-f", "iftop", "-i", "eth0,docker0", "../../fixtures/bundles/miner"}, exitUsage},
		{"iftop -o", []string{"analyze", "-f", "iftop", "-o", "40s", "../../fixtures/bundles/miner"}, exitOK},
		{"iftop -o not an iftop order", []string{"analyze", "-f", "iftop", "-o", "peak", "../../fixtures/bundles/miner"}, exitUsage},
		{"-o not an order", []string{"analyze", "-o", "report.html", "../../fixtures/bundles/miner"}, exitUsage},
		{"iftop -G", []string{"analyze", "-f", "iftop", "-G", "2001:db8::/32", "../../fixtures/bundles/miner"}, exitOK},
		{"iftop -G with IPv4", []string{"analyze", "-f", "iftop", "-G", "198.51.100.0/24", "../../fixtures/bundles/miner"}, exitUsage},
		{"negative --max-flows", []string{"analyze", "--max-flows", "-1", "../../fixtures/bundles/miner"}, exitUsage},
		{"bad --proxy", []string{"analyze", "--proxy", "CloudFront=130.176.0.0/99", "../../fixtures/bundles/miner"}, exitUsage},
		{"missing file", []string{"analyze", "no-such-capture.pcap"}, exitError},
		{"directory that is not a bundle", []string{"analyze", "../../fixtures/bundles"}, exitError},
		{"a bundle's manifest", []string{"analyze", "../../fixtures/bundles/miner/manifest.json"}, exitError},
		{"not a capture", []string{"analyze", "analyze_test.go"}, exitError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runArgs(t, tc.args...)
			if got := exitCode(err); got != tc.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tc.want)
			}
		})
	}
}

// TestIftopFlags: the iftop view takes iftop's own -o, -F and -G, and the
// report goes to a file with -w/--output.
func TestIftopFlags(t *testing.T) {
	const bundle = "../../fixtures/bundles/miner"
	def, _, err := runArgs(t, "analyze", "-f", "iftop", "-P", bundle)
	if err != nil || !strings.Contains(def, "Listening on") {
		t.Fatalf("iftop view: %v\n%s", err, def)
	}
	long, _, err := runArgs(t, "analyze", "-f", "iftop", "-P", "--sort", "source", bundle)
	short, _, err2 := runArgs(t, "analyze", "-f", "iftop", "-P", "-o", "source", bundle)
	if err != nil || err2 != nil || long != short || long == "" {
		t.Errorf("-o source and --sort source differ (%v, %v)", err, err2)
	}
	ten, _, err := runArgs(t, "analyze", "-f", "iftop", "-P", "-o", "10s", bundle)
	if err != nil || ten != def {
		t.Errorf("-o 10s should be the default order (%v)", err)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	stdout, _, err := runArgs(t, "analyze", "-f", "json", "-w", out, bundle)
	if b, rerr := os.ReadFile(out); err != nil || rerr != nil || stdout != "" || !strings.Contains(string(b), `"verdict"`) {
		t.Errorf("-w: err %v, stdout %d bytes, file: %v", err, len(stdout), rerr)
	}
}

// TestNotABundleHints: a directory holding a bundle one level down, or a
// bundle's manifest given instead of its directory, get an error that says
// what to give instead.
func TestNotABundleHints(t *testing.T) {
	_, _, err := runArgs(t, "analyze", "../../fixtures/bundles")
	if err == nil || !strings.Contains(err.Error(), "not a bundle: it has no manifest.json; the bundle is ../../fixtures/bundles/") {
		t.Errorf("directory: %v", err)
	}
	_, _, err = runArgs(t, "analyze", "../../fixtures/bundles/miner/manifest.json")
	if err == nil || !strings.Contains(err.Error(), "give the bundle directory, ../../fixtures/bundles/miner") {
		t.Errorf("manifest: %v", err)
	}
	// A directory of captures that is not a bundle (rotated tcpdump files)
	// is analysed as its capture files, with a diagnostic; one without any
	// is an error.
	dir := t.TempDir()
	for _, f := range []string{"00000.pcapng", "../manifest.json"} {
		b, err := os.ReadFile(filepath.Join("../../fixtures/bundles/miner/capture", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)+".copy"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fromDir, _, err := runArgs(t, "analyze", "-f", "json", dir)
	if err != nil {
		t.Fatal(err)
	}
	fromFile, _, err := runArgs(t, "analyze", "-f", "json", filepath.Join(dir, "00000.pcapng.copy"))
	if err != nil {
		t.Fatal(err)
	}
	conv := func(js string) string {
		return js[strings.Index(js, `"conversations"`):strings.Index(js, `"coverage"`)]
	}
	if conv(fromDir) != conv(fromFile) || !strings.Contains(fromDir, "its 1 capture files are analysed, merged in time order; 1 other files left out") {
		t.Errorf("directory of captures: conversations differ from the file's, or no diagnostic")
	}
	if _, _, err = runArgs(t, "analyze", t.TempDir()); err == nil || !strings.Contains(err.Error(), "is a directory but not a bundle: it has no manifest.json") {
		t.Errorf("empty directory: %v", err)
	}
}

// TestSocketTimesApart: socket data from another time than the capture (a
// clock off by a day) attributes nothing, and the report says why.
func TestSocketTimesApart(t *testing.T) {
	src := "../../fixtures/bundles/miner"
	dir := fixturecopy.Bundle(t, src, func(rel string, data []byte) []byte {
		if rel != "sockets.jsonl" {
			return data
		}
		return regexp.MustCompile(`"t":(\d+)`).ReplaceAllFunc(data, func(m []byte) []byte { // one day later
			v, _ := strconv.ParseInt(string(m[4:]), 10, 64)
			return []byte(`"t":` + strconv.FormatInt(v+86400e9, 10))
		})
	})
	out, _, err := runArgs(t, "analyze", "-f", "json", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "do not overlap in time: no flow can be attributed") {
		t.Errorf("no diagnostic for socket data a day off")
	}
	out, _, _ = runArgs(t, "analyze", "-f", "json", src)
	if strings.Contains(out, "do not overlap in time") {
		t.Errorf("diagnostic on a bundle whose socket data matches")
	}
}

func TestFlagsAfterArguments(t *testing.T) {
	a, _, err1 := runArgs(t, "analyze", "-f", "json", "--top", "2", "../../fixtures/bundles/miner")
	b, _, err2 := runArgs(t, "analyze", "../../fixtures/bundles/miner", "-f", "json", "--top", "2")
	// The reproduce command differs by construction; everything else must not.
	strip := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.Contains(l, `"command"`) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if err1 != nil || err2 != nil || strip(a) != strip(b) {
		t.Fatalf("flags after the bundle should work like flags before it: %v %v", err1, err2)
	}
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.json")
	os.WriteFile(pol, []byte(`{"allow_processes": ["nginx", "sshd"], "allow_countries": ["US"], "severity": "high"}`), 0o644)
	out, _, err := runArgs(t, "analyze", "--policy", pol, "--fail-on", "high", "-f", "md", "../../fixtures/bundles/webserver")
	var fe findingsError
	if !errors.As(err, &fe) {
		t.Fatalf("want a policy violation (exit 3), got %v", err)
	}
	if !strings.Contains(out, "outside allow_countries") {
		t.Errorf("report does not name the country violation:\n%s", out)
	}
	os.WriteFile(pol, []byte(`{"allow_processes": ["nginx", "sshd"], "allow_countrys": ["US"]}`), 0o644)
	if _, _, err := runArgs(t, "analyze", "--policy", pol, "../../fixtures/bundles/webserver"); exitCode(err) != exitError {
		t.Errorf("a misspelt policy field must be an error, got %v", err)
	}
}

// TestAnalyzeInterfaceFilter: on a capture of the uplink and a bridge that
// carries the same traffic before NAT, --interface counts the uplink only
// and says what it left out.
func TestAnalyzeInterfaceFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "two.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := collect.NewPcapngWriter(f, "test", "Linux", []collect.PcapngIface{
		{Name: "eth0", Link: ingest.LinkEthernet, SnapLen: 96}, {Name: "docker0", Link: ingest.LinkEthernet, SnapLen: 96},
		{Name: "veth1", Link: ingest.LinkEthernet, SnapLen: 96}})
	if err != nil {
		t.Fatal(err)
	}
	frame := func(src, dst string, n int) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
		udp := &layers.UDP{SrcPort: 4000, DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, n))); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	ts := time.Unix(1_700_000_000, 0)
	for i := range 10 {
		up, br := frame("198.51.100.7", "203.0.113.9", 1000), frame("172.17.0.2", "203.0.113.9", 1000)
		if err := w.WritePacket(0, ts.Add(time.Duration(i)*time.Millisecond), len(up), up, 0); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(1, ts.Add(time.Duration(i)*time.Millisecond), len(br), br, 0); err != nil {
			t.Fatal(err)
		}
		// The container's veth carries the bridge's packets again.
		if err := w.WritePacket(2, ts.Add(time.Duration(i)*time.Millisecond+time.Microsecond), len(br), br, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	type counts struct {
		Packets int64 `json:"packets"`
	}
	var all, eth0 struct {
		Totals struct {
			TX      counts `json:"tx"`
			RX      counts `json:"rx"`
			Unknown counts `json:"unknown"`
		} `json:"totals"`
		Diagnostics []struct {
			Message string `json:"message"`
		} `json:"diagnostics"`
	}
	for _, c := range []struct {
		args []string
		into any
	}{
		{[]string{"analyze", "-f", "json", path}, &all},
		{[]string{"analyze", "-f", "json", "-i", "eth0", path}, &eth0},
	} {
		out, _, err := runArgs(t, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if err := json.Unmarshal([]byte(out), c.into); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
	}
	sum := func(t struct {
		TX      counts `json:"tx"`
		RX      counts `json:"rx"`
		Unknown counts `json:"unknown"`
	}) int64 {
		return t.TX.Packets + t.RX.Packets + t.Unknown.Packets
	}
	if a, e := sum(all.Totals), sum(eth0.Totals); a != 30 || e != 10 {
		t.Errorf("packets: all interfaces %d (want 30), eth0 only %d (want 10)", a, e)
	}
	has := func(ds []struct {
		Message string `json:"message"`
	}, parts ...string) bool {
		for _, d := range ds {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(d.Message, p)
			}
			if ok {
				return true
			}
		}
		return false
	}
	if !has(eth0.Diagnostics, "20 frames", "other interfaces than eth0") {
		t.Errorf("no diagnostic about the frames left out: %+v", eth0.Diagnostics)
	}
	if !has(all.Diagnostics, "1 flows were captured on more than one interface", "10 of their packets") {
		t.Errorf("no diagnostic about the flow seen on docker0 and veth1: %+v", all.Diagnostics)
	}
	if has(eth0.Diagnostics, "more than one interface") {
		t.Errorf("-i eth0: a flow on several interfaces reported: %+v", eth0.Diagnostics)
	}
	if _, _, err := runArgs(t, "analyze", "-i", "wlan0", path); exitCode(err) != exitUsage {
		t.Errorf("-i wlan0 on a capture without it: %v, want a usage error", err)
	}
}

// TestAnalyzeConntrackFlag: the container bundle without its conntrack
// records leaves the masqueraded miner unattributed; a conntrack -L listing
// given with --conntrack puts the verdict back on the process.
func TestAnalyzeConntrackFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "container")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "fixtures", "bundles", "container"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "conntrack.jsonl")); err != nil {
		t.Fatal(err)
	}
	out, _, err := runArgs(t, "analyze", "-f", "md", dir)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(out, "\n"); strings.Contains(first, "xmrig[27001]") {
		t.Errorf("without the NAT records the verdict should not name the process: %q", first)
	}
	listing := filepath.Join(t.TempDir(), "conntrack.txt")
	if err := os.WriteFile(listing, []byte("tcp      6 431999 ESTABLISHED src=172.17.0.2 dst=45.9.148.21 sport=45678 dport=3333 "+
		"src=45.9.148.21 dst=198.51.100.10 sport=3333 dport=32768 [ASSURED] mark=0 use=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = runArgs(t, "analyze", "-f", "md", "--conntrack", listing, dir)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "**Verdict (critical):** crypto mining: xmrig[27001]") {
		t.Errorf("with --conntrack: first line %q", first)
	}
	if !strings.Contains(out, "conntrack.txt") {
		t.Errorf("the listing is not among the report's sources")
	}
	// export takes the listing too: the uplink flow's records are xmrig's.
	owned := false
	for _, r := range exportCSV(t, "--conntrack", listing, dir) {
		owned = owned || (r[4] == "45.9.148.21:3333" && r[14] == "xmrig")
	}
	if !owned {
		t.Errorf("export --conntrack: no record of the uplink flow owned by xmrig")
	}
}

// twoLinks returns the path of the two-links.pcapng fixture (it carries
// process hints), its bytes and their gzip.
func twoLinks(t *testing.T) (path string, data []byte, gz *bytes.Buffer) {
	t.Helper()
	path = filepath.Join("..", "..", "fixtures", "captures", "two-links.pcapng")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gz = new(bytes.Buffer)
	zw := gzip.NewWriter(gz)
	zw.Write(data)
	zw.Close()
	return path, data, gz
}

// runArgsStdin runs the app with stdin as its standard input.
func runArgsStdin(t *testing.T, stdin []byte, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp(&out, &errb)
	app.Reader = bytes.NewReader(stdin)
	app.Metadata = map[string]any{"command": "flowblame " + strings.Join(args, " ")}
	err := app.RunContext(context.Background(), interspersed(app, append([]string{"flowblame"}, args...)))
	return out.String(), errb.String(), err
}

// TestAnalyzeStdin: "-" reads the capture from standard input, plain or
// gzip, with times relative to its first packet, and gives the same report
// as the file, process hints included (the capture fits in the look-ahead;
// beyond it they are named in a diagnostic, not used); "-" must be the only
// capture.
func TestAnalyzeStdin(t *testing.T) {
	path, data, gz := twoLinks(t)
	args := []string{"analyze", "-f", "json", "--local", "198.51.100.10,2001:db8::1", "--from", "0.5", "--at", "3"}
	fromFile, _, err := runArgs(t, append(args, path)...)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal([]byte(fromFile), &file); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"plain": data, "gzip": gz.Bytes()} {
		out, _, err := runArgsStdin(t, in, append(args, "-")...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		// Everything but what names the input and the diagnostics.
		for _, k := range []string{"command", "source", "evidence", "diagnostics"} {
			delete(got, k)
		}
		want := map[string]any{}
		for k, v := range file {
			want[k] = v
		}
		for _, k := range []string{"command", "source", "evidence", "diagnostics"} {
			delete(want, k)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s: the report differs from the file's (-file +stdin):\n%s", name, d)
		}
		if len(got) < 10 {
			t.Errorf("%s: only %d report fields compared", name, len(got))
		}
	}
	// Longer than the look-ahead: the hints are not used, and a diagnostic
	// says so; the rest of the report is the same.
	defer func(n int) { stdinLookahead = n }(stdinLookahead)
	stdinLookahead = len(data) / 2
	out, _, err := runArgsStdin(t, data, append(args, "-")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "process information (pcapng comments or process blocks), not used") || strings.Contains(out, "nginx[812]") {
		t.Errorf("longer than the look-ahead: want the hints named in a diagnostic and not used:\n%s", out)
	}
	if _, _, err := runArgsStdin(t, data, "analyze", "-", path); exitCode(err) != exitUsage {
		t.Errorf("- with another capture: err %v, want a usage error", err)
	}
	if _, _, err := runArgsStdin(t, nil, "analyze", "-"); exitCode(err) != exitError || !strings.Contains(err.Error(), "stdin") {
		t.Errorf("empty standard input: err %v, want exit 1 naming stdin", err)
	}
}

// TestAnalyzeStdinLimits: what needs a look ahead beyond what is kept of
// standard input says so: hints in a gzip stream longer than the look-ahead
// (gzip turns the look-ahead's limit into an error of its own), relative
// times with no packet in the look-ahead; export cannot read it twice; and
// an interrupted pipe that stalled still gives the report of what was read.
func TestAnalyzeStdinLimits(t *testing.T) {
	_, data, gz := twoLinks(t)
	defer func(n int) { stdinLookahead = n }(stdinLookahead)

	stdinLookahead = gz.Len() * 2 / 3
	out, _, err := runArgsStdin(t, gz.Bytes(), "analyze", "-f", "json", "--local", "198.51.100.10,2001:db8::1", "-")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "process information (pcapng comments or process blocks), not used") || strings.Contains(out, "nginx[812]") {
		t.Errorf("gzip longer than the look-ahead: want the hints named in a diagnostic and not used:\n%s", out)
	}

	stdinLookahead = 100 // less than the section and interface headers
	if _, _, err := runArgsStdin(t, data, "analyze", "-f", "json", "--from", "0.5", "-"); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
		t.Errorf("relative --from without a first packet in the look-ahead: err %v", err)
	}
	stdinLookahead = 64 << 20

	if _, _, err := runArgsStdin(t, data, "export", "--flows", filepath.Join(t.TempDir(), "f.jsonl"), "--pcapng", filepath.Join(t.TempDir(), "p.pcapng"), "-"); exitCode(err) != exitUsage {
		t.Errorf("export --flows --pcapng -: err %v, want a usage error", err)
	}

	// A pipe that delivers half the capture, then stalls; the signal comes
	// while analyze waits for more.
	pr, pw := io.Pipe()
	go pw.Write(data[:len(data)/2])
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var outb, errb bytes.Buffer
	app := newApp(&outb, &errb)
	app.Reader = pr
	done := make(chan error, 1)
	go func() { done <- app.RunContext(ctx, []string{"flowblame", "analyze", "-f", "json", "-"}) }()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(outb.String(), "interrupted (SIGINT/SIGTERM)") || !strings.Contains(outb.String(), `"packets"`) {
			t.Errorf("interrupted stalled pipe: err %v, report:\n%s", err, outb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("analyze of a stalled pipe did not stop when its context was cancelled")
	}
}

// TestAnalyzeStdinTerminal: - on a terminal is a usage error (it would wait
// for a capture typed in), not a hang.
func TestAnalyzeStdinTerminal(t *testing.T) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open the terminal: %v", err)
	}
	defer tty.Close()
	var out, errb bytes.Buffer
	app := newApp(&out, &errb)
	app.Reader = tty
	err = app.RunContext(context.Background(), []string{"flowblame", "analyze", "-"})
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "terminal") {
		t.Errorf("err %v, want a usage error about the terminal", err)
	}
}

// TestAnalyzeMaxFlows: past --max-flows, new flows are aggregates the
// report marks (JSON "folded", "*" and "/0" in the tables), a diagnostic
// says so, the totals do not change and the flood is still found.
func TestAnalyzeMaxFlows(t *testing.T) {
	const bundle = "../../fixtures/bundles/floodbot"
	type doc struct {
		Verdict struct{ Summary string }
		Capture struct {
			Wire   int64 `json:"wire_bytes"`
			Folded *struct {
				MaxFlows       int `json:"max_flows"`
				PortAggregates int `json:"port_aggregates"`
				HostAggregates int `json:"host_aggregates"`
			}
		}
		Totals        struct{ TX, RX struct{ Wire int64 } }
		Conversations []struct{ A, B, Folded string }
		Diagnostics   []struct{ Message string }
	}
	parse := func(args ...string) doc {
		t.Helper()
		out, stderr, err := runArgs(t, append([]string{"analyze", "-f", "json", "--group", "flow", "-n", "-1"}, append(args, bundle)...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr)
		}
		var d doc
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	all, folded := parse(), parse("--max-flows", "2")
	if all.Capture.Folded != nil {
		t.Errorf("default --max-flows folded the fixture: %+v", all.Capture.Folded)
	}
	fs := folded.Capture.Folded
	if fs == nil || fs.MaxFlows != 2 || fs.PortAggregates != 1 || fs.HostAggregates != 1 {
		t.Fatalf("capture.folded = %+v", fs)
	}
	if all.Capture.Wire != folded.Capture.Wire || all.Totals != folded.Totals {
		t.Errorf("totals changed: %+v %+v, folded %+v %+v", all.Capture.Wire, all.Totals, folded.Capture.Wire, folded.Totals)
	}
	if !strings.Contains(folded.Verdict.Summary, "floods 203.0.113.200") || folded.Verdict.Summary != all.Verdict.Summary {
		t.Errorf("verdict %q, without a limit %q", folded.Verdict.Summary, all.Verdict.Summary)
	}
	kinds := map[string]string{}
	for _, c := range folded.Conversations {
		if c.Folded != "" {
			kinds[c.Folded] = c.A + " " + c.B
		}
	}
	if kinds["hosts"] != "0.0.0.0/0 0.0.0.0/0" || !strings.HasSuffix(kinds["ports"], ":* 203.0.113.201:*") || len(folded.Conversations) != 4 {
		t.Errorf("aggregates %q in %d rows", kinds, len(folded.Conversations))
	}
	var diag bool
	for _, d := range folded.Diagnostics {
		diag = diag || strings.Contains(d.Message, "more than 2 flows")
	}
	if !diag {
		t.Errorf("no diagnostic: %+v", folded.Diagnostics)
	}
	// The on-host console answer says so too.
	out, _, err := runArgs(t, "analyze", "-f", "brief", "--max-flows", "2", bundle)
	if err != nil || !strings.Contains(out, "more than 2 flows: later new flows are aggregates") {
		t.Errorf("brief report (%v) does not mention the aggregates:\n%s", err, out)
	}
}

// TestProxyFlag: the HTTP flood's 60 bot addresses declared a reverse proxy
// of the host's (--proxy) are no flood sources: the report names the proxy
// in the remote hosts' table and its connection churn is a low finding.
func TestProxyFlag(t *testing.T) {
	out, _, err := runArgs(t, "analyze", "-f", "json", "--top", "100", "--proxy", "EdgeLB=185.100.0.0/14", filepath.Join("..", "..", "fixtures", "bundles", "httpflood"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []struct{ ID, Severity, Summary string }
		Remotes  []struct{ Addr, Proxy string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	churn := false
	for _, f := range doc.Findings {
		if f.ID == "ddos-target" && f.Severity != "low" {
			t.Errorf("a %s ddos-target through a declared proxy: %s", f.Severity, f.Summary)
		}
		churn = churn || f.ID == "ddos-target" && strings.HasPrefix(f.Summary, "heavy connection churn through EdgeLB on port 443")
	}
	if !churn {
		t.Errorf("no low ddos-target naming EdgeLB: %+v", doc.Findings)
	}
	named := 0
	for _, r := range doc.Remotes {
		if strings.HasPrefix(r.Addr, "185.10") && r.Proxy == "EdgeLB" {
			named++
		}
	}
	if named == 0 {
		t.Errorf("no remote host named EdgeLB: %+v", doc.Remotes)
	}
}

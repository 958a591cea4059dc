package main

import (
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// TestExportPcapngTshark: the annotated capture opens in tshark and every
// packet shows its process in its comment; re-analysing it alone (no
// sockets) attributes the traffic from those annotations.
func TestExportPcapngTshark(t *testing.T) {
	out := filepath.Join(t.TempDir(), "annotated.pcapng")
	if _, _, err := runArgs(t, "export", "--pcapng", out, "../../fixtures/bundles/miner"); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tshark not installed (CI installs it)")
		}
		t.Skip("tshark not installed")
	}
	all, err := exec.Command("tshark", "-r", out, "-T", "fields", "-e", "frame.comment").Output()
	if err != nil {
		t.Fatalf("tshark -r: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(all)), "\n")
	if len(lines) != 766 {
		t.Fatalf("tshark read %d packets, want 766", len(lines))
	}
	for i, l := range lines {
		if !strings.Contains(l, "pid=") {
			t.Fatalf("packet %d has no process comment: %q", i+1, l)
		}
	}
	miner, err := exec.Command("tshark", "-r", out, "-Y", `frame.comment contains "pid=4242 comm=kdevtmpfsi"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(miner), "\n"); n != 346 {
		t.Errorf("tshark filter on the miner's comment matched %d packets, want 346", n)
	}
	rep, _, err := runArgs(t, "analyze", "-f", "md", "--local", "198.51.100.10", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep, "`kdevtmpfsi[4242]`") || !strings.Contains(rep, "pcapng-hint 100.0%") {
		t.Errorf("re-analysis did not attribute from the annotations:\n%s", rep)
	}
}

func TestExportFlowsCSV(t *testing.T) {
	out := filepath.Join(t.TempDir(), "flows.csv")
	if _, _, err := runArgs(t, "export", "--flows", out, "--interval", "20s", "../../fixtures/bundles/cloudagent"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 5 || rows[0][0] != "start" {
		t.Fatalf("unexpected CSV: %v", rows[:min(len(rows), 3)])
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var agent int
	for _, r := range rows[1:] {
		if r[col["comm"]] == "YDService" && r[col["pid"]] == "888" {
			agent++
		}
	}
	if agent == 0 {
		t.Error("no flow record attributed to YDService[888]")
	}
	if _, _, err := runArgs(t, "export", "../../fixtures/bundles/miner"); exitCode(err) != exitUsage {
		t.Errorf("export with nothing to write: %v, want a usage error", err)
	}
}

// TestExportDiagnostics: what export could not read is said on stderr (its
// outputs have no place for it).
func TestExportDiagnostics(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"export", "--flows", filepath.Join(dir, "f.jsonl"), "../../fixtures/captures/small.truncated-tail.pcap"},
		{"export", "--pcapng", filepath.Join(dir, "p.pcapng"), "../../fixtures/captures/small.truncated-tail.pcap"},
	} {
		_, stderr, err := runArgs(t, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stderr, "truncated: ../../fixtures/captures/small.truncated-tail.pcap: packet 23") {
			t.Errorf("%v: stderr %q", args[:2], stderr)
		}
	}
}

// TestExportPcapngOwnDirection: a packet between two equal endpoints (a
// host pinging itself, seen on a Linux cooked capture as received) keeps
// the direction the capture gave it; the key cannot tell it.
func TestExportPcapngOwnDirection(t *testing.T) {
	ip := []byte{0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 198, 51, 100, 10, 198, 51, 100, 10, 8, 0, 0, 0, 0, 1, 0, 1}
	sll := append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, ip...) // pkttype 0: to us
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, 0xa1b2c3d4)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = le.AppendUint32(b, 65535)
	b = le.AppendUint32(b, 113) // LINKTYPE_LINUX_SLL
	for i := range 3 {
		b = le.AppendUint32(b, uint32(1_700_000_000+i))
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, uint32(len(sll)))
		b = le.AppendUint32(b, uint32(len(sll)))
		b = append(b, sll...)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "self.pcap"), filepath.Join(dir, "self.pcapng")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runArgs(t, "export", "--pcapng", out, in); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{in, out} {
		js, _, err := runArgs(t, "analyze", "-f", "json", "--group", "flow", f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Conversations []struct {
				Out, In struct{ Packets int }
			}
		}
		if err := json.Unmarshal([]byte(js), &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Conversations) != 1 || d.Conversations[0].In.Packets != 3 || d.Conversations[0].Out.Packets != 0 {
			t.Errorf("%s: conversations %+v, want 3 packets in", filepath.Base(f), d.Conversations)
		}
	}
}

// TestExportTimeWindow: --from and --to cut both exports to the window:
// the annotated capture holds exactly the packets in it, and every flow
// record's interval overlaps it.
func TestExportTimeWindow(t *testing.T) {
	const bundle = "../../fixtures/bundles/miner"
	b, err := ingest.OpenBundle(bundle, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	src, err := b.Packets()
	if err != nil {
		t.Fatal(err)
	}
	from, to := b.Manifest.Capture.Start+10e9, b.Manifest.Capture.Start+20e9
	want := 0
	var p ingest.Packet
	for src.Next(&p) == nil {
		if p.TS >= from && p.TS <= to {
			want++
		}
	}
	src.Close()
	out := filepath.Join(t.TempDir(), "window.pcapng")
	if _, _, err := runArgs(t, "export", "--pcapng", out, "--from", "10", "--to", "20", bundle); err != nil {
		t.Fatal(err)
	}
	got, err := ingest.OpenCapture(out, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for got.Next(&p) == nil {
		n++
		if p.TS < from || p.TS > to {
			t.Fatalf("exported packet at %d outside [%d, %d]", p.TS, from, to)
		}
	}
	got.Close()
	if n != want || want == 0 {
		t.Errorf("exported %d packets, %d in the window", n, want)
	}
	for _, r := range exportCSV(t, "--from", "10", "--to", "20", bundle) {
		start, err1 := time.Parse(time.RFC3339, r[0])
		end, err2 := time.Parse(time.RFC3339, r[1])
		if err1 != nil || err2 != nil || end.UnixNano() <= from || start.UnixNano() > to {
			t.Errorf("record %v outside the window", r[:2])
		}
	}
}

// TestExportInterface: -i keeps the frames of the named interfaces in both
// exports, as in analyze, and a bundle rejects a name it did not capture.
func TestExportInterface(t *testing.T) {
	path, _, _ := twoLinks(t) // eth0 (Ethernet, TCP) and tun0 (raw IP, UDP)
	out := filepath.Join(t.TempDir(), "tun0.pcapng")
	if _, _, err := runArgs(t, "export", "--pcapng", out, "-i", "tun0", path); err != nil {
		t.Fatal(err)
	}
	src, err := ingest.OpenCapture(out, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var p ingest.Packet
	n := 0
	for src.Next(&p) == nil {
		n++
		if ifs := src.Interfaces(); ifs[p.Iface].Name != "tun0" {
			t.Errorf("packet on %q", ifs[p.Iface].Name)
		}
	}
	src.Close()
	if n != 8 {
		t.Errorf("%d packets exported from tun0, want 8", n)
	}
	for _, r := range exportCSV(t, "-i", "eth0", path) {
		if r[2] != "tcp" {
			t.Errorf("eth0 record %v", r[:5])
		}
	}
	_, _, err = runArgs(t, "export", "--flows", "-", "-i", "wlan0", "../../fixtures/bundles/miner")
	if err == nil || !strings.Contains(err.Error(), "--interface wlan0: the bundle captured eth0") {
		t.Errorf("unknown interface: %v", err)
	}
}

// exportCSV runs export --flows - --flows-format csv with args and returns
// the records after the header (at least one).
func exportCSV(t *testing.T, args ...string) [][]string {
	t.Helper()
	out, _, err := runArgs(t, append([]string{"export", "--flows", "-", "--flows-format", "csv"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("%d records: %v", len(recs), err)
	}
	return recs[1:]
}

package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// A VXLAN capture's inner flows are listed with their outer flows in every
// format; a capture without tunnels has no such section.
func TestTunnelsSection(t *testing.T) {
	res, d := corpusDocument(t, "zeek/tunnels/vxlan.pcap")
	if len(d.Tunnels) != 2 || d.Tunnels[0].Fmt["inner"] != "icmp 10.0.0.1:0 ⇄ 10.0.0.2:0" ||
		d.Tunnels[0].OuterProto != "udp" || d.Tunnels[0].AB.Packets+d.Tunnels[0].BA.Packets != 4 {
		t.Fatalf("tunnels: %+v", d.Tunnels)
	}
	for _, format := range []string{"text", "md", "html", "json"} {
		buf := bytes.NewBuffer(renderAs(t, d, format))
		want := "Inside tunnels"
		if format == "json" {
			want = `"tunnels":[{"proto":"icmp","a":"10.0.0.1:0","b":"10.0.0.2:0","outer_proto":"udp"`
		}
		got := buf.String()
		if format == "json" {
			var c bytes.Buffer
			if err := json.Compact(&c, buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			got = c.String()
		}
		if !strings.Contains(got, want) ||
			(format != "json" && !strings.Contains(got, "192.168.56.11")) {
			t.Errorf("%s: no tunnel section (%q)", format, want)
		}
	}
	// An owner found for an inner flow gets a process column.
	res.Tunnels[1].Owner = &analyze.Attribution{Proc: ingest.ProcKey{PID: 42, Start: 1}, Comm: "ping", Method: analyze.MethodExact}
	res.Tunnels[1].OwnerEnd = "a"
	d, err := Build(Input{Result: res}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var txt bytes.Buffer
	if err := (TextRenderer{}).Render(&txt, d); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "process (end)") || !strings.Contains(txt.String(), "A: ping[42] (exact)") || d.Tunnels[1].Owner != "ping[42] (exact)" {
		t.Errorf("owner not shown:\n%s", txt.String())
	}

	plain := sampleDoc(t)
	js, _ := json.Marshal(plain)
	if len(plain.Tunnels) != 0 || bytes.Contains(js, []byte(`"tunnels"`)) || len(plain.TunnelProcesses) != 0 {
		t.Errorf("miner bundle: unexpected tunnels %+v", plain.Tunnels)
	}
}

// The owned inner flows are summed per process, by the process's own end:
// what it sent is TX whichever end of the inner flow it is.
func TestTunnelProcesses(t *testing.T) {
	ping := analyze.Attribution{Proc: ingest.ProcKey{PID: 42, Start: 1}, Comm: "ping", Method: analyze.MethodExact, Confidence: analyze.ConfHigh}
	other := analyze.Attribution{Proc: ingest.ProcKey{PID: 7, Start: 1}, Comm: "nginx", Method: analyze.MethodExact, Confidence: analyze.ConfHigh}
	c := func(n int64) analyze.Counts {
		return analyze.Counts{Packets: n, Wire: 100 * n, IP: 80 * n, Captured: 60 * n}
	}
	r := func(x float64) analyze.WindowRates { return analyze.WindowRates{S2: x, S10: x / 5, S40: x / 20} }
	res := &analyze.Result{Tunnels: []analyze.TunnelFlow{
		{AB: c(10), BA: c(2), ABRate: r(100), BARate: r(20), Owner: &ping, OwnerEnd: "a"},
		{AB: c(3), BA: c(30), ABRate: r(30), BARate: r(300), Owner: &ping, OwnerEnd: "b"},
		{AB: c(5), BA: c(5), ABRate: r(50), BARate: r(50), Owner: &other, OwnerEnd: "a"},
		{AB: c(40)}, // no owner: counted in the shares' whole only
	}}
	d, err := Build(Input{Result: res, Procs: map[ingest.ProcKey]ingest.ProcessInfo{ping.Proc: {Exe: "/usr/bin/ping"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.TunnelProcesses) != 2 {
		t.Fatalf("tunnel processes: %+v", d.TunnelProcesses)
	}
	p := d.TunnelProcesses[0]
	if p.Proc.PID != 42 || p.Flows != 2 || p.TX != c(40) || p.RX != c(5) || p.TXRate != r(400) || p.RXRate != r(50) ||
		p.Exe != "/usr/bin/ping" || p.Share != 4500.0/9500 {
		t.Errorf("ping's row: %+v", p)
	}
	if q := d.TunnelProcesses[1]; q.Proc.PID != 7 || q.TX != c(5) || q.RX != c(5) {
		t.Errorf("nginx's row: %+v", q)
	}
	for _, format := range []string{"text", "md", "html"} {
		out := string(renderAs(t, d, format))
		if !strings.Contains(out, "Processes inside tunnels") || !strings.Contains(out, "ping[42]") {
			t.Errorf("%s: no processes-inside-tunnels table", format)
		}
	}
}

// corpusDocument analyses a capture of ../shared/corpus (a test fails
// without it in CI, and skips elsewhere) and builds its report.
func corpusDocument(t *testing.T, name string) (*analyze.Result, *Document) {
	t.Helper()
	path := "../../shared/corpus/" + name
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	src, err := ingest.OpenCapture(path, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	res, err := analyze.Analyze(context.Background(), src, analyze.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Build(Input{Result: res}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res, d
}

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
	const vxlan = "../../shared/corpus/zeek/tunnels/vxlan.pcap"
	if _, err := os.Stat(vxlan); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	src, err := ingest.OpenCapture(vxlan, ingest.Options{})
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
	if len(d.Tunnels) != 2 || d.Tunnels[0].Fmt["inner"] != "icmp 10.0.0.1:0 ⇄ 10.0.0.2:0" ||
		d.Tunnels[0].OuterProto != "udp" || d.Tunnels[0].AB.Packets+d.Tunnels[0].BA.Packets != 4 {
		t.Fatalf("tunnels: %+v", d.Tunnels)
	}
	for _, format := range []string{"text", "md", "html", "json"} {
		r, err := RendererFor(format)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := r.Render(&buf, d); err != nil {
			t.Fatal(err)
		}
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
	d, err = Build(Input{Result: res}, Options{})
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
	if len(plain.Tunnels) != 0 || bytes.Contains(js, []byte(`"tunnels"`)) {
		t.Errorf("miner bundle: unexpected tunnels %+v", plain.Tunnels)
	}
}

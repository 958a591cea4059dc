package report

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// TestCaptureInterfaces: every interface that carried traffic is listed,
// direction-unknown traffic included (a bare capture without --local has
// only that), and so is one that carried none but dropped packets; with
// more than one, the Capture section has a line for each.
func TestCaptureInterfaces(t *testing.T) {
	// Four interfaces (two named eth0), three with packets, two with drops.
	_, d := corpusDocument(t, "gopacket/pcapgo/tests/le/test201.pcapng")
	want := []Iface{
		{Name: "eth0", Link: 1, Unknown: 314},
		{Name: "silly ethernet interface 2", Link: 1, Unknown: 656, Dropped: 10},
		{Name: "eth0", Link: 1, Dropped: 43, Received: 100},
		{Name: "null1", Link: 0, Unknown: 168},
	}
	if !slices.EqualFunc(d.Capture.Interfaces, want, func(a, b Iface) bool {
		return a.Name == b.Name && a.Link == b.Link && a.TX == b.TX && a.RX == b.RX && a.Unknown == b.Unknown && a.Dropped == b.Dropped && a.Received == b.Received
	}) {
		t.Errorf("interfaces %+v, want %+v", d.Capture.Interfaces, want)
	}
	if d.Capture.KernelDropped != 53 {
		t.Errorf("kernel dropped %d, want 53", d.Capture.KernelDropped)
	}
	for _, l := range []string{
		"interface silly ethernet interface 2: TX 0 B, RX 0 B, direction unknown 656 B, kernel dropped 10 packets",
		"interface eth0: TX 0 B, RX 0 B, kernel dropped 43 packets",
	} {
		if !slices.Contains(d.Capture.Text, l) {
			t.Errorf("no line %q in %q", l, d.Capture.Text)
		}
	}
}

// TestCaptureInterfaceLinesBounded: a host with many container veths gets
// a line for each of the biggest ten interfaces and a count of the rest.
func TestCaptureInterfaceLinesBounded(t *testing.T) {
	var r analyze.Result
	for i := range 12 {
		r.Ifaces = append(r.Ifaces, analyze.IfaceStat{Index: i, Info: ingest.Interface{Name: fmt.Sprintf("veth%d", i)},
			Traffic: analyze.Traffic{Out: analyze.Counts{Packets: 1, Wire: int64(100 * (i + 1))}}})
		r.IfaceSeries = append(r.IfaceSeries, analyze.IfaceSeries{Index: i})
	}
	d, err := Build(Input{Result: &r}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range d.Capture.Text {
		if strings.HasPrefix(l, "interface ") || strings.HasPrefix(l, "and ") {
			lines = append(lines, l)
		}
	}
	if len(d.Capture.Interfaces) != 12 || len(lines) != 11 || lines[0] != "interface veth11: TX 1.2 kB, RX 0 B" ||
		lines[10] != "and 2 more interfaces (the JSON report's capture.interfaces lists every one)" {
		t.Errorf("%d interfaces, lines %q", len(d.Capture.Interfaces), lines)
	}
	// The files of a merge of pcap files name no interface: no lines.
	for i := range r.Ifaces {
		r.Ifaces[i].Info.Name = ""
	}
	if d, err = Build(Input{Result: &r}, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, l := range d.Capture.Text {
		if strings.HasPrefix(l, "interface ") {
			t.Errorf("unnamed interfaces get line %q", l)
		}
	}
}

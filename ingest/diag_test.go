package ingest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDiagFolder(t *testing.T) {
	f := newDiagFolder("x.pcap", 3)
	f.add("a", DiagMalformed, "packet 1 (offset 24)", 24, 10, "bad a", nil)
	f.add("a", DiagMalformed, "packet 5 (offset 99)", 99, 5, "bad a again", nil)
	f.add("a", DiagInfo, "packet 6 (offset 120)", 120, 0, "info a", nil) // other kind: separate
	f.add("b", DiagMalformed, "packet 7 (offset 140)", 140, 0, "bad b", nil)
	for i := range 4 { // beyond max: folded into one overflow entry
		f.add(fmt.Sprint("c", i), DiagSkipped, "", int64(200+i), 1, "skipped", nil)
	}
	want := []Diagnostic{
		{File: "x.pcap", Kind: DiagMalformed, Where: "packet 1 (offset 24)", Offset: 24, Count: 2, Bytes: 15, Msg: "bad a"},
		{File: "x.pcap", Kind: DiagInfo, Where: "packet 6 (offset 120)", Offset: 120, Count: 1, Msg: "info a"},
		{File: "x.pcap", Kind: DiagMalformed, Where: "packet 7 (offset 140)", Offset: 140, Count: 1, Msg: "bad b"},
		{File: "x.pcap", Kind: DiagSkipped, Offset: 200, Count: 4, Bytes: 4, Msg: "further skipped diagnostics folded (first: skipped)"},
	}
	if d := cmp.Diff(want, f.diagnostics(), cmpopts.IgnoreFields(Diagnostic{}, "Err")); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestSortDiagnostics(t *testing.T) {
	ds := []Diagnostic{
		{File: "b", Offset: 1, Kind: DiagInfo},
		{File: "a", Offset: 9, Kind: DiagInfo},
		{File: "a", Offset: 2, Kind: DiagTruncated},
		{File: "a", Offset: 2, Kind: DiagMalformed},
	}
	SortDiagnostics(ds)
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprint(d.File, d.Offset, d.Kind))
	}
	want := []string{"a2malformed", "a2truncated", "a9info", "b1info"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

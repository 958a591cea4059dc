package collect

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/collect/sockwatch"
	"github.com/flowblame/flowblame/ingest"
)

func TestNATRecordOf(t *testing.T) {
	ap := netip.MustParseAddrPort
	// A masqueraded connection: the reply comes back to the host's address.
	f := sockwatch.CtEntry{Orig: sockwatch.CtTuple{Proto: 6, Src: ap("203.0.113.2:40000"), Dst: ap("198.51.100.2:443")},
		Reply: sockwatch.CtTuple{Proto: 6, Src: ap("198.51.100.2:443"), Dst: ap("198.51.100.1:61000")}}
	r, _, ok := natRecordOf(&f, 7)
	want := ingest.NATRecord{T: 7, Proto: 6, OrigSrc: "203.0.113.2:40000", OrigDst: "198.51.100.2:443",
		ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"}
	if !ok || r != want {
		t.Errorf("masqueraded: %+v, %v; want %+v", r, ok, want)
	}
	// Untranslated connections are not recorded.
	g := sockwatch.CtEntry{Orig: sockwatch.CtTuple{Proto: 17, Src: ap("[2001:db8::1]:5353"), Dst: ap("[2001:db8::2]:53")},
		Reply: sockwatch.CtTuple{Proto: 17, Src: ap("[2001:db8::2]:53"), Dst: ap("[2001:db8::1]:5353")}}
	if r, _, ok := natRecordOf(&g, 7); ok {
		t.Errorf("untranslated recorded: %+v", r)
	}
}

// TestWatchNATWithoutConntrack: where the module is not loaded nothing is
// read (conntrack is never enabled by the collector), and there is nothing
// to note: nothing on the host translates.
func TestWatchNATWithoutConntrack(t *testing.T) {
	old := conntrackCount
	conntrackCount = filepath.Join(t.TempDir(), "absent")
	defer func() { conntrackCount = old }()
	dir := t.TempDir()
	rec, err := openRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.close()
	polls, note := watchNAT(context.Background(), rec)
	if polls != 0 || note != "" || rec.nNAT != 0 {
		t.Errorf("polls %d, note %q, records %d", polls, note, rec.nNAT)
	}
	if _, err := os.Stat(filepath.Join(dir, ingest.ConntrackFile)); err != nil {
		t.Errorf("conntrack.jsonl not created: %v", err)
	}
}

// TestWatchNATEmptyTable: where conntrack is loaded but tracks nothing, the
// table is not dumped (the kernel would walk every bucket) and nothing is
// recorded; the reads still count as polls.
func TestWatchNATEmptyTable(t *testing.T) {
	old := conntrackCount
	conntrackCount = filepath.Join(t.TempDir(), "nf_conntrack_count")
	defer func() { conntrackCount = old }()
	if err := os.WriteFile(conntrackCount, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := openRecords(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rec.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	polls, note := watchNAT(ctx, rec)
	if note != "" && !strings.Contains(note, "ctnetlink") {
		t.Fatalf("note %q", note)
	}
	if note == "" && (polls != 2 || rec.nNAT != 0) {
		t.Errorf("polls %d, records %d; want 2 reads of the count and nothing recorded", polls, rec.nNAT)
	}
}

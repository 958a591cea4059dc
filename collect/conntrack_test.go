package collect

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"github.com/ti-mo/conntrack"
)

func TestNATRecordOf(t *testing.T) {
	a := netip.MustParseAddr
	// A masqueraded connection: the reply comes back to the host's address.
	f := conntrack.NewFlow(6, 0, a("203.0.113.2"), a("198.51.100.2"), 40000, 443, 120, 0)
	f.TupleReply.IP.DestinationAddress = a("198.51.100.1")
	f.TupleReply.Proto.DestinationPort = 61000
	r, _, ok := natRecordOf(&f, 7)
	want := ingest.NATRecord{T: 7, Proto: 6, OrigSrc: "203.0.113.2:40000", OrigDst: "198.51.100.2:443",
		ReplySrc: "198.51.100.2:443", ReplyDst: "198.51.100.1:61000"}
	if !ok || r != want {
		t.Errorf("masqueraded: %+v, %v; want %+v", r, ok, want)
	}
	// Untranslated connections are not recorded.
	g := conntrack.NewFlow(17, 0, a("2001:db8::1"), a("2001:db8::2"), 5353, 53, 30, 0)
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

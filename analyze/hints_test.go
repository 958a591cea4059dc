package analyze

import (
	"net/netip"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

func TestHintIndexAndChain(t *testing.T) {
	hinted := func(ms int64, src, dst string, pid int, comm string) ingest.Packet {
		p := pkt(ms, ingest.ProtoTCP, src, dst, 100)
		p.Hint = &ingest.ProcessHint{PID: pid, Comm: comm, Source: ingest.HintSourceComment}
		return p
	}
	pkts := []ingest.Packet{
		hinted(0, "198.51.100.7:5000", "203.0.113.1:443", 42, "curl"),
		hinted(500, "203.0.113.1:443", "198.51.100.7:5000", 42, "curl"),
		pkt(600, ingest.ProtoTCP, "198.51.100.7:6000", "203.0.113.1:443", 100), // no hint
		hinted(9000, "198.51.100.7:5000", "203.0.113.1:443", 77, "wget"),       // port reused later
	}
	idx, err := CollectHints(&memSource{pkts: pkts})
	if err != nil || idx == nil {
		t.Fatalf("CollectHints: %v %v", idx, err)
	}
	l, r := netip.MustParseAddrPort("198.51.100.7:5000"), netip.MustParseAddrPort("203.0.113.1:443")
	if a, _, _ := idx.Attribute(ingest.ProtoTCP, l, r, t0+300e6); a.Proc.PID != 42 || a.Method != MethodHint || a.SkewNS != 0 {
		t.Errorf("inside the curl run: %+v", a)
	}
	if a, _, _ := idx.Attribute(ingest.ProtoTCP, l, r, t0+9500e6); a.Proc.PID != 77 {
		t.Errorf("after the port was reused: %+v", a)
	}
	if a, _, _ := idx.Attribute(ingest.ProtoTCP, netip.MustParseAddrPort("198.51.100.7:6000"), r, t0); a.Attributed() {
		t.Errorf("unhinted flow attributed: %+v", a)
	}
	chain := Chain{nil, idx}
	if a, _, _ := chain.Attribute(ingest.ProtoTCP, l, r, t0); a.Proc.PID != 42 {
		t.Errorf("chain fallback: %+v", a)
	}
	if empty, _ := CollectHints(&memSource{pkts: pkts[2:3]}); empty != nil {
		t.Error("a capture without hints should give a nil index")
	}
}

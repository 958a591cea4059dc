package analyze

import (
	"net/netip"
	"testing"

	"github.com/flowblame/flowblame/ingest"
)

// serverOnly knows only the server socket 198.51.100.7:80.
type serverOnly struct{}

func (serverOnly) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	if local == netip.MustParseAddrPort("198.51.100.7:80") {
		return Attribution{Proc: ingest.ProcKey{PID: 80, Start: 1}, Comm: "nginx", Method: MethodExact, Confidence: ConfHigh}, ts - 1e12, ts + 1e12
	}
	return Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNeverSeen}, ts, ts
}

// TestBothEndsLocal: a flow between two local addresses whose client side
// is unknown is charged to the server's process instead of nobody; a flow to
// a remote host never borrows a local listener.
func TestBothEndsLocal(t *testing.T) {
	// Both addresses are local, so direction comes from the capture's own
	// record (as on lo, where the collector's pcapng marks every copy).
	in := func(p ingest.Packet) ingest.Packet { p.Dir = ingest.DirIn; return p }
	pkts := []ingest.Packet{
		in(pkt(0, ingest.ProtoTCP, "198.51.100.8:40000", "198.51.100.7:80", 100)),
		in(pkt(10, ingest.ProtoTCP, "198.51.100.7:80", "198.51.100.8:40000", 1500)),
		pkt(20, ingest.ProtoTCP, "198.51.100.8:40001", "203.0.113.1:80", 100), // remote: port 80 is not ours
	}
	r := run(t, pkts, Options{Local: local24, Attributor: serverOnly{}})
	var got, remote Attribution
	for _, f := range r.Flows {
		switch f.Key.B.Addr().String() {
		case "203.0.113.1":
			remote = f.Owners[0].Owner
		default:
			got = f.Owners[0].Owner
		}
	}
	if got.Proc.PID != 80 || got.Comm != "nginx" {
		t.Errorf("local↔local flow: owner %+v, want nginx[80]", got)
	}
	if remote.Attributed() {
		t.Errorf("flow to a remote host borrowed a local socket: %+v", remote)
	}
}

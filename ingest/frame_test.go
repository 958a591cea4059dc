package ingest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

// TestPacketFrame checks Packet.Frame holds exactly the captured bytes of
// each record (compared with gopacket's pcapgo reader), in pcap and pcapng.
func TestPacketFrame(t *testing.T) {
	for _, name := range []string{"../fixtures/bundles/miner/capture/00000.pcapng", "../../shared/corpus/tcpdump/802.1ad_QinQ.pcap"} {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) && os.Getenv("CI") != "true" {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		defer f.Close()
		var next func() ([]byte, error)
		if bytes.HasSuffix([]byte(name), []byte(".pcapng")) {
			r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
			if err != nil {
				t.Fatal(err)
			}
			next = func() ([]byte, error) { d, _, err := r.ReadPacketData(); return d, err }
		} else {
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			next = func() ([]byte, error) { d, _, err := r.ReadPacketData(); return d, err }
		}
		src, err := OpenCapture(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		n := 0
		for {
			err := src.Next(&p)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			want, err := next()
			if err != nil {
				t.Fatalf("%s: pcapgo: %v", name, err)
			}
			if len(p.Frame) != p.CapLen || !bytes.Equal(p.Frame, want) {
				t.Fatalf("%s packet %d: Frame (%d bytes) differs from the record (%d bytes)", name, n, len(p.Frame), len(want))
			}
			n++
		}
		src.Close()
		if n == 0 {
			t.Fatalf("%s: no packets", name)
		}
	}
}

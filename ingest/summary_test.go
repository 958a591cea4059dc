package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// frameView is what a consumer of either Next or NextSummaries sees of a
// frame.
type frameView struct {
	TS                    int64
	Wire, Cap, IPLen      int
	Iface                 int
	Kind                  PacketKind
	Dir                   Direction
	Tuple                 FiveTuple
	TCPFlags              uint8
	HasMAC                bool
	SrcMAC, DstMAC        [6]byte
	Payload               string
	Summarised, Truncated bool
}

func viewPacket(p *Packet) frameView {
	return frameView{TS: p.TS, Wire: p.WireLen, Cap: p.CapLen, IPLen: p.IPLen, Iface: p.Iface, Kind: p.Kind,
		Dir: p.Dir, Tuple: p.Tuple, TCPFlags: p.TCPFlags, HasMAC: p.HasMAC, SrcMAC: p.SrcMAC, DstMAC: p.DstMAC,
		Payload: string(p.Payload), Truncated: p.Truncated}
}

func viewSummary(s *Summary) frameView {
	return frameView{TS: s.TS, Wire: int(s.Wire), Cap: int(s.Cap), IPLen: int(s.IPLen), Iface: int(s.Iface),
		Kind: KindIP, Dir: s.Dir, Tuple: s.Tuple(), TCPFlags: s.TCPFlags, HasMAC: s.HasMAC, SrcMAC: s.SrcMAC, DstMAC: s.DstMAC,
		Payload: string(s.Payload), Summarised: true, Truncated: s.Cap < s.Wire}
}

// noLen hides bytes.Reader's Len so that the read buffer keeps the size
// asked for (small buffers put records across refills).
type noLen struct{ io.Reader }

// readBothWays reads data with Next only and with NextSummaries (dst of
// batch entries, read buffer of bufSize bytes), and returns what each saw.
func readBothWays(t *testing.T, data []byte, batch, bufSize int) (next, summ []frameView, ns, ss SourceStats, nd, sd []Diagnostic, summarised int) {
	t.Helper()
	a, errA := newReader(noLen{bytes.NewReader(data)}, "f.pcap", Options{}, bufSize)
	b, errB := newReader(noLen{bytes.NewReader(data)}, "f.pcap", Options{}, bufSize)
	if (errA == nil) != (errB == nil) {
		t.Fatalf("open: %v / %v", errA, errB)
	}
	if errA != nil {
		return
	}
	var p Packet
	for i := 0; ; i++ {
		if i > len(data) {
			t.Fatal("Next does not end")
		}
		if err := a.Next(&p); err != nil {
			if !errors.Is(err, io.EOF) {
				next = append(next, frameView{Payload: "error " + err.Error()})
			}
			break
		}
		next = append(next, viewPacket(&p))
	}
	ssrc, ok := b.(SummarySource)
	if !ok {
		t.Fatalf("%T is not a SummarySource", b)
	}
	dst := make([]Summary, batch)
	for i := 0; ; i++ {
		if i > len(data) {
			t.Fatal("NextSummaries does not end")
		}
		n, err := ssrc.NextSummaries(dst, &p)
		if err != nil {
			if n != 0 {
				t.Fatalf("%d summaries with error %v", n, err)
			}
			if !errors.Is(err, io.EOF) {
				summ = append(summ, frameView{Payload: "error " + err.Error()})
			}
			break
		}
		if n == 0 {
			summ = append(summ, viewPacket(&p))
			continue
		}
		for j := range dst[:n] {
			summ = append(summ, viewSummary(&dst[j]))
		}
		summarised += n
	}
	return next, summ, a.Stats(), b.Stats(), a.Diagnostics(), b.Diagnostics(), summarised
}

// checkSummaries compares the two ways of reading data.
func checkSummaries(t *testing.T, data []byte, batch, bufSize int) int {
	t.Helper()
	next, summ, ns, ss, nd, sd, summarised := readBothWays(t, data, batch, bufSize)
	if len(next) != len(summ) {
		t.Fatalf("Next gave %d frames, NextSummaries %d", len(next), len(summ))
	}
	for i := range next {
		s := summ[i]
		s.Summarised = false
		if !reflect.DeepEqual(next[i], s) {
			t.Fatalf("frame %d:\nNext          %+v\nNextSummaries %+v", i+1, next[i], summ[i])
		}
	}
	if ns != ss {
		t.Fatalf("stats: Next %+v, NextSummaries %+v", ns, ss)
	}
	if !reflect.DeepEqual(nd, sd) {
		t.Fatalf("diagnostics: Next %v, NextSummaries %v", nd, sd)
	}
	return summarised
}

// TestSummaries reads the benchmark-shaped file and the link-type fixtures
// both ways, with read buffers that cut records in every place.
func TestSummaries(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "bench.pcap")
	writeBenchPcap(t, bench, 3000)
	paths, _ := filepath.Glob(filepath.Join(fixtureDir, "linktypes", "*.pcap"))
	variants, _ := filepath.Glob(filepath.Join(fixtureDir, "pcap-variants", "*.pcap"))
	randpkt, _ := filepath.Glob(filepath.Join(fixtureDir, "randpkt", "*.pcap"))
	ng, _ := filepath.Glob(filepath.Join(fixtureDir, "*.pcapng"))
	stacked, _ := filepath.Glob(filepath.Join(fixtureDir, "stacked*.pcap"))
	sweep, _ := filepath.Glob(filepath.Join(fixtureDir, "sweep", "*.pcap*"))
	cooked := writeCookedPcaps(t, dir)
	bundles, _ := filepath.Glob("../fixtures/bundles/*/capture/*.pcapng") // written by flowblame collect
	if len(bundles) == 0 {
		t.Fatal("no bundle captures")
	}
	for _, path := range slices.Concat([]string{bench}, paths, variants, randpkt, ng, bundles, stacked, sweep, cooked) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []struct{ batch, buf int }{{64, readBufSize}, {1, 4096}, {7, 333}, {64, 100}} {
			n := checkSummaries(t, data, c.batch, c.buf)
			if path == bench && i == 0 && n < 2990 {
				t.Errorf("bench: only %d of 3000 frames summarised", n)
			}
			if strings.Contains(path, "bundles") && i == 0 && n == 0 {
				t.Errorf("%s: nothing summarised", path)
			}
			if slices.Contains(cooked, path) && i == 0 && n < 250 {
				t.Errorf("%s: only %d of 300 frames summarised", path, n)
			}
		}
	}
}

// writeCookedPcaps writes 300 frames as Linux cooked captures, SLL and SLL2:
// IPv4 TCP and IPv6 UDP, every packet type (the direction), a few netlink
// frames (not IP) and VLAN-tagged ones (the general path).
func writeCookedPcaps(t *testing.T, dir string) []string {
	t.Helper()
	ip4 := hexFrame(t, hdrIPv4+hdrTCP)
	ip6 := hexFrame(t, hdrIPv6+hdrUDP53)
	var out []string
	for _, link := range []LinkType{LinkSLL, LinkSLL2} {
		recs := [][]byte{pcapHeader(false, 2, 4, 65535, uint32(link))}
		for i := range 300 {
			proto, pkt, hatype := uint16(0x0800), ip4, uint16(1)
			if i%3 == 1 {
				proto, pkt = 0x86dd, ip6
			}
			if i%50 == 7 {
				hatype = arphrdNetlink
			}
			pktType := uint16(i % 5)
			var hdr []byte
			if link == LinkSLL {
				hdr = make([]byte, 16)
				binary.BigEndian.PutUint16(hdr[0:], pktType)
				binary.BigEndian.PutUint16(hdr[2:], hatype)
				binary.BigEndian.PutUint16(hdr[4:], 6)
				binary.BigEndian.PutUint16(hdr[14:], proto)
			} else {
				hdr = make([]byte, 20)
				binary.BigEndian.PutUint16(hdr[0:], proto)
				binary.BigEndian.PutUint32(hdr[4:], 2)
				binary.BigEndian.PutUint16(hdr[8:], hatype)
				hdr[10], hdr[11] = byte(pktType), 6
			}
			if i%60 == 11 { // an 802.1Q tag after the cooked header
				tag := []byte{0, 7, byte(proto >> 8), byte(proto)}
				binary.BigEndian.PutUint16(hdr[len(hdr)-2:], 0x8100)
				if link == LinkSLL2 {
					binary.BigEndian.PutUint16(hdr[0:], 0x8100)
				}
				hdr = append(hdr, tag...)
			}
			fr := append(hdr, pkt...)
			recs = append(recs, pcapRecord(false, uint32(1000+i), 0, uint32(len(fr)), uint32(len(fr)), nil, fr))
		}
		p := filepath.Join(dir, fmt.Sprintf("cooked-%d.pcap", link))
		if err := os.WriteFile(p, joinBytes(recs...), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// FuzzSummaries checks that NextSummaries gives exactly the frames, stats
// and diagnostics that Next gives, whatever the file and the buffer size.
func FuzzSummaries(f *testing.F) {
	addCorpusSeeds(f, ".pcap", ".cap", ".pcapng")
	if b, err := os.ReadFile("../fixtures/bundles/miner/capture/00000.pcapng"); err == nil {
		f.Add(b[:min(len(b), 8192)])
	}
	for _, h := range []string{hdrEth4 + hdrIPv4 + hdrTCP, hdrEth6 + hdrIPv6 + hdrUDP53} {
		fr := hexFrame(f, h)
		f.Add(joinBytes(pcapHeader(false, 2, 4, 96, 1), pcapRecord(false, 1, 2, uint32(len(fr)), 1514, nil, fr),
			pcapRecord(false, 1, 3, uint32(len(fr)), uint32(len(fr)), nil, fr), pcapRecord(false, 2, 3, 10, 10, nil, fr[:10])))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		checkSummaries(t, data, 1+len(data)%13, 64+len(data)%997)
	})
}

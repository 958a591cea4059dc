package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ethFrame builds an Ethernet frame carrying TCP (flags) or UDP (flags < 0)
// from src to dst, with payload, and an optional 802.1Q tag (which takes
// the general decoding path).
func ethFrame(srcMAC, dstMAC [6]byte, src, dst netip.AddrPort, flags int, payload []byte, vlan bool) []byte {
	be := binary.BigEndian
	var b []byte
	b = append(b, dstMAC[:]...)
	b = append(b, srcMAC[:]...)
	if vlan {
		b = be.AppendUint16(b, 0x8100)
		b = be.AppendUint16(b, 7)
	}
	l4 := make([]byte, 8)
	proto := byte(17)
	if flags >= 0 {
		proto, l4 = 6, make([]byte, 20)
		l4[12], l4[13] = 5<<4, byte(flags)
	}
	be.PutUint16(l4, src.Port())
	be.PutUint16(l4[2:], dst.Port())
	if proto == 17 {
		be.PutUint16(l4[4:], uint16(8+len(payload)))
	}
	l4 = append(l4, payload...)
	if src.Addr().Is4() {
		b = be.AppendUint16(b, 0x0800)
		ip := make([]byte, 20)
		ip[0], ip[8], ip[9] = 0x45, 64, proto
		be.PutUint16(ip[2:], uint16(20+len(l4)))
		s4, d4 := src.Addr().As4(), dst.Addr().As4()
		copy(ip[12:], s4[:])
		copy(ip[16:], d4[:])
		return append(append(b, ip...), l4...)
	}
	b = be.AppendUint16(b, 0x86dd)
	ip := make([]byte, 40)
	ip[0], ip[6], ip[7] = 0x60, proto, 64
	be.PutUint16(ip[4:], uint16(len(l4)))
	s16, d16 := src.Addr().As16(), dst.Addr().As16()
	copy(ip[8:], s16[:])
	copy(ip[24:], d16[:])
	return append(append(b, ip...), l4...)
}

// pcapOf writes frames as a little-endian microsecond pcap, one every 300 ms.
func pcapOf(frames [][]byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, 24)
	le.PutUint32(b, 0xa1b2c3d4)
	le.PutUint16(b[4:], 2)
	le.PutUint16(b[6:], 4)
	le.PutUint32(b[16:], 65535)
	le.PutUint32(b[20:], 1)
	for i, f := range frames {
		ms := int64(i) * 300
		b = le.AppendUint32(b, uint32(1_767_225_600+ms/1000))
		b = le.AppendUint32(b, uint32(ms%1000*1000))
		b = le.AppendUint32(b, uint32(len(f)))
		b = le.AppendUint32(b, uint32(len(f)+4)) // as if 4 bytes were cut
		b = append(b, f...)
	}
	return b
}

// TestSummaryPathSignals: the signals and the result are the same whether
// frames are read as Summaries or as Packets, for SYNs, Stratum payloads
// and spoofed sources on either path (the VLAN-tagged frames take the
// general one).
func TestSummaryPathSignals(t *testing.T) {
	local, gw := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	ap := netip.MustParseAddrPort
	me, peer, other := ap("198.51.100.7:40000"), ap("203.0.113.9:443"), ap("203.0.113.50:5555")
	me6, peer6 := ap("[2001:db8:1::7]:40001"), ap("[2001:db8:ff::9]:53")
	stratum := []byte(`{"id":1,"method":"login","params":{"login":"wallet"}}`)
	var frames [][]byte
	for _, vlan := range []bool{false, true} {
		frames = append(frames,
			ethFrame(local, gw, me, peer, 0x02, nil, vlan),                     // SYN out
			ethFrame(gw, local, peer, me, 0x12, nil, vlan),                     // SYN-ACK
			ethFrame(gw, local, other, ap("198.51.100.7:22"), 0x02, nil, vlan), // SYN in
			ethFrame(local, gw, me, ap("203.0.113.9:3333"), 0x18, stratum, vlan),
			ethFrame(local, gw, ap("203.0.113.77:1234"), peer, 0x10, nil, vlan), // spoofed source
			ethFrame(local, gw, me6, peer6, -1, []byte("query"), vlan),
			ethFrame(gw, local, peer6, me6, -1, []byte("answer"), vlan),
		)
	}
	data := pcapOf(frames)
	opts := Options{Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:1::/64")},
		LocalMACs: [][6]byte{local}}
	var sigs [2]Signals
	var results [2]*Result
	for i := range 2 {
		src, err := ingest.NewReader(bytes.NewReader(data), "signals.pcap", ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var in ingest.PacketSource = src
		if i == 1 {
			in = nextOnly{src}
		}
		sig := NewSignalSource(in, opts.Local, opts.LocalMACs)
		if _, ok := ingest.PacketSource(sig).(ingest.SummarySource); !ok {
			t.Fatal("SignalSource is not a SummarySource")
		}
		if results[i], err = Analyze(context.Background(), sig, opts); err != nil {
			t.Fatal(err)
		}
		sigs[i] = sig.Signals()
	}
	copts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{}),
		cmpopts.IgnoreFields(ingest.Diagnostic{}, "Err"), cmp.AllowUnexported(Signals{}, SYNTarget{}, SYNPort{}, EchoCount{}, sightings{})}
	if d := cmp.Diff(sigs[1], sigs[0], copts...); d != "" {
		t.Errorf("signals differ (-Next +Summaries):\n%s", d)
	}
	if d := cmp.Diff(results[1], results[0], copts...); d != "" {
		t.Errorf("results differ (-Next +Summaries):\n%s", d)
	}
	s := sigs[0]
	if len(s.SYNOut) != 1 || s.SYNOut[0].SYNs != 2 || len(s.SYNIn) != 1 || s.SYNIn[0].SYNs != 2 {
		t.Errorf("SYNs: out %+v, in %+v; want 2 each way", s.SYNOut, s.SYNIn)
	}
	if len(s.Stratum) != 1 || s.Stratum[0].Method != "method\":\"login" {
		t.Errorf("stratum: %+v", s.Stratum)
	}
	if s.Spoofed != 2 {
		t.Errorf("spoofed: %d packets, want 2", s.Spoofed)
	}
	if results[0].Meta.Packets != int64(len(frames)) {
		t.Errorf("%d packets analysed, want %d", results[0].Meta.Packets, len(frames))
	}
}

// TestSummaryPathOptions: with a time window and an interface selection,
// reading by Summaries and by Next give the same result, on the fixture
// bundles' captures (written by flowblame collect) and the crafted ones.
func TestSummaryPathOptions(t *testing.T) {
	paths, _ := filepath.Glob("../fixtures/bundles/*/capture/*.pcapng")
	more, _ := filepath.Glob("../fixtures/captures/*.pcap*")
	paths = append(paths, more...)
	if len(paths) < 5 {
		t.Fatalf("fixtures missing: %v", paths)
	}
	copts := []cmp.Option{cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}, netip.Prefix{}),
		cmpopts.IgnoreFields(ingest.Diagnostic{}, "Err")}
	for _, path := range paths {
		src, err := ingest.OpenCapture(path, ingest.Options{})
		if err != nil {
			t.Fatal(err)
		}
		all, err := Analyze(context.Background(), src, Options{})
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		span := all.Meta.Last - all.Meta.First
		var ifs []string
		if names := all.Meta.Interfaces; len(names) > 0 && names[0].Name != "" {
			ifs = []string{names[0].Name}
		}
		opts := Options{Window: Window{From: all.Meta.First + span/3, To: all.Meta.Last - span/3}, Interfaces: ifs,
			Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/25")}}
		var results [2]*Result
		for i := range 2 {
			src, err := ingest.OpenCapture(path, ingest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var in ingest.PacketSource = src
			if i == 1 {
				in = nextOnly{src}
			}
			if results[i], err = Analyze(context.Background(), in, opts); err != nil {
				t.Fatal(err)
			}
			src.Close()
		}
		if d := cmp.Diff(results[1], results[0], copts...); d != "" {
			t.Errorf("%s: results differ (-Next +Summaries):\n%s", path, d)
		}
	}
}

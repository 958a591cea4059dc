package ingest

import "testing"

// BenchmarkDecode decodes a typical Ethernet/IPv4/TCP headers-only frame.
func BenchmarkDecode(b *testing.B) {
	frame := hexFrame(b, hdrEth4+hdrIPv4+hdrTCP)
	d := NewDecoder()
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if err := d.Decode(LinkEthernet, frame, &p); err != nil {
			b.Fatal(err)
		}
	}
	if p.Tuple.Dst.Port() != 80 {
		b.Fatalf("bad decode: %v", p.Tuple)
	}
}

// BenchmarkDecodeVXLAN decodes an Ethernet/IPv4/UDP/VXLAN/Ethernet/IPv4/TCP
// frame, for comparison with the plain frame in the same run.
func BenchmarkDecodeVXLAN(b *testing.B) {
	frame := hexFrame(b, hdrEth4+"45000054 0001 0000 40 11 0000 c6336401 cb007102"+"c000 12b5 0040 0000"+
		"08000000 00000100"+hdrEth4+hdrIPv4+hdrTCP)
	d := NewDecoder()
	var p Packet
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Decode(LinkEthernet, frame, &p)
	}
	if p.NInner != 1 {
		b.Fatalf("bad decode: %d inner", p.NInner)
	}
}

// BenchmarkDecodeFragment decodes a non-first IPv4 fragment with a full
// fragment table: the worst case of the table's linear scan.
func BenchmarkDecodeFragment(b *testing.B) {
	d := NewDecoder()
	var p Packet
	for i := range fragTableSize {
		_ = d.Decode(LinkRaw, ip4f(ProtoUDP, "198.51.100.1", "198.51.100.2", uint16(i), 0, true, udp(1, 2, make([]byte, 16))), &p)
	}
	frame := ip4f(ProtoUDP, "198.51.100.1", "198.51.100.2", fragTableSize-1, 24, true, make([]byte, 16))
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Decode(LinkRaw, frame, &p)
	}
	if p.Tuple.Dst.Port() != 2 {
		b.Fatalf("bad decode: %v", p.Tuple)
	}
}

package ingest

import (
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// hexFrame turns a spaced hex dump into bytes.
func hexFrame(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	hdrEth4  = "ffffffffffff 020000000001 0800"
	hdrEth6  = "ffffffffffff 020000000001 86dd"
	hdrIPv4  = "45000028 1234 0000 40 06 0000 c6336401 cb007102" // 198.51.100.1 > 203.0.113.2, TCP, len 40
	hdrTCP   = "c000 0050 00000001 00000000 5012 ffff 0000 0000" // 49152 > 80, SYN|ACK
	hdrIPv6  = "60000000 0008 11 40 20010db8000000000000000000000001 20010db8000000000000000000000002"
	hdrUDP53 = "d431 0035 0008 0000"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		link    LinkType
		frame   string
		kind    PacketKind
		tuple   FiveTuple
		ipLen   int
		flags   uint8
		dir     Direction
		sll     int8
		inner   int
		wantErr bool
	}{
		{name: "ethernet ipv4 tcp", link: LinkEthernet, frame: hdrEth4 + hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, sll: -1},
		{name: "ethernet ipv6 udp", link: LinkEthernet, frame: hdrEth6 + hdrIPv6 + hdrUDP53, kind: KindIP,
			tuple: FiveTuple{17, ap("[2001:db8::1]:54321"), ap("[2001:db8::2]:53")}, ipLen: 48, sll: -1},
		{name: "qinq", link: LinkEthernet, frame: "ffffffffffff 020000000001 88a8 0064 8100 00c8 0800" + hdrIPv4 + hdrTCP,
			kind: KindIP, tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, sll: -1},
		{name: "arp", link: LinkEthernet, frame: "ffffffffffff 020000000001 0806 0001", kind: KindNonIP, sll: -1},
		{name: "raw v4", link: LinkRaw, frame: hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, sll: -1},
		{name: "null le", link: LinkNull, frame: "02000000" + hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, sll: -1},
		{name: "null be v6", link: LinkNull, frame: "0000001e" + hdrIPv6 + hdrUDP53, kind: KindIP,
			tuple: FiveTuple{17, ap("[2001:db8::1]:54321"), ap("[2001:db8::2]:53")}, ipLen: 48, sll: -1},
		{name: "loop", link: LinkLoop, frame: "00000002" + hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, sll: -1},
		{name: "sll outgoing", link: LinkSLL, frame: "0004 0001 0006 020000000001 0000 0800" + hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{6, ap("198.51.100.1:49152"), ap("203.0.113.2:80")}, ipLen: 40, flags: 0x12, dir: DirOut, sll: 4},
		{name: "sll2 host", link: LinkSLL2, frame: "86dd 0000 00000002 0001 00 06 020000000001 0000" + hdrIPv6 + hdrUDP53, kind: KindIP,
			tuple: FiveTuple{17, ap("[2001:db8::1]:54321"), ap("[2001:db8::2]:53")}, ipLen: 48, dir: DirIn, sll: 0},
		{name: "ip-in-ip", link: LinkRaw, frame: "4500003c 0001 0000 40 04 0000 c6336401 cb007102" + hdrIPv4 + hdrTCP, kind: KindIP,
			tuple: FiveTuple{4, ap("198.51.100.1:0"), ap("203.0.113.2:0")}, ipLen: 60, sll: -1, inner: 1},
		{name: "short", link: LinkEthernet, frame: "ffffffffffff", kind: KindMalformed, sll: -1, wantErr: true},
		{name: "unsupported", link: 147, frame: "00", kind: KindUnsupportedLink, sll: -1, wantErr: true},
	}
	d := NewDecoder()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			p.NInner, p.Inner[0].Proto = 1, 99 // must be reset
			err := d.Decode(tc.link, hexFrame(t, tc.frame), &p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if p.Kind != tc.kind || p.Tuple != tc.tuple || p.IPLen != tc.ipLen || p.TCPFlags != tc.flags ||
				p.Dir != tc.dir || p.SLLType != tc.sll || int(p.NInner) != tc.inner || (tc.inner == 0 && p.Inner[0].Proto != 0) {
				t.Errorf("got kind=%v tuple=%v iplen=%d flags=%#x dir=%v sll=%d inner=%d, want %v %v %d %#x %v %d %d",
					p.Kind, p.Tuple, p.IPLen, p.TCPFlags, p.Dir, p.SLLType, p.NInner,
					tc.kind, tc.tuple, tc.ipLen, tc.flags, tc.dir, tc.sll, tc.inner)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	d := NewDecoder()
	var p Packet
	if err := d.Decode(147, []byte{0}, &p); !errors.Is(err, ErrUnrecognized) {
		t.Errorf("unsupported link: %v", err)
	}
	if err := d.Decode(LinkRaw, []byte{0x45}, &p); !errors.Is(err, ErrMalformed) {
		t.Errorf("short raw: %v", err)
	}
}

// corpusFrames returns up to perFile raw frames (with their link type) from
// every pcap/pcapng corpus file that gopacket's pcapgo can read.
func corpusFrames(tb testing.TB, perFile int) (links []LinkType, frames [][]byte) {
	tb.Helper()
	root := tsharkCorpusDir
	if _, err := os.Stat(root); err != nil {
		return nil, nil
	}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".txt") {
			return nil
		}
		rawFrames(path, perFile, func(link LinkType, b []byte) {
			links = append(links, link)
			frames = append(frames, append([]byte(nil), b...))
		})
		return nil
	})
	return links, frames
}

// rawFrames calls fn for up to limit frames of a capture file (limit < 0:
// all), read with gopacket's pcapgo, an independent reader.
func rawFrames(path string, limit int, fn func(link LinkType, frame []byte)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if r, err := pcapgo.NewReader(f); err == nil {
		for n := 0; n != limit; n++ {
			data, _, err := r.ReadPacketData()
			if err != nil {
				return
			}
			fn(LinkType(r.LinkType()), data)
		}
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return
	}
	r, err := pcapgo.NewNgReader(f, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return
	}
	for n := 0; n != limit; n++ {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			return
		}
		iface, err := r.Interface(ci.InterfaceIndex)
		if err != nil {
			return
		}
		fn(LinkType(iface.LinkType), data)
	}
}

// checkDecoded asserts the invariants every decoded packet keeps.
func checkDecoded(t *testing.T, link LinkType, frame []byte, p *Packet, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "decoder panic") {
		t.Fatalf("link %d frame %x: %v", link, frame, err)
	}
	if (err != nil) != (p.Kind == KindMalformed || p.Kind == KindUnsupportedLink) {
		t.Fatalf("link %d frame %x: err %v with kind %v", link, frame, err, p.Kind)
	}
	if p.Kind == KindIP {
		if !p.Tuple.Src.Addr().IsValid() || !p.Tuple.Dst.Addr().IsValid() {
			t.Fatalf("link %d frame %x: IP packet with invalid tuple %v", link, frame, p.Tuple)
		}
	} else if p.Tuple != (FiveTuple{}) || p.NInner != 0 || p.IPLen != 0 {
		t.Fatalf("link %d frame %x: kind %v with tuple %v, %d inner, iplen %d", link, frame, p.Kind, p.Tuple, p.NInner, p.IPLen)
	}
	if p.NInner > MaxInnerLayers || len(p.Payload) > payloadMax || p.IPLen < 0 {
		t.Fatalf("link %d frame %x: NInner %d, payload %d bytes, iplen %d", link, frame, p.NInner, len(p.Payload), p.IPLen)
	}
	for i := 0; i < int(p.NInner); i++ {
		l := p.Inner[i]
		if (l.Kind != LayerTunnel && l.Kind != LayerICMPQuoted && l.Kind != LayerSampled) || !l.Src.IsValid() || !l.Dst.IsValid() {
			t.Fatalf("link %d frame %x: bad inner layer %d: %+v", link, frame, i, l)
		}
	}
	if len(p.Payload) > 0 && !within(p.Payload, frame) {
		t.Fatalf("link %d frame %x: payload does not alias the frame", link, frame)
	}
}

// within says whether sub lies inside buf's memory.
func within(sub, buf []byte) bool {
	if len(buf) == 0 {
		return false
	}
	s, b := uintptr(unsafe.Pointer(unsafe.SliceData(sub))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return s >= b && s+uintptr(len(sub)) <= b+uintptr(len(buf))
}

// FuzzDecode decodes arbitrary bytes as any link type: no panic, and the
// invariants of checkDecoded hold. Seeds are corpus frames.
func FuzzDecode(f *testing.F) {
	links, frames := corpusFrames(f, 3)
	for i := range frames {
		f.Add(uint16(links[i]), frames[i])
	}
	f.Add(uint16(LinkEthernet), hexFrame(f, hdrEth4+hdrIPv4+hdrTCP))
	f.Add(uint16(linkTokenRing), append([]byte{0x10, 0x40, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 1, 0x02, 0x30, 0x06, 0x06, 0x03}, hexFrame(f, hdrIPv4+hdrTCP)...))
	if src, err := OpenCapture(filepath.Join(fixtureDir, "sflow.pcap"), Options{}); err == nil { // sFlow datagrams with samples
		var p Packet
		for i := 0; i < 8 && src.Next(&p) == nil; i++ {
			f.Add(uint16(p.Link), slices.Clone(p.Frame))
		}
		src.Close()
	}
	f.Fuzz(func(t *testing.T, link uint16, frame []byte) {
		d := NewDecoder()
		var p Packet
		for range 2 { // twice: fragment state and Packet reuse
			err := d.Decode(LinkType(link), frame, &p)
			checkDecoded(t, LinkType(link), frame, &p, err)
		}
	})
}

// TestDecodeMatchesGopacket compares the outer 5-tuple with gopacket's
// DecodingLayerParser over every Ethernet frame of the corpus that gopacket
// decodes fully to TCP or UDP.
func TestDecodeMatchesGopacket(t *testing.T) {
	var (
		eth     layers.Ethernet
		dot1q   layers.Dot1Q
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		udp     layers.UDP
		decoded []gopacket.LayerType
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp)
	parser.IgnoreUnsupported = true
	files := corpusFiles(t)
	compared := 0
	for _, rel := range files {
		d := NewDecoder()
		n := 0
		rawFrames(filepath.Join(tsharkCorpusDir, rel), -1, func(link LinkType, frame []byte) {
			n++
			if link != LinkEthernet {
				return
			}
			var p Packet
			_ = d.Decode(link, frame, &p)
			if err := parser.DecodeLayers(frame, &decoded); err != nil || len(decoded) == 0 {
				return
			}
			want := FiveTuple{}
			var src, dst netip.Addr // of the first IP header; tunnels are not compared
			for _, lt := range decoded {
				switch lt {
				case layers.LayerTypeIPv4:
					if ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0 || src.IsValid() {
						return
					}
					src, _ = netip.AddrFromSlice(ip4.SrcIP.To4())
					dst, _ = netip.AddrFromSlice(ip4.DstIP.To4())
					want.Proto = uint8(ip4.Protocol)
				case layers.LayerTypeIPv6:
					if src.IsValid() {
						return
					}
					src, _ = netip.AddrFromSlice(ip6.SrcIP)
					dst, _ = netip.AddrFromSlice(ip6.DstIP)
				case layers.LayerTypeTCP:
					// gopacket's IPv6 NextHeader names the first extension
					// header; flowblame's Proto is the upper layer.
					want.Proto = ProtoTCP
					want.Src, want.Dst = netip.AddrPortFrom(src, uint16(tcp.SrcPort)), netip.AddrPortFrom(dst, uint16(tcp.DstPort))
				case layers.LayerTypeUDP:
					want.Proto = ProtoUDP
					want.Src, want.Dst = netip.AddrPortFrom(src, uint16(udp.SrcPort)), netip.AddrPortFrom(dst, uint16(udp.DstPort))
				}
			}
			if !want.Src.IsValid() {
				return // no transport header: not compared
			}
			compared++
			if p.Kind != KindIP || p.Tuple != want {
				t.Errorf("%s frame %d: flowblame %v %v, gopacket %v", rel, n, p.Kind, p.Tuple, want)
			}
		})
	}
	t.Logf("%d frames compared", compared)
	if compared < 10000 {
		t.Errorf("only %d frames compared; corpus or reader broken?", compared)
	}
}

// Frame builders for TestDecodeLayers. Lengths are computed; checksums are
// zero (the decoder does not verify them).

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func eth(et uint16, payload []byte) []byte {
	return cat([]byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(et >> 8), byte(et)}, payload)
}

// ip4f builds an IPv4 header with fragment fields (offset in bytes).
func ip4f(proto uint8, src, dst string, id uint16, off int, more bool, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	total := 20 + len(payload)
	fo := uint16(off / 8)
	if more {
		fo |= 0x2000
	}
	h := []byte{0x45, 0, byte(total >> 8), byte(total), byte(id >> 8), byte(id), byte(fo >> 8), byte(fo), 64, proto, 0, 0}
	return cat(h, s[:], d[:], payload)
}

func ip4(proto uint8, src, dst string, payload []byte) []byte {
	return ip4f(proto, src, dst, 1, 0, false, payload)
}

func ip6(next uint8, src, dst string, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	n := len(payload)
	return cat([]byte{0x60, 0, 0, 0, byte(n >> 8), byte(n), next, 64}, s[:], d[:], payload)
}

func udp(sp, dp uint16, payload []byte) []byte {
	n := 8 + len(payload)
	return cat([]byte{byte(sp >> 8), byte(sp), byte(dp >> 8), byte(dp), byte(n >> 8), byte(n), 0, 0}, payload)
}

func tcp(sp, dp uint16, flags uint8, payload []byte) []byte {
	return cat([]byte{byte(sp >> 8), byte(sp), byte(dp >> 8), byte(dp), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0}, payload)
}

func tup(proto uint8, src, dst string) FiveTuple {
	return FiveTuple{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
}

func layer(kind LayerKind, proto uint8, src, dst string, sp, dp uint16) IPLayer {
	return IPLayer{Kind: kind, Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: sp, DstPort: dp}
}

// TestDecodeMACsecEncrypted: an encrypted (or changed) MACsec payload is
// not read as the EtherType its bytes happen to hold, as in Wireshark.
func TestDecodeMACsecEncrypted(t *testing.T) {
	inner := ip4(ProtoTCP, "203.0.113.1", "203.0.113.2", tcp(1234, 443, 0x02, nil))
	for _, tci := range []byte{0x08, 0x04, 0x0c} { // E, C, both
		var p Packet
		frame := eth(0x88e5, cat([]byte{tci, 0, 0, 0, 0, 1, 0x08, 0}, inner, make([]byte, 16)))
		if err := NewDecoder().Decode(LinkEthernet, frame, &p); err != nil || p.Kind != KindNonIP || p.EtherType != 0x88e5 {
			t.Errorf("TCI %#x: kind %v ethertype %#x err %v, want non-IP 0x88e5", tci, p.Kind, p.EtherType, err)
		}
	}
}

func TestDecodeLayers(t *testing.T) {
	const a, b, c, d = "198.51.100.1", "198.51.100.2", "203.0.113.1", "203.0.113.2"
	const a6, b6 = "2001:db8::1", "2001:db8::2"
	inner := ip4(ProtoTCP, c, d, tcp(1234, 443, 0x02, nil))
	innerEth := eth(0x0800, inner)
	hop := []byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0} // hop-by-hop, 8 bytes, next UDP
	tests := []struct {
		name     string
		link     LinkType
		frame    []byte
		tuple    FiveTuple
		inner    []IPLayer
		ipLen    int
		payload  int
		fragment bool
	}{
		{name: "ipv4 options", link: LinkRaw,
			frame: func() []byte {
				f := ip4(ProtoTCP, a, b, cat([]byte{1, 1, 1, 0}, tcp(1, 2, 0x10, []byte("hi"))))
				f[0] = 0x46 // IHL 6: one 4-byte option (NOP NOP NOP EOL)
				return f
			}(),
			tuple: tup(ProtoTCP, a+":1", b+":2"), ipLen: 46, payload: 2},
		{name: "tcp cut by snaplen", link: LinkRaw, frame: ip4(ProtoTCP, a, b, nil),
			tuple: tup(ProtoTCP, a+":0", b+":0"), ipLen: 20},
		{name: "ipv6 hop-by-hop udp", link: LinkRaw, frame: ip6(0, a6, b6, cat(hop, udp(5353, 5353, []byte{1, 2, 3}))),
			tuple: tup(ProtoUDP, "["+a6+"]:5353", "["+b6+"]:5353"), ipLen: 59, payload: 3},
		{name: "ipv4 ah tcp", link: LinkRaw, frame: ip4(protoAH, a, b, cat([]byte{ProtoTCP, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, tcp(1, 2, 0x10, nil))),
			tuple: tup(ProtoTCP, a+":1", b+":2"), ipLen: 64},
		{name: "ipv6 jumbo length 0", link: LinkRaw,
			frame: func() []byte { f := ip6(ProtoUDP, a6, b6, udp(1, 2, nil)); f[4], f[5] = 0, 0; return f }(),
			tuple: tup(ProtoUDP, "["+a6+"]:1", "["+b6+"]:2"), ipLen: 40},
		{name: "icmp unreachable quote", link: LinkRaw,
			frame: ip4(ProtoICMP, b, a, cat([]byte{3, 3, 0, 0, 0, 0, 0, 0}, ip4(ProtoUDP, a, c, udp(999, 53, nil)))),
			tuple: tup(ProtoICMP, b+":0", a+":0"), inner: []IPLayer{layer(LayerICMPQuoted, ProtoUDP, a, c, 0, 0)}, ipLen: 56, payload: 36},
		{name: "icmp redirect quotes header and 64 bits", link: LinkRaw,
			// The quoted IPv6 header is cut at IHL*4+8 = 24 bytes (its first
			// byte read as IPv4's), as Wireshark cuts it: no layer.
			frame: ip4(ProtoICMP, b, a, cat([]byte{5, 0, 0, 0, 0, 0, 0, 0}, ip6(ProtoUDP, a6, b6, udp(1, 2, nil)))),
			tuple: tup(ProtoICMP, b+":0", a+":0"), ipLen: 76, payload: 56},
		{name: "icmp rfc 4884 length cuts the quote", link: LinkRaw,
			// Length 1 word: the quote is the 20-byte header plus 4 bytes,
			// too short for a UDP header.
			frame: ip4(ProtoICMP, b, a, cat([]byte{3, 3, 0, 0, 0, 1, 0, 0}, ip4(ProtoUDP, a, c, udp(999, 53, []byte("payload"))))),
			tuple: tup(ProtoICMP, b+":0", a+":0"), inner: []IPLayer{layer(LayerICMPQuoted, ProtoUDP, a, c, 0, 0)}, ipLen: 63, payload: 43},
		{name: "icmp echo has no quote", link: LinkRaw,
			frame: ip4(ProtoICMP, b, a, cat([]byte{8, 0, 0, 0, 0, 0, 0, 0}, ip4(ProtoUDP, a, c, udp(999, 53, nil)))),
			tuple: tup(ProtoICMP, b+":0", a+":0"), ipLen: 56, payload: 36},
		{name: "icmpv6 too big quote", link: LinkRaw,
			frame: ip6(ProtoICMPv6, b6, a6, cat([]byte{2, 0, 0, 0, 0, 0, 5, 0}, ip6(ProtoTCP, a6, "2001:db8::9", tcp(1, 2, 0, nil)))),
			tuple: tup(ProtoICMPv6, "["+b6+"]:0", "["+a6+"]:0"), inner: []IPLayer{layer(LayerICMPQuoted, ProtoTCP, a6, "2001:db8::9", 0, 0)}, ipLen: 108, payload: 68},
		{name: "ip-in-ip", link: LinkRaw, frame: ip4(4, a, b, inner),
			tuple: tup(4, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 60, payload: 40},
		{name: "6in4", link: LinkRaw, frame: ip4(41, a, b, ip6(ProtoUDP, a6, b6, udp(1, 2, nil))),
			tuple: tup(41, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoUDP, a6, b6, 1, 2)}, ipLen: 68, payload: 48},
		{name: "gre with key", link: LinkRaw, frame: ip4(ProtoGRE, a, b, cat([]byte{0x20, 0, 0x08, 0, 0, 0, 0, 7}, inner)),
			tuple: tup(ProtoGRE, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 68, payload: 48},
		{name: "gre ethernet", link: LinkRaw, frame: ip4(ProtoGRE, a, b, cat([]byte{0, 0, 0x65, 0x58}, innerEth)),
			tuple: tup(ProtoGRE, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 78, payload: 58},
		{name: "vxlan", link: LinkEthernet, frame: eth(0x0800, ip4(ProtoUDP, a, b, udp(40000, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, innerEth)))),
			tuple: tup(ProtoUDP, a+":40000", b+":4789"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 90, payload: 62},
		{name: "geneve", link: LinkEthernet, frame: eth(0x0800, ip4(ProtoUDP, a, b, udp(40000, 6081, cat([]byte{0, 0, 0x65, 0x58, 0, 0, 1, 0}, innerEth)))),
			tuple: tup(ProtoUDP, a+":40000", b+":6081"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 90, payload: 62},
		{name: "gtp-u", link: LinkEthernet, frame: eth(0x0800, ip4(ProtoUDP, a, b, udp(2152, 2152, cat([]byte{0x30, 0xff, 0, 40, 0, 0, 0, 1}, inner)))),
			tuple: tup(ProtoUDP, a+":2152", b+":2152"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 76, payload: 48},
		{name: "gtp prime on the gtp-u port", link: LinkEthernet, frame: eth(0x0800, ip4(ProtoUDP, a, b, udp(2152, 2152, cat([]byte{0x20, 0xff, 0, 40, 0, 0}, inner)))),
			tuple: tup(ProtoUDP, a+":2152", b+":2152"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 74, payload: 46},
		{name: "gtp-u over tcp", link: LinkEthernet, frame: eth(0x0800, ip4(ProtoTCP, a, b, tcp(40000, 2152, 0x18, cat([]byte{0x30, 0xff, 0, 40, 0, 0, 0, 1}, inner)))),
			tuple: tup(ProtoTCP, a+":40000", b+":2152"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 88, payload: 48},
		{name: "teredo", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(3544, 50000, ip6(ProtoUDP, a6, b6, udp(1, 2, nil)))),
			tuple: tup(ProtoUDP, a+":3544", b+":50000"), inner: []IPLayer{layer(LayerTunnel, ProtoUDP, a6, b6, 1, 2)}, ipLen: 76, payload: 48},
		{name: "udp length bogus stops tunnel", link: LinkRaw,
			frame: func() []byte {
				f := ip4(ProtoUDP, a, b, udp(40000, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, innerEth)))
				f[24], f[25] = 0, 0
				return f
			}(),
			tuple: tup(ProtoUDP, a+":40000", b+":4789"), ipLen: 90, payload: 62},
		{name: "udp length beyond the payload is only flagged", link: LinkRaw,
			frame: func() []byte {
				f := ip4(ProtoUDP, a, b, udp(40000, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, innerEth)))
				f[24], f[25] = 0x07, 0xd0 // 2000
				return f
			}(),
			tuple: tup(ProtoUDP, a+":40000", b+":4789"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 90, payload: 62},
		{name: "l2tpv2 data ppp", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 1701, cat([]byte{0, 2, 0, 1, 0, 1, 0xff, 3, 0, 0x21}, inner))),
			tuple: tup(ProtoUDP, a+":1701", b+":1701"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 78, payload: 50},
		{name: "l2tpv2 length sequence offset from port 1701, compressed ppp", link: LinkRaw,
			// flags L|S|O, version 2; length 57, tunnel 1, session 1, Ns, Nr,
			// offset size 2 and its padding; then PPP protocol 0x21 alone.
			frame: ip4(ProtoUDP, a, b, udp(1701, 40000, cat([]byte{0x4a, 2, 0, 57, 0, 1, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0x21}, inner))),
			tuple: tup(ProtoUDP, a+":1701", b+":40000"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 85, payload: 57},
		{name: "l2tpv2 ppp address with any control byte", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(40000, 1701, cat([]byte{0, 2, 0, 1, 0, 1, 0xff, 5, 0, 0x21}, inner))),
			tuple: tup(ProtoUDP, a+":40000", b+":1701"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 78, payload: 50},
		{name: "l2tpv2 cisco hdlc", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 1701, cat([]byte{0, 2, 0, 1, 0, 1, 0x0f, 0, 0x08, 0}, inner))),
			tuple: tup(ProtoUDP, a+":1701", b+":1701"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 78, payload: 50},
		{name: "l2tpv2 length ends the message before ppp", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 1701, cat([]byte{0x40, 2, 0, 8, 0, 1, 0, 1, 0xff, 3, 0, 0x21}, inner))),
			tuple: tup(ProtoUDP, a+":1701", b+":1701"), ipLen: 80, payload: 52},
		{name: "l2tpv2 control message", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 1701, cat([]byte{0xc8, 2, 0, 52, 0, 1, 0, 1, 0, 0, 0, 0, 0xff, 3, 0, 0x21}, inner))),
			tuple: tup(ProtoUDP, a+":1701", b+":1701"), ipLen: 84, payload: 56},
		{name: "l2tpv3 over udp carries nothing decoded", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 4789, cat([]byte{0, 3, 0, 0, 0, 0, 0, 1}, innerEth))),
			tuple: tup(ProtoUDP, a+":1701", b+":4789"), ipLen: 90, payload: 62},
		{name: "not l2tp version 2 or 3: the other port decides", link: LinkRaw, frame: ip4(ProtoUDP, a, b, udp(1701, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, innerEth))),
			tuple: tup(ProtoUDP, a+":1701", b+":4789"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 90, payload: 62},
		{name: "mpls in ppp", link: linkPPP, frame: cat([]byte{0xff, 3, 0x02, 0x81, 0, 1, 1, 64}, inner),
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "macsec integrity only", link: LinkEthernet,
			frame: eth(0x88e5, cat([]byte{0, 0, 0, 0, 0, 1, 0x08, 0}, inner, make([]byte, 16))), // SecTAG, EtherType, ICV
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "arista timestamp header", link: LinkEthernet,
			frame: eth(0xd28b, cat([]byte{0, 1, 0, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0}, inner)),
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "ipv6 carrying ethernet (protocol 143)", link: LinkRaw, frame: ip6(143, a6, b6, innerEth),
			tuple: tup(143, "["+a6+"]:0", "["+b6+"]:0"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 94, payload: 54},
		{name: "swipe", link: LinkRaw, frame: ip4(protoSwIPe, a, b, cat([]byte{0, 8, 0, 1, 0, 0, 0, 1}, ip6(ProtoUDP, a6, b6, udp(1, 2, nil)))),
			tuple: tup(protoSwIPe, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoUDP, a6, b6, 1, 2)}, ipLen: 76, payload: 56},
		{name: "mpls in ip", link: LinkRaw, frame: ip4(protoMPLSinIP, a, b, cat([]byte{0, 1, 1, 64}, inner)),
			tuple: tup(protoMPLSinIP, a+":0", b+":0"), inner: []IPLayer{layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}, ipLen: 64, payload: 44},
		{name: "mpls two labels", link: LinkEthernet, frame: eth(0x8847, cat([]byte{0, 1, 0, 64, 0, 2, 1, 64}, inner)),
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "pppoe session", link: LinkEthernet, frame: eth(0x8864, cat([]byte{0x11, 0, 0, 1, 0, 42, 0, 0x21}, inner)),
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "llc snap", link: LinkEthernet, frame: eth(48, cat([]byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, inner)),
			tuple: tup(ProtoTCP, c+":1234", d+":443"), ipLen: 40},
		{name: "seven IP headers deep", link: LinkRaw, // tshark counts every one
			frame: ip4(4, a, b, ip4(4, a, b, ip4(4, a, b, ip4(4, a, b, ip4(4, a, b, ip4(4, a, b, inner)))))),
			tuple: tup(4, a+":0", b+":0"), ipLen: 160, payload: 140,
			inner: []IPLayer{layer(LayerTunnel, 4, a, b, 0, 0), layer(LayerTunnel, 4, a, b, 0, 0), layer(LayerTunnel, 4, a, b, 0, 0), layer(LayerTunnel, 4, a, b, 0, 0),
				layer(LayerTunnel, 4, a, b, 0, 0), layer(LayerTunnel, ProtoTCP, c, d, 1234, 443)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := NewDecoder().Decode(tc.link, tc.frame, &p)
			checkDecoded(t, tc.link, tc.frame, &p, err)
			if err != nil || p.Kind != KindIP {
				t.Fatalf("kind %v, err %v", p.Kind, err)
			}
			got := p.Inner[:p.NInner]
			if p.Tuple != tc.tuple || p.IPLen != tc.ipLen || len(p.Payload) != tc.payload || p.Fragment != tc.fragment ||
				len(got) != len(tc.inner) {
				t.Fatalf("got tuple %v iplen %d payload %d fragment %v inner %+v\nwant %v %d %d %v %+v",
					p.Tuple, p.IPLen, len(p.Payload), p.Fragment, got, tc.tuple, tc.ipLen, tc.payload, tc.fragment, tc.inner)
			}
			for i := range got {
				if got[i] != tc.inner[i] {
					t.Errorf("inner %d: got %+v, want %+v", i, got[i], tc.inner[i])
				}
			}
		})
	}
}

// TestDecodeFragments: later fragments get the first fragment's ports, and
// headers inside a fragmented packet are decoded in the frame completing
// it, in any arrival order — where tshark's reassembly dissects them.
func TestDecodeFragments(t *testing.T) {
	const a, b, c, d = "198.51.100.1", "198.51.100.2", "203.0.113.1", "203.0.113.2"
	body := cat(udp(5000, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, eth(0x0800, ip4(ProtoTCP, c, d, tcp(1, 2, 0, make([]byte, 40)))))))
	// body is 8+8+14+20+20+40 = 110 bytes: fragments of 56 and 54 bytes.
	first := ip4f(ProtoUDP, a, b, 77, 0, true, body[:56])
	last := ip4f(ProtoUDP, a, b, 77, 56, false, body[56:])
	want := tup(ProtoUDP, a+":5000", b+":4789")
	wantInner := layer(LayerTunnel, ProtoTCP, c, d, 1, 2)
	for _, order := range []string{"in order", "last first"} {
		t.Run(order, func(t *testing.T) {
			frames := [][]byte{first, last}
			if order == "last first" {
				frames = [][]byte{last, first}
			}
			dec := NewDecoder()
			var ps [2]Packet
			for i, f := range frames {
				if err := dec.Decode(LinkRaw, f, &ps[i]); err != nil {
					t.Fatal(err)
				}
			}
			pf, pl := ps[0], ps[1]
			if order == "last first" {
				pf, pl = ps[1], ps[0]
			}
			if pf.Tuple != want || pf.Fragment {
				t.Errorf("first fragment: %v fragment=%v", pf.Tuple, pf.Fragment)
			}
			if !pl.Fragment || (order == "in order" && pl.Tuple != want) {
				t.Errorf("last fragment: %v fragment=%v", pl.Tuple, pl.Fragment)
			}
			completing := ps[1] // the second frame completes the packet
			other := ps[0]
			if completing.NInner != 1 || completing.Inner[0] != wantInner || other.NInner != 0 {
				t.Errorf("inner: completing frame %+v, other %d layers", completing.Inner[:completing.NInner], other.NInner)
			}
		})
	}
	// A first fragment cut by the snaplen is not reassembled (Wireshark
	// needs a fragment whole to add it) but decoded as it is; the last
	// fragment still gets its ports, and completes nothing.
	{
		dec := NewDecoder()
		var pf, pl Packet
		cut := first[:len(first)-4] // the inner IP header is still whole
		if err := dec.Decode(LinkRaw, cut, &pf); err != nil {
			t.Fatal(err)
		}
		_ = dec.Decode(LinkRaw, last, &pl)
		wantCut := layer(LayerTunnel, ProtoTCP, c, d, 0, 0) // the inner TCP ports were cut
		if pf.NInner != 1 || pf.Inner[0] != wantCut || pl.Tuple != want || pl.NInner != 0 {
			t.Errorf("cut first fragment: inner %+v; last %v with %d layers", pf.Inner[:pf.NInner], pl.Tuple, pl.NInner)
		}
	}
	// An IPv6 first fragment so cut is shown as data by Wireshark: nothing
	// inside it is decoded.
	{
		frag := cat([]byte{ProtoUDP, 0, 0, 1, 0, 0, 0, 9}, body[:56]) // offset 0, more fragments, id 9
		f6 := ip6(44, "2001:db8::1", "2001:db8::2", frag)
		var p Packet
		if err := NewDecoder().Decode(LinkRaw, f6[:len(f6)-4], &p); err != nil {
			t.Fatal(err)
		}
		if p.NInner != 0 || p.Tuple.Dst.Port() != 4789 {
			t.Errorf("cut IPv6 first fragment: %v with inner %+v", p.Tuple, p.Inner[:p.NInner])
		}
	}
	// The fragment table is bounded: a packet whose first fragment was
	// evicted gets no ports.
	dec := NewDecoder()
	var p Packet
	_ = dec.Decode(LinkRaw, first, &p)
	for i := range fragTableSize {
		_ = dec.Decode(LinkRaw, ip4f(ProtoUDP, a, b, uint16(1000+i), 0, true, udp(1, 2, nil)), &p)
	}
	_ = dec.Decode(LinkRaw, last, &p)
	if p.Tuple.Src.Port() != 0 || !p.Fragment || p.NInner != 0 {
		t.Errorf("evicted: %v fragment=%v inner=%d", p.Tuple, p.Fragment, p.NInner)
	}
}

// ip6f builds an IPv6 header with a fragment header (offset in bytes).
func ip6f(next uint8, src, dst string, id uint32, off int, more bool, payload []byte) []byte {
	fo := uint16(off)
	if more {
		fo |= 1
	}
	return ip6(44, src, dst, cat([]byte{next, 0, byte(fo >> 8), byte(fo), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}, payload))
}

// TestDecodeFragmentHeads: the headers inside a fragmented packet are
// decoded from the bytes of every fragment, not only the first one's, in
// the frame completing the packet; duplicates and overlaps add nothing to
// the coverage, and overlapping bytes come from the fragment with the
// lowest offset (the earliest of equal offsets) — all as in tshark's
// reassembly.
func TestDecodeFragmentHeads(t *testing.T) {
	const a, b, c, d, e, f = "198.51.100.1", "198.51.100.2", "203.0.113.1", "203.0.113.2", "203.0.113.101", "203.0.113.102"
	x := ip4(ProtoUDP, c, d, udp(1, 2, make([]byte, 100))) // 128 bytes
	y := ip4(ProtoUDP, e, f, udp(1, 2, make([]byte, 100)))
	type frag struct {
		data     []byte
		off      int
		more     bool
		fromY    bool
		complete bool // this frame completes the packet
	}
	tests := []struct {
		name  string
		frags []frag
		want  IPLayer // inner layer in the completing frame
	}{
		{name: "inner header split over two fragments", frags: []frag{
			{data: x[:16], more: true}, {data: x[16:80], off: 16, more: true}, {data: x[80:], off: 80, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
		{name: "split, last first", frags: []frag{
			{data: x[80:], off: 80}, {data: x[16:80], off: 16, more: true}, {data: x[:16], more: true, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
		{name: "duplicate does not complete; the missing fragment does", frags: []frag{
			{data: x[:64], more: true}, {data: x[112:], off: 112}, {data: x[64:96], off: 64, more: true},
			{data: x[64:96], off: 64, more: true}, {data: x[96:112], off: 96, more: true, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
		{name: "overlap: the lower offset's bytes win", frags: []frag{
			{data: y[8:72], off: 8, more: true, fromY: true}, {data: x[:64], more: true}, {data: x[72:], off: 72, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
		{name: "overlap: bytes beyond the earlier fragment come from the later", frags: []frag{
			{data: x[:16], more: true}, {data: y[8:64], off: 8, more: true, fromY: true}, {data: x[64:], off: 64, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, f, 1, 2)},
		{name: "same offset: the earlier fragment's bytes win", frags: []frag{
			{data: x[:64], more: true}, {data: y[:64], more: true, fromY: true}, {data: x[64:], off: 64, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
		{name: "a fragment without payload is left out", frags: []frag{
			{data: nil, off: 64}, {data: x[:64], more: true}, {data: x[64:], off: 64, complete: true},
		}, want: layer(LayerTunnel, ProtoUDP, c, d, 1, 2)},
	}
	for _, v6 := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{false: " (ipv4)", true: " (ipv6)"}[v6], func(t *testing.T) {
				dec := NewDecoder()
				for i, fr := range tc.frags {
					var raw []byte
					if v6 {
						raw = ip6f(4, "2001:db8::1", "2001:db8::2", 7, fr.off, fr.more, fr.data)
					} else {
						raw = ip4f(4, a, b, 7, fr.off, fr.more, fr.data)
					}
					var p Packet
					if err := dec.Decode(LinkRaw, raw, &p); err != nil {
						t.Fatal(err)
					}
					switch {
					case fr.complete && (p.NInner != 1 || p.Inner[0] != tc.want):
						t.Errorf("frame %d: inner %+v, want %+v", i+1, p.Inner[:p.NInner], tc.want)
					case !fr.complete && p.NInner != 0:
						t.Errorf("frame %d: inner %+v, want none", i+1, p.Inner[:p.NInner])
					}
				}
			})
		}
	}
	// Fragment 2 of 4 never arrives, and a duplicate must not stand in for it.
	dec := NewDecoder()
	for i, fr := range []frag{{data: x[:64], more: true}, {data: x[112:], off: 112}, {data: x[64:96], off: 64, more: true}, {data: x[64:96], off: 64, more: true}} {
		var p Packet
		_ = dec.Decode(LinkRaw, ip4f(4, a, b, 8, fr.off, fr.more, fr.data), &p)
		if p.NInner != 0 {
			t.Errorf("missing fragment, frame %d: inner %+v", i+1, p.Inner[:p.NInner])
		}
	}
}

// TestFragCover checks the received ranges of a fragment entry: merged
// when they overlap or touch, sorted, and bounded by fragSpans.
func TestFragCover(t *testing.T) {
	var tab fragTable
	e := tab.get(fragKey{id: 1})
	for _, r := range [][2]uint32{{64, 128}, {0, 8}, {200, 208}, {8, 64}, {100, 150}, {150, 200}} {
		e.cover(r[0], r[1])
	}
	if e.nspan != 1 || e.spans[0] != (fragSpan{0, 208}) || e.overflow {
		t.Errorf("spans %v overflow %v", e.spans[:e.nspan], e.overflow)
	}
	e = tab.get(fragKey{id: 2})
	for i := range fragSpans + 1 {
		e.cover(uint32(16*i), uint32(16*i+8))
	}
	if e.nspan != fragSpans || !e.overflow {
		t.Errorf("%d spans, overflow %v", e.nspan, e.overflow)
	}
}

// TestDecodeLinks decodes the same IPv4/TCP packet under every supported
// link type and link-level encapsulation.
func TestDecodeLinks(t *testing.T) {
	pkt := ip4(ProtoTCP, "198.51.100.1", "203.0.113.2", tcp(40000, 443, 0x18, []byte("x")))
	want := tup(ProtoTCP, "198.51.100.1:40000", "203.0.113.2:443")
	snap := cat([]byte{0xaa, 0xaa, 3, 0, 0, 0, 8, 0}, pkt)
	le32 := func(v int) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
	wifiData := cat([]byte{0x08, 0x01, 0, 0}, make([]byte, 20), snap)              // data frame, ToDS
	wifiQoS := cat([]byte{0x88, 0x02, 0, 0}, make([]byte, 20), []byte{0, 0}, snap) // QoS data, FromDS
	tests := []struct {
		name  string
		link  LinkType
		frame []byte
	}{
		{"ppp hdlc", linkPPP, cat([]byte{0xff, 0x03, 0x00, 0x21}, pkt)},
		{"ppp compressed", linkPPP, cat([]byte{0x21}, pkt)},
		{"cisco hdlc", linkCHDLC, cat([]byte{0x0f, 0, 0x08, 0}, pkt)},
		{"fddi", linkFDDI, cat([]byte{0x50}, make([]byte, 12), snap)},
		{"token ring", linkTokenRing, cat([]byte{0x10, 0x40}, make([]byte, 12), snap)},
		{"pflog openbsd 3.8", linkPFLog, cat([]byte{61, 2}, make([]byte, 62), pkt)},
		{"pflog openbsd 3.4 short header", linkPFLog, cat([]byte{45, 2}, make([]byte, 46), pkt)},
		{"enc little-endian af", linkEnc, cat([]byte{2, 0, 0, 0}, make([]byte, 8), pkt)},
		{"enc big-endian af", linkEnc, cat([]byte{0, 0, 0, 2}, make([]byte, 8), pkt)},
		{"ppp with direction", linkPPPDir, cat([]byte{1, 0xff, 0x03, 0x00, 0x21}, pkt)},
		{"ppp hdlc", linkPPPHDLC, cat([]byte{0xff, 0x03, 0x00, 0x21}, pkt)},
		{"ppp hdlc cisco", linkPPPHDLC, cat([]byte{0x0f, 0, 0x08, 0}, pkt)},
		{"ppp ether", linkPPPEther, cat([]byte{0x11, 0, 0, 1, 0, 42, 0, 0x21}, pkt)},
		{"atm rfc1483", linkATMRFC1483, snap},
		{"token ring llc osi nlpid ip", linkTokenRing, cat([]byte{0x10, 0x40}, make([]byte, 12), []byte{0xfe, 0xfe, 0x03, 0xcc}, pkt)},
		{"token ring llc ip sap ui", linkTokenRing, cat([]byte{0x10, 0x40}, make([]byte, 12), []byte{0x06, 0x06, 0x03}, pkt)},
		{"token ring llc ip sap i frame", linkTokenRing, cat([]byte{0x10, 0x40}, make([]byte, 12), []byte{0x06, 0xee, 0xd8, 0xdf}, pkt)},
		{"fddi snap i frame", linkFDDI, cat([]byte{0x50}, make([]byte, 12), []byte{0xaa, 0xaa, 0x00, 0x02, 0, 0, 0, 8, 0}, pkt)},
		{"token ring source-routed", linkTokenRing, cat([]byte{0x10, 0x40}, make([]byte, 6), []byte{0x80, 0, 0, 0, 0, 1}, []byte{0x06, 0x30, 0, 0x10, 0, 0x20}, snap)},
		{"frame relay nlpid", linkFrelay, cat([]byte{0x18, 0x41, 0x03, 0xcc}, pkt)},
		{"frame relay cisco", linkFrelay, cat([]byte{0x18, 0x41, 0x08, 0x00}, pkt)},
		{"arcnet rfc1201", linkArcnet, cat([]byte{1, 2, 0, 0, 0xd4, 0, 0, 1}, pkt)},
		{"arcnet rfc1051", linkArcnet, cat([]byte{1, 2, 0, 0, 0xf0}, pkt)},
		{"ipnet", linkIPNet, cat([]byte{1, 2}, make([]byte, 22), pkt)},
		{"ipoib", linkIPoIB, cat(make([]byte, 40), []byte{8, 0, 0, 0}, pkt)},
		{"juniper ether", linkJuniperEth, cat([]byte{'M', 'G', 'C', 0x80, 0, 2, 9, 9}, eth(0x0800, pkt))},
		{"pktap", linkPKTAP, cat(le32(12), le32(1), le32(0), eth(0x0800, pkt))},
		{"ppi 802.11", linkPPI, cat([]byte{0, 0, 8, 0}, le32(105), wifiData)},
		{"radiotap qos", linkRadiotap, cat([]byte{0, 0, 8, 0, 0, 0, 0, 0}, wifiQoS)},
		{"nflog", linkNFLog, cat([]byte{2, 0, 0, 1}, []byte{8, 0, 1, 0, 8, 0, 1, 0}, []byte{byte(4 + len(pkt)), 0, 9, 0}, pkt)},
		{"pbb", LinkEthernet, eth(0x88e7, cat([]byte{0, 0, 0, 1}, make([]byte, 12), []byte{8, 0}, pkt))},
		{"vntag", LinkEthernet, eth(0x8926, cat([]byte{0, 0, 0, 0, 8, 0}, pkt))},
		{"fabricpath", LinkEthernet, eth(0x8903, cat([]byte{0, 0}, eth(0x0800, pkt), []byte{1, 2, 3, 4}))},
		{"cisco metadata", LinkEthernet, eth(0x8909, cat([]byte{1, 1, 0, 1, 0, 0, 8, 0}, pkt))},
		{"vlan in vlan", LinkEthernet, eth(0x8100, cat([]byte{0, 1, 0x81, 0}, []byte{0, 2, 8, 0}, pkt))},
		{"ipv4 link", LinkIPv4, pkt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := NewDecoder().Decode(tc.link, tc.frame, &p)
			checkDecoded(t, tc.link, tc.frame, &p, err)
			if err != nil || p.Tuple != want || p.TCPFlags != 0x18 || string(p.Payload) != "x" {
				t.Errorf("err %v kind %v tuple %v flags %#x payload %q", err, p.Kind, p.Tuple, p.TCPFlags, p.Payload)
			}
		})
	}
	// Non-IP and stop rules.
	for _, tc := range []struct {
		name  string
		link  LinkType
		frame []byte
		kind  PacketKind
	}{
		{"ipv6 link with ipv4 inside", LinkIPv6, pkt, KindMalformed},
		{"null other family", LinkNull, cat([]byte{7, 0, 0, 0}, pkt), KindNonIP},
		{"802.11 protected", link80211, cat([]byte{0x08, 0x41, 0, 0}, make([]byte, 20), snap), KindNonIP},
		{"token ring mac frame", linkTokenRing, cat([]byte{0x10, 0x00}, make([]byte, 12), snap), KindNonIP},
		{"fddi smt frame", linkFDDI, cat([]byte{0x46}, make([]byte, 12), snap), KindNonIP},
		{"llc s frame", linkFDDI, cat([]byte{0x50}, make([]byte, 12), []byte{0x06, 0x06, 0x01, 0x00}, pkt), KindNonIP},
		{"snap other oui", linkFDDI, cat([]byte{0x50}, make([]byte, 12), []byte{0xaa, 0xaa, 3, 0x00, 0x80, 0xc2, 8, 0}, pkt), KindNonIP},
		{"802.11 beacon", link80211, cat([]byte{0x80, 0, 0, 0}, make([]byte, 20), snap), KindNonIP},
		{"sll arp", LinkSLL, cat([]byte{0, 1, 0, 1, 0, 6}, make([]byte, 8), []byte{8, 6}, make([]byte, 28)), KindNonIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Packet
			err := NewDecoder().Decode(tc.link, tc.frame, &p)
			checkDecoded(t, tc.link, tc.frame, &p, err)
			if p.Kind != tc.kind {
				t.Errorf("kind %v, want %v (err %v)", p.Kind, tc.kind, err)
			}
		})
	}
}

// FuzzFastPath checks that fastEthernet, when it takes a frame, decodes it
// exactly as the general path does, into a Packet left in any state by the
// frame before.
func FuzzFastPath(f *testing.F) {
	for _, h := range []string{
		hdrEth4 + hdrIPv4 + hdrTCP,
		hdrEth6 + hdrIPv6 + hdrUDP53,
		hdrEth4 + "45000030 1234 4000 40 11 0000 c6336401 cb007102" + "c000 0035 001c 0000" + "0102030405060708090a0b0c0d0e0f10",
		hdrEth4 + "45000030 1234 4000 40 11 0000 c6336401 cb007102" + "c000 12b5 001c 0000" + "0800000000000100", // VXLAN: general path
		hdrEth4 + "4500001c 1234 2000 40 11 0000 c6336401 cb007102" + "c000 0035 0008 0000",                      // MF set: general path
		// L2TP from port 1701: general path
		hdrEth4 + "4500004e 1234 4000 40 11 0000 c6336401 cb007102" + "06a5 c000 003a 0000 0002 0001 0001 ff03 0021" + hdrIPv4 + hdrTCP,
		hdrEth6 + "60000000 0014 06 40 20010db8000000000000000000000001 20010db8000000000000000000000002" + hdrTCP,
	} {
		f.Add(hexFrame(f, h), hexFrame(f, hdrEth4+"4500003c 0001 0000 40 2f 0000 c6336401 cb007102 0000 0800"+hdrIPv4+hdrTCP))
	}
	f.Fuzz(func(t *testing.T, frame, before []byte) {
		fast, slow := NewDecoder(), NewDecoder()
		slow.slowOnly = true
		var pf, ps Packet
		// Leave both Packets as a (possibly tunnelled) earlier frame did.
		fast.slowOnly = true
		_ = fast.Decode(LinkEthernet, before, &pf)
		fast.slowOnly = false
		_ = slow.Decode(LinkEthernet, before, &ps)
		var probe Packet
		took := NewDecoder().fastEthernet(frame, &probe)
		errF := fast.Decode(LinkEthernet, frame, &pf)
		errS := slow.Decode(LinkEthernet, frame, &ps)
		if !took {
			return
		}
		if errF != nil || errS != nil {
			t.Fatalf("frame %x: fast path took a frame the general path rejects: %v / %v", frame, errF, errS)
		}
		if !reflect.DeepEqual(pf, ps) {
			t.Fatalf("frame %x:\nfast %+v\nslow %+v", frame, pf, ps)
		}
	})
}

// TestFastPathCoverage checks that the frames of the benchmark's shape take
// the fast path (or FuzzFastPath would test nothing).
func TestFastPathCoverage(t *testing.T) {
	for _, h := range []string{hdrEth4 + hdrIPv4 + hdrTCP, hdrEth6 + hdrIPv6 + hdrUDP53} {
		var p Packet
		if !NewDecoder().fastEthernet(hexFrame(t, h), &p) {
			t.Errorf("%s: not taken", h)
		}
	}
}

// TestPseudoHeaderLengths: link types whose first bytes Wireshark reads as
// a pseudo-header count without them, decoded or not (tshark's frame.len
// for a SunATM frame of original length 262144 is 262140).
func TestPseudoHeaderLengths(t *testing.T) {
	for _, c := range []struct {
		link LinkType
		n    int
	}{{123, 4}, {139, 4}, {144, 16}, {177, 16}, {196, 5}, {201, 4}, {209, 4}, {245, 2}, {254, 4}, {LinkEthernet, 0}} {
		p := Packet{WireLen: 262144, CapLen: 100}
		_ = NewDecoder().Decode(c.link, make([]byte, 100), &p)
		if p.WireLen != 262144-c.n || p.CapLen != 100-c.n {
			t.Errorf("link %d: lengths %d/%d, want %d/%d", c.link, p.WireLen, p.CapLen, 262144-c.n, 100-c.n)
		}
	}
}

package ingest

import (
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
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
		if (l.Kind != LayerTunnel && l.Kind != LayerICMPQuoted) || !l.Src.IsValid() || !l.Dst.IsValid() {
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

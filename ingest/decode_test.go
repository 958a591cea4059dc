package ingest

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
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

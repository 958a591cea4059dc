package sockwatch

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Captured from Linux 6.18 (NETLINK_SOCK_DIAG dump of AF_INET6/TCP with
// INET_DIAG_INFO): the server side of a [::1] connection that received
// "hello". Attributes: SHUTDOWN, SKV6ONLY(?), MARK, CGROUP_ID, SOCKOPT, INFO.
const sampleTCP6Estab = "0a0102009dcd94000000000000000000000000000000000100000000000000000000000000000001000000000800000000000000943a000000000000000000000000000010770000050008000000000008000f00000000000c001500010000000000000006001600120000001c010200010000000007aa01e01c0300409c0000008000001802000000000000000000000000000000000000000000000400000000000000040000000400000000000100b8ff00002400000012000000ffffff7f0a000000b8ff00000300000000000000b8ff0000000000000ac37b0e06000000ffffffffffffffff00000000000000000500000000000000010000000300000000000000240000000100000000000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000100000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

// The same dump's listener, which carries an INET_DIAG_ULP_INFO (nested)
// attribute and no tcp_info byte counters worth reading.
const sampleTCP6Listen = "0a0a00009dcd00000000000000000000000000000000000100000000000000000000000000000000000000000700000000000000000000000000000000100000000000000b770000050008000000000005000b000100000008000f00000000000c001500010000000000000006001600120000001c0102000a000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000a0000000000000003000000000000000000000000000000ffffffffffffffffffffffffffffffff00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000100013000a0001006d70746370000000"

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// v4Msg builds an AF_INET inet_diag_msg with optional attributes.
func v4Msg(state uint8, src, dst string, sport, dport uint16, cookie uint64, uid, inode uint32, attrs ...[]byte) []byte {
	b := make([]byte, inetDiagMsgLen)
	b[0], b[1] = 2, state
	binary.BigEndian.PutUint16(b[4:], sport)
	binary.BigEndian.PutUint16(b[6:], dport)
	s4, d4 := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[8:], s4[:])
	copy(b[24:], d4[:])
	binary.LittleEndian.PutUint32(b[44:], uint32(cookie))
	binary.LittleEndian.PutUint32(b[48:], uint32(cookie>>32))
	binary.LittleEndian.PutUint32(b[64:], uid)
	binary.LittleEndian.PutUint32(b[68:], inode)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func attr(typ uint16, v []byte) []byte {
	l := 4 + len(v)
	b := make([]byte, (l+3)&^3)
	binary.LittleEndian.PutUint16(b, uint16(l))
	binary.LittleEndian.PutUint16(b[2:], typ)
	copy(b[4:], v)
	return b
}

func tcpInfo(n int, acked, recv, sent uint64) []byte {
	v := make([]byte, n)
	if n >= 136 {
		binary.LittleEndian.PutUint64(v[tcpiBytesAcked:], acked)
		binary.LittleEndian.PutUint64(v[tcpiBytesRecv:], recv)
	}
	if n >= 208 {
		binary.LittleEndian.PutUint64(v[tcpiBytesSent:], sent)
	}
	return v
}

func TestParseInetDiag(t *testing.T) {
	u64 := func(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }
	tests := []struct {
		name    string
		msg     []byte
		proto   uint8
		want    diagSock
		wantErr string
	}{
		{
			name: "captured v6 established with tcp_info", msg: mustHex(t, sampleTCP6Estab), proto: ipprotoTCP,
			want: diagSock{Family: 10, Proto: 6, State: 1,
				Local: netip.MustParseAddrPort("[::1]:40397"), Remote: netip.MustParseAddrPort("[::1]:37888"),
				Inode: 30480, Cookie: 8, CgroupID: 1, HasInfo: true, BytesAcked: 0, BytesReceived: 5, BytesSent: 0},
		},
		{
			name: "captured v6 listener with nested ULP attribute", msg: mustHex(t, sampleTCP6Listen), proto: ipprotoTCP,
			want: diagSock{Family: 10, Proto: 6, State: 10,
				Local: netip.MustParseAddrPort("[::1]:40397"), Remote: netip.MustParseAddrPort("[::]:0"),
				Inode: 30475, Cookie: 7, CgroupID: 1, HasInfo: true},
		},
		{
			name: "v4 udp, no attributes", proto: ipprotoUDP,
			msg: v4Msg(7, "198.51.100.1", "0.0.0.0", 53, 0, 1<<40|7, 1000, 99),
			want: diagSock{Family: 2, Proto: 17, State: 7, Local: netip.MustParseAddrPort("198.51.100.1:53"),
				Remote: netip.MustParseAddrPort("0.0.0.0:0"), UID: 1000, Inode: 99, Cookie: 1<<40 | 7},
		},
		{
			name: "destroy message: protocol from INET_DIAG_PROTOCOL, old short tcp_info", proto: 0,
			msg: v4Msg(7, "203.0.113.5", "198.51.100.9", 40000, 443, 5, 0, 0,
				attr(inetDiagProto, []byte{6}), attr(inetDiagInfo, tcpInfo(136, 10002, 20001, 0)), attr(inetDiagCgroup, u64(77))),
			want: diagSock{Family: 2, Proto: 6, State: 7, Local: netip.MustParseAddrPort("203.0.113.5:40000"),
				Remote: netip.MustParseAddrPort("198.51.100.9:443"), Cookie: 5, CgroupID: 77,
				HasInfo: true, BytesAcked: 10002, BytesReceived: 20001},
		},
		{
			name: "tcp_info too short for byte counters", proto: ipprotoTCP,
			msg: v4Msg(1, "198.51.100.1", "198.51.100.2", 1, 2, 3, 0, 4, attr(inetDiagInfo, tcpInfo(100, 0, 0, 0))),
			want: diagSock{Family: 2, Proto: 6, State: 1, Local: netip.MustParseAddrPort("198.51.100.1:1"),
				Remote: netip.MustParseAddrPort("198.51.100.2:2"), Cookie: 3, Inode: 4},
		},
		{name: "short message", msg: make([]byte, 71), proto: ipprotoTCP, wantErr: "too short"},
		{name: "unknown family", msg: append([]byte{1}, make([]byte, 71)...), proto: ipprotoTCP, wantErr: "family 1"},
		{name: "destroy without protocol", msg: v4Msg(7, "198.51.100.1", "198.51.100.2", 1, 2, 3, 0, 4), wantErr: "without protocol"},
		{
			name: "attribute length past the end", proto: ipprotoTCP,
			msg:     append(v4Msg(1, "198.51.100.1", "198.51.100.2", 1, 2, 3, 0, 4), 0xff, 0, 2, 0),
			wantErr: "bad length",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got diagSock
			err := parseInetDiag(tt.msg, tt.proto, &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestBuildInetDiagReq(t *testing.T) {
	// The request captured from this package's dump of AF_INET6/TCP.
	want := "480000001400010301000000000000000a060200bfefffff" + strings.Repeat("00", 48)
	var b [72]byte
	n := buildInetDiagReq(b[:], 10, ipprotoTCP, statesNoTWNoSyn, 1<<(inetDiagInfo-1), 1)
	if got := hex.EncodeToString(b[:n]); got != want {
		t.Errorf("request\n got %s\nwant %s", got, want)
	}
}

func TestNLMessages(t *testing.T) {
	msg := func(typ uint16, seq uint32, payload []byte) []byte {
		l := nlmsgHdrLen + len(payload)
		b := make([]byte, (l+3)&^3)
		binary.LittleEndian.PutUint32(b, uint32(l))
		binary.LittleEndian.PutUint16(b[4:], typ)
		binary.LittleEndian.PutUint32(b[8:], seq)
		copy(b[16:], payload)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    []uint16
		wantErr bool
	}{
		{"two messages, padded", append(msg(20, 1, []byte{1, 2, 3}), msg(3, 1, []byte{0, 0, 0, 0})...), []uint16{20, 3}, false},
		{"empty", nil, nil, false},
		{"length below header", []byte{4, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, nil, true},
		{"length past end", append([]byte{0xff, 0, 0, 0}, msg(20, 1, nil)[4:]...), nil, true},
		{"second truncated", append(msg(20, 1, nil), 200, 0, 0, 0), []uint16{20}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []uint16
			err := nlMessages(tt.in, func(typ, _ uint16, _ uint32, _ []byte) error { got = append(got, typ); return nil })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestStateName(t *testing.T) {
	tests := []struct {
		proto, st uint8
		want      string
	}{
		{ipprotoTCP, 1, "ESTAB"}, {ipprotoTCP, 10, "LISTEN"}, {ipprotoTCP, 6, "TIME-WAIT"},
		{ipprotoUDP, 7, "UNCONN"}, {ipprotoUDP, 1, "ESTAB"}, {ipprotoTCP, 99, "STATE-99"},
	}
	for _, tt := range tests {
		if got := stateName(tt.proto, tt.st); got != tt.want {
			t.Errorf("stateName(%d,%d) = %q, want %q", tt.proto, tt.st, got, tt.want)
		}
	}
}

// FuzzParseInetDiag feeds arbitrary bytes to the netlink and inet_diag
// parsers: they must never panic, and a parsed socket must be inet.
func FuzzParseInetDiag(f *testing.F) {
	f.Add(mustHex(f, sampleTCP6Estab), uint8(ipprotoTCP))
	f.Add(mustHex(f, sampleTCP6Listen), uint8(ipprotoTCP))
	f.Add(v4Msg(7, "203.0.113.5", "198.51.100.9", 1, 2, 3, 0, 0, attr(inetDiagProto, []byte{6})), uint8(0))
	f.Fuzz(func(t *testing.T, b []byte, proto uint8) {
		var s diagSock
		if err := parseInetDiag(b, proto, &s); err == nil {
			if s.Family != 2 && s.Family != 10 || s.Proto == 0 || !s.Local.IsValid() {
				t.Fatalf("accepted bad socket %+v", s)
			}
		}
		_ = nlMessages(b, func(_, _ uint16, _ uint32, p []byte) error {
			_ = parseInetDiag(p, proto, &s)
			_, _, _ = parseProcEvent(p)
			return nil
		})
	})
}

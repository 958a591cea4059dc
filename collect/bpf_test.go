package collect

import (
	"context"
	"encoding/binary"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"golang.org/x/net/bpf"
)

// frame builds an Ethernet/IPv4 frame with a TCP or UDP header.
func frame(proto byte, sport, dport uint16, size int) []byte {
	b := make([]byte, size)
	copy(b[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(b[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(size-14))
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:16], []byte{198, 51, 100, 1})
	copy(ip[16:20], []byte{198, 51, 100, 2})
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], dport)
	if proto == 6 {
		ip[32] = 5 << 4
	}
	return b
}

// runVM runs prog over pkt in x/net/bpf's VM. The VM does not implement
// the pkttype ancillary load, so an `ld #type` is replaced by a constant
// load of pkttype: the layout and jumps under test are unchanged.
func runVM(t *testing.T, prog []bpf.RawInstruction, pkt []byte, pkttype uint32) int {
	t.Helper()
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		d := r.Disassemble()
		if e, ok := d.(bpf.LoadExtension); ok && e.Num == bpf.ExtType {
			d = bpf.LoadConstant{Dst: bpf.RegA, Val: pkttype}
		}
		ins[i] = d
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatalf("vm.Run: %v", err)
	}
	return n
}

// tcpPort80 is `tcpdump -ddd -y EN10MB -s 96 'tcp port 80'` (libpcap 1.10.3).
const tcpPort80 = `20
40 0 0 12
21 0 6 34525
48 0 0 20
21 0 15 6
40 0 0 54
21 12 0 80
40 0 0 56
21 10 11 80
21 0 10 2048
48 0 0 23
21 0 8 6
40 0 0 20
69 6 0 8191
177 0 0 14
72 0 0 14
21 2 0 80
72 0 0 16
21 0 1 80
6 0 0 96
6 0 0 0
`

func TestBuildProgram(t *testing.T) {
	user, err := ParseDDD(strings.NewReader(tcpPort80))
	if err != nil {
		t.Fatal(err)
	}
	retA, _ := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 23, Size: 1}, // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 17, SkipTrue: 1},
		bpf.RetConstant{Val: 0},
		bpf.LoadConstant{Dst: bpf.RegA, Val: 1500},
		bpf.RetA{},
	})
	big := 1400
	tests := []struct {
		name     string
		user     []bpf.RawInstruction
		loopback bool
		pkt      []byte
		pkttype  uint32
		want     int
	}{
		{"no filter", nil, false, frame(17, 1, 2, big), 0, 96},
		{"no filter outgoing non-lo kept", nil, false, frame(17, 1, 2, big), packetOutgoing, 96},
		{"lo outgoing dropped", nil, true, frame(17, 1, 2, big), packetOutgoing, 0},
		{"lo host kept", nil, true, frame(17, 1, 2, big), 0, 96},
		{"filter match", user, false, frame(6, 1234, 80, big), 0, 96},
		{"filter no match", user, false, frame(6, 1234, 81, big), 0, 0},
		{"filter udp no match", user, false, frame(17, 1234, 80, big), 0, 0},
		{"lo filter match", user, true, frame(6, 80, 4321, big), 0, 96},
		{"lo filter outgoing", user, true, frame(6, 80, 4321, big), packetOutgoing, 0},
		{"lo filter no match", user, true, frame(6, 81, 4321, big), 0, 0},
		{"short frame (kernel clips to len)", user, true, frame(6, 80, 4321, 60), 0, 96},
		{"ret a accept", retA, true, frame(17, 1, 2, big), 0, 96},
		{"ret a reject", retA, true, frame(6, 1, 2, big), 0, 0},
		{"ret a outgoing", retA, true, frame(17, 1, 2, big), packetOutgoing, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := BuildProgram(tc.user, ProgramSpec{SnapLen: 96, Loopback: tc.loopback})
			if err != nil {
				t.Fatal(err)
			}
			if got := runVM(t, prog, tc.pkt, tc.pkttype); got != tc.want {
				t.Errorf("verdict = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBuildProgramErrors(t *testing.T) {
	bad, _ := bpf.Assemble([]bpf.Instruction{
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipTrue: 5},
		bpf.RetConstant{Val: 1},
	})
	if _, err := BuildProgram(bad, ProgramSpec{SnapLen: 96, Loopback: true}); err == nil {
		t.Error("jump past end: no error")
	}
	if _, err := BuildProgram(nil, ProgramSpec{}); err == nil {
		t.Error("snaplen 0: no error")
	}
}

func TestParseDDD(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int
		wantErr error
	}{
		{"ok", tcpPort80, 20, nil},
		{"empty", "", 0, ingest.ErrMalformed},
		{"bad count", "x\n", 0, ingest.ErrMalformed},
		{"short", "3\n6 0 0 96\n", 0, ingest.ErrTruncated},
		{"too many", "1\n6 0 0 96\n6 0 0 0\n", 0, ingest.ErrMalformed},
		{"bad field", "1\n6 0 300 96\n", 0, ingest.ErrMalformed},
		{"three fields", "1\n6 0 0\n", 0, ingest.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseDDD(strings.NewReader(tc.in))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if len(p) != tc.n {
				t.Errorf("len = %d, want %d", len(p), tc.n)
			}
		})
	}
}

func TestCompileFilter(t *testing.T) {
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("tcpdump not installed")
	}
	ctx := context.Background()
	prog, err := CompileFilter(ctx, "", "udp and port 53", ingest.LinkEthernet, 96)
	if err != nil {
		t.Fatal(err)
	}
	full, err := BuildProgram(prog, ProgramSpec{SnapLen: 96, Loopback: true, Link: ingest.LinkEthernet, JSONSnap: 256})
	if err != nil {
		t.Fatal(err)
	}
	if got := runVM(t, full, frame(17, 5000, 53, 200), 0); got != 256 { // a DNS message: whole questions
		t.Errorf("udp/53 verdict %d, want 256", got)
	}
	if got := runVM(t, full, frame(6, 5000, 53, 200), 0); got != 0 {
		t.Errorf("tcp/53 verdict %d, want 0", got)
	}
	if _, err := CompileFilter(ctx, "", "tcp[", ingest.LinkEthernet, 96); err == nil {
		t.Error("syntax error: no error")
	}
	if p, err := CompileFilter(ctx, "", "  ", ingest.LinkEthernet, 96); err != nil || p != nil {
		t.Errorf("empty expr = %v, %v", p, err)
	}
	if _, err := CompileFilter(ctx, "/nonexistent/tcpdump", "tcp", ingest.LinkEthernet, 96); err == nil {
		t.Error("missing binary: no error")
	}
}

func FuzzParseDDD(f *testing.F) {
	f.Add(tcpPort80)
	f.Add("1\n6 0 0 96\n")
	f.Add("2\n21 0 1 4\n6 0 0 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseDDD(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, lo := range []bool{false, true} {
			if prog, err := BuildProgram(p, ProgramSpec{SnapLen: 96, Loopback: lo, Link: ingest.LinkEthernet, JSONSnap: 256}); err == nil && len(prog) == 0 {
				t.Fatal("empty program without error")
			}
		}
	})
}

// tcpFrame builds an Ethernet (eth=true) or raw IPv4/IPv6 TCP frame with
// the given payload and TCP header length.
func tcpFrame(eth, v6 bool, thl int, payload string) []byte {
	var ip []byte
	if v6 {
		ip = make([]byte, 40+thl)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(thl+len(payload)))
		ip[6] = 6
		ip[7] = 64
		ip[40+12] = byte(thl/4) << 4
	} else {
		ip = make([]byte, 20+thl)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+thl+len(payload)))
		ip[8] = 64
		ip[9] = 6
		ip[20+12] = byte(thl/4) << 4
	}
	ip = append(ip, payload...)
	if !eth {
		return ip
	}
	f := make([]byte, 14, 14+len(ip))
	if v6 {
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
	} else {
		binary.BigEndian.PutUint16(f[12:], 0x0800)
	}
	return append(f, ip...)
}

func TestBuildProgramJSONSnap(t *testing.T) {
	stratum := `{"id":1,"method":"mining.subscribe","params":["cpuminer"]}` + "\n"
	frag := tcpFrame(true, false, 20, stratum)
	frag[14+7] = 10 // non-first fragment offset
	udp := frame(17, 1, 2, 200)
	dnsFrag := frame(17, 5000, 53, 200)
	dnsFrag[14+7] = 10 // a non-first fragment: no UDP header
	dnsOpts := frame(17, 0, 0, 204)
	dnsOpts[14] = 0x46 // a 24-byte IPv4 header (options): the ports are 4 bytes later
	binary.BigEndian.PutUint16(dnsOpts[14+24:], 5000)
	binary.BigEndian.PutUint16(dnsOpts[14+26:], 53)
	longIHL := frame(17, 0, 0, 120)
	longIHL[14] = 0x4f // 60-byte header: the ports would be at 74
	udp6 := func(sport, dport uint16, size int) []byte {
		b := make([]byte, size)
		binary.BigEndian.PutUint16(b[12:], 0x86dd)
		b[14] = 0x60
		b[14+6] = 17
		binary.BigEndian.PutUint16(b[14+40:], sport)
		binary.BigEndian.PutUint16(b[14+42:], dport)
		return b
	}
	tests := []struct {
		name string
		link ingest.LinkType
		pkt  []byte
		want int
	}{
		{"eth v4 json", ingest.LinkEthernet, tcpFrame(true, false, 20, stratum), 256},
		{"eth v4 json with tcp options", ingest.LinkEthernet, tcpFrame(true, false, 32, stratum), 256},
		{"eth v4 http", ingest.LinkEthernet, tcpFrame(true, false, 20, "GET / HTTP/1.1\r\n"), 96},
		{"eth v4 pure ack", ingest.LinkEthernet, tcpFrame(true, false, 20, ""), 96},
		{"eth v4 ack with options, no payload", ingest.LinkEthernet, tcpFrame(true, false, 40, ""), 96},
		{"eth v4 fragment", ingest.LinkEthernet, frag, 96},
		{"eth v6 json", ingest.LinkEthernet, tcpFrame(true, true, 20, stratum), 256},
		{"eth v6 pure ack", ingest.LinkEthernet, tcpFrame(true, true, 20, ""), 96},
		{"eth udp", ingest.LinkEthernet, udp, 96},
		{"eth v4 dns query", ingest.LinkEthernet, frame(17, 5000, 53, 120), 256},
		{"eth v4 dns answer", ingest.LinkEthernet, frame(17, 53, 5000, 300), 256},
		{"eth v4 dns with ip options", ingest.LinkEthernet, dnsOpts, 256},
		{"eth v4 dns fragment", ingest.LinkEthernet, dnsFrag, 96},
		{"eth v4 udp with 40 bytes of options, cut before its ports", ingest.LinkEthernet, longIHL[:60], 96},
		{"eth v4 tcp port 53", ingest.LinkEthernet, frame(6, 5000, 53, 120), 96},
		{"eth v6 dns query", ingest.LinkEthernet, udp6(5000, 53, 120), 256},
		{"eth v6 udp", ingest.LinkEthernet, udp6(5000, 443, 120), 96},
		{"eth v6 udp cut before its ports", ingest.LinkEthernet, udp6(5000, 53, 120)[:56], 96},
		{"raw v4 dns", ingest.LinkRaw, frame(17, 5000, 53, 120)[14:], 256},
		{"eth runt", ingest.LinkEthernet, udp[:20], 96},
		{"eth arp", ingest.LinkEthernet, append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 6}, make([]byte, 46)...), 96},
		{"raw v4 json", ingest.LinkRaw, tcpFrame(false, false, 20, stratum), 256},
		{"raw v6 json", ingest.LinkRaw, tcpFrame(false, true, 20, stratum), 256},
		{"raw v4 ack", ingest.LinkRaw, tcpFrame(false, false, 20, ""), 96},
		{"raw short", ingest.LinkRaw, []byte{0x45}, 96},
		{"sll: no json test", ingest.LinkSLL, tcpFrame(true, false, 20, stratum), 96},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, lo := range []bool{false, true} {
				prog, err := BuildProgram(nil, ProgramSpec{SnapLen: 96, Loopback: lo, Link: tc.link, JSONSnap: 256})
				if err != nil {
					t.Fatal(err)
				}
				if got := runVM(t, prog, tc.pkt, 0); got != tc.want {
					t.Errorf("loopback=%v: verdict %d, want %d", lo, got, tc.want)
				}
			}
			// behind a user filter that accepts TCP only (ret #65535 / ret #0)
			user, _ := bpf.Assemble([]bpf.Instruction{
				bpf.LoadAbsolute{Off: 23, Size: 1},
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 1},
				bpf.RetConstant{Val: 65535},
				bpf.RetConstant{Val: 0},
			})
			if tc.link != ingest.LinkEthernet || len(tc.pkt) < 24 {
				return
			}
			prog, err := BuildProgram(user, ProgramSpec{SnapLen: 96, Link: tc.link, JSONSnap: 256})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if len(tc.pkt) < 24 || tc.pkt[23] != 6 || binary.BigEndian.Uint16(tc.pkt[12:]) != 0x0800 {
				want = 0
			}
			if got := runVM(t, prog, tc.pkt, 0); got != want {
				t.Errorf("with filter: verdict %d, want %d", got, want)
			}
		})
	}
}

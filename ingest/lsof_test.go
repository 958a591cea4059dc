package ingest

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseLsof(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string
	}{
		{
			name: "shared-listener-merged",
			in: "COMMAND  PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n" +
				"nginx    123 root    6u  IPv4  10691      0t0  TCP *:80 (LISTEN)\n" +
				"nginx    124 www-data 6u IPv4  10691      0t0  TCP *:80 (LISTEN)\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("0.0.0.0:80"), State: "LISTEN", Inode: 10691, UID: 0,
				Holders: []ProcKey{{PID: 123}, {PID: 124}}, Comms: []string{"nginx", "nginx"}}},
		},
		{
			name: "v6-udp-connected-and-escaped-comm",
			in: "my\\x20app 991 1001   5u  IPv6  10801      0t0  UDP [2001:db8::1]:5000->[2001:db8::2]:6000\n" +
				"sshd  990 alice 4u IPv6 10800 0t0 TCP 198.51.100.1:22->198.51.100.2:50670 (CLOSE_WAIT)\n",
			want: []SocketEntry{
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("[2001:db8::1]:5000"), Remote: netip.MustParseAddrPort("[2001:db8::2]:6000"), State: "ESTAB",
					Inode: 10801, UID: 1001, Holders: []ProcKey{{PID: 991}}, Comms: []string{"my app"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:50670"), State: "CLOSE-WAIT",
					Inode: 10800, UID: -1, Holders: []ProcKey{{PID: 990}}, Comms: []string{"sshd"}},
			},
		},
		{
			name: "tid-column",
			in: "COMMAND PID TID TASKCMD USER FD TYPE DEVICE SIZE/OFF NODE NAME\n" +
				"java 500 501 worker 1000 7u IPv4 555 0t0 TCP 198.51.100.1:8080->203.0.113.5:40000 (ESTABLISHED)\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:8080"), Remote: netip.MustParseAddrPort("203.0.113.5:40000"),
				State: "ESTAB", Inode: 555, UID: 1000, Holders: []ProcKey{{PID: 500}}, Comms: []string{"java"}}},
		},
		{
			name:      "garbage",
			in:        "lsof: WARNING: can't stat() fuse\nx y\nsshd 812 root 5u sock 0,8 0t0 7000 protocol: NETLINK\nsshd x root 3u IPv4 1 0t0 TCP *:22 (LISTEN)\n",
			wantDiags: []string{"info", "malformed", "skipped", "malformed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, parseLsof, tc.in, tc.want, tc.wantDiags) })
	}
}

func FuzzParseLsof(f *testing.F) {
	seedDumps(f, "lsof.txtar", "P.lsof")
	seedDumps(f, "lsof.txtar", "names.lsof")
	seedDumps(f, "garbled.txtar", ".lsof")
	fuzzParser(f, parseLsof)
}

// TestLsofBlankSizeOff: lsof 4.95 leaves SIZE/OFF blank for some sockets
// (seen in a real dump); the row is read, not skipped.
func TestLsofBlankSizeOff(t *testing.T) {
	in := "COMMAND   PID USER   FD   TYPE  DEVICE SIZE/OFF NODE NAME\n" +
		"my\\x20(w, 15580 root    3u  IPv4 5176817           TCP 198.51.100.1:40009->198.51.100.2:9000 (ESTABLISHED)\n" +
		"python3 7029 root    7u  IPv4  10695      0t0  TCP 198.51.100.1:22->198.51.100.2:50670 (ESTABLISHED)\n"
	s, diags, err := parseLsof(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sockets) != 2 || len(diags) != 0 {
		t.Fatalf("sockets %+v, diagnostics %v", s.Sockets, diags)
	}
	e := s.Sockets[0]
	if e.Local.Port() != 40009 || e.Inode != 5176817 || len(e.Holders) != 1 || e.Holders[0].PID != 15580 || e.Comms[0] != "my (w," {
		t.Errorf("blank SIZE/OFF row: %+v", e)
	}
}

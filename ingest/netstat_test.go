package ingest

import (
	"net/netip"
	"testing"
)

func TestParseNetstat(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string
	}{
		{
			name: "tcp-udp-tcp6",
			in: "Active Internet connections (servers and established)\n" +
				"Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name    \n" +
				"tcp        0      0 198.51.100.1:22         0.0.0.0:*               LISTEN      812/sshd: /usr/sbin \n" +
				"tcp6       0      0 :::8443                 :::*                    LISTEN      -                   \n" +
				"udp     1664      0 0.0.0.0:53              0.0.0.0:*                           7029/python3        \n" +
				"udp        0      0 198.51.100.1:46821      198.51.100.2:443        ESTABLISHED 7197/python3        \n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 812}}, Comms: []string{"sshd: /usr/sbin"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::]:8443"), State: "LISTEN", UID: -1},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("0.0.0.0:53"), State: "UNCONN", UID: -1, Holders: []ProcKey{{PID: 7029}}, Comms: []string{"python3"}},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("198.51.100.1:46821"), Remote: netip.MustParseAddrPort("198.51.100.2:443"), State: "ESTAB", UID: -1,
					Holders: []ProcKey{{PID: 7197}}, Comms: []string{"python3"}},
			},
		},
		{
			name: "anp-unix-section",
			in: "Active Internet connections (servers and established)\n" +
				"Proto Recv-Q Send-Q Local Address           Foreign Address         State       PID/Program name    \n" +
				"tcp        0      0 198.51.100.1:22         0.0.0.0:*               LISTEN      812/sshd            \n" +
				"Active UNIX domain sockets (servers and established)\n" +
				"Proto RefCnt Flags       Type       State         I-Node   PID/Program name     Path\n" +
				"unix  2      [ ACC ]     STREAM     LISTENING     21334    1/systemd            /run/systemd/private\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 812}}, Comms: []string{"sshd"}},
			},
			wantDiags: []string{"skipped"}, // the unix row; the section header is not "malformed"
		},
		{
			name: "cut-ipv6-and-bad",
			in: "udp6       0      0 fe80::e42c:12ff:fe:5353 :::*                                7197/python3\n" +
				"raw6       0      0 :::58                   :::*                    7           -\n" +
				"tcp        x      0 198.51.100.1:22         0.0.0.0:*               LISTEN      -\n" +
				"tcp        0      0 198.51.100.1:22         0.0.0.0:*               LISTEN      abc/x\n",
			want: []SocketEntry{
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("[fe80::e42c:12ff:fe]:5353"), State: "UNCONN", UID: -1, Holders: []ProcKey{{PID: 7197}}, Comms: []string{"python3"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), State: "LISTEN", UID: -1},
			},
			wantDiags: []string{"truncated", "skipped", "malformed", "malformed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, parseNetstat, tc.in, tc.want, tc.wantDiags) })
	}
}

func FuzzParseNetstat(f *testing.F) {
	seedDumps(f, "netstat.txtar", ".netstat")
	fuzzParser(f, parseNetstat)
}

// TestNetstatTail: the columns after the addresses with -p, -e (User,
// Inode) and -o (Timer), with and without a State.
func TestNetstatTail(t *testing.T) {
	for _, tc := range []struct {
		in, state, pidprog string
		ok                 bool
	}{
		{"ESTABLISHED 7029/python3", "ESTABLISHED", "7029/python3", true},
		{"7029/python3", "", "7029/python3", true},
		{"LISTEN      0          5153324    11179/my prog  ", "LISTEN", "11179/my prog", true},
		{"0 5175198 15543/python3", "", "15543/python3", true},
		{"root 5175198 15543/python3", "", "15543/python3", true},
		{"TIME_WAIT   -                    timewait (3.54/0/0)", "TIME_WAIT", "-", true},
		{"LISTEN 11179/python3        off (0.00/0/0)", "LISTEN", "11179/python3", true},
		{"ESTABLISHED 0 5174754 15444/python3 keepalive (7197.61/0/0)", "ESTABLISHED", "15444/python3", true},
		{"LISTEN 0 5153324", "LISTEN", "", true},
		{"0 5153324", "", "", true},
		{"LISTEN", "LISTEN", "", true},
		{"", "", "", true},
		{"UNKNOWN 12/x", "UNKNOWN", "12/x", true},
		{"LISTEN 0 5153324 0 - x", "LISTEN", "", false},
	} {
		state, pidprog, ok := netstatTail(tc.in)
		if state != tc.state || pidprog != tc.pidprog || ok != tc.ok {
			t.Errorf("netstatTail(%q) = %q, %q, %v; want %q, %q, %v", tc.in, state, pidprog, ok, tc.state, tc.pidprog, tc.ok)
		}
	}
}

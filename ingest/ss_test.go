package ingest

import (
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sockCmp compares netip values by ==.
var sockCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b }),
}

func TestParseSS(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string // Kind of each diagnostic, in order
	}{
		{
			name: "estab-two-holders-e",
			in:   `tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:50670 users:(("nginx",pid=124,fd=6),("nginx",pid=123,fd=6),("nginx",pid=123,fd=9)) uid:33 ino:10695 sk:1a <->` + "\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:50670"),
				State: "ESTAB", Inode: 10695, Cookie: 0x1a, UID: 33, Holders: []ProcKey{{PID: 123}, {PID: 124}}, Comms: []string{"nginx", "nginx"}}},
		},
		{
			name: "header-listen-star-and-i",
			in: "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n" +
				"tcp   LISTEN 0      16     *:8443 *:* users:((\"python3\",pid=7071,fd=3)) ino:10691 sk:4\n" +
				"tcp   ESTAB  0      0      [::ffff:198.51.100.1]:8443 [::ffff:198.51.100.2]:37046 ino:10799\n" +
				"\t ts sack bbr wscale:10,10 bytes_sent:100088 bytes_acked:100000 bytes_received:77 segs_out:71\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::]:8443"), State: "LISTEN", Inode: 10691, Cookie: 4, UID: 0,
					Holders: []ProcKey{{PID: 7071}}, Comms: []string{"python3"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::ffff:198.51.100.1]:8443"), Remote: netip.MustParseAddrPort("[::ffff:198.51.100.2]:37046"),
					State: "ESTAB", Inode: 10799, UID: 0, BytesAcked: 100000, BytesReceived: 77},
			},
		},
		{
			name: "udp-zone-and-names",
			in: "udp UNCONN 0 0 [fe80::1]%eth0:mdns [::]:* users:((\"avahi-daemon\",pid=600,fd=12))\n" +
				"udp UNCONN 0 0 127.0.0.53%lo:domain 0.0.0.0:*\n",
			want: []SocketEntry{
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("[fe80::1]:5353"), State: "UNCONN", UID: -1, Holders: []ProcKey{{PID: 600}}, Comms: []string{"avahi-daemon"}},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("127.0.0.53:53"), State: "UNCONN", UID: -1},
			},
		},
		{
			name: "old-iproute2-users",
			in:   `ESTAB 0 0 198.51.100.1:22 198.51.100.2:5 users:(("sshd",1234,3))` + "\n",
			// No Netid: ESTAB may be TCP or connected UDP (ss -tanp, ss -uanp).
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:5"),
				State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 1234}}, Comms: []string{"sshd"}},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:5"),
					State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 1234}}, Comms: []string{"sshd"}}},
			wantDiags: []string{"info"},
		},
		{
			name: "comm-with-space-comma-paren",
			in:   `tcp ESTAB 0 0 198.51.100.1:22 198.51.100.2:5 users:(("my app, (x)",pid=9,fd=3))` + "\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:5"),
				State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 9}}, Comms: []string{"my app, (x)"}}},
		},
		{
			name: "time-wait-no-owner-no-netid",
			in:   "State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\nTIME-WAIT 0 0 198.51.100.1:22 198.51.100.2:5\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:5"),
				State: "TIME-WAIT", UID: -1}},
			wantDiags: []string{"info"},
		},
		{
			name:      "others-skipped",
			in:        "u_str ESTAB 0 0 * 13075 * 13074\nraw UNCONN 0 0 *:ipv6-icmp *:*\ntcp ESTAB 0 0 198.51.100.1:22 host.example:5\n",
			wantDiags: []string{"skipped", "unsupported"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, parseSS, tc.in, tc.want, tc.wantDiags) })
	}
}

// checkParse runs parse on in and compares the sockets and the kinds of the
// diagnostics.
func checkParse(t *testing.T, parse func(io.Reader) (SocketSnapshot, []Diagnostic, error), in string, want []SocketEntry, wantDiags []string) SocketSnapshot {
	t.Helper()
	s, diags, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, s.Sockets, sockCmp); d != "" {
		t.Errorf("sockets (-want +got):\n%s", d)
	}
	var kinds []string
	for _, d := range diags {
		kinds = append(kinds, string(d.Kind))
	}
	if d := cmp.Diff(wantDiags, kinds); d != "" {
		t.Errorf("diagnostic kinds (-want +got):\n%s\n%v", d, diags)
	}
	return s
}

func FuzzParseSS(f *testing.F) {
	seedDumps(f, "ss.txtar", ".ss")
	seedDumps(f, "garbled.txtar", ".ss")
	fuzzParser(f, parseSS)
}

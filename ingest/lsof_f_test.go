package ingest

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseLsofF(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string
	}{
		{
			name: "two-procs-shared-and-state",
			in: "p7029\ncpython3\nu0\nLroot\nf3\ntIPv6\nd10691\nPTCP\nn*:8443\nTST=LISTEN\nTQR=0\n" +
				"f7\ntIPv4\nPTCP\nn198.51.100.1:22->198.51.100.2:50670\nTST=ESTABLISHED\n" +
				"p7071\nR7029\ncpython3\nu1000\nf3\ntIPv6\nd10691\nPTCP\nn*:8443\nTST=LISTEN\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::]:8443"), State: "LISTEN", Inode: 10691, UID: 0,
					Holders: []ProcKey{{PID: 7029}, {PID: 7071}}, Comms: []string{"python3", "python3"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.1:22"), Remote: netip.MustParseAddrPort("198.51.100.2:50670"), State: "ESTAB",
					UID: 0, Holders: []ProcKey{{PID: 7029}}, Comms: []string{"python3"}},
			},
		},
		{
			name: "nul-separated",
			in:   "p42\x00cudpd\x00u0\x00\nf5\x00tIPv4\x00PUDP\x00n*:53\x00\n",
			want: []SocketEntry{{Proto: ProtoUDP, Local: netip.MustParseAddrPort("0.0.0.0:53"), State: "UNCONN", UID: 0,
				Holders: []ProcKey{{PID: 42}}, Comms: []string{"udpd"}}},
		},
		{
			name:      "bad",
			in:        "f3\ntIPv4\nPTCP\nn*:1\npX\nf4\ntunix\n" + "p5\ncx\nf1\ntIPv4\nPTCP\nnhost.example:1\nq?\n",
			wantDiags: []string{"malformed", "malformed", "malformed", "unsupported"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := checkParse(t, parseLsofF, tc.in, tc.want, tc.wantDiags)
			if strings.Contains(tc.name, "two-procs") {
				if p := s.Procs[ProcKey{PID: 7071}]; p.PPID != 7029 || p.UID != 1000 {
					t.Errorf("proc 7071 = %+v, want PPID 7029 UID 1000", p)
				}
				if p := s.Procs[ProcKey{PID: 7029}]; p.User != "root" {
					t.Errorf("proc 7029 = %+v, want user root", p)
				}
			}
		})
	}
}

func FuzzParseLsofF(f *testing.F) {
	seedDumps(f, "lsof.txtar", "F.lsof")
	seedDumps(f, "lsof.txtar", "Fall.lsof")
	seedDumps(f, "lsof.txtar", "F0.lsof")
	fuzzParser(f, parseLsofF)
}

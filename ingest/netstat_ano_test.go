package ingest

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseNetstatANO(t *testing.T) {
	start := time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC).UnixNano()
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string
	}{
		{
			name: "rows-and-tasklist-csv",
			in: "\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address        State           PID\r\n" +
				"  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING       1264\r\n" +
				"  TCP    [::]:445               [::]:0                 LISTENING       4\r\n" +
				"  TCP    198.51.100.7:49714     203.0.113.80:80        TIME_WAIT       0\r\n" +
				"  UDP    [fe80::1%12]:1900      *:*                                    5000\r\n" +
				"\"Image Name\",\"PID\",\"Session Name\",\"Session#\",\"Mem Usage\"\r\n" +
				"\"svchost.exe\",\"1264\",\"Services\",\"0\",\"10,120 K\"\r\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("0.0.0.0:135"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 1264}}, Comms: []string{"svchost.exe"}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::]:445"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 4}}, Comms: []string{""}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:49714"), Remote: netip.MustParseAddrPort("203.0.113.80:80"), State: "TIME-WAIT", UID: -1},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("[fe80::1]:1900"), State: "UNCONN", UID: -1, Holders: []ProcKey{{PID: 5000}}, Comms: []string{""}},
			},
		},
		{
			name: "german-state-and-get-process",
			in: "  TCP    198.51.100.20:62221    203.0.113.30:443       HERGESTELLT      4321\n" +
				"\"Id\",\"ProcessName\",\"Path\",\"StartTime\"\n" +
				"\"4321\",\"svchost\",\"C:\\Users\\alice\\AppData\\Local\\Temp\\svchost.exe\",\"2026-11-28T11:58:40.0000000Z\"\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.20:62221"), Remote: netip.MustParseAddrPort("203.0.113.30:443"),
				State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 4321, Start: start}}, Comms: []string{"svchost"}}},
		},
		{
			name: "unknown-localised-states",
			in:   "  TCP    0.0.0.0:135            0.0.0.0:0              ESCUCHANDO       896\n  TCP    198.51.100.7:5         203.0.113.9:443        ESTABLECIDO      896\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("0.0.0.0:135"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 896}}, Comms: []string{""}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:5"), Remote: netip.MustParseAddrPort("203.0.113.9:443"), State: "ESTABLECIDO", UID: -1,
					Holders: []ProcKey{{PID: 896}}, Comms: []string{""}},
			},
		},
		{
			name:      "hostname-and-missing-state",
			in:        "  TCP    198.51.100.7:49713     SERVER-PC:https        ESTABLISHED     4321\n  TCP    198.51.100.7:49715     203.0.113.9:443\n",
			wantDiags: []string{"unsupported"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := checkParse(t, parseNetstatANO, tc.in, tc.want, tc.wantDiags)
			if tc.name == "german-state-and-get-process" {
				p := s.Procs[ProcKey{PID: 4321, Start: start}]
				if p.Exe != `C:\Users\alice\AppData\Local\Temp\svchost.exe` {
					t.Errorf("proc = %+v", p)
				}
			}
		})
	}
}

func FuzzParseNetstatANO(f *testing.F) {
	seedDumps(f, "netstat-ano.txtar", ".netstat")
	seedDumps(f, "garbled.txtar", ".netstat")
	fuzzParser(f, parseNetstatANO)
}

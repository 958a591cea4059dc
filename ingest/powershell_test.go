package ingest

import (
	"net/netip"
	"testing"
	"time"
)

func TestParsePowerShell(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      []SocketEntry
		wantDiags []string
	}{
		{
			name: "csv-tcp-udp",
			in: "#TYPE Selected.Microsoft.Management.Infrastructure.CimInstance\n" +
				"\"LocalAddress\",\"LocalPort\",\"RemoteAddress\",\"RemotePort\",\"State\",\"OwningProcess\"\n" +
				"\"::\",\"135\",\"::\",\"0\",\"Listen\",\"1264\"\n" +
				"\"198.51.100.7\",\"49712\",\"203.0.113.9\",\"443\",\"Established\",\"4321\"\n" +
				"\"LocalAddress\",\"LocalPort\",\"OwningProcess\"\n" +
				"\"fe80::1%12\",\"1900\",\"5000\"\n",
			want: []SocketEntry{
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("[::]:135"), State: "LISTEN", UID: -1, Holders: []ProcKey{{PID: 1264}}, Comms: []string{""}},
				{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:49712"), Remote: netip.MustParseAddrPort("203.0.113.9:443"), State: "ESTAB", UID: -1,
					Holders: []ProcKey{{PID: 4321}}, Comms: []string{""}},
				{Proto: ProtoUDP, Local: netip.MustParseAddrPort("[fe80::1]:1900"), State: "UNCONN", UID: -1, Holders: []ProcKey{{PID: 5000}}, Comms: []string{""}},
			},
		},
		{
			name: "json-numbers-and-process",
			in: `[{"LocalAddress":"198.51.100.7","LocalPort":49712,"RemoteAddress":"203.0.113.9","RemotePort":443,"State":5,"OwningProcess":4321}]` + "\n" +
				`{"Id":4321,"ProcessName":"svchost","Path":"C:\\Temp\\svchost.exe","StartTime":"\/Date(1795867120000)\/"}` + "\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:49712"), Remote: netip.MustParseAddrPort("203.0.113.9:443"),
				State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 4321, Start: 1795867120000 * 1e6}}, Comms: []string{"svchost"}}},
		},
		{
			name:      "bad-values",
			in:        "\"LocalAddress\",\"LocalPort\",\"OwningProcess\"\n\"nope\",\"1\",\"2\"\n\"0.0.0.0\",\"99999\",\"2\"\n\"0.0.0.0\",\"53\",\"x\"\n",
			wantDiags: []string{"malformed"},
		},
		{
			name: "console-table",
			in: "LocalAddress LocalPort RemoteAddress RemotePort State       OwningProcess\n" +
				"------------ --------- ------------- ---------- -----       -------------\n" +
				"198.51.100.7 49712     203.0.113.9   443        Established 4321\n" +
				"198.51.100.7 49713     203.0.113.... 443        Established 4321\n\n" +
				"what is this\n",
			want: []SocketEntry{{Proto: ProtoTCP, Local: netip.MustParseAddrPort("198.51.100.7:49712"), Remote: netip.MustParseAddrPort("203.0.113.9:443"),
				State: "ESTAB", UID: -1, Holders: []ProcKey{{PID: 4321}}, Comms: []string{""}}},
			wantDiags: []string{"truncated", "malformed"},
		},
		{
			name:      "json-not-objects",
			in:        `[1, "x", {"Foo": 1}]`,
			wantDiags: []string{"malformed", "skipped"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParse(t, parsePowerShell, tc.in, tc.want, tc.wantDiags) })
	}
}

func TestParsePSTime(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      time.Time
		wantExact bool
		wantErr   bool
	}{
		{"json-date", `/Date(1795867120000)/`, time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC), true, false},
		{"json-date-escaped", `\/Date(1795867120000)\/`, time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC), true, false},
		{"o-format", "2026-11-28T11:58:40.1234567Z", time.Date(2026, 11, 28, 11, 58, 40, 123456700, time.UTC), true, false},
		{"offset", "2026-11-28T12:58:40.0000000+01:00", time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC), true, false},
		{"wmi", "20261128125840.500000+060", time.Date(2026, 11, 28, 11, 58, 40, 5e8, time.UTC), true, false},
		{"en-us", "11/28/2026 11:58:40 AM", time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC), false, false},
		{"de-de", "28.11.2026 11:58:40", time.Date(2026, 11, 28, 11, 58, 40, 0, time.UTC), false, false},
		{"garbage", "yesterday", time.Time{}, false, true},
		{"overflow", "/Date(99999999999999999)/", time.Time{}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns, exact, err := parsePSTime(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if got := time.Unix(0, ns).UTC(); !got.Equal(tc.want) || exact != tc.wantExact {
				t.Errorf("parsePSTime(%q) = %v exact=%v, want %v exact=%v", tc.in, got, exact, tc.want, tc.wantExact)
			}
		})
	}
}

func FuzzParsePowerShell(f *testing.F) {
	seedDumps(f, "powershell.txtar", ".csv")
	seedDumps(f, "powershell.txtar", ".json")
	seedDumps(f, "garbled.txtar", "truncated.json")
	fuzzParser(f, parsePowerShell)
}

package ingest

import (
	"fmt"
	"net/netip"
	"slices"
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

// TestLsofFFieldLists: field lists that leave out f, t or P (real shapes
// from lsof 4.95.0) give the same sockets as the full list, entered as TCP
// and UDP when P is missing; -FpcPn, where each file set starts at its P
// line, was not even recognised as lsof output.
func TestLsofFFieldLists(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // proto local remote
	}{
		{"pcfn", "p636\ncpython3\nf3\nn198.51.100.1:8000\nf4\nn198.51.100.1:8000->198.51.100.2:40003\n",
			[]string{"6 198.51.100.1:8000 ", "17 198.51.100.1:8000 ", "6 198.51.100.1:8000 198.51.100.2:40003", "17 198.51.100.1:8000 198.51.100.2:40003"}},
		{"pcPn", "p636\ncpython3\nPTCP\nn198.51.100.1:8000\nPTCP\nn198.51.100.1:8000->198.51.100.2:40003\np729\ncpython3\nPUDP\nn*:40005\n",
			[]string{"6 198.51.100.1:8000 ", "6 198.51.100.1:8000 198.51.100.2:40003", "17 [::]:40005 "}},
		{"pctn", "p729\ncpython3\ntIPv4\nn*:40005\ntIPv6\nn[2001:db8::1]:40002->[2001:db8::2]:9000\n",
			[]string{"6 0.0.0.0:40005 ", "17 0.0.0.0:40005 ", "6 [2001:db8::1]:40002 [2001:db8::2]:9000", "17 [2001:db8::1]:40002 [2001:db8::2]:9000"}},
		{"pcftPn", "p636\ncpython3\nf3\ntIPv4\nPTCP\nn198.51.100.1:8000\nf5\ntunix\nn/run/x.sock\n",
			[]string{"6 198.51.100.1:8000 "}},
	} {
		s, _, err := parseLsofF(strings.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var got []string
		for _, e := range s.Sockets {
			r := ""
			if e.Remote.IsValid() {
				r = e.Remote.String()
			}
			got = append(got, fmt.Sprintf("%d %v %s", e.Proto, e.Local, r))
		}
		slices.Sort(got)
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: sockets\n got %q\nwant %q", tc.name, got, tc.want)
		}
		if f, err := DetectSocketDump([]byte(tc.in)); err != nil || f != FormatLsofF {
			t.Errorf("%s: detected as %q, %v", tc.name, f, err)
		}
	}
}

package ingest

import (
	"strings"
	"testing"
)

// testConntrackListing mixes conntrack -L and /proc/net/nf_conntrack lines:
// a masqueraded TCP connection, an untranslated UDP flow, a published port
// (DNAT) over IPv6, an ICMP entry (no ports), conntrack's summary line and
// a broken line.
const testConntrackListing = `tcp      6 431999 ESTABLISHED src=203.0.113.2 dst=198.51.100.2 sport=56954 dport=9000 src=198.51.100.2 dst=198.51.100.1 sport=9000 dport=56954 [ASSURED] mark=0 use=1
ipv4     2 udp      17 29 src=198.51.100.1 dst=198.51.100.53 sport=40000 dport=53 src=198.51.100.53 dst=198.51.100.1 sport=53 dport=40000 mark=0 zone=0 use=2
ipv6     10 tcp      6 117 TIME_WAIT src=2001:db8::9 dst=2001:db8::1 sport=50000 dport=8080 src=2001:db8:ac::2 dst=2001:db8::9 sport=80 dport=50000 [ASSURED] mark=0 zone=3 use=2
icmp     1 29 src=203.0.113.2 dst=198.51.100.2 type=8 code=0 id=7 src=198.51.100.2 dst=198.51.100.1 type=0 code=0 id=7 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.
tcp      6 10 CLOSE src=not-an-address dst=198.51.100.2 sport=1 dport=2 src=198.51.100.2 dst=198.51.100.1 sport=2 dport=1
`

func TestParseConntrack(t *testing.T) {
	recs, diags := ParseConntrack(strings.NewReader(testConntrackListing), "ct.txt", 42)
	want := []NATRecord{
		{T: 42, Proto: 6, OrigSrc: "203.0.113.2:56954", OrigDst: "198.51.100.2:9000", ReplySrc: "198.51.100.2:9000", ReplyDst: "198.51.100.1:56954"},
		{T: 42, Proto: 6, OrigSrc: "[2001:db8::9]:50000", OrigDst: "[2001:db8::1]:8080", ReplySrc: "[2001:db8:ac::2]:80", ReplyDst: "[2001:db8::9]:50000", Zone: 3},
	}
	if len(recs) != len(want) {
		t.Fatalf("records %+v", recs)
	}
	for i := range want {
		if recs[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, recs[i], want[i])
		}
	}
	if len(diags) != 1 || diags[0].Where != "line 6" {
		t.Errorf("diagnostics %v, want one for line 6", diags)
	}
}

func FuzzParseConntrack(f *testing.F) {
	f.Add([]byte(testConntrackListing))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, _ := ParseConntrack(strings.NewReader(string(data)), "fuzz", 1)
		for _, r := range recs {
			for _, e := range []string{r.OrigSrc, r.OrigDst, r.ReplySrc, r.ReplyDst} {
				if _, err := ParseEndpoint(e); err != nil {
					t.Fatalf("record with a bad endpoint: %+v", r)
				}
			}
		}
	})
}

package collect

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
)

func TestReadCounters(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "eth9", "statistics")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, n := range counterFiles {
		if err := os.WriteFile(filepath.Join(dir, n), []byte{byte('1' + i), '\n'}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := readCounters(root, "eth9")
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.IfaceCounters{RxBytes: 1, TxBytes: 2, RxPackets: 3, TxPackets: 4, RxDropped: 5, TxDropped: 6}
	if d := cmp.Diff(want, c); d != "" {
		t.Errorf("counters (-want +got):\n%s", d)
	}
	os.WriteFile(filepath.Join(dir, "tx_dropped"), []byte("x\n"), 0o644)
	if _, err := readCounters(root, "eth9"); err == nil {
		t.Error("garbled counter: no error")
	}
	if _, err := readCounters(root, "nope"); err == nil {
		t.Error("missing interface: no error")
	}
}

func TestParseCounter(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0\n", 0, false},
		{"18446744073709551615\n", 1<<64 - 1, false},
		{"-1", 0, true},
		{"", 0, true},
		{"12 3", 0, true},
	}
	for _, tc := range tests {
		got, err := parseCounter([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseCounter(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestDiffAddrs(t *testing.T) {
	old := addrSet{"eth0": {"198.51.100.1/24"}, "gone0": {"203.0.113.1/24"}}
	cur := addrSet{"eth0": {"198.51.100.2/24", "2001:db8::1/64"}, "new0": {"203.0.113.9/24"}}
	got := diffAddrs(old, cur, 7)
	want := []ingest.AddrChange{
		{T: 7, Iface: "eth0", Addr: "198.51.100.1/24", Action: "del"},
		{T: 7, Iface: "eth0", Addr: "198.51.100.2/24", Action: "add"},
		{T: 7, Iface: "eth0", Addr: "2001:db8::1/64", Action: "add"},
		{T: 7, Iface: "gone0", Addr: "203.0.113.1/24", Action: "del"},
		{T: 7, Iface: "new0", Addr: "203.0.113.9/24", Action: "add"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("diff (-want +got):\n%s", d)
	}
	if got := diffAddrs(cur, cur, 1); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
}

func TestLinkTypeFor(t *testing.T) {
	for _, tc := range []struct {
		hw   int
		want ingest.LinkType
		ok   bool
	}{{1, ingest.LinkEthernet, true}, {772, ingest.LinkEthernet, true}, {65534, ingest.LinkRaw, true}, {32, 0, false}} {
		lt, ok := linkTypeFor(tc.hw)
		if lt != tc.want || ok != tc.ok {
			t.Errorf("linkTypeFor(%d) = %v, %v", tc.hw, lt, ok)
		}
	}
}

func TestListInterfaces(t *testing.T) {
	ifs, err := listInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	var lo bool
	for _, i := range ifs {
		if i.Name == "lo" {
			lo = true
		}
	}
	if !lo {
		t.Errorf("no lo in %v", ifs)
	}
}

// TestPollNet: the netlink poll agrees with net.Interfaces' addresses and
// with the sysfs counters read just before and after it.
func TestPollNet(t *testing.T) {
	ifs, err := listInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	sysfs := func() map[string]ingest.IfaceCounters {
		m := map[string]ingest.IfaceCounters{}
		for _, i := range ifs {
			if c, err := readCounters(sysClassNet, i.Name); err == nil {
				m[i.Name] = c
			}
		}
		return m
	}
	before := sysfs()
	snap, err := pollNet()
	if err != nil {
		t.Fatal(err)
	}
	after := sysfs()
	if want := addrsOf(ifs); !reflect.DeepEqual(snap.addrs, want) {
		t.Errorf("addresses:\n got %v\nwant %v", snap.addrs, want)
	}
	if _, ok := snap.counters["lo"]; !ok {
		t.Fatalf("no counters for lo: %v", snap.counters)
	}
	for name, c := range snap.counters {
		b, a := before[name], after[name]
		in := func(x, lo, hi uint64) bool { return lo <= x && x <= hi }
		if !in(c.RxBytes, b.RxBytes, a.RxBytes) || !in(c.TxBytes, b.TxBytes, a.TxBytes) ||
			!in(c.RxPackets, b.RxPackets, a.RxPackets) || !in(c.TxPackets, b.TxPackets, a.TxPackets) ||
			!in(c.RxDropped, b.RxDropped, a.RxDropped) || !in(c.TxDropped, b.TxDropped, a.TxDropped) {
			t.Errorf("%s: netlink %+v not between sysfs %+v and %+v", name, c, b, a)
		}
	}
}

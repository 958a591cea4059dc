package sockwatch

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ctMsg builds a ctnetlink entry message body (nfgenmsg + attributes).
func ctMsg(orig, reply CtTuple, zone uint16) []byte {
	attr := func(typ uint16, v []byte) []byte {
		b := make([]byte, 4, 4+len(v)+3)
		binary.LittleEndian.PutUint16(b, uint16(4+len(v)))
		binary.LittleEndian.PutUint16(b[2:], typ)
		b = append(b, v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	be16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	tuple := func(typ uint16, t CtTuple) []byte {
		var ip []byte
		if t.Src.Addr().Is4() {
			s, d := t.Src.Addr().As4(), t.Dst.Addr().As4()
			ip = append(attr(ctaIPv4Src, s[:]), attr(ctaIPv4Dst, d[:])...)
		} else {
			s, d := t.Src.Addr().As16(), t.Dst.Addr().As16()
			ip = append(attr(ctaIPv6Src, s[:]), attr(ctaIPv6Dst, d[:])...)
		}
		proto := append(attr(ctaProtoNum, []byte{t.Proto}), attr(ctaProtoSrcPort, be16(t.Src.Port()))...)
		proto = append(proto, attr(ctaProtoDstPort, be16(t.Dst.Port()))...)
		return attr(typ|0x8000, append(attr(ctaTupleIP|0x8000, ip), attr(ctaTupleProto|0x8000, proto)...))
	}
	b := []byte{unix.AF_INET, 0, 0, 0}
	b = append(b, tuple(ctaTupleOrig, orig)...)
	b = append(b, tuple(ctaTupleReply, reply)...)
	b = append(b, attr(ctaZone, be16(zone))...)
	return b
}

func TestParseCtEntry(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, want := range []CtEntry{
		{Orig: CtTuple{6, ap("203.0.113.2:40000"), ap("198.51.100.2:443")}, Reply: CtTuple{6, ap("198.51.100.2:443"), ap("198.51.100.1:61000")}, Zone: 3},
		{Orig: CtTuple{17, ap("[2001:db8::1]:5353"), ap("[2001:db8::2]:53")}, Reply: CtTuple{17, ap("[2001:db8::2]:53"), ap("[2001:db8::1]:5353")}},
	} {
		msg := ctMsg(want.Orig, want.Reply, want.Zone)
		var got CtEntry
		if err := parseCtEntry(msg, &got); err != nil || got != want {
			t.Errorf("parseCtEntry = %+v, %v; want %+v", got, err, want)
		}
		if got.Translated() != (want.Orig.Proto == 6) {
			t.Errorf("%+v: Translated = %v", got, got.Translated())
		}
		// Every cut is an error or a shorter valid entry, never a panic.
		for n := range len(msg) {
			_ = parseCtEntry(msg[:n], &got)
		}
	}
	var e CtEntry
	if err := parseCtEntry([]byte{2, 0, 0, 0}, &e); err == nil {
		t.Error("an entry without tuples parsed")
	}
}

func FuzzParseCtEntry(f *testing.F) {
	ap := netip.MustParseAddrPort
	f.Add(ctMsg(CtTuple{6, ap("203.0.113.2:40000"), ap("198.51.100.2:443")}, CtTuple{6, ap("198.51.100.2:443"), ap("198.51.100.1:61000")}, 0))
	f.Add(ctMsg(CtTuple{17, ap("[2001:db8::1]:1"), ap("[2001:db8::2]:2")}, CtTuple{17, ap("[2001:db8::2]:2"), ap("[2001:db8::1]:1")}, 7))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e CtEntry
		if parseCtEntry(b, &e) == nil && (!e.Orig.Src.IsValid() || !e.Reply.Src.IsValid()) {
			t.Fatalf("entry without tuples accepted: %+v", e)
		}
	})
}

// TestConntrackDumpLive compares a dump of a namespace's conntrack table
// with the kernel's own text listing of it (/proc/net/nf_conntrack): a
// source-NAT'ed UDP flow, an untranslated one and an IPv6 one.
func TestConntrackDumpLive(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs nft (nftables)")
		}
		t.Skip("needs nft (nftables)")
	}
	nsA, _ := setupNetns(t)
	dev := "swa" + nsA[3:]
	run(t, "ip", "-n", nsA, "addr", "add", "2001:db8:77::1/64", "dev", dev, "nodad")
	run(t, "ip", "-n", "swB"+nsA[3:], "addr", "add", "2001:db8:77::2/64", "dev", "swb"+nsA[3:], "nodad")
	for _, rule := range []string{
		"add table inet fbct",
		"add chain inet fbct out { type filter hook output priority 0 ; }",
		"add rule inet fbct out ct state new accept",
		"add table ip fbnat",
		"add chain ip fbnat post { type nat hook postrouting priority 100 ; }",
		"add rule ip fbnat post udp dport 9999 snat to 198.51.100.1:40000",
	} {
		run(t, "ip", "netns", "exec", nsA, "nft", rule)
	}
	for _, c := range []struct{ dst, dev string }{{"198.51.100.2", dev}, {"2001:db8:77::2", dev}} {
		if r := run(t, "ip", "-n", nsA, "route", "get", c.dst); !strings.Contains(r, "dev "+c.dev) {
			t.Fatalf("%s is not routed via %s: %s", c.dst, c.dev, r)
		}
	}
	run(t, "ip", "netns", "exec", nsA, "bash", "-c",
		"echo x > /dev/udp/198.51.100.2/9999; echo x > /dev/udp/198.51.100.2/9998; echo x > /dev/udp/2001:db8:77::2/9997")

	nsfd, err := unix.Open("/run/netns/"+nsA, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nsfd)
	var c *CtConn
	if err := inNetns(nsfd, func() (err error) { c, err = OpenConntrack(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	var nat int
	n, bad, err := c.Dump(func(e *CtEntry) {
		got = append(got, fmt.Sprintf("%d %s %s %s %s", e.Orig.Proto, e.Orig.Src, e.Orig.Dst, e.Reply.Src, e.Reply.Dst))
		if e.Translated() {
			nat++
		}
	})
	if err != nil || bad != 0 || n != len(got) {
		t.Fatalf("Dump: %d entries, %d bad, %v", n, bad, err)
	}
	// The kernel's text listing: "... udp 17 29 src=A dst=B sport=1 dport=2 [UNREPLIED] src=B dst=A' sport=2 dport=1' ...".
	var want []string
	for _, line := range strings.Split(run(t, "ip", "netns", "exec", nsA, "cat", "/proc/net/nf_conntrack"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		kv := map[string][]string{}
		for _, w := range f {
			if k, v, ok := strings.Cut(w, "="); ok {
				kv[k] = append(kv[k], v)
			}
		}
		if len(kv["src"]) < 2 || len(kv["sport"]) < 2 {
			continue
		}
		ep := func(k, p string, i int) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr(kv[k][i]), uint16(atoiOr(kv[p][i])))
		}
		want = append(want, fmt.Sprintf("%s %s %s %s %s", f[3], ep("src", "sport", 0), ep("dst", "dport", 0), ep("src", "sport", 1), ep("dst", "dport", 1)))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || len(got) < 3 || nat != 1 {
		t.Errorf("dump (%d translated):\n%s\n/proc/net/nf_conntrack:\n%s", nat, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func atoiOr(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

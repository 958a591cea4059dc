package collect

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func writeSample(t *testing.T, w io.Writer) []time.Time {
	t.Helper()
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	pw, err := NewPcapngWriter(w, "flowblame test", "linux", []PcapngIface{
		{Name: "veth0", Link: ingest.LinkEthernet, SnapLen: 96, MAC: mac, Filter: "udp",
			Addrs: []netip.Prefix{netip.MustParsePrefix("198.51.100.1/24"), netip.MustParsePrefix("2001:db8::1/64")}},
		{Name: "tun0", Link: ingest.LinkRaw, SnapLen: 96},
	})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	var ts []time.Time
	for i := range 5 {
		tm := base.Add(time.Duration(i) * time.Millisecond)
		ts = append(ts, tm)
		f := frame(17, 1000, 2000, 96+i)
		flags := FlagInbound
		if i%2 == 1 {
			flags = FlagOutbound
		}
		if err := pw.WritePacket(0, tm, 1400+i, f[:93+i%3], flags); err != nil {
			t.Fatal(err)
		}
	}
	raw := frame(17, 1, 2, 60)[14:]
	if err := pw.WritePacket(1, base, len(raw), raw, 0); err != nil {
		t.Fatal(err)
	}
	if err := pw.WritePacket(2, base, 1, raw, 0); err == nil {
		t.Error("unknown interface: no error")
	}
	for i := range 2 {
		if err := pw.WriteStats(i, base.Add(time.Second), PcapngStats{Start: base, End: base.Add(time.Second), Received: 6, Dropped: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := pw.Flush(); err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestPcapngWriterReadBack(t *testing.T) {
	var buf bytes.Buffer
	ts := writeSample(t, &buf)
	r, err := pcapgo.NewNgReader(bytes.NewReader(buf.Bytes()), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n < 5 {
			if !ci.Timestamp.Equal(ts[n]) {
				t.Errorf("packet %d time %v, want %v", n, ci.Timestamp, ts[n])
			}
			if ci.Length != 1400+n || len(data) != 93+n%3 || ci.InterfaceIndex != 0 {
				t.Errorf("packet %d: len %d caplen %d iface %d", n, ci.Length, len(data), ci.InterfaceIndex)
			}
		} else if ci.InterfaceIndex != 1 {
			t.Errorf("packet %d iface %d, want 1", n, ci.InterfaceIndex)
		}
		n++
	}
	if n != 6 {
		t.Fatalf("read %d packets, want 6", n)
	}
	if r.NInterfaces() != 2 {
		t.Fatalf("interfaces %d", r.NInterfaces())
	}
	i0, _ := r.Interface(0)
	i1, _ := r.Interface(1)
	if i0.Name != "veth0" || i0.LinkType != layers.LinkTypeEthernet || i0.SnapLength != 96 || i1.LinkType != layers.LinkTypeRaw {
		t.Errorf("interfaces: %+v / %+v", i0, i1)
	}
	if i1.Statistics.PacketsDropped != 1 || i1.Statistics.PacketsReceived != 6 {
		t.Errorf("stats iface1: %+v", i1.Statistics)
	}
}

func TestPcapngWriterTruncated(t *testing.T) {
	var buf bytes.Buffer
	writeSample(t, &buf)
	cut := buf.Bytes()[:buf.Len()-150]
	r, err := pcapgo.NewNgReader(bytes.NewReader(cut), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for {
		_, _, err := r.ReadPacketData()
		if err != nil {
			if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Logf("end: %v", err)
			}
			break
		}
		n++
	}
	if n < 4 {
		t.Errorf("read %d packets from the cut file, want >= 4", n)
	}
}

func TestPcapngWriterTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	var buf bytes.Buffer
	writeSample(t, &buf)
	p := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tshark, "-r", p, "-T", "fields", "-e", "frame.interface_name",
		"-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.packet_flags_direction", "-e", "udp.dstport").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"veth0\t1400\t93\t0x00000001\t2000",
		"veth0\t1401\t94\t0x00000002\t2000",
	}
	if len(lines) != 6 {
		t.Fatalf("tshark printed %d lines:\n%s", len(lines), out)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if !strings.HasPrefix(lines[5], "tun0\t") || !strings.HasSuffix(lines[5], "\t2") {
		t.Errorf("raw line = %q", lines[5])
	}
	out, err = exec.Command(tshark, "-r", p, "-q", "-z", "io,stat,0").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark stats: %v\n%s", err, out)
	}
}

func TestPcapngWriterIngest(t *testing.T) {
	var buf bytes.Buffer
	writeSample(t, &buf)
	p := filepath.Join(t.TempDir(), "x.pcapng")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := ingest.OpenCapture(p, ingest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var (
		pkt  ingest.Packet
		dirs []ingest.Direction
		wire int
	)
	for {
		err := src.Next(&pkt)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, pkt.Dir)
		wire += pkt.WireLen
	}
	want := []ingest.Direction{ingest.DirIn, ingest.DirOut, ingest.DirIn, ingest.DirOut, ingest.DirIn, ingest.DirUnknown}
	if d := cmp.Diff(want, dirs); d != "" {
		t.Errorf("directions (-want +got):\n%s", d)
	}
	if wire != 1400+1401+1402+1403+1404+46 {
		t.Errorf("wire bytes %d", wire)
	}
	ifs := src.Interfaces()
	if len(ifs) != 2 || ifs[0].Name != "veth0" || ifs[0].Link != ingest.LinkEthernet || ifs[1].Link != ingest.LinkRaw {
		t.Fatalf("interfaces %+v", ifs)
	}
	if !ifs[1].HasStats || ifs[1].Received != 6 || ifs[1].Dropped != 1 {
		t.Errorf("iface 1 stats %+v", ifs[1])
	}
	if len(ifs[0].MAC) != 6 || len(ifs[0].Addrs) != 2 {
		t.Logf("ingest did not read if_MACaddr/if_IPv4addr/if_IPv6addr: %+v", ifs[0])
	}
}

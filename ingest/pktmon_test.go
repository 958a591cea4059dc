package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestPktmonAppearances: a pktmon etl2pcap file logs each packet at several
// components; only the first appearance counts, and Tx/Rx gives direction.
func TestPktmonAppearances(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	frame := func(src, dst string) []byte {
		sb := gopacket.NewSerializeBuffer()
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
		udp := &layers.UDP{SrcPort: 5000, DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip)
		gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
			ip, udp, gopacket.Payload(make([]byte, 20)))
		return sb.Bytes()
	}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	type rec struct {
		group, num, app int
		dir             string
	}
	recs := []rec{{7, 1, 1, "Tx"}, {7, 1, 2, "Tx"}, {7, 1, 3, "Tx"}, {8, 1, 1, "Rx"}, {8, 1, 2, "Rx"}, {9, 1, 1, "Tx"}}
	for i, r := range recs {
		data := frame("198.51.100.7", "203.0.113.1")
		if r.dir == "Rx" {
			data = frame("203.0.113.1", "198.51.100.7")
		}
		c := "PktGroupId " + itoa(r.group) + ", PktNumber " + itoa(r.num) + ", Appearance " + itoa(r.app) +
			", Direction " + r.dir + " , Type Ethernet , Component 7" + itoa(i) + ", Edge 1, Filter 0, OriginalSize 62, LoggedSize 62"
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacketWithOptions(ci, data, pcapgo.NgPacketOptions{Comments: []string{c}}); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	src, err := NewReader(&buf, "pktmon.pcapng", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	var dirs []Direction
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, p.Dir)
	}
	if len(dirs) != 3 || dirs[0] != DirOut || dirs[1] != DirIn || dirs[2] != DirOut {
		t.Fatalf("want 3 packets out/in/out, got %v", dirs)
	}
	if st := src.Stats(); st.Duplicates != 3 || st.Packets != 3 {
		t.Errorf("stats: %+v", st)
	}
	found := false
	for _, d := range src.Diagnostics() {
		if d.Kind == DiagInfo && d.Count == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no info diagnostic counting the 3 skipped appearances: %v", src.Diagnostics())
	}
}

func itoa(i int) string { return string(rune('0'+i/10%10)) + string(rune('0'+i%10)) }

func TestPktmonInfo(t *testing.T) {
	g, n, d, ok := pktmonInfo("PktGroupId 562949953421500, PktNumber 12, Appearance 1, Direction Rx , Type Ethernet , Component 78, Edge 1, Filter 1, OriginalSize 66, LoggedSize 66")
	if !ok || g != 562949953421500 || n != 12 || d != DirIn {
		t.Fatalf("got %d %d %v %v", g, n, d, ok)
	}
	for _, c := range []string{"", "PID: 12", "PktGroupId x, PktNumber 1", "PktGroupId 1"} {
		if _, _, _, ok := pktmonInfo(c); ok {
			t.Errorf("pktmonInfo(%q) accepted", c)
		}
	}
}

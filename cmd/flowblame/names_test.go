package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowblame/flowblame/collect"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/internal/dnsmsg"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestRemoteNames: the host resolves pool.supportxmr.example and then
// talks to the address the answer gave; the report names the remote host
// by that name (the where column, JSON remotes[].name), offline, from the
// capture's own DNS answer.
func TestRemoteNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.pcapng")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := collect.NewPcapngWriter(f, "test", "Linux", []collect.PcapngIface{{Name: "eth0", Link: ingest.LinkEthernet, SnapLen: 256}})
	if err != nil {
		t.Fatal(err)
	}
	query := dnsmsg.Query(0x1234, "pool.supportxmr.example")
	answer := dnsmsg.Response(0x1234, "pool.supportxmr.example", "", "45.9.148.21")
	frame := func(src, dst string, sport, dport int, tcp bool, payload []byte) []byte {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
		var l4 gopacket.SerializableLayer
		if tcp {
			ip.Protocol = layers.IPProtocolTCP
			t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), ACK: true, PSH: true, Window: 500}
			t.SetNetworkLayerForChecksum(ip)
			l4 = t
		} else {
			u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
			u.SetNetworkLayerForChecksum(ip)
			l4 = u
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	ts := time.Unix(1_700_000_000, 0)
	frames := [][]byte{frame("198.51.100.7", "203.0.113.53", 40000, 53, false, query), frame("203.0.113.53", "198.51.100.7", 53, 40000, false, answer)}
	for range 20 {
		frames = append(frames, frame("198.51.100.7", "45.9.148.21", 45678, 3333, true, make([]byte, 200)))
	}
	for i, fr := range frames {
		if err := w.WritePacket(0, ts.Add(time.Duration(i)*100*time.Millisecond), len(fr), fr, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, _, err := runArgs(t, "analyze", "-f", "json", "--local", "198.51.100.7", path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Remotes []struct{ Addr, Name string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	named := false
	for _, r := range doc.Remotes {
		named = named || r.Addr == "45.9.148.21" && r.Name == "pool.supportxmr.example"
		if r.Addr != "45.9.148.21" && r.Name != "" {
			t.Errorf("%s named %q", r.Addr, r.Name)
		}
	}
	if !named {
		t.Errorf("45.9.148.21 not named pool.supportxmr.example: %+v", doc.Remotes)
	}
	text, _, err := runArgs(t, "analyze", "--local", "198.51.100.7", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "pool.supportxmr.example · NL") {
		t.Errorf("the where column does not name the host:\n%s", text)
	}
}

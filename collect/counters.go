package collect

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// sysClassNet is where the kernel exposes interface counters.
const sysClassNet = "/sys/class/net"

// counterFiles are the /sys/class/net/X/statistics files read each second.
var counterFiles = [...]string{"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_dropped", "tx_dropped"}

// parseCounter parses one sysfs counter file ("12345\n").
func parseCounter(b []byte) (uint64, error) {
	s := string(bytes.TrimSpace(b))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse counter %q: %w", s, ingest.ErrMalformed)
	}
	return v, nil
}

// readCounters reads one interface's kernel counters below root
// (normally /sys/class/net).
func readCounters(root, iface string) (ingest.IfaceCounters, error) {
	var c ingest.IfaceCounters
	dst := [...]*uint64{&c.RxBytes, &c.TxBytes, &c.RxPackets, &c.TxPackets, &c.RxDropped, &c.TxDropped}
	for i, name := range counterFiles {
		b, err := os.ReadFile(filepath.Join(root, iface, "statistics", name))
		if err != nil {
			return c, fmt.Errorf("read counters of %s: %w", iface, err)
		}
		v, err := parseCounter(b)
		if err != nil {
			return c, fmt.Errorf("read counters of %s/%s: %w", iface, name, err)
		}
		*dst[i] = v
	}
	return c, nil
}

// hwType reads the ARPHRD_* type of an interface (/sys/class/net/X/type).
func hwType(root, iface string) (int, error) {
	b, err := os.ReadFile(filepath.Join(root, iface, "type"))
	if err != nil {
		return 0, err
	}
	v, err := parseCounter(b)
	return int(v), err
}

// ARPHRD_* values that decide how a SOCK_RAW packet socket frames packets.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
	arphrdTunnel   = 768
	arphrdTunnel6  = 769
	arphrdSit      = 776
	arphrdNone     = 65534
)

// linkTypeFor maps an ARPHRD type to the pcap link type of frames read from
// a SOCK_RAW packet socket on that interface; ok is false for interfaces
// the collector does not capture (their traffic still shows in counters).
func linkTypeFor(arphrd int) (ingest.LinkType, bool) {
	switch arphrd {
	case arphrdEther, arphrdLoopback:
		return ingest.LinkEthernet, true
	case arphrdNone, arphrdTunnel, arphrdTunnel6, arphrdSit:
		return ingest.LinkRaw, true
	}
	return 0, false
}

// listInterfaces returns every interface with its MAC, MTU, flags and
// addresses (CIDR, sorted), ordered by index.
func listInterfaces() ([]ingest.IfaceInfo, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]ingest.IfaceInfo, 0, len(ifs))
	for _, ifc := range ifs {
		info := ingest.IfaceInfo{
			Index: ifc.Index,
			Name:  ifc.Name,
			MTU:   ifc.MTU,
			Addrs: []string{},
		}
		if len(ifc.HardwareAddr) > 0 {
			info.MAC = ifc.HardwareAddr.String()
		}
		if f := ifc.Flags.String(); f != "0" {
			info.Flags = strings.Split(f, "|")
		}
		addrs, err := ifc.Addrs()
		if err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					info.Addrs = append(info.Addrs, ipn.String())
				}
			}
		}
		slices.Sort(info.Addrs)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b ingest.IfaceInfo) int { return a.Index - b.Index })
	return out, nil
}

// addrSet maps interface name to its sorted CIDR addresses.
type addrSet map[string][]string

func addrsOf(ifs []ingest.IfaceInfo) addrSet {
	m := addrSet{}
	for _, i := range ifs {
		m[i.Name] = i.Addrs
	}
	return m
}

// diffAddrs lists the addresses added and removed between two polls, sorted
// by interface, action ("del" before "add") and address.
func diffAddrs(old, cur addrSet, t int64) []ingest.AddrChange {
	var ch []ingest.AddrChange
	names := make([]string, 0, len(old)+len(cur))
	for n := range old {
		names = append(names, n)
	}
	for n := range cur {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		for _, a := range old[n] {
			if !slices.Contains(cur[n], a) {
				ch = append(ch, ingest.AddrChange{T: t, Iface: n, Addr: a, Action: "del"})
			}
		}
		for _, a := range cur[n] {
			if !slices.Contains(old[n], a) {
				ch = append(ch, ingest.AddrChange{T: t, Iface: n, Addr: a, Action: "add"})
			}
		}
	}
	return ch
}

package collect

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"github.com/flowblame/flowblame/ingest"
)

// netSnapshot is one poll of the kernel's interface table: every
// interface's counters and addresses, by name.
type netSnapshot struct {
	counters map[string]ingest.IfaceCounters
	addrs    addrSet
	links    map[string]linkState
}

// linkState is an interface's index and whether it is up and a loopback.
type linkState struct {
	index        int
	up, loopback bool
}

// Link and address attributes (linux/if_link.h, linux/if_addr.h).
const (
	iflaIfname  = 3
	iflaStats64 = 23
	ifaAddress  = 1
	ifaLocal    = 2
)

// pollNet reads every interface's kernel counters and addresses with two
// rtnetlink dumps (RTM_GETLINK with its rtnl_link_stats64, RTM_GETADDR): the
// collector does this every second, and six sysfs files per interface plus
// one address dump per interface cost about ten times as much, growing with
// the square of the number of interfaces (a container host has hundreds).
// The counters are the same the kernel shows in /sys/class/net/X/statistics
// (both come from dev_get_stats); addresses are formatted as listInterfaces
// formats them.
func pollNet() (netSnapshot, error) {
	snap := netSnapshot{counters: map[string]ingest.IfaceCounters{}, addrs: addrSet{}, links: map[string]linkState{}}
	links, err := netlinkDump(syscall.RTM_GETLINK, syscall.RTM_NEWLINK)
	if err != nil {
		return snap, fmt.Errorf("list interfaces: %w", err)
	}
	names := map[int32]string{}
	for _, m := range links {
		if len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		index := int32(binary.NativeEndian.Uint32(m.Data[4:8]))
		flags := binary.NativeEndian.Uint32(m.Data[8:12])
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		var (
			name  string
			c     ingest.IfaceCounters
			stats bool
		)
		for _, a := range attrs {
			switch a.Attr.Type {
			case iflaIfname:
				name = string(trimNul(a.Value))
			case iflaStats64:
				if len(a.Value) >= 64 {
					// rtnl_link_stats64: rx_packets, tx_packets, rx_bytes,
					// tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped.
					u := func(i int) uint64 { return binary.NativeEndian.Uint64(a.Value[8*i:]) }
					c = ingest.IfaceCounters{RxPackets: u(0), TxPackets: u(1), RxBytes: u(2), TxBytes: u(3), RxDropped: u(6), TxDropped: u(7)}
					stats = true
				}
			}
		}
		if name == "" {
			continue
		}
		names[index] = name
		snap.links[name] = linkState{index: int(index), up: flags&syscall.IFF_UP != 0, loopback: flags&syscall.IFF_LOOPBACK != 0}
		snap.addrs[name] = []string{}
		if !stats { // not expected from any kernel since 2.6.35; sysfs then
			if c, err = readCounters(sysClassNet, name); err != nil {
				continue
			}
		}
		snap.counters[name] = c
	}
	addrs, err := netlinkDump(syscall.RTM_GETADDR, syscall.RTM_NEWADDR)
	if err != nil {
		return snap, fmt.Errorf("list addresses: %w", err)
	}
	for _, m := range addrs {
		if len(m.Data) < syscall.SizeofIfAddrmsg {
			continue
		}
		family, bits := m.Data[0], int(m.Data[1])
		name, ok := names[int32(binary.NativeEndian.Uint32(m.Data[4:8]))]
		if !ok {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		// As Go's net package: on a point-to-point IPv4 link IFA_LOCAL is
		// the interface's own address and IFA_ADDRESS the peer's.
		local := slices.ContainsFunc(attrs, func(a syscall.NetlinkRouteAttr) bool { return a.Attr.Type == ifaLocal })
		for _, a := range attrs {
			if a.Attr.Type != ifaAddress && a.Attr.Type != ifaLocal || local && a.Attr.Type == ifaAddress {
				continue
			}
			var ip netip.Addr
			switch {
			case family == syscall.AF_INET && len(a.Value) == 4:
				ip = netip.AddrFrom4([4]byte(a.Value))
			case family == syscall.AF_INET6 && len(a.Value) == 16:
				ip = netip.AddrFrom16([16]byte(a.Value))
			default:
				continue
			}
			if bits <= ip.BitLen() {
				snap.addrs[name] = append(snap.addrs[name], netip.PrefixFrom(ip, bits).String())
			}
			break
		}
	}
	for _, a := range snap.addrs {
		slices.Sort(a)
	}
	return snap, nil
}

// netlinkDump runs one rtnetlink dump request and returns its messages of
// type want.
func netlinkDump(req int, want uint16) ([]syscall.NetlinkMessage, error) {
	b, err := syscall.NetlinkRIB(req, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.Header.Type == want {
			out = append(out, m)
		}
	}
	return out, nil
}

func trimNul(b []byte) []byte {
	if i := slices.Index(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

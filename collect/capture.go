package collect

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/flowblame/flowblame/ingest"
	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Ring geometry (spec/collector.md §1): 1 MiB blocks retired after 64 ms,
// 200 ms poll timeout, 8–64 MiB of ring per interface.
const (
	ringBlockSize    = 1 << 20
	ringBlockTimeout = 64 * time.Millisecond
	ringPollTimeout  = 200 * time.Millisecond
	ringTotalBudget  = 64 << 20
	ringMinPerIface  = 8 << 20
	ringHardBudget   = 256 << 20
	// drainLimit bounds how long a ring is drained after the stop signal.
	drainLimit = time.Second
)

// ringBlocks returns the number of 1 MiB blocks per interface when n
// interfaces are captured: 64 MiB shared, at least 8 MiB each, but no more
// than 256 MiB in all (then down to 2 MiB each, e.g. on a host with many
// container veths).
func ringBlocks(n int) int {
	if n < 1 {
		n = 1
	}
	per := max(ringTotalBudget/n, ringMinPerIface)
	if n*per > ringHardBudget {
		per = max(ringHardBudget/n, 2*ringBlockSize)
	}
	return per / ringBlockSize
}

// ifaceCapture is one interface's TPACKET_V3 ring and its loop state.
type ifaceCapture struct {
	pos      int // interface id in the pcapng files
	name     string
	index    int
	loopback bool
	tp       *afpacket.TPacket
	started  time.Time // frames stamped earlier were queued before the filter

	mu          sync.Mutex
	stats       afpacket.SocketStatsV3
	statsErr    error
	early       int64 // frames dropped because they predate the filter
	noDirection int64 // frames whose packet type could not be recovered
}

// openRing opens a TPACKET_V3 socket on iface and attaches prog.
func openRing(iface string, blocks int, prog []bpf.RawInstruction) (*afpacket.TPacket, error) {
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(iface),
		afpacket.TPacketVersion3,
		afpacket.SocketRaw,
		afpacket.OptFrameSize(afpacket.DefaultFrameSize),
		afpacket.OptBlockSize(ringBlockSize),
		afpacket.OptNumBlocks(blocks),
		afpacket.OptBlockTimeout(ringBlockTimeout),
		afpacket.OptPollTimeout(ringPollTimeout),
	)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("open capture ring on %s: %w (run as root or with CAP_NET_RAW)", iface, err)
		}
		return nil, fmt.Errorf("open capture ring on %s: %w", iface, err)
	}
	if err := tp.SetBPF(prog); err != nil {
		tp.Close()
		return nil, fmt.Errorf("attach bpf on %s: %w", iface, err)
	}
	return tp, nil
}

// readStats refreshes the kernel statistics (received incl. dropped, and
// dropped) of the ring.
func (c *ifaceCapture) readStats() PcapngStats {
	_, v3, err := c.tp.SocketStats()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.stats = v3
	} else {
		c.statsErr = err
	}
	return PcapngStats{Received: uint64(c.stats.Packets()), Dropped: uint64(c.stats.Drops())}
}

// run reads frames until stop is set, then drains the ring (until it is
// empty for one poll timeout, or drainLimit), writing every frame to out.
// It returns the first write error, including errMaxSize.
func (c *ifaceCapture) run(stop *atomic.Bool, out *captureSet) error {
	var drainUntil time.Time
	for {
		if drainUntil.IsZero() && stop.Load() {
			drainUntil = time.Now().Add(drainLimit)
		}
		if !drainUntil.IsZero() && time.Now().After(drainUntil) {
			return nil
		}
		data, ci, err := c.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) {
				if !drainUntil.IsZero() {
					return nil
				}
				continue
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("read %s: %w", c.name, err)
		}
		if ci.Timestamp.Before(c.started) {
			c.mu.Lock()
			c.early++
			c.mu.Unlock()
			continue
		}
		flags := uint32(0)
		if pt, ok := packetType(data, c.index); ok {
			flags = epbFlagsFor(pt)
		} else {
			c.mu.Lock()
			c.noDirection++
			c.mu.Unlock()
		}
		if err := out.write(c.pos, ci.Timestamp, ci.Length, data, flags); err != nil {
			return err
		}
	}
}

// sll_pkttype values (linux/if_packet.h).
const (
	packetHost      = 0
	packetBroadcast = 1
	packetMulticast = 2
	packetOtherHost = 3
)

// epbFlagsFor maps sll_pkttype to pcapng epb_flags (direction and
// reception type).
func epbFlagsFor(pkttype uint8) uint32 {
	switch pkttype {
	case packetHost:
		return FlagInbound | FlagUnicast
	case packetBroadcast:
		return FlagInbound | FlagBroadcast
	case packetMulticast:
		return FlagInbound | FlagMulticast
	case packetOtherHost:
		return FlagInbound | FlagPromisc
	case packetOutgoing:
		return FlagOutbound
	}
	return 0
}

// TPACKET_V3 frame layout (linux/if_packet.h): a 48-byte tpacket3_hdr
// (tp_mac, the offset of the frame from the header, at byte 24), then the
// sockaddr_ll (family at 0, ifindex at 4, pkttype at 10), then the frame
// at tp_mac. The kernel puts the frame at TPACKET_ALIGN(68 + max(maclen,
// 16)) - maclen, i.e. between 74 and 96 bytes after the header for the
// link types captured here.
const (
	tp3HdrLen     = 48
	tp3MacField   = 24
	sllIfindexOff = 4
	sllPkttypeOff = 10
	minMacOff     = 68
	maxMacOff     = 112
)

// macOffsets are the candidate tp_mac values, likeliest first: Ethernet
// (82), raw IP (96), one and two VLAN tags left in the frame (78, 74).
var macOffsets = func() []int {
	o := []int{82, 96, 78, 74}
	for off := minMacOff; off <= maxMacOff; off += 2 {
		if off != 82 && off != 96 && off != 78 && off != 74 {
			o = append(o, off)
		}
	}
	return o
}()

// packetType recovers the sll_pkttype of a frame returned by gopacket's
// ZeroCopyReadPacketData, which points into the mmap'ed ring but exposes
// no packet type. It walks back from the frame to the candidate header
// positions and accepts one only when the header's tp_mac equals the
// distance, the sockaddr_ll family is AF_PACKET and its ifindex is the
// captured interface's. Reads stay within the ring: a frame is always at
// least 48+68 bytes into its block, more than maxMacOff. ok is false when
// no candidate matches (direction is then left unset).
func packetType(data []byte, ifindex int) (pkttype uint8, ok bool) {
	if len(data) == 0 {
		return 0, false
	}
	p := unsafe.Pointer(unsafe.SliceData(data))
	for _, off := range macOffsets {
		hdr := unsafe.Add(p, -off)
		if int(*(*uint16)(unsafe.Add(hdr, tp3MacField))) != off {
			continue
		}
		sll := unsafe.Add(hdr, tp3HdrLen)
		if *(*uint16)(sll) != unix.AF_PACKET || int(*(*int32)(unsafe.Add(sll, sllIfindexOff))) != ifindex {
			continue
		}
		return *(*uint8)(unsafe.Add(sll, sllPkttypeOff)), true
	}
	return 0, false
}

// linkOf returns the capture link type of an interface from its ARPHRD
// type in sysfs.
func linkOf(name string) (ingest.LinkType, error) {
	hw, err := hwType(sysClassNet, name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	lt, ok := linkTypeFor(hw)
	if !ok {
		return 0, fmt.Errorf("interface %s: unsupported hardware type %d (not Ethernet, loopback or raw IP)", name, hw)
	}
	return lt, nil
}

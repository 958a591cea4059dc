package collect

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowblame/flowblame/ingest"
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
	ethernet bool // link type Ethernet: VLAN tags the kernel removed are put back
	snapLen  int  // the interface's snap length (after a VLAN tag is put back)
	ring     *ring
	started  int64 // ns; frames stamped earlier were queued before the capture window
	mi       int   // position of the interface in the manifest
	// ringBytes is the ring's size; gone is set when the interface
	// disappears (its capture then ends).
	ringBytes int
	gone      atomic.Bool

	mu          sync.Mutex
	received    uint64 // kernel: frames that passed the filter, incl. dropped
	dropped     uint64 // kernel: frames dropped because the ring was full
	statsErr    error
	early       int64 // frames discarded because they predate the capture window
	noDirection int64 // frames whose packet type has no pcapng direction
	corrupt     int64 // frames lost to a malformed ring block
	vlanBuf     []byte
}

// readStats refreshes the kernel statistics (received incl. dropped, and
// dropped) of the ring.
func (c *ifaceCapture) readStats() PcapngStats {
	p, d, err := c.ring.stats()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.received += p
		c.dropped += d
	} else {
		c.statsErr = err
	}
	return PcapngStats{Received: c.received, Dropped: c.dropped}
}

// run reads blocks until stop is set, then drains the ring (until it is
// empty for one poll timeout, or drainLimit), writing every frame to out.
// It returns the first write error, including errMaxSize.
func (c *ifaceCapture) run(stop *atomic.Bool, out *captureSet) error {
	var drainUntil time.Time
	for {
		if drainUntil.IsZero() && (stop.Load() || c.gone.Load()) {
			drainUntil = time.Now().Add(drainLimit)
		}
		if !drainUntil.IsZero() && time.Now().After(drainUntil) {
			return nil
		}
		blk, err := c.ring.next()
		if err != nil {
			return fmt.Errorf("read %s: %w", c.name, err)
		}
		if blk == nil {
			if !drainUntil.IsZero() {
				return nil
			}
			continue
		}
		err = c.writeBlock(blk, out)
		c.ring.release()
		if err != nil {
			return err
		}
	}
}

// writeBlock writes the frames of one ring block to out under one lock.
func (c *ifaceCapture) writeBlock(blk []byte, out *captureSet) error {
	var (
		werr         error
		early, noDir int64
	)
	out.mu.Lock()
	bad := walkBlock(blk, func(f *ringFrame) {
		if werr != nil {
			return
		}
		if f.ts < c.started {
			early++
			return
		}
		flags := epbFlagsFor(f.pkttype)
		if flags == 0 {
			noDir++
		}
		data, wire := f.data, f.wire
		if f.vlan && c.ethernet && len(data) >= 12 {
			data, wire = c.withVLAN(f), wire+4
		}
		werr = out.writeLocked(c.pos, f.ts, wire, data, flags)
	})
	out.mu.Unlock()
	if early+noDir+int64(bad) > 0 {
		c.mu.Lock()
		c.early += early
		c.noDirection += noDir
		c.corrupt += int64(bad)
		c.mu.Unlock()
	}
	return werr
}

// withVLAN returns f's frame with the 802.1Q tag that VLAN offload took out
// of it put back after the MAC addresses, as libpcap does, cut to the snap
// length.
func (c *ifaceCapture) withVLAN(f *ringFrame) []byte {
	b := append(c.vlanBuf[:0], f.data[:12]...)
	b = binary.BigEndian.AppendUint16(b, f.tpid)
	b = binary.BigEndian.AppendUint16(b, f.tci)
	b = append(b, f.data[12:]...)
	c.vlanBuf = b
	if c.snapLen > 0 && len(b) > c.snapLen {
		b = b[:c.snapLen]
	}
	return b
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

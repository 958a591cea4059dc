package collect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ring is one interface's TPACKET_V3 receive ring (packet(7),
// Documentation/networking/packet_mmap.rst): the kernel copies each frame
// that passes the socket filter into 1 MiB blocks of a region shared with
// this process and hands a block over whole when it is full or its retire
// timeout expires. Reading costs one wake-up of Go's network poller per
// block and nothing per frame, and every frame comes with its sockaddr_ll,
// so the packet type
// (the direction) is read, not guessed.
//
// It is written on golang.org/x/sys/unix alone (spec/collector.md
// "rawv3"): gopacket's afpacket reader hides the packet type and spends
// about a quarter more CPU per frame.
type ring struct {
	fd        int
	file      *os.File        // fd, registered with Go's network poller
	rc        syscall.RawConn // waits for a block without a blocking system call
	mem       []byte          // nBlocks blocks of blockSize bytes, mmap'ed
	blockSize int
	nBlocks   int
	cur       int // the block to read next
	timeout   time.Duration
}

// Block descriptor (struct tpacket_block_desc with tpacket_hdr_v1) and
// frame header (struct tpacket3_hdr) offsets.
const (
	blkStatusOff   = 8
	blkNumPktsOff  = 12
	blkFirstPktOff = 16
	blkLenOff      = 20
	blkHdrLen      = 48 // where the kernel puts the first frame

	tpNextOff    = 0
	tpSecOff     = 4
	tpNsecOff    = 8
	tpSnaplenOff = 12
	tpLenOff     = 16
	tpStatusOff  = 20
	tpMacOff     = 24
	tpVlanTCIOff = 32
	tpVlanTPIDOf = 36
	tp3HdrLen    = 48 // the sockaddr_ll follows at TPACKET_ALIGN(48)

	sllPkttypeOff = 10
	sllLen        = 20
)

// openRing opens a TPACKET_V3 ring of blocks × ringBlockSize bytes on the
// interface with index ifindex and attaches prog. The filter is attached
// before the socket is bound, so no frame reaches the ring unfiltered.
func openRing(iface string, ifindex, blocks int, prog []bpf.RawInstruction) (*ring, error) {
	wrap := func(what string, err error) error {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("open capture ring on %s: %s: %w (run as root or with CAP_NET_RAW)", iface, what, err)
		}
		return fmt.Errorf("open capture ring on %s: %s: %w", iface, what, err)
	}
	if len(prog) == 0 || len(prog) > 4096 {
		return nil, fmt.Errorf("open capture ring on %s: filter of %d instructions", iface, len(prog))
	}
	// Protocol 0: the socket receives nothing until bind names one.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("socket", err)
	}
	r := &ring{fd: fd, blockSize: ringBlockSize, nBlocks: blocks, timeout: ringPollTimeout}
	fail := func(what string, err error) (*ring, error) {
		r.close()
		return nil, wrap(what, err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fail("attach bpf", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("TPACKET_V3", err)
	}
	const frameSize = 1 << 11 // only checked by the kernel for V3; a block holds frames of any size
	req := unix.TpacketReq3{
		Block_size:     uint32(ringBlockSize),
		Block_nr:       uint32(blocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(blocks * (ringBlockSize / frameSize)),
		Retire_blk_tov: uint32(ringBlockTimeout.Milliseconds()),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail("PACKET_RX_RING", err)
	}
	r.mem, err = unix.Mmap(fd, 0, blocks*ringBlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.mem = nil
		return fail("mmap", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return fail("bind", err)
	}
	// Waiting in poll(2) would block a thread in a system call for every
	// block, which keeps the Go runtime's monitor thread waking up about a
	// thousand times a second; the runtime's epoll-based poller parks the
	// goroutine instead.
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail("non-blocking", err)
	}
	r.file = os.NewFile(uintptr(fd), "packet socket "+iface)
	if r.rc, err = r.file.SyscallConn(); err != nil {
		return fail("poller", err)
	}
	return r, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// close releases the ring and the socket.
func (r *ring) close() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
	switch {
	case r.file != nil:
		r.file.Close()
		r.file = nil
		r.fd = -1
	case r.fd >= 0:
		unix.Close(r.fd)
		r.fd = -1
	}
}

// status is the current block's status word, shared with the kernel.
func (r *ring) status() *uint32 {
	return (*uint32)(unsafe.Pointer(&r.mem[r.cur*r.blockSize+blkStatusOff]))
}

// next returns the current block once the kernel has handed it over,
// waiting up to the poll timeout; nil means none arrived in time. The
// block must be given back with release before next is called again.
func (r *ring) next() ([]byte, error) {
	ready := func() bool { return atomic.LoadUint32(r.status())&unix.TP_STATUS_USER != 0 }
	if !ready() {
		if err := r.file.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
			return nil, fmt.Errorf("poll: %w", err)
		}
		err := r.rc.Read(func(uintptr) bool { return ready() })
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("poll: %w", err)
		}
	}
	return r.mem[r.cur*r.blockSize : (r.cur+1)*r.blockSize], nil
}

// release gives the current block back to the kernel.
func (r *ring) release() {
	atomic.StoreUint32(r.status(), unix.TP_STATUS_KERNEL)
	r.cur = (r.cur + 1) % r.nBlocks
}

// stats reads the kernel's counters since the previous call (reading
// resets them): frames that passed the filter, including dropped ones, and
// frames dropped because the ring was full.
func (r *ring) stats() (packets, drops uint64, err error) {
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return 0, 0, err
	}
	return uint64(st.Packets), uint64(st.Drops), nil
}

// ringFrame is one captured frame of a block.
type ringFrame struct {
	ts      int64  // nanoseconds since the epoch
	wire    int    // original length
	data    []byte // captured bytes (points into the ring)
	pkttype uint8  // sll_pkttype
	vlan    bool   // the kernel removed an 802.1Q tag (VLAN offload): tpid, tci
	tpid    uint16
	tci     uint16
}

// walkBlock calls fn for each frame of a TPACKET_V3 block. It checks every
// offset against the block, so a corrupt block ends the walk (bad is then
// the number of frames the block claims but that could not be read)
// instead of reading outside it.
func walkBlock(blk []byte, fn func(*ringFrame)) (bad int) {
	le := binary.LittleEndian
	if len(blk) < blkHdrLen {
		return 0
	}
	n := int(le.Uint32(blk[blkNumPktsOff:]))
	off := int(le.Uint32(blk[blkFirstPktOff:]))
	var f ringFrame
	for i := range n {
		if off < blkHdrLen || off > len(blk)-tp3HdrLen-sllLen {
			return n - i
		}
		h := blk[off:]
		snap, mac := int(le.Uint32(h[tpSnaplenOff:])), int(le.Uint16(h[tpMacOff:]))
		if mac < tp3HdrLen+sllLen || mac > len(h) || snap > len(h)-mac {
			return n - i
		}
		status := le.Uint32(h[tpStatusOff:])
		f = ringFrame{
			ts:      int64(le.Uint32(h[tpSecOff:]))*1e9 + int64(le.Uint32(h[tpNsecOff:])),
			wire:    int(le.Uint32(h[tpLenOff:])),
			data:    h[mac : mac+snap : mac+snap],
			pkttype: h[tp3HdrLen+sllPkttypeOff],
		}
		if status&unix.TP_STATUS_VLAN_VALID != 0 {
			f.vlan, f.tci, f.tpid = true, uint16(le.Uint32(h[tpVlanTCIOff:])), 0x8100
			if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				f.tpid = le.Uint16(h[tpVlanTPIDOf:])
			}
		}
		fn(&f)
		next := int(le.Uint32(h[tpNextOff:]))
		if next == 0 {
			if i != n-1 {
				return n - 1 - i
			}
			break
		}
		if next < tp3HdrLen || next > len(blk)-off {
			if i != n-1 {
				return n - 1 - i
			}
			break
		}
		off += next
	}
	return 0
}

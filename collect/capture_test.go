package collect

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRingBlocks(t *testing.T) {
	for _, tc := range []struct{ n, want int }{
		{0, 64}, {1, 64}, {2, 32}, {8, 8}, {20, 8}, {32, 8}, {64, 4}, {200, 2},
	} {
		if got := ringBlocks(tc.n); got != tc.want {
			t.Errorf("ringBlocks(%d) = %d MiB, want %d", tc.n, got, tc.want)
		}
	}
}

func TestEPBFlagsFor(t *testing.T) {
	for _, tc := range []struct {
		pt   uint8
		want uint32
	}{
		{packetHost, FlagInbound | FlagUnicast},
		{packetBroadcast, FlagInbound | FlagBroadcast},
		{packetMulticast, FlagInbound | FlagMulticast},
		{packetOtherHost, FlagInbound | FlagPromisc},
		{packetOutgoing, FlagOutbound},
		{9, 0},
	} {
		if got := epbFlagsFor(tc.pt); got != tc.want {
			t.Errorf("epbFlagsFor(%d) = %#x, want %#x", tc.pt, got, tc.want)
		}
	}
}

// blockFrame is one frame for fakeBlock.
type blockFrame struct {
	sec, nsec uint32
	wire      uint32
	data      []byte
	pkttype   uint8
	vlan      bool
	tci       uint16
}

// fakeBlock lays out a TPACKET_V3 block as the kernel does: the block
// descriptor, then each frame's tpacket3_hdr at 16-byte aligned offsets,
// its sockaddr_ll at +48 and the frame at +82 (Ethernet's tp_mac).
func fakeBlock(frames ...blockFrame) []byte {
	le := binary.LittleEndian
	blk := make([]byte, 8192)
	le.PutUint32(blk[blkNumPktsOff:], uint32(len(frames)))
	le.PutUint32(blk[blkFirstPktOff:], blkHdrLen)
	off := blkHdrLen
	for i, f := range frames {
		h := blk[off:]
		const mac = 82
		size := (mac + len(f.data) + 15) &^ 15
		if i < len(frames)-1 {
			le.PutUint32(h[tpNextOff:], uint32(size))
		}
		le.PutUint32(h[tpSecOff:], f.sec)
		le.PutUint32(h[tpNsecOff:], f.nsec)
		le.PutUint32(h[tpSnaplenOff:], uint32(len(f.data)))
		le.PutUint32(h[tpLenOff:], f.wire)
		if f.vlan {
			le.PutUint32(h[tpStatusOff:], unix.TP_STATUS_USER|unix.TP_STATUS_VLAN_VALID)
			le.PutUint32(h[tpVlanTCIOff:], uint32(f.tci))
		}
		le.PutUint16(h[tpMacOff:], mac)
		le.PutUint16(h[tp3HdrLen:], unix.AF_PACKET)
		h[tp3HdrLen+sllPkttypeOff] = f.pkttype
		copy(h[mac:], f.data)
		off += size
	}
	return blk[:off+64]
}

func TestWalkBlock(t *testing.T) {
	a, b := bytes.Repeat([]byte{0xaa}, 96), bytes.Repeat([]byte{0xbb}, 60)
	blk := fakeBlock(
		blockFrame{sec: 1700000000, nsec: 5, wire: 1514, data: a, pkttype: packetOutgoing},
		blockFrame{sec: 1700000001, nsec: 999999999, wire: 60, data: b, pkttype: packetHost, vlan: true, tci: 42},
	)
	var got []ringFrame
	if bad := walkBlock(blk, func(f *ringFrame) { got = append(got, *f) }); bad != 0 {
		t.Fatalf("bad = %d", bad)
	}
	if len(got) != 2 {
		t.Fatalf("%d frames, want 2", len(got))
	}
	if g := got[0]; g.ts != 1700000000_000000005 || g.wire != 1514 || !bytes.Equal(g.data, a) || g.pkttype != packetOutgoing || g.vlan {
		t.Errorf("frame 0 = %+v", g)
	}
	if g := got[1]; g.ts != 1700000001_999999999 || g.wire != 60 || !bytes.Equal(g.data, b) || g.pkttype != packetHost ||
		!g.vlan || g.tci != 42 || g.tpid != 0x8100 {
		t.Errorf("frame 1 = %+v", g)
	}

	// A frame whose offsets leave the block ends the walk and is counted.
	binary.LittleEndian.PutUint32(blk[blkNumPktsOff:], 3)
	n := 0
	if bad := walkBlock(blk, func(*ringFrame) { n++ }); bad != 1 || n != 2 {
		t.Errorf("claimed 3 frames, 2 present: bad = %d, walked %d", bad, n)
	}
	binary.LittleEndian.PutUint32(blk[blkNumPktsOff:], 2)
	binary.LittleEndian.PutUint32(blk[blkHdrLen+tpSnaplenOff:], 1<<30)
	n = 0
	if bad := walkBlock(blk, func(*ringFrame) { n++ }); bad != 2 || n != 0 {
		t.Errorf("huge snaplen: bad = %d, walked %d", bad, n)
	}
}

func TestWithVLAN(t *testing.T) {
	data := make([]byte, 96)
	for i := range data {
		data[i] = byte(i)
	}
	c := &ifaceCapture{snapLen: 96}
	got := c.withVLAN(&ringFrame{data: data, vlan: true, tpid: 0x8100, tci: 0x0123})
	want := append(append(append([]byte{}, data[:12]...), 0x81, 0x00, 0x01, 0x23), data[12:92]...)
	if !bytes.Equal(got, want) {
		t.Errorf("withVLAN = % x\nwant % x", got, want)
	}
}

// FuzzWalkBlock: whatever a block holds, the walk stays inside it.
func FuzzWalkBlock(f *testing.F) {
	f.Add(fakeBlock(blockFrame{sec: 1, wire: 60, data: make([]byte, 60)}, blockFrame{sec: 2, wire: 70, data: make([]byte, 70)}))
	f.Fuzz(func(t *testing.T, blk []byte) {
		walkBlock(blk, func(fr *ringFrame) {
			if fr.wire < 0 || len(fr.data) > len(blk) {
				t.Fatalf("frame outside the block: %d bytes", len(fr.data))
			}
		})
	})
}

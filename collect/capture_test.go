package collect

import (
	"testing"
	"unsafe"

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

// fakeBlock lays out one TPACKET_V3 frame as the kernel does: header at
// 48, sockaddr_ll after it, frame at header+macoff.
func fakeBlock(macoff int, ifindex int32, pkttype uint8) (block, frame []byte) {
	block = make([]byte, 4096)
	hdr := 48
	*(*uint16)(unsafe.Pointer(&block[hdr+tp3MacField])) = uint16(macoff)
	sll := hdr + tp3HdrLen
	*(*uint16)(unsafe.Pointer(&block[sll])) = unix.AF_PACKET
	*(*int32)(unsafe.Pointer(&block[sll+sllIfindexOff])) = ifindex
	block[sll+sllPkttypeOff] = pkttype
	return block, block[hdr+macoff : hdr+macoff+60]
}

func TestPacketType(t *testing.T) {
	tests := []struct {
		name    string
		macoff  int
		ifindex int32
		want    uint8
		ok      bool
	}{
		{"ethernet outgoing", 82, 7, packetOutgoing, true},
		{"raw ip host", 96, 7, packetHost, true},
		{"vlan in frame", 78, 7, packetBroadcast, true},
		{"other interface", 82, 8, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, fr := fakeBlock(tc.macoff, tc.ifindex, tc.want)
			got, ok := packetType(fr, 7)
			if got != tc.want || ok != tc.ok {
				t.Errorf("packetType = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	if _, ok := packetType(nil, 1); ok {
		t.Error("empty frame: ok")
	}
}

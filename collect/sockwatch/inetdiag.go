package sockwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Netlink and inet_diag wire constants (linux/inet_diag.h, linux/sock_diag.h).
const (
	nlmsgHdrLen     = 16
	inetDiagReqLen  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen  = 72 // struct inet_diag_msg
	sockDiagByFam   = 20 // SOCK_DIAG_BY_FAMILY
	nlmsgDone       = 3
	nlmsgError      = 2
	inetDiagInfo    = 2  // INET_DIAG_INFO: struct tcp_info
	inetDiagProto   = 10 // INET_DIAG_PROTOCOL: u8
	inetDiagCgroup  = 21 // INET_DIAG_CGROUP_ID: u64
	tcpiBytesAcked  = 120
	tcpiBytesRecv   = 128
	tcpiBytesSent   = 200
	ipprotoTCP      = 6
	ipprotoUDP      = 17
	tcpStateTW      = 6
	tcpStateNewSyn  = 12
	tcpStateClose   = 7
	tcpStateListen  = 10
	allStates       = 0xffffffff
	statesNoTWNoSyn = allStates &^ (1<<tcpStateTW | 1<<tcpStateNewSyn)
)

// diagSock is one socket decoded from an inet_diag_msg. It holds no
// references into the message buffer.
type diagSock struct {
	Family   uint8
	Proto    uint8 // ipprotoTCP | ipprotoUDP; 0 when unknown
	State    uint8
	Local    netip.AddrPort
	Remote   netip.AddrPort
	UID      uint32
	Inode    uint64
	Cookie   uint64
	CgroupID uint64
	// HasInfo says the tcp_info byte counters below were present.
	HasInfo                              bool
	BytesAcked, BytesReceived, BytesSent uint64
}

// errDiagShort is returned for messages too short to hold an inet_diag_msg.
var errDiagShort = errors.New("inet_diag_msg too short")

// buildInetDiagReq writes a dump request (NLM_F_REQUEST|NLM_F_DUMP) for one
// family and protocol into b (≥ 72 bytes) and returns its length.
func buildInetDiagReq(b []byte, family, proto uint8, states uint32, ext uint8, seq uint32) int {
	const n = nlmsgHdrLen + inetDiagReqLen
	clear(b[:n])
	le := binary.LittleEndian // netlink is host order; Linux targets here are little-endian
	le.PutUint32(b[0:], n)
	le.PutUint16(b[4:], sockDiagByFam)
	le.PutUint16(b[6:], 0x1|0x300) // NLM_F_REQUEST | NLM_F_DUMP
	le.PutUint32(b[8:], seq)
	b[16] = family
	b[17] = proto
	b[18] = ext
	le.PutUint32(b[20:], states)
	return n
}

// parseInetDiag decodes one inet_diag_msg payload (after the nlmsghdr) with
// its attributes. proto is the protocol the dump asked for (0 for destroy
// notifications, where INET_DIAG_PROTOCOL says it).
func parseInetDiag(p []byte, proto uint8, s *diagSock) error {
	if len(p) < inetDiagMsgLen {
		return fmt.Errorf("%w: %d bytes", errDiagShort, len(p))
	}
	*s = diagSock{Family: p[0], State: p[1], Proto: proto}
	sport := binary.BigEndian.Uint16(p[4:])
	dport := binary.BigEndian.Uint16(p[6:])
	switch s.Family {
	case 2: // AF_INET
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[8:12])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(p[24:28])), dport)
	case 10: // AF_INET6
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[8:24])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[24:40])), dport)
	default:
		return fmt.Errorf("inet_diag_msg family %d: %w", s.Family, errors.ErrUnsupported)
	}
	le := binary.LittleEndian
	s.Cookie = uint64(le.Uint32(p[44:])) | uint64(le.Uint32(p[48:]))<<32
	s.UID = le.Uint32(p[64:])
	s.Inode = uint64(le.Uint32(p[68:]))
	a := p[inetDiagMsgLen:]
	for len(a) >= 4 {
		alen := int(le.Uint16(a[0:]))
		typ := le.Uint16(a[2:]) & 0x3fff // strip NLA_F_NESTED / NLA_F_NET_BYTEORDER
		if alen < 4 || alen > len(a) {
			return fmt.Errorf("inet_diag attribute %d: bad length %d (%d left)", typ, alen, len(a))
		}
		v := a[4:alen]
		switch typ {
		case inetDiagProto:
			if len(v) >= 1 {
				s.Proto = v[0]
			}
		case inetDiagCgroup:
			if len(v) >= 8 {
				s.CgroupID = le.Uint64(v)
			}
		case inetDiagInfo:
			// tcp_info grew over kernel versions: take what is there.
			if len(v) >= tcpiBytesRecv+8 {
				s.HasInfo = true
				s.BytesAcked = le.Uint64(v[tcpiBytesAcked:])
				s.BytesReceived = le.Uint64(v[tcpiBytesRecv:])
			}
			if len(v) >= tcpiBytesSent+8 {
				s.BytesSent = le.Uint64(v[tcpiBytesSent:])
			}
		}
		step := (alen + 3) &^ 3
		if step > len(a) {
			break
		}
		a = a[step:]
	}
	if s.Proto == 0 {
		return fmt.Errorf("inet_diag_msg without protocol: %w", errors.ErrUnsupported)
	}
	return nil
}

// nlMessages iterates the netlink messages in one datagram, calling fn with
// each message's type, flags and payload. It stops at the first malformed
// header and returns an error then.
func nlMessages(b []byte, fn func(typ, flags uint16, seq uint32, payload []byte) error) error {
	le := binary.LittleEndian
	for len(b) >= nlmsgHdrLen {
		l := int(le.Uint32(b[0:]))
		if l < nlmsgHdrLen || l > len(b) {
			return fmt.Errorf("netlink message length %d with %d bytes left", l, len(b))
		}
		if err := fn(le.Uint16(b[4:]), le.Uint16(b[6:]), le.Uint32(b[8:]), b[nlmsgHdrLen:l]); err != nil {
			return err
		}
		step := (l + 3) &^ 3
		if step >= len(b) {
			return nil
		}
		b = b[step:]
	}
	return nil
}

// stateName returns the ss name of a socket state.
func stateName(proto, st uint8) string {
	if proto == ipprotoUDP {
		switch st {
		case 1:
			return "ESTAB"
		case tcpStateClose:
			return "UNCONN"
		}
	}
	switch st {
	case 1:
		return "ESTAB"
	case 2:
		return "SYN-SENT"
	case 3:
		return "SYN-RECV"
	case 4:
		return "FIN-WAIT-1"
	case 5:
		return "FIN-WAIT-2"
	case 6:
		return "TIME-WAIT"
	case 7:
		return "UNCONN"
	case 8:
		return "CLOSE-WAIT"
	case 9:
		return "LAST-ACK"
	case 10:
		return "LISTEN"
	case 11:
		return "CLOSING"
	case 12:
		return "NEW-SYN-RECV"
	}
	return fmt.Sprintf("STATE-%d", st)
}

// protoName returns "tcp" or "udp".
func protoName(p uint8) string {
	if p == ipprotoUDP {
		return "udp"
	}
	return "tcp"
}

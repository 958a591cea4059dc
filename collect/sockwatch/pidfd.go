package sockwatch

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"
)

// errNotInet is returned by sockFromFD for sockets that are not TCP or UDP
// over IPv4/IPv6 (unix, netlink, packet sockets...).
var errNotInet = errors.New("not an inet TCP/UDP socket")

// sockFromFD describes socket fd of process pid without any dump: it
// duplicates the fd with pidfd_getfd(2) (Linux ≥ 5.6, needs ptrace access,
// i.e. root), reads name, peer, cookie and tcp_info from the duplicate and
// closes it at once. The owner keeps its socket untouched. This is how a
// probe learns the tuple of a socket newer than the last inventory.
func sockFromFD(pid, fd int, s *diagSock) error {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	dup, err := unix.PidfdGetfd(pfd, fd, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dup)
	dom, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	proto, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return err
	}
	if (dom != unix.AF_INET && dom != unix.AF_INET6) || (proto != ipprotoTCP && proto != ipprotoUDP) {
		return errNotInet
	}
	*s = diagSock{Family: uint8(dom), Proto: uint8(proto)}
	if s.Cookie, err = unix.GetsockoptUint64(dup, unix.SOL_SOCKET, unix.SO_COOKIE); err != nil {
		return err
	}
	if sa, err := unix.Getsockname(dup); err == nil {
		s.Local = sockaddrPort(sa)
	}
	connected := false
	if sa, err := unix.Getpeername(dup); err == nil {
		s.Remote = sockaddrPort(sa)
		connected = true
	} else if dom == unix.AF_INET {
		s.Remote = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	} else {
		s.Remote = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	var st unix.Stat_t
	if unix.Fstat(dup, &st) == nil {
		s.Inode, s.UID = st.Ino, st.Uid
	}
	if proto == ipprotoTCP {
		if ti, err := unix.GetsockoptTCPInfo(dup, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			s.State = ti.State
			s.HasInfo = true
			s.BytesAcked, s.BytesReceived, s.BytesSent = ti.Bytes_acked, ti.Bytes_received, ti.Bytes_sent
		}
	} else if connected {
		s.State = 1
	} else {
		s.State = tcpStateClose
	}
	return nil
}

// sockaddrPort converts an inet Sockaddr (v4-mapped v6 addresses stay v6, as
// sock_diag reports them).
func sockaddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

package sockwatch

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// diagConn is one NETLINK_SOCK_DIAG socket bound to the network namespace it
// was created in. It reuses its buffers: a dump allocates nothing in steady
// state.
type diagConn struct {
	fd   int
	seq  uint32
	req  [nlmsgHdrLen + inetDiagReqLen]byte
	buf  []byte
	sock diagSock // the socket handed to dump callbacks, reused
}

// openDiag opens a NETLINK_SOCK_DIAG socket in the caller's network namespace.
func openDiag() (*diagConn, error) {
	fd, err := openNetlink(unix.NETLINK_SOCK_DIAG, "sock_diag")
	if err != nil {
		return nil, err
	}
	return &diagConn{fd: fd, buf: make([]byte, 256<<10)}, nil
}

// openNetlink opens and binds a netlink socket of protocol proto (named
// what in errors) in the caller's network namespace, for dumps.
func openNetlink(proto int, what string) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, fmt.Errorf("open %s socket: %w", what, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind %s socket: %w", what, err)
	}
	// A dump blocks only while the kernel fills it; the timeout guards
	// against a lost reply.
	tv := unix.NsecToTimeval(int64(5 * time.Second))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

// nlDump sends the dump request req (sequence number seq) on fd and reads
// the replies into buf until the dump is done, calling fn with the type
// and payload of each of its messages. A message fn rejects is counted in
// bad and skipped.
func nlDump(fd int, buf, req []byte, seq uint32, what string, fn func(typ uint16, p []byte) error) (bad int, err error) {
	// write/read, not sendto/recvfrom: an unaddressed netlink message goes
	// to the kernel, and read allocates no source address.
	if _, err := unix.Write(fd, req); err != nil {
		return 0, fmt.Errorf("send %s request: %w", what, err)
	}
	done := false
	var perr error
	handle := func(typ, _ uint16, s uint32, p []byte) error {
		if s != seq {
			return nil // stale reply of an earlier, timed-out dump
		}
		switch typ {
		case nlmsgDone:
			done = true
		case nlmsgError:
			if len(p) >= 4 {
				if e := int32(uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24); e != 0 {
					done = true
					perr = fmt.Errorf("%s dump: %w", what, unix.Errno(-e))
				}
			}
		default:
			if fn(typ, p) != nil {
				bad++
			}
		}
		return nil
	}
	for !done {
		m, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return bad, fmt.Errorf("receive %s dump: %w", what, err)
		}
		if err := nlMessages(buf[:m], handle); err != nil {
			return bad + 1, fmt.Errorf("%s dump: %w", what, err)
		}
	}
	return bad, perr
}

func (c *diagConn) Close() error { return unix.Close(c.fd) }

// dumpSpec is one of the dumps an inventory makes.
type dumpSpec struct {
	family, proto uint8
	ext           uint8
}

// inventoryDumps are the four dumps of an inventory: TCP with tcp_info, UDP
// without (inet_diag has no UDP byte counters), IPv4 and IPv6.
var inventoryDumps = [...]dumpSpec{
	{unix.AF_INET, ipprotoTCP, 1 << (inetDiagInfo - 1)},
	{unix.AF_INET6, ipprotoTCP, 1 << (inetDiagInfo - 1)},
	{unix.AF_INET, ipprotoUDP, 0},
	{unix.AF_INET6, ipprotoUDP, 0},
}

// dump runs one sock_diag dump and calls fn for each socket; s is reused
// between calls. Messages that do not decode are counted in bad and skipped.
func (c *diagConn) dump(d dumpSpec, states uint32, fn func(s *diagSock)) (bad int, err error) {
	c.seq++
	n := buildInetDiagReq(c.req[:], d.family, d.proto, states, d.ext, c.seq)
	s := &c.sock
	return nlDump(c.fd, c.buf, c.req[:n], c.seq, "sock_diag", func(typ uint16, p []byte) error {
		if typ != sockDiagByFam {
			return nil
		}
		if err := parseInetDiag(p, d.proto, s); err != nil {
			return err
		}
		fn(s)
		return nil
	})
}

// destroyGroups is the bitmask of the four sock_diag destroy multicast groups
// (SKNLGRP_INET_TCP_DESTROY .. SKNLGRP_INET6_UDP_DESTROY).
const destroyGroups = 1<<(1-1) | 1<<(2-1) | 1<<(3-1) | 1<<(4-1)

// openDestroy opens a socket subscribed to sock_diag destroy notifications in
// the caller's network namespace. It needs CAP_NET_ADMIN.
func openDestroy() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("open sock_diag destroy socket: %w", err)
	}
	// 8 MiB so bursts of closes do not overflow (ENOBUFS); FORCE needs
	// CAP_NET_ADMIN, which the groups need anyway.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: destroyGroups}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("join sock_diag destroy groups: %w", err)
	}
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd, nil
}

package sockwatch

import (
	"errors"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// tcpPair returns a connected loopback client and its fd (a dup).
func tcpPair(t *testing.T) (net.Conn, int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f, err := c.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return c, int(f.Fd())
}

func TestSockFromFD(t *testing.T) {
	c, fd := tcpPair(t)
	var s diagSock
	err := sockFromFD(os.Getpid(), fd, &s)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("pidfd_getfd unavailable: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cookie, _ := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	var st unix.Stat_t
	_ = unix.Fstat(fd, &st)
	if s.Local.String() != c.LocalAddr().String() || s.Remote.String() != c.RemoteAddr().String() ||
		s.Proto != ipprotoTCP || s.State != 1 || s.Cookie != cookie || s.Inode != st.Ino || !complete(&s) {
		t.Errorf("got %+v; want %s → %s, cookie %d, inode %d", s, c.LocalAddr(), c.RemoteAddr(), cookie, st.Ino)
	}
	// Not inet: a unix socket pair.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := sockFromFD(os.Getpid(), fds[0], &s); !errors.Is(err, errNotInet) {
		t.Errorf("unix socket: err %v, want errNotInet", err)
	}
	// Unbound UDP is incomplete; bound is complete.
	u, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(u)
	if err := sockFromFD(os.Getpid(), u, &s); err != nil || complete(&s) || stateName(s.Proto, s.State) != "UNCONN" {
		t.Errorf("unbound udp: %+v, %v", s, err)
	}
}

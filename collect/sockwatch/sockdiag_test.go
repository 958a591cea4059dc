package sockwatch

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDumpOwnSockets dumps the caller's namespace (no privileges needed) and
// finds this process's connection with its inode, cookie and tcp_info.
func TestDumpOwnSockets(t *testing.T) {
	c, fd := tcpPair(t)
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	cookie, _ := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	d, err := openDiag()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got *diagSock
	deadline := time.Now().Add(2 * time.Second)
	for got == nil || got.BytesAcked < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("own socket (cookie %d) not dumped with 100 bytes acked: %+v", cookie, got)
		}
		got = nil
		for _, ds := range inventoryDumps {
			if _, err := d.dump(ds, statesNoTWNoSyn, func(s *diagSock) {
				if s.Cookie == cookie {
					cp := *s
					got = &cp
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got.Local.String() != c.LocalAddr().String() || got.Inode == 0 || got.UID != uint32(os.Geteuid()) || !got.HasInfo {
		t.Errorf("dumped %+v", got)
	}
	// A dump allocates nothing per socket in steady state (a few closure
	// variables per dump at most).
	ds := inventoryDumps[0]
	if a := testing.AllocsPerRun(5, func() { _, _ = d.dump(ds, statesNoTWNoSyn, func(*diagSock) {}) }); a > 2 {
		t.Errorf("dump allocates %.0f times", a)
	}
}

// TestDestroyEvent closes a socket and expects its destroy notification.
func TestDestroyEvent(t *testing.T) {
	fd, err := openDestroy()
	if err != nil {
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal(err)
		}
		t.Skipf("no destroy groups: %v", err)
	}
	defer unix.Close(fd)
	c, cfd := tcpPair(t)
	cookie, _ := unix.GetsockoptUint64(cfd, unix.SOL_SOCKET, unix.SO_COOKIE)
	local := c.LocalAddr().String()
	// Closing every fd of the client (the dup and the conn) frees the socket
	// once its FIN handshake is done; tcpPair's cleanups close the rest.
	unix.Close(cfd)
	c.Close()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		found := false
		_ = nlMessages(buf[:n], func(typ, _ uint16, _ uint32, p []byte) error {
			var s diagSock
			if typ == sockDiagByFam && parseInetDiag(p, 0, &s) == nil && s.Cookie == cookie {
				found = s.Local.String() == local && s.Proto == ipprotoTCP
			}
			return nil
		})
		if found {
			return
		}
	}
	t.Errorf("no destroy event for %s (cookie %d)", local, cookie)
}

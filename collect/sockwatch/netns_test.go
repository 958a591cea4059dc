package sockwatch

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInNetns opens a sock_diag socket inside a namespace it creates and
// checks the socket inventories that namespace, not the caller's.
func TestInNetns(t *testing.T) {
	requireRoot(t)
	ns, _ := setupNetns(t)
	nsfd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nsfd)
	var d *diagConn
	if err := inNetns(nsfd, func() (err error) { d, err = openDiag(); return err }); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// A listener in the caller's namespace must not show up there...
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// ...but one started inside it must.
	srv := startHelper(t, ns, "server", "198.51.100.1:0")
	defer srv.stop()
	found := map[string]bool{}
	if _, err := d.dump(inventoryDumps[0], statesNoTWNoSyn, func(s *diagSock) { found[s.Local.String()] = true }); err != nil {
		t.Fatal(err)
	}
	if found[ln.Addr().String()] || !found[srv.line[len("ADDR "):]] {
		t.Errorf("namespace dump listed %v; want %s and not %s", found, srv.line, ln.Addr())
	}
}

func TestNetnsNames(t *testing.T) {
	requireRoot(t)
	nsA, nsB := setupNetns(t)
	names := netnsNames(netnsDirs)
	if names[netnsInode(t, nsA)] != nsA || names[netnsInode(t, nsB)] != nsB {
		t.Errorf("names %v lack %s/%s", names, nsA, nsB)
	}
	if len(netnsNames([]string{"/nonexistent"})) != 0 {
		t.Error("names from a missing directory")
	}
}

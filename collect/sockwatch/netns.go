package sockwatch

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// netState is one network namespace with its sock_diag sockets.
type netState struct {
	info      ingest.NetnsInfo
	diag      *diagConn
	destroyFD int
	socks     map[uint64]*sockState // by cookie
	gen       uint64
	alive     bool
	failed    bool // the current inventory's dump failed
}

// discoverNetns opens sock_diag sockets in network namespaces of processes
// that hold sockets, and retires namespaces no process lives in anymore.
func (w *watcher) discoverNetns() {
	seen := map[uint64][]int{}
	for pid, ps := range w.pids {
		if ps.netns != 0 && len(ps.inodes) > 0 {
			seen[ps.netns] = append(seen[ps.netns], pid)
		}
	}
	if w.onlyNetns != 0 {
		for ino := range seen {
			if ino != w.onlyNetns {
				delete(seen, ino)
			}
		}
		w.nets[0].alive = w.nets[0].info.Inode == w.onlyNetns
	}
	var names map[uint64]string
	known := map[uint64]*netState{}
	for _, n := range w.nets {
		known[n.info.Inode] = n
	}
	inos := make([]uint64, 0, len(seen))
	for ino := range seen {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	for _, ino := range inos {
		pids := seen[ino]
		slices.Sort(pids)
		if n := known[ino]; n != nil {
			if !n.info.Host && len(n.info.PIDs) < maxNetnsPIDs {
				for _, p := range pids {
					if len(n.info.PIDs) < maxNetnsPIDs && !slices.Contains(n.info.PIDs, p) {
						n.info.PIDs = append(n.info.PIDs, p)
					}
				}
			}
			continue
		}
		n := &netState{info: ingest.NetnsInfo{Inode: ino, PIDs: slices.Clone(pids[:min(len(pids), maxNetnsPIDs)])},
			destroyFD: -1, socks: map[uint64]*sockState{}}
		if names == nil {
			names = netnsNames(netnsDirs)
		}
		n.info.Name = names[ino]
		if err := w.openNetns(n, pids[0]); err != nil {
			w.note(fmt.Sprintf("netns %d (pid %d): %v; its sockets are not inventoried", ino, pids[0], err))
		} else {
			n.alive = true
		}
		w.nets = append(w.nets, n)
	}
}

// netnsDirs hold bind mounts of named network namespaces (ip netns, docker).
var netnsDirs = []string{"/run/netns", "/var/run/docker/netns"}

// netnsNames maps namespace inodes to the names of their bind mounts
// ("ip netns add NAME"; docker's per-container files).
func netnsNames(dirs []string) map[uint64]string {
	m := map[uint64]string{}
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			var st unix.Stat_t
			if unix.Stat(d+"/"+e.Name(), &st) == nil {
				if _, dup := m[st.Ino]; !dup {
					m[st.Ino] = e.Name()
				}
			}
		}
	}
	return m
}

func (w *watcher) openNetns(n *netState, pid int) error {
	nsfd, err := unix.Open(w.walker.proc+"/"+strconv.Itoa(pid)+"/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	return inNetns(nsfd, func() error {
		d, err := openDiag()
		if err != nil {
			return err
		}
		n.diag = d
		if fd, err := openDestroy(); err == nil {
			n.destroyFD = fd
			w.listenDestroy(fd, n.info.Inode)
		}
		return nil
	})
}

// inNetns runs fn on a locked OS thread switched into the network namespace
// open at nsfd, then switches back. Sockets created by fn stay bound to that
// namespace. It runs on its own goroutine: if switching back fails, that
// goroutine exits with its thread still locked, so the runtime discards it.
func inNetns(nsfd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- inNetnsLocked(nsfd, fn) }()
	return <-errc
}

func inNetnsLocked(nsfd int, fn func() error) error {
	runtime.LockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own netns: %w", err)
	}
	defer unix.Close(self)
	if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(self, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("leave netns: %w", err) // thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

package sockwatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// Tuning that Config does not expose.
const (
	fallbackWalkGap = 10 * time.Second // min gap between unknown-inode full walks
	probeCacheTTL   = 2 * time.Minute  // probe-found sockets kept for destroy joins
	extraDumpGap    = 500 * time.Millisecond
	maxNetnsPIDs    = 5
)

// fdIno is one socket fd of a process.
type fdIno struct {
	fd  int
	ino uint64
}

// watcher is Run's state; everything but the listener goroutines runs on
// Run's goroutine.
type watcher struct {
	cfg    Config
	sink   Sink
	stats  Stats
	now    func() time.Time
	walker *fdWalker
	pb     *prober // nil without the proc connector
	// onlyNetns, when set, restricts inventories to that one network
	// namespace (the cost benchmark uses it to measure its own namespace
	// alone on a shared machine; the collector itself stays in the initial
	// namespace, where the proc connector works).
	onlyNetns uint64
	pr        *procReader
	root      bool

	hostNs uint64
	nets   []*netState // host first
	seq    int

	pids      map[int]*pidState
	holders   map[uint64][]ingest.ProcKey // socket inode → holders
	byInode   map[uint64]*sockState
	byCookie  map[uint64]*sockState
	probed    map[uint64]*probeEntry // by cookie
	probedIno map[uint64]*probeEntry // the same by inode
	recent    map[uint64]*sockState  // gone sockets by cookie, for late destroy events
	recentOld map[uint64]*sockState
	procs     map[ingest.ProcKey]*ingest.ProcessInfo
	procOrder []ingest.ProcKey

	lastFull, lastFallback time.Time
	lastInv                time.Time
	extraDump              bool // a probe found sockets only an inventory can describe
	inv, fullInv           int  // inventories done; first inventory not covered by a full walk
	notes                  map[string]bool

	destroyCh chan destroyEvent
	procCh    chan procMsg
	lostMu    sync.Mutex
	lost      int64
	events    int64
	wg        sync.WaitGroup
	stop      chan struct{}

	monoToRT   int64 // CLOCK_REALTIME − CLOCK_MONOTONIC, ns
	changed    []*sockState
	rest       []*sockState
	fdPairs    []fdIno // socket fds of the last walked process
	scratch    []uint64
	pidList    []int
	hasDestroy bool
}

// Run observes until ctx is done, then flushes (final inventory) and returns.
func Run(ctx context.Context, cfg Config, sink Sink) (Stats, error) {
	w := newWatcher(cfg.withDefaults(), sink, "/proc")
	defer w.close()
	err := w.run(ctx)
	return w.finalStats(), err
}

func newWatcher(cfg Config, sink Sink, proc string) *watcher {
	boot := BootTimeNs()
	w := &watcher{
		cfg: cfg, sink: sink, now: time.Now,
		walker:    newFDWalker(proc),
		pr:        newProcReader(proc, boot, cfg.HashMaxBytes, cfg.HashBudget),
		root:      unix.Geteuid() == 0,
		pids:      map[int]*pidState{},
		holders:   map[uint64][]ingest.ProcKey{},
		byInode:   map[uint64]*sockState{},
		byCookie:  map[uint64]*sockState{},
		probed:    map[uint64]*probeEntry{},
		recent:    map[uint64]*sockState{},
		probedIno: map[uint64]*probeEntry{},
		procs:     map[ingest.ProcKey]*ingest.ProcessInfo{},
		notes:     map[string]bool{},
		destroyCh: make(chan destroyEvent, 4096),
		procCh:    make(chan procMsg, 4096),
		stop:      make(chan struct{}),
	}
	var rt, mono unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &rt)
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	w.monoToRT = rt.Nano() - mono.Nano()
	return w
}

func (w *watcher) note(s string) {
	if !w.notes[s] {
		w.notes[s] = true
		w.stats.Notes = append(w.stats.Notes, s)
	}
}

func (w *watcher) close() {
	close(w.stop)
	w.wg.Wait()
	for _, n := range w.nets {
		if n.diag != nil {
			n.diag.Close()
		}
		if n.destroyFD >= 0 {
			unix.Close(n.destroyFD)
		}
	}
}

func (w *watcher) finalStats() Stats {
	s := w.stats
	w.lostMu.Lock()
	s.EventsLost = w.lost
	s.Events = w.events
	w.lostMu.Unlock()
	s.Netns = nil
	for _, n := range w.nets {
		s.Netns = append(s.Netns, n.info)
	}
	s.Notes = append(append([]string(nil), s.Notes...), w.pr.notes()...)
	if s.EventsLost > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("event sockets overflowed %d time(s) (ENOBUFS): some destroy/process events were lost", s.EventsLost))
	}
	return s
}

func (w *watcher) run(ctx context.Context) error {
	if !w.root {
		w.note("not root: only the collector's own processes can be walked; most sockets stay owner-unknown")
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		return fmt.Errorf("stat own netns: %w", err)
	}
	w.hostNs = st.Ino
	d, err := openDiag()
	if err != nil {
		return err
	}
	host := &netState{info: ingest.NetnsInfo{Inode: w.hostNs, Host: true, PIDs: []int{unix.Getpid()}},
		diag: d, destroyFD: -1, socks: map[uint64]*sockState{}, alive: true}
	w.nets = append(w.nets, host)
	if fd, err := openDestroy(); err == nil {
		host.destroyFD = fd
		w.hasDestroy = true
		w.listenDestroy(fd, w.hostNs)
	} else {
		w.note("no sock_diag destroy events (" + err.Error() + "): sockets closed between inventories are missed; TIME-WAIT sockets are inventoried instead")
	}
	if fd, err := w.openProcConnInit(); err == nil {
		w.listenProc(fd)
	} else {
		w.note("no proc connector (" + err.Error() + "): no exec probes; short-lived processes are attributed only by periodic walks")
	}

	if err := w.inventory(true); err != nil {
		return err
	}
	tick := time.NewTicker(w.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.drain()
			return w.inventoryFinal()
		case <-tick.C:
			if err := w.inventory(false); err != nil {
				return err
			}
		case ev := <-w.destroyCh:
			if err := w.onDestroy(ev); err != nil {
				return err
			}
		case m := <-w.procCh:
			if err := w.onProcMsg(m); err != nil {
				return err
			}
			if w.extraDump && w.now().Sub(w.lastInv) >= extraDumpGap {
				w.extraDump = false
				if err := w.inventory(false); err != nil {
					return err
				}
			}
		}
	}
}

// drain handles events already queued when the context ended.
func (w *watcher) drain() {
	for {
		select {
		case ev := <-w.destroyCh:
			_ = w.onDestroy(ev)
		case m := <-w.procCh:
			_ = w.onProcMsg(m)
		default:
			return
		}
	}
}

func (w *watcher) inventoryFinal() error {
	if err := w.inventory(false); err != nil {
		return err
	}
	// Final process updates carry LastSeen (and Exited when seen).
	for _, k := range w.procOrder {
		if err := w.sink.Process(*w.procs[k]); err != nil {
			return err
		}
	}
	return nil
}

// listen reads datagrams from the event socket fd on its own goroutine until
// Run stops, calling fn with each netlink message. Receive-queue overflows
// (ENOBUFS) are counted as lost events.
func (w *watcher) listen(fd int, closeFD, boost bool, fn func(typ uint16, p []byte)) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		if boost {
			boostThread()
		}
		if closeFD {
			defer unix.Close(fd)
		}
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if errors.Is(err, unix.ENOBUFS) {
					w.lostMu.Lock()
					w.lost++
					w.lostMu.Unlock()
				}
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
					continue
				}
				return
			}
			_ = nlMessages(buf[:n], func(typ, _ uint16, _ uint32, p []byte) error {
				fn(typ, p)
				return nil
			})
		}
	}()
}

func (w *watcher) countEvent() {
	w.lostMu.Lock()
	w.events++
	w.lostMu.Unlock()
}

// listenDestroy forwards destroy notifications of netns to the main loop.
func (w *watcher) listenDestroy(fd int, netns uint64) {
	var s diagSock
	w.listen(fd, false, false, func(typ uint16, p []byte) {
		if typ != sockDiagByFam || parseInetDiag(p, 0, &s) != nil {
			return
		}
		t := time.Now().UnixNano()
		w.countEvent()
		select {
		case w.destroyCh <- destroyEvent{s: s, netns: netns, t: t}:
		case <-w.stop:
		}
	})
}

// listenProc feeds proc-connector events to a prober goroutine, which
// probes new processes on time even while the main loop is busy with an
// inventory, and forwards events and probe results to the main loop.
func (w *watcher) listenProc(fd int) {
	evs := make(chan procEvent, 4096)
	w.listen(fd, true, true, func(_ uint16, p []byte) {
		ev, ok, err := parseProcEvent(p)
		if err != nil || !ok {
			return
		}
		w.countEvent()
		select {
		case evs <- ev:
		case <-w.stop:
		}
	})
	pb := newProber(w.walker.proc, w.pr, w.monoToRT)
	w.pb = pb
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		pb.run(evs, w.procCh, w.stop)
	}()
}

// sortStrings sorts in place (kept here so procinfo.go needs no slices import).
func sortStrings(s []string) { slices.Sort(s) }

package sockwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// Tuning that Config does not expose.
const (
	fallbackWalkGap = 10 * time.Second // min gap between unknown-inode full walks
	probeCacheTTL   = 2 * time.Minute  // probe-found sockets kept for destroy joins
	maxNetnsPIDs    = 5
)

// sockState is one socket of an inventory, with what was last reported.
type sockState struct {
	diagSock
	netns    uint64
	gen      uint64
	firstInv int  // inventory that first listed it
	reported bool // a "seen" record was emitted
	holders  []ingest.ProcKey
	partial  string
	// reported byte counters (a "bytes" record is emitted when they move)
	repAcked, repRecv, repSent uint64
}

// pidState is what the walks know about one process.
type pidState struct {
	start   int64
	fdCount int64
	inodes  []uint64 // socket inodes, sorted
	netns   uint64
}

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

// destroyEvent is a decoded destroy notification.
type destroyEvent struct {
	s     diagSock
	netns uint64
	t     int64
}

// fdIno is one socket fd of a process.
type fdIno struct {
	fd  int
	ino uint64
}

// probeEntry is a socket found by a probe but not (yet) in an inventory.
type probeEntry struct {
	s       diagSock
	netns   uint64
	holders []ingest.ProcKey
	t       time.Time
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
	inv, fullInv           int // inventories done; first inventory not covered by a full walk
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
	if fd, err := openProcConn(); err == nil {
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

// ---- inventory ----

// inventory dumps every netns, resolves owners and emits records.
func (w *watcher) inventory(first bool) error {
	now := w.now()
	full := first || now.Sub(w.lastFull) >= w.cfg.FullWalkEvery
	if full {
		w.fullWalk(now)
		w.fullInv = w.inv // sockets created during this walk are still searched
	}
	states := uint32(statesNoTWNoSyn)
	if !w.hasDestroy {
		states = allStates &^ (1 << tcpStateNewSyn)
	}
	w.changed = w.changed[:0]
	for _, n := range w.nets {
		if !n.alive {
			continue
		}
		n.gen++
		for _, d := range inventoryDumps {
			bad, err := n.diag.dump(d, states, func(s *diagSock) { w.observe(n, s) })
			if bad > 0 {
				w.note(fmt.Sprintf("sock_diag: %d undecodable message(s) skipped", bad))
			}
			if err != nil {
				// A failed dump leaves this namespace out of this
				// inventory (no false "gone"); a failing foreign
				// namespace is given up.
				n.failed = true
				if n.info.Host {
					w.note(fmt.Sprintf("sock_diag dump failed (inventory skipped): %v", err))
				} else {
					w.note(fmt.Sprintf("netns %d: %v", n.info.Inode, err))
					n.alive = false
				}
				break
			}
		}
	}
	// Owners: sockets whose inode has no known holder.
	if !full {
		w.resolveUnknown(now)
	}
	t := w.now().UnixNano()
	w.stats.Snapshots++
	w.inv++
	for _, n := range w.nets {
		if n.failed {
			n.failed = false // its new sockets are reported next time (!reported)
			continue
		}
		if !n.alive {
			continue
		}
		if err := w.emitNetns(n, t); err != nil {
			return err
		}
	}
	w.expireProbed(now)
	// Gone sockets stay joinable for destroy events until the next inventory ends.
	w.recentOld, w.recent = w.recent, make(map[uint64]*sockState, len(w.recentOld))
	return nil
}

// observe records one dumped socket.
func (w *watcher) observe(n *netState, s *diagSock) {
	ss := n.socks[s.Cookie]
	if ss == nil {
		ss = &sockState{diagSock: *s, netns: n.info.Inode, firstInv: w.inv}
		n.socks[s.Cookie] = ss
		ss.gen = 0 // marks "new" for emitNetns
		w.byCookie[s.Cookie] = ss
		if s.Inode != 0 {
			w.byInode[s.Inode] = ss
		}
	} else {
		if ss.State != s.State || ss.Inode != s.Inode {
			ss.partial = "\x00changed" // forces a seen record
			if s.Inode != 0 {
				w.byInode[s.Inode] = ss
			}
		}
		ss.diagSock = *s
	}
	if ss.gen != n.gen-1 && ss.gen != 0 {
		// listed again after a gap: treat as new
		ss.gen = 0
	}
	if ss.gen == 0 {
		w.changed = append(w.changed, ss)
	}
	ss.gen = n.gen
}

// needsOwner says whether a socket should have a holder.
func needsOwner(s *sockState) bool {
	return s.Inode != 0 && s.State != tcpStateTW && s.State != tcpStateNewSyn
}

// resolveUnknown runs targeted walks for socket inodes without holders: first
// pids that are new or whose fd count changed (newest first), then pids of the
// sockets' uids when few, then a rate-limited full walk.
func (w *watcher) resolveUnknown(now time.Time) {
	unknown := w.scratch[:0]
	for ino, s := range w.byInode {
		// A socket a full walk has already missed (held by a process in
		// another pid namespace, or by the kernel) waits for the next
		// periodic full walk instead of forcing one every few seconds.
		if needsOwner(s) && len(w.holders[ino]) == 0 && s.firstInv >= w.fullInv {
			unknown = append(unknown, ino)
		}
	}
	w.scratch = unknown
	if len(unknown) == 0 {
		return
	}
	want := make(map[uint64]bool, len(unknown))
	uids := map[uint32]bool{}
	for _, ino := range unknown {
		want[ino] = true
		uids[w.byInode[ino].UID] = true
	}
	pids, err := w.walker.pids(w.pidList[:0])
	w.pidList = pids
	if err != nil {
		return
	}
	slices.SortFunc(pids, func(a, b int) int { return cmp.Compare(b, a) }) // newest (highest) first
	var cands, byUID []int
	for _, pid := range pids {
		cnt, uid, err := w.fdStat(pid)
		if err != nil {
			continue
		}
		ps := w.pids[pid]
		if ps == nil || ps.fdCount != cnt || cnt == 0 {
			cands = append(cands, pid)
		} else if uids[uid] {
			byUID = append(byUID, pid)
		}
	}
	left := len(want)
	walk := func(list []int) {
		for _, pid := range list {
			if left == 0 {
				return
			}
			for _, ino := range w.walkPid(pid) {
				if want[ino] {
					want[ino] = false
					left--
				}
			}
		}
	}
	walk(cands)
	if left > 0 && len(byUID)*4 <= len(pids) {
		walk(byUID)
	}
	if left == 0 {
		return
	}
	if now.Sub(w.lastFallback) >= fallbackWalkGap && now.Sub(w.lastFull) >= fallbackWalkGap {
		w.lastFallback = now
		w.fullWalk(now)
		w.fullInv = w.inv + 1 // this walk ran after the dumps
		return
	}
	for ino, v := range want {
		if v {
			if s := w.byInode[ino]; s != nil && len(s.holders) == 0 {
				s.partial = "walk-lag"
			}
		}
	}
}

// fdStat returns st_size (open fds, Linux ≥ 6.2) and owner of /proc/PID/fd.
func (w *watcher) fdStat(pid int) (int64, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(w.walker.proc+"/"+strconv.Itoa(pid)+"/fd", &st); err != nil {
		return 0, 0, err
	}
	return st.Size, st.Uid, nil
}

// fullWalk rebuilds the inode→holders map from every process.
func (w *watcher) fullWalk(now time.Time) {
	w.lastFull = now
	w.stats.FullWalks++
	pids, err := w.walker.pids(w.pidList[:0])
	w.pidList = pids
	if err != nil {
		w.note("cannot list /proc: " + err.Error())
		return
	}
	present := make(map[int]bool, len(pids))
	denied := 0
	for _, pid := range pids {
		present[pid] = true
		if _, err := w.walkPidErr(pid); errors.Is(err, unix.EACCES) {
			denied++
		}
	}
	for pid := range w.pids {
		if !present[pid] {
			w.setPid(pid, nil, nil)
		}
	}
	if denied > 0 {
		w.note(fmt.Sprintf("fd walk: permission denied for %d process(es) (not root?)", denied))
	}
	t := now.UnixNano()
	for k, p := range w.procs {
		if present[k.PID] && p.Exited == 0 {
			if ps := w.pids[k.PID]; ps == nil || ps.start == k.Start || ps.start == 0 {
				p.LastSeen = t
			}
		}
	}
	w.discoverNetns()
}

func (w *watcher) walkPid(pid int) []uint64 {
	inos, _ := w.walkPidErr(pid)
	return inos
}

// walkPidErr walks one process's fds and updates its holder entries. It
// returns the socket inodes found.
func (w *watcher) walkPidErr(pid int) ([]uint64, error) {
	var inos []uint64
	w.fdPairs = w.fdPairs[:0]
	cnt, err := w.walker.socketInodes(pid, func(fd int, ino uint64) {
		inos = append(inos, ino)
		w.fdPairs = append(w.fdPairs, fdIno{fd, ino})
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			w.setPid(pid, nil, nil)
		}
		return nil, err
	}
	slices.Sort(inos)
	inos = slices.Compact(inos)
	ps := w.pids[pid]
	if ps == nil {
		ps = &pidState{}
	}
	ps.fdCount = int64(cnt)
	if len(inos) > 0 && (ps.start == 0 || len(ps.inodes) == 0) {
		_, start, err := w.pr.stat(pid)
		if err != nil {
			return nil, err
		}
		if ps.start != 0 && ps.start != start {
			w.setPid(pid, nil, nil) // pid reused
			ps = &pidState{fdCount: int64(cnt)}
		}
		ps.start = start
	}
	if len(inos) > 0 && ps.netns == 0 {
		var st unix.Stat_t
		if unix.Stat(w.walker.proc+"/"+strconv.Itoa(pid)+"/ns/net", &st) == nil {
			ps.netns = st.Ino
		}
	}
	w.setPid(pid, ps, inos)
	return inos, nil
}

// setPid replaces pid's socket inodes (nil ps: the process is gone).
func (w *watcher) setPid(pid int, ps *pidState, inos []uint64) {
	old := w.pids[pid]
	var oldInos []uint64
	var oldKey ingest.ProcKey
	if old != nil {
		oldInos = old.inodes
		oldKey = ingest.ProcKey{PID: pid, Start: old.start}
	}
	if ps == nil {
		delete(w.pids, pid)
	} else {
		w.pids[pid] = ps
	}
	newKey := ingest.ProcKey{PID: pid}
	if ps != nil {
		newKey.Start = ps.start
	}
	sameKey := old != nil && ps != nil && oldKey == newKey
	for _, ino := range oldInos {
		if sameKey {
			if _, found := slices.BinarySearch(inos, ino); found {
				continue
			}
		}
		w.holders[ino] = removeKey(w.holders[ino], oldKey)
		if len(w.holders[ino]) == 0 {
			delete(w.holders, ino)
		}
	}
	for _, ino := range inos {
		if sameKey {
			if _, found := slices.BinarySearch(oldInos, ino); found {
				continue
			}
		}
		w.holders[ino] = addKey(w.holders[ino], newKey)
	}
	if ps != nil {
		ps.inodes = inos
	}
}

func cmpKey(a, b ingest.ProcKey) int {
	if c := cmp.Compare(a.PID, b.PID); c != 0 {
		return c
	}
	return cmp.Compare(a.Start, b.Start)
}

func addKey(ks []ingest.ProcKey, k ingest.ProcKey) []ingest.ProcKey {
	i, found := slices.BinarySearchFunc(ks, k, cmpKey)
	if found {
		return ks
	}
	return slices.Insert(ks, i, k)
}

func removeKey(ks []ingest.ProcKey, k ingest.ProcKey) []ingest.ProcKey {
	i, found := slices.BinarySearchFunc(ks, k, cmpKey)
	if !found {
		return ks
	}
	out := make([]ingest.ProcKey, 0, len(ks)-1) // copy: emitted records may share ks
	out = append(out, ks[:i]...)
	return append(out, ks[i+1:]...)
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
		n := &netState{info: ingest.NetnsInfo{Inode: ino, PIDs: pids[:min(len(pids), maxNetnsPIDs)]},
			destroyFD: -1, socks: map[uint64]*sockState{}}
		if err := w.openNetns(n, pids[0]); err != nil {
			w.note(fmt.Sprintf("netns %d (pid %d): %v; its sockets are not inventoried", ino, pids[0], err))
			n.info.Name = "unobserved"
		} else {
			n.alive = true
		}
		w.nets = append(w.nets, n)
	}
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

// ---- emission ----

func (w *watcher) sockRecord(kind string, s *sockState, t int64) ingest.SocketRecord {
	r := ingest.SocketRecord{
		Kind: kind, T: t, Netns: s.netns, Proto: protoName(s.Proto),
		Local: s.Local.String(), Remote: s.Remote.String(), State: stateName(s.Proto, s.State),
		Inode: s.Inode, Cookie: s.Cookie, UID: int(s.UID), CgroupID: s.CgroupID,
		Holders: s.holders, Partial: s.partial,
	}
	if s.HasInfo {
		r.BytesAcked, r.BytesReceived, r.BytesSent = s.BytesAcked, s.BytesReceived, s.BytesSent
	}
	return r
}

// emitNetns emits seen, gone and bytes records and the snapshot marker of
// one namespace.
func (w *watcher) emitNetns(n *netState, t int64) error {
	w.seq++
	seq := w.seq
	count := 0
	var gone []*sockState
	for c, s := range n.socks {
		if s.gen != n.gen {
			gone = append(gone, s)
			delete(n.socks, c)
			continue
		}
		count++
	}
	// seen: new or changed sockets, and sockets whose holders changed.
	emitSeen := func(s *sockState) error {
		s.partial = w.partialFor(s)
		if err := w.ensureProcs(s.holders); err != nil {
			return err
		}
		r := w.sockRecord("seen", s, t)
		r.Snap = seq
		s.reported = true
		s.repAcked, s.repRecv, s.repSent = s.BytesAcked, s.BytesReceived, s.BytesSent
		return w.sink.Socket(r)
	}
	for _, s := range w.changed {
		if s.netns != n.info.Inode || s.gen != n.gen {
			continue
		}
		s.holders = w.holdersFor(s)
		s.gen = n.gen | 1<<63 // emitted this round
		if err := emitSeen(s); err != nil {
			return err
		}
	}
	rest := w.rest[:0]
	for _, s := range n.socks {
		if s.gen&(1<<63) != 0 {
			s.gen &^= 1 << 63
			continue
		}
		if !s.reported || s.partial == "\x00changed" || !slices.Equal(w.holdersFor(s), s.holders) ||
			s.HasInfo && (s.BytesAcked != s.repAcked || s.BytesReceived != s.repRecv || s.BytesSent != s.repSent) {
			rest = append(rest, s)
		}
	}
	w.rest = rest
	slices.SortFunc(rest, func(a, b *sockState) int { return cmp.Compare(a.Cookie, b.Cookie) })
	for _, s := range rest {
		h := w.holdersFor(s)
		if !s.reported || !slices.Equal(h, s.holders) || s.partial == "\x00changed" {
			s.holders = h
			if err := emitSeen(s); err != nil {
				return err
			}
			continue
		}
		if s.HasInfo && (s.BytesAcked != s.repAcked || s.BytesReceived != s.repRecv || s.BytesSent != s.repSent) {
			s.repAcked, s.repRecv, s.repSent = s.BytesAcked, s.BytesReceived, s.BytesSent
			if err := w.sink.Socket(ingest.SocketRecord{Kind: "bytes", T: t, Snap: seq, Netns: s.netns,
				Cookie: s.Cookie, BytesAcked: s.BytesAcked, BytesReceived: s.BytesReceived, BytesSent: s.BytesSent}); err != nil {
				return err
			}
		}
	}
	slices.SortFunc(gone, func(a, b *sockState) int { return cmp.Compare(a.Cookie, b.Cookie) })
	for _, s := range gone {
		w.forget(s)
		w.recent[s.Cookie] = s
		r := ingest.SocketRecord{Kind: "gone", T: t, Snap: seq, Netns: s.netns, Proto: protoName(s.Proto),
			Local: s.Local.String(), Remote: s.Remote.String(), Inode: s.Inode, Cookie: s.Cookie}
		if err := w.sink.Socket(r); err != nil {
			return err
		}
	}
	return w.sink.Socket(ingest.SocketRecord{Kind: "snapshot", T: t, Seq: seq, Netns: n.info.Inode, Count: count})
}

// forget drops a socket from the lookup maps.
func (w *watcher) forget(s *sockState) {
	if w.byCookie[s.Cookie] == s {
		delete(w.byCookie, s.Cookie)
	}
	if s.Inode != 0 && w.byInode[s.Inode] == s {
		delete(w.byInode, s.Inode)
	}
}

// holdersFor returns the current holders of s, keeping the last known ones
// when every known holder has gone (the socket outlives them, or is held by a
// process not walked yet).
func (w *watcher) holdersFor(s *sockState) []ingest.ProcKey {
	if s.Inode != 0 {
		if h := w.holders[s.Inode]; len(h) > 0 {
			return h
		}
	}
	if pe := w.probed[s.Cookie]; pe != nil && len(s.holders) == 0 {
		return pe.holders
	}
	return s.holders
}

func (w *watcher) partialFor(s *sockState) string {
	switch {
	case s.State == tcpStateTW:
		return "time-wait"
	case s.Inode == 0 && s.State != tcpStateNewSyn:
		return "inode-0"
	case len(s.holders) > 0:
		return ""
	case s.partial == "walk-lag":
		return "walk-lag"
	case s.State == tcpStateNewSyn:
		return ""
	}
	return "owner-unknown"
}

// ensureProcs emits ProcessInfo for holders not reported yet.
func (w *watcher) ensureProcs(hs []ingest.ProcKey) error {
	for _, k := range hs {
		if _, ok := w.procs[k]; ok {
			continue
		}
		t := w.now().UnixNano()
		p, err := w.pr.info(k.PID, t, w.cfg.HashMaxBytes)
		if err != nil || p.Start != k.Start {
			p = ingest.ProcessInfo{PID: k.PID, Start: k.Start, UID: -1, FirstSeen: t, LastSeen: t}
		}
		w.procs[k] = &p
		w.procOrder = append(w.procOrder, k)
		if err := w.sink.Process(p); err != nil {
			return err
		}
	}
	return nil
}

// ---- events ----

func (w *watcher) onDestroy(ev destroyEvent) error {
	s := &sockState{diagSock: ev.s, netns: ev.netns}
	old := w.byCookie[ev.s.Cookie]
	if old == nil {
		old = w.recent[ev.s.Cookie]
	}
	if old == nil {
		old = w.recentOld[ev.s.Cookie]
	}
	if old != nil {
		s.holders = old.holders
		s.Inode = old.Inode
		s.UID = old.UID
		s.CgroupID = max(s.CgroupID, old.CgroupID)
		w.forget(old)
		for _, n := range w.nets {
			if n.socks[ev.s.Cookie] == old {
				delete(n.socks, ev.s.Cookie)
			}
		}
	} else if pe := w.probed[ev.s.Cookie]; pe != nil {
		s.holders = pe.holders
		s.Inode = pe.s.Inode
		s.UID = pe.s.UID
	}
	if pe := w.probed[ev.s.Cookie]; pe != nil {
		delete(w.probedIno, pe.s.Inode)
		delete(w.probed, ev.s.Cookie)
	}
	if len(s.holders) == 0 {
		s.partial = "owner-unknown"
	}
	if err := w.ensureProcs(s.holders); err != nil {
		return err
	}
	return w.sink.Socket(w.sockRecord("destroy", s, ev.t))
}

func (w *watcher) expireProbed(now time.Time) {
	for c, pe := range w.probed {
		if now.Sub(pe.t) > probeCacheTTL {
			delete(w.probed, c)
			delete(w.probedIno, pe.s.Inode)
		}
	}
}

// sortStrings sorts in place (kept here so procinfo.go needs no slices import).
func sortStrings(s []string) { slices.Sort(s) }

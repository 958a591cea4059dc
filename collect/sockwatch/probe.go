package sockwatch

import (
	"container/heap"
	"errors"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flowblame/flowblame/ingest"
	"golang.org/x/sys/unix"
)

// probeDelays are when a new process's fds are probed after fork/exec: at
// most 100 ms apart for the first 450 ms, so a connection that lives 100 ms
// is caught even when opened by a slow starter (an interpreter can take
// 150–300 ms to reach its first connect on a busy host), then sparser up to
// 2 s, where periodic inventories take over. An exit cancels the rest; an
// exec cancels the probes of the fork (or earlier exec) of the same pid.
var probeDelays = [...]time.Duration{
	10 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond, 100 * time.Millisecond,
	150 * time.Millisecond, 200 * time.Millisecond, 275 * time.Millisecond, 350 * time.Millisecond,
	450 * time.Millisecond, 600 * time.Millisecond, 1000 * time.Millisecond, 1500 * time.Millisecond,
	2000 * time.Millisecond,
}

// Early probes (≤ earlyProbe) always walk a small process's fds: an
// unchanged fd count proves nothing there (an interpreter closes a file and
// opens its socket on the same count). Later probes, and probes of
// processes with more than smallProcFDs fds, are skipped when the count
// (st_size of /proc/PID/fd, Linux ≥ 6.2) did not move: one stat.
const (
	earlyProbe   = 450 * time.Millisecond
	smallProcFDs = 64
)

// proberHashLimit caps what the prober hashes itself (≈ 1 ms): it must stay
// on time for the next process. Larger executables are opened by the prober
// (an open /proc/PID/exe keeps even a deleted binary readable after the
// process exits) and hashed by the main loop.
const proberHashLimit = 1 << 20

// probeItem is one scheduled probe of a new process.
type probeItem struct {
	due   time.Time
	pid   int
	gen   uint64 // stale when the pid's generation moved on
	last  bool
	early bool // always walk small processes (see earlyProbe)
}

type probeHeap []probeItem

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h probeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *probeHeap) Push(x any)        { *h = append(*h, x.(probeItem)) }
func (h *probeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// probedSock is one socket fd found by a probe.
type probedSock struct {
	fd     int
	ino    uint64
	inet   bool     // s is valid
	s      diagSock // from the fd itself (pidfd_getfd), when inet
	failed error    // describing the fd failed (not "not inet")
}

// probeResult is what one probe of a live process captured.
type probeResult struct {
	pid     int
	start   int64
	netns   uint64
	fdCount int64
	t       time.Time
	socks   []probedSock
	info    *ingest.ProcessInfo // facts read while the process lived (first time only)
	exe     *os.File            // open executable still to hash (info.ExeSHA256 empty)
}

// procMsg travels from the prober to the main loop, in event order: a
// proc-connector event or a probe result.
type procMsg struct {
	ev    procEvent
	probe *probeResult
}

// prober runs on its own goroutine: it schedules and runs probes of new
// processes and describes the sockets it finds straight from their fds, so a
// probe result is complete even if the main loop reads it after the process
// has exited.
type prober struct {
	walker   *fdWalker
	pr       *procReader
	monoToRT int64
	heap     probeHeap
	gen      uint64
	gens     map[int]uint64
	known    map[uint64]probedSock // inode → last description (complete inet sockets and non-inet)
	infoDone map[ingest.ProcKey]bool
	counts   map[int]int64 // pid → fd count at its last probe
	// tid is the prober's OS thread (for the cost benchmark).
	tid atomic.Int32
}

func newProber(proc string, pr *procReader, monoToRT int64) *prober {
	return &prober{walker: newFDWalker(proc), pr: pr, monoToRT: monoToRT,
		gens: map[int]uint64{}, known: map[uint64]probedSock{}, infoDone: map[ingest.ProcKey]bool{}, counts: map[int]int64{}}
}

func (p *prober) run(evs <-chan procEvent, out chan<- procMsg, stop <-chan struct{}) {
	boostThread()
	p.tid.Store(int32(unix.Gettid()))
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	send := func(m procMsg) bool {
		select {
		case out <- m:
			return true
		case <-stop:
			return false
		}
	}
	for {
		if len(p.heap) > 0 {
			timer.Reset(max(time.Until(p.heap[0].due), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-stop:
			return
		case ev := <-evs:
			if ev.What == procEventFork || ev.What == procEventExec {
				p.schedule(ev)
			} else if ev.What == procEventExit {
				delete(p.gens, ev.PID)
				delete(p.counts, ev.PID)
			}
			if !send(procMsg{ev: ev}) {
				return
			}
		case <-timer.C:
			now := time.Now()
			for len(p.heap) > 0 && !p.heap[0].due.After(now) {
				it := heap.Pop(&p.heap).(probeItem)
				if g, ok := p.gens[it.pid]; !ok || g != it.gen {
					continue
				}
				r := p.probe(it.pid, it.early)
				if it.last {
					delete(p.gens, it.pid)
					delete(p.counts, it.pid)
				}
				if r != nil && !send(procMsg{probe: r}) {
					return
				}
			}
		}
	}
}

func (p *prober) schedule(ev procEvent) {
	now := time.Now()

	base := time.Unix(0, ev.Mono+p.monoToRT)
	if base.After(now) || now.Sub(base) > time.Second {
		base = now
	}
	p.gen++
	p.gens[ev.PID] = p.gen
	delete(p.counts, ev.PID)
	for i, d := range probeDelays {
		heap.Push(&p.heap, probeItem{due: base.Add(d), pid: ev.PID, gen: p.gen,
			last: i == len(probeDelays)-1, early: d <= earlyProbe})
	}
}

// probe walks pid's fds and describes its sockets; nil when the process is
// gone or holds no sockets.
func (p *prober) probe(pid int, early bool) *probeResult {
	// Skip the walk when the fd count did not move since the last probe of
	// this process, unless early and small (see earlyProbe).
	if cnt, err := p.walker.fdCount(pid); err != nil {
		return nil
	} else if last, ok := p.counts[pid]; ok && cnt != 0 && cnt == last && (!early || cnt > smallProcFDs) {
		return nil
	} else {
		p.counts[pid] = cnt
	}
	r := &probeResult{pid: pid, t: time.Now()}
	cnt, err := p.walker.socketInodes(pid, func(fd int, ino uint64) {
		r.socks = append(r.socks, probedSock{fd: fd, ino: ino})
	})

	if err != nil || len(r.socks) == 0 {
		return nil
	}
	r.fdCount = int64(cnt)
	_, start, err := p.pr.stat(pid)
	if err != nil {
		return nil
	}
	r.start = start
	var st unix.Stat_t
	if unix.Stat(p.walker.proc+"/"+strconv.Itoa(pid)+"/ns/net", &st) == nil {
		r.netns = st.Ino
	}
	if len(p.known) > 200_000 {
		clear(p.known)
	}
	inet := false
	for i := range r.socks {
		ps := &r.socks[i]
		if k, ok := p.known[ps.ino]; ok {
			ps.inet, ps.s = k.inet, k.s
			inet = inet || k.inet
			continue
		}
		err := sockFromFD(pid, ps.fd, &ps.s)
		switch {
		case errors.Is(err, errNotInet):
			p.known[ps.ino] = probedSock{}
		case err == nil:
			ps.inet, inet = true, true
			if complete(&ps.s) {
				p.known[ps.ino] = *ps
			} else {
				delete(p.counts, pid) // connect pending: look again next time
			}
		default:
			// pidfd_getfd refused (old kernel, ptrace policy) or the fd
			// closed meanwhile: the main loop falls back to an extra
			// inventory, which finds the socket by inode.
			ps.failed, inet = err, true
		}
	}
	if !inet {
		return nil
	}
	key := ingest.ProcKey{PID: pid, Start: start}
	if !p.infoDone[key] {
		if info, err := p.pr.info(pid, r.t.UnixNano(), proberHashLimit); err == nil && info.Start == start {
			r.info = &info
			if info.ExeSHA256 == "" && info.ExeSize > proberHashLimit {
				if f, err := os.Open(p.walker.proc + "/" + strconv.Itoa(pid) + "/exe"); err == nil {
					r.exe = f
				}
			}
			if len(p.infoDone) > 100_000 {
				clear(p.infoDone)
			}
			p.infoDone[key] = true
		}
	}
	return r
}

// boostThread locks the calling goroutine to its OS thread and raises that
// thread's priority (nice −10, when permitted): a probe that runs 100 ms
// late on a busy host misses a 100 ms process. Only the proc-event listener
// and the prober run boosted; their work is small and bounded.
func boostThread() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -10)
}

// complete says a socket's tuple is final: TCP connected or listening, UDP
// bound.
func complete(s *diagSock) bool {
	if s.Proto == ipprotoTCP {
		return s.State != tcpStateClose && s.State != 2 // not yet connected, SYN-SENT
	}
	return s.Local.Port() != 0
}

// onProcMsg handles, on the main loop, a proc event or a probe result.
func (w *watcher) onProcMsg(m procMsg) error {
	if m.probe != nil {
		return w.onProbe(m.probe)
	}
	ev := m.ev
	switch ev.What {
	case procEventExec:
		ps := w.pids[ev.PID]
		if ps == nil {
			return nil
		}
		ps.netns = 0 // setns before exec (ip netns exec, nsenter): read it again
		k := ingest.ProcKey{PID: ev.PID, Start: ps.start}
		if p := w.procs[k]; p != nil {
			// Its facts changed: report them again (later lines win).
			if np, err := w.pr.info(ev.PID, w.now().UnixNano(), w.cfg.HashMaxBytes); err == nil && np.Start == k.Start {
				np.FirstSeen = p.FirstSeen
				*p = np
				return w.sink.Process(np)
			}
		}
	case procEventExit:
		t := ev.Mono + w.monoToRT
		if ps := w.pids[ev.PID]; ps != nil {
			k := ingest.ProcKey{PID: ev.PID, Start: ps.start}
			if p := w.procs[k]; p != nil && p.Exited == 0 {
				p.Exited, p.LastSeen = t, t
				if err := w.sink.Process(*p); err != nil {
					return err
				}
			}
			w.setPid(ev.PID, nil, nil)
		}
	}
	return nil
}

// onProbe merges a probe result: the process becomes a holder of its
// sockets, and each inet socket newly attributed to it (or whose tuple
// became known) is reported as a "probe" record.
func (w *watcher) onProbe(r *probeResult) error {
	if r.exe != nil {
		defer r.exe.Close()
	}
	ps := w.pids[r.pid]
	if ps != nil && ps.start != r.start {
		w.setPid(r.pid, nil, nil) // pid reused
		ps = nil
	}
	before := map[uint64]bool{}
	if ps != nil {
		for _, ino := range ps.inodes {
			before[ino] = true
		}
	} else {
		ps = &pidState{start: r.start}
	}
	ps.fdCount, ps.netns = r.fdCount, r.netns
	inos := make([]uint64, 0, len(r.socks))
	for _, s := range r.socks {
		inos = append(inos, s.ino)
	}
	slices.Sort(inos)
	w.setPid(r.pid, ps, slices.Compact(inos))
	key := ingest.ProcKey{PID: r.pid, Start: r.start}
	if r.info != nil {
		if _, ok := w.procs[key]; !ok {
			if r.exe != nil {
				w.pr.hashFile(r.exe, r.info, w.cfg.HashMaxBytes) // deferred by the prober
			}
			w.procs[key] = r.info
			w.procOrder = append(w.procOrder, key)
			if err := w.sink.Process(*r.info); err != nil {
				return err
			}
		}
	}
	netns := r.netns
	if netns == 0 {
		netns = w.hostNs
	}
	for _, fs := range r.socks {
		if fs.failed != nil {
			if w.byInode[fs.ino] == nil {
				w.extraDump = true
				w.note("probe: cannot describe sockets from their fds (" + fs.failed.Error() + "); extra inventories instead")
			}
			continue
		}
		if !fs.inet {
			continue
		}
		var s *sockState
		if ss := w.byInode[fs.ino]; ss != nil {
			if before[fs.ino] && slices.Contains(ss.holders, key) {
				continue
			}
			ss.holders = w.holders[fs.ino]
			ss.partial = ""
			s = ss
		} else {
			pe := w.probed[fs.s.Cookie]
			if pe != nil && pe.s == fs.s && slices.Contains(pe.holders, key) {
				continue // nothing new
			}
			if pe == nil {
				pe = &probeEntry{netns: netns}
				w.probed[fs.s.Cookie] = pe
			}
			pe.s, pe.holders, pe.t = fs.s, w.holders[fs.ino], r.t
			w.probedIno[fs.ino] = pe
			s = &sockState{diagSock: pe.s, netns: pe.netns, holders: pe.holders}
		}
		if err := w.ensureProcs(s.holders); err != nil {
			return err
		}
		if err := w.sink.Socket(w.sockRecord("probe", s, r.t.UnixNano())); err != nil {
			return err
		}
	}
	return nil
}

package sockwatch

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowblame/flowblame/ingest"
)

// pidState is what the walks know about one process.
type pidState struct {
	start   int64
	fdCount int64
	inodes  []uint64 // socket inodes, sorted
	netns   uint64
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
		// st_size is 0 before Linux 6.2: then only new pids are candidates.
		if ps == nil || cnt != 0 && ps.fdCount != cnt {
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
	out := make([]ingest.ProcKey, 0, len(ks)+1) // copy: emitted records may share ks
	out = append(out, ks[:i]...)
	out = append(out, k)
	return append(out, ks[i:]...)
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

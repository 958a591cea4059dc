package sockwatch

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/flowblame/flowblame/ingest"
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

// destroyEvent is a decoded destroy notification.
type destroyEvent struct {
	s     diagSock
	netns uint64
	t     int64
}

// probeEntry is a socket found by a probe but not (yet) in an inventory.
type probeEntry struct {
	s       diagSock
	netns   uint64
	holders []ingest.ProcKey
	t       time.Time
}

// inventory dumps every netns, resolves owners and emits records.
func (w *watcher) inventory(first bool) error {
	now := w.now()
	w.lastInv = now
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
			if ss.Inode != s.Inode && ss.Inode != 0 && w.byInode[ss.Inode] == ss {
				delete(w.byInode, ss.Inode) // orphaned by close(): inode 0
			}
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

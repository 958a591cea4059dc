package ingest

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Coverage says when socket inventories were taken, so that the attribution
// join can tell "no inventory covers time t" from "the inventories around t
// did not list that socket".
type Coverage struct {
	// Inventories lists, per network namespace inode (0 = unknown, as in
	// foreign dumps), the times (Unix ns, ascending, distinct) at which a
	// complete socket inventory of that namespace was taken.
	Inventories map[uint64][]int64
	// Interval is the median gap (ns) between consecutive inventories of one
	// namespace (for foreign dumps: of one dump file, the largest over the
	// files, since two interleaved dump loops do not halve the interval);
	// 0 when there are never two inventories.
	Interval int64
	// Source is where the inventories came from (native or a dump format;
	// the first one when several were merged).
	Source SocketFormat
}

// Times returns every inventory time of every namespace, ascending and
// distinct.
func (c Coverage) Times() []int64 {
	var all []int64
	for _, ts := range c.Inventories {
		all = append(all, ts...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// Empty reports whether no inventory was recorded.
func (c Coverage) Empty() bool {
	for _, ts := range c.Inventories {
		if len(ts) > 0 {
			return false
		}
	}
	return true
}

// Merge returns the union of c and o (inventories per namespace merged; the
// interval is the larger of the two).
func (c Coverage) Merge(o Coverage) Coverage {
	out := Coverage{Inventories: map[uint64][]int64{}, Source: c.Source}
	if out.Source == "" {
		out.Source = o.Source
	}
	for _, src := range []map[uint64][]int64{c.Inventories, o.Inventories} {
		for ns, ts := range src {
			out.Inventories[ns] = append(out.Inventories[ns], ts...)
		}
	}
	for ns, ts := range out.Inventories {
		slices.Sort(ts)
		out.Inventories[ns] = slices.Compact(ts)
	}
	// Interleaved sources do not make either one's interval shorter.
	out.Interval = max(c.Interval, o.Interval)
	return out
}

// medianGap is the median of consecutive differences over all namespaces.
func medianGap(inv map[uint64][]int64) int64 {
	var gaps []int64
	for _, ts := range inv {
		for i := 1; i < len(ts); i++ {
			gaps = append(gaps, ts[i]-ts[i-1])
		}
	}
	if len(gaps) == 0 {
		return 0
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// sockID identifies one socket across records: its cookie when known, else
// its netns, protocol, tuple and inode (the "gone" record's rule).
type sockID struct {
	netns         uint64
	cookie        uint64
	proto         uint8
	local, remote netip.AddrPort
	inode         uint64
}

func recordID(r *SocketRecord, proto uint8, local, remote netip.AddrPort) sockID {
	if r.Cookie != 0 {
		return sockID{netns: r.Netns, cookie: r.Cookie}
	}
	return sockID{netns: r.Netns, proto: proto, local: local, remote: remote, inode: r.Inode}
}

// ParseProto maps "tcp"/"udp" (also "tcp6", "udp6", case-insensitive) or a
// decimal protocol number to an IP protocol number.
func ParseProto(s string) (uint8, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "tcp", "tcp4", "tcp6":
		return ProtoTCP, true
	case "udp", "udp4", "udp6":
		return ProtoUDP, true
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, false
	}
	return uint8(n), true
}

// ParseEndpoint parses a socket endpoint as written in sockets.jsonl and by ss:
// "198.51.100.1:443", "[2001:db8::1]:443", "*:53" or "0.0.0.0:*" (wildcard
// address or port). A zone suffix is kept.
func ParseEndpoint(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("endpoint %q: no port: %w", s, ErrMalformed)
	}
	host, port := s[:i], s[i+1:]
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	var a netip.Addr
	switch host {
	case "*", "":
		a = netip.IPv4Unspecified()
		if strings.HasPrefix(s, "[") {
			a = netip.IPv6Unspecified()
		}
	default:
		var err error
		if a, err = netip.ParseAddr(host); err != nil {
			return netip.AddrPort{}, fmt.Errorf("endpoint %q: %w", s, ErrMalformed)
		}
	}
	var p uint64
	if port != "*" {
		var err error
		if p, err = strconv.ParseUint(port, 10, 16); err != nil {
			return netip.AddrPort{}, fmt.Errorf("endpoint %q: bad port: %w", s, ErrMalformed)
		}
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// CompileNative turns the records of sockets.jsonl (in file order) into one
// SocketObservation per socket lifetime, plus the inventory coverage.
//
// Semantics: a "seen" record opens an observation at T (or, when the socket
// is already open with other holders, ends the old observation at the
// previous inventory and opens a new one: holders changed). An open socket
// is listed by every inventory of its netns until its "gone" record, so its
// Last is the last inventory before the "gone" (or the last inventory of the
// bundle). "destroy" sets Closed and the final byte counters (a socket known
// only from its destroy event gets First = Last = Closed = T, Via "destroy").
// "probe" records open observations like "seen" (Via "probe"). "bytes"
// updates counters. Records that cannot be interpreted are skipped and
// reported as Diagnostics with their 1-based record index in Where.
func CompileNative(records []SocketRecord) ([]SocketObservation, Coverage, []Diagnostic) {
	nc := NewNativeCompiler()
	for i := range records {
		nc.Add(records[i])
	}
	return nc.Finish()
}

// NativeCompiler is CompileNative one record at a time, so that a large
// sockets.jsonl is never held in memory: only the observations are. Records
// must be added in file order (the collector writes them in time order; an
// inventory's "seen" and "gone" records precede its "snapshot" marker).
type NativeCompiler struct {
	c compiler
	n int
}

// NewNativeCompiler returns an empty compiler.
func NewNativeCompiler() *NativeCompiler {
	return &NativeCompiler{c: compiler{
		open:     map[sockID]int{},
		inodeIdx: map[[2]uint64]int{},
		ended:    map[sockID]int{},
		ids:      map[int][]sockID{},
		inv:      map[uint64][]int64{},
		snapT:    map[[2]uint64]int64{},
		diags:    newDiagFolder(SocketsFile, 0),
	}}
}

// Add compiles the next record.
func (nc *NativeCompiler) Add(r SocketRecord) {
	nc.n++
	if r.Kind == "snapshot" {
		ts := nc.c.inv[r.Netns]
		i, found := slices.BinarySearch(ts, r.T)
		if !found {
			nc.c.inv[r.Netns] = slices.Insert(ts, i, r.T)
		}
		nc.c.snapT[[2]uint64{r.Netns, uint64(r.Seq)}] = r.T
		return
	}
	nc.c.record(nc.n, &r)
}

// Finish closes the sockets still open at the end (they were listed by
// every later inventory of their netns) and returns the observations (sorted
// by first sighting, then tuple), the coverage and the diagnostics. The
// compiler must not be used afterwards.
func (nc *NativeCompiler) Finish() ([]SocketObservation, Coverage, []Diagnostic) {
	c := &nc.c
	for _, idx := range c.openIdx() {
		c.finish(idx, 1<<62)
	}
	cov := Coverage{Inventories: c.inv, Interval: medianGap(c.inv), Source: FormatNative}
	obs := c.obs.flatten()
	sortObservations(obs)
	return obs, cov, c.diags.diagnostics()
}

type compiler struct {
	obs      obsStore
	open     map[sockID]int    // open observations by socket id
	inodeIdx map[[2]uint64]int // (netns, inode) → open observation (probe ↔ seen merge)
	ended    map[sockID]int    // last finished observation per socket id (late destroy records)
	ids      map[int][]sockID  // open observation → the ids it is open under
	inv      map[uint64][]int64
	snapT    map[[2]uint64]int64
	diags    *diagFolder
}

// note records a skipped record; the message is its class.
func (f *diagFolder) note(where, msg string, err error) {
	f.add(msg, DiagMalformed, where, -1, 0, msg, err)
}

func (c *compiler) openIdx() []int {
	var idx []int
	for _, i := range c.open {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return slices.Compact(idx)
}

// lastInvBefore is the latest inventory time of netns ≤ t (ok false if none).
func (c *compiler) lastInvBefore(netns uint64, t int64) (int64, bool) {
	ts := c.inv[netns]
	i := sort.Search(len(ts), func(i int) bool { return ts[i] > t })
	if i == 0 {
		return 0, false
	}
	return ts[i-1], true
}

// finish closes open observation idx: it was last listed by the last
// inventory strictly before `before`.
func (c *compiler) finish(idx int, before int64) {
	o := c.obs.at(idx)
	// Only sockets listed by an inventory stay listed until they are gone;
	// a socket known from a probe alone was seen once.
	if t, ok := c.lastInvBefore(o.Netns, before-1); ok && t > o.Last && o.Via == "snapshot" {
		o.Last = t
	}
	c.forget(idx)
}

func (c *compiler) forget(idx int) {
	o := c.obs.at(idx)
	for _, id := range c.ids[idx] {
		if c.open[id] == idx {
			delete(c.open, id)
			c.ended[id] = idx
		}
	}
	delete(c.ids, idx)
	if o.Inode != 0 && c.inodeIdx[[2]uint64{o.Netns, o.Inode}] == idx {
		delete(c.inodeIdx, [2]uint64{o.Netns, o.Inode})
	}
}

func (c *compiler) record(n int, r *SocketRecord) {
	where := "record " + strconv.Itoa(n)
	switch r.Kind {
	case "snapshot":
		return
	case "seen", "probe", "destroy", "gone", "bytes":
	default:
		c.diags.note(where, fmt.Sprintf("unknown record kind %q", r.Kind), ErrMalformed)
		return
	}
	var proto uint8
	var local, remote netip.AddrPort
	if r.Proto != "" || r.Local != "" {
		var ok bool
		if proto, ok = ParseProto(r.Proto); !ok {
			c.diags.note(where, fmt.Sprintf("%s record: bad proto %q", r.Kind, r.Proto), ErrMalformed)
			return
		}
		var err error
		if local, err = ParseEndpoint(r.Local); err != nil {
			c.diags.note(where, fmt.Sprintf("%s record: bad local endpoint", r.Kind), err)
			return
		}
		if remote, err = ParseEndpoint(r.Remote); err != nil {
			c.diags.note(where, fmt.Sprintf("%s record: bad remote endpoint", r.Kind), err)
			return
		}
	}
	id := recordID(r, proto, local, remote)
	idx, isOpen := c.open[id]
	if !isOpen && r.Inode != 0 {
		if i, ok := c.inodeIdx[[2]uint64{r.Netns, r.Inode}]; ok && c.obs.at(i).Local == local && c.obs.at(i).Remote == remote {
			idx, isOpen = i, true
			c.open[id] = i
			c.ids[i] = append(c.ids[i], id)
		}
	}
	holders := r.Holders
	// A socket's tuple changes during its life (bound, then connected): a
	// probe can catch it between socket() and connect(), listed as
	// 0.0.0.0:0. A record with another tuple ends that observation and
	// starts one under the new tuple, which keeps the holders if the record
	// names none.
	if isOpen && local.IsValid() {
		if o := c.obs.at(idx); o.Proto != proto || o.Local != local || o.Remote != remote {
			if len(holders) == 0 {
				holders = o.Holders
			}
			c.finish(idx, r.T)
			delete(c.ended, id) // a later destroy is the new tuple's
			isOpen = false
		}
	}
	switch r.Kind {
	case "seen", "probe":
		if !local.IsValid() {
			c.diags.note(where, r.Kind+" record without local endpoint", ErrMalformed)
			return
		}
		if isOpen {
			o := c.obs.at(idx)
			if sameHolders(o.Holders, r.Holders) || len(r.Holders) == 0 {
				c.touch(o, r)
				if r.Kind == "seen" {
					o.Via = "snapshot"
				}
				return
			}
			// Holders changed: end the old observation, open a new one.
			c.finish(idx, r.T)
		}
		via := "snapshot"
		if r.Kind == "probe" {
			via = "probe"
		}
		c.obs.push(SocketObservation{
			Proto: proto, Local: local, Remote: remote, State: r.State, Inode: r.Inode, Cookie: r.Cookie,
			UID: r.UID, Netns: r.Netns, First: r.T, Last: r.T, Holders: slices.Clone(holders),
			Source: FormatNative, Via: via, BytesAcked: r.BytesAcked, BytesReceived: r.BytesReceived,
			Partial: r.Partial,
		})
		i := c.obs.len() - 1
		c.open[id] = i
		c.ids[i] = append(c.ids[i], id)
		if r.Inode != 0 {
			c.inodeIdx[[2]uint64{r.Netns, r.Inode}] = i
		}
	case "gone":
		if !isOpen {
			c.diags.note(where, "gone record for a socket that is not open", ErrMalformed)
			return
		}
		before := r.T
		if t, ok := c.snapT[[2]uint64{r.Netns, uint64(r.Snap)}]; ok && r.Snap != 0 {
			before = t
		}
		c.finish(idx, before)
	case "destroy":
		if i, ok := c.ended[id]; ok && !isOpen && c.obs.at(i).Closed == 0 && r.T >= c.obs.at(i).First {
			// The destroy event was written after the "gone" record.
			o := c.obs.at(i)
			o.Closed = r.T
			setCounters(o, r)
			return
		}
		if isOpen {
			o := c.obs.at(idx)
			c.finish(idx, r.T+1)
			o.Closed = r.T
			if o.Last > r.T {
				o.Last = r.T
			}
			if len(o.Holders) == 0 {
				o.Holders = slices.Clone(r.Holders)
			}
			setCounters(o, r)
			return
		}
		if !local.IsValid() {
			c.diags.note(where, "destroy record without tuple for an unknown socket", ErrMalformed)
			return
		}
		c.obs.push(SocketObservation{
			Proto: proto, Local: local, Remote: remote, State: r.State, Inode: r.Inode, Cookie: r.Cookie,
			UID: r.UID, Netns: r.Netns, First: r.T, Last: r.T, Closed: r.T, Holders: slices.Clone(holders),
			Source: FormatNative, Via: "destroy", BytesAcked: r.BytesAcked, BytesReceived: r.BytesReceived,
			Partial: r.Partial,
		})
	case "bytes":
		if isOpen {
			setCounters(c.obs.at(idx), r)
		}
	}
}

// touch updates an open observation with a later record of the same socket.
func (c *compiler) touch(o *SocketObservation, r *SocketRecord) {
	if r.T > o.Last {
		o.Last = r.T
	}
	if r.T < o.First {
		o.First = r.T
	}
	if r.State != "" {
		o.State = r.State
	}
	if r.Cookie != 0 {
		o.Cookie = r.Cookie
	}
	if len(o.Holders) == 0 {
		o.Holders = slices.Clone(r.Holders)
	}
	setCounters(o, r)
}

func setCounters(o *SocketObservation, r *SocketRecord) {
	if r.BytesAcked > o.BytesAcked {
		o.BytesAcked = r.BytesAcked
	}
	if r.BytesReceived > o.BytesReceived {
		o.BytesReceived = r.BytesReceived
	}
}

func sameHolders(a, b []ProcKey) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, cmpProcKey)
	slices.SortFunc(y, cmpProcKey)
	return slices.Equal(x, y)
}

func cmpProcKey(a, b ProcKey) int {
	if a.PID != b.PID {
		return a.PID - b.PID
	}
	return cmp.Compare(a.Start, b.Start)
}

// sortObservations orders observations deterministically (first seen, then
// tuple, then cookie/inode).
func sortObservations(obs []SocketObservation) {
	sort.SliceStable(obs, func(i, j int) bool {
		a, b := &obs[i], &obs[j]
		if a.First != b.First {
			return a.First < b.First
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if c := a.Local.Compare(b.Local); c != 0 {
			return c < 0
		}
		if c := a.Remote.Compare(b.Remote); c != 0 {
			return c < 0
		}
		if a.Cookie != b.Cookie {
			return a.Cookie < b.Cookie
		}
		return a.Inode < b.Inode
	})
}

// foreignKey identifies a socket across foreign dumps (no cookies): netns,
// protocol, tuple, inode and holders (a holder change starts a new lifetime).
type foreignKey struct {
	netns         uint64
	proto         uint8
	local, remote netip.AddrPort
	inode         uint64
	first         ProcKey // the first holder (sorted), inline: most sockets have one
	more          string  // holdersKey of the others
}

// holdersKey is a sorted holder list as a map key ("pid/start,...").
func holdersKey(hs []ProcKey) string {
	b := make([]byte, 0, 24*len(hs))
	for i, h := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(h.PID), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, h.Start, 10)
	}
	return string(b)
}

// CompileSnapshots turns foreign socket dumps (ss, lsof, netstat, ...) into
// observations: a socket's lifetime runs from the first to the last dump that
// lists it (consecutively: a socket missing from one dump and listed again
// later starts a new observation), its Holders come from the dump and Source
// is the dump format. It also returns the coverage (the dumps' times; all
// dumps count as inventories of netns 0) and the processes the dumps name,
// keyed by holder.
//
// Dumps carry no process start times, so PID reuse is detected by name: when
// a PID's command name changes between dumps, holders of the later program
// get ProcKey.Start = the time of the first dump that lists it under the new
// name (an approximate start; documented as such in ProcessInfo.Start of the
// returned map).
func CompileSnapshots(snaps []SocketSnapshot) ([]SocketObservation, Coverage, map[ProcKey]ProcessInfo) {
	ordered := slices.Clone(snaps)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Taken < ordered[j].Taken })
	c := NewSnapshotCompiler()
	for i := range ordered {
		c.Add(&ordered[i])
	}
	return c.Finish()
}

// SnapshotCompiler is CompileSnapshots one dump at a time, so that long
// dump loops need not be held in memory: Add the dumps in time order (ties
// in file order), then Finish once.
type SnapshotCompiler struct {
	cov   Coverage
	procs map[ProcKey]*ProcessInfo // pointers: a ProcessInfo is big, and updated per socket per dump
	obs   []SocketObservation
	open  map[foreignKey]int // observations listed by the previous dump
	// lastSnap is, per observation, the last dump (number) that listed it.
	lastSnap []int
	// pids tracks the current (name, start) per PID for reuse detection.
	pids  map[int]pidState
	n     int                // dumps added
	taken map[string][]int64 // per file, the times of its dumps
	files []string           // in order of first appearance
}

type pidState struct {
	comm  string
	start int64
}

// NewSnapshotCompiler returns an empty compiler.
func NewSnapshotCompiler() *SnapshotCompiler {
	return &SnapshotCompiler{cov: Coverage{Inventories: map[uint64][]int64{}}, procs: map[ProcKey]*ProcessInfo{},
		open: map[foreignKey]int{}, pids: map[int]pidState{}, taken: map[string][]int64{}}
}

// Add compiles the next dump.
func (c *SnapshotCompiler) Add(s *SocketSnapshot) {
	si := c.n
	c.n++
	if c.cov.Source == "" {
		c.cov.Source = s.Source
	}
	c.cov.Inventories[0] = append(c.cov.Inventories[0], s.Taken)
	if _, ok := c.taken[s.File]; !ok {
		c.files = append(c.files, s.File)
	}
	c.taken[s.File] = append(c.taken[s.File], s.Taken)
	procs, pids := c.procs, c.pids
	var buf [4]ProcKey
	for ei := range s.Sockets {
		e := &s.Sockets[ei]
		holders := buf[:0]
		if len(e.Holders) > len(buf) {
			holders = make([]ProcKey, 0, len(e.Holders))
		}
		holders = holders[:len(e.Holders)]
		for hi, h := range e.Holders {
			comm := ""
			if hi < len(e.Comms) {
				comm = e.Comms[hi]
			}
			if p, ok := s.Procs[h]; ok && comm == "" {
				comm = p.Comm
			}
			if h.Start == 0 && comm != "" {
				st, ok := pids[h.PID]
				switch {
				case !ok:
					st = pidState{comm: comm}
				case st.comm != comm:
					st = pidState{comm: comm, start: s.Taken}
				}
				pids[h.PID] = st
				h.Start = st.start
			}
			holders[hi] = h
			p := procs[h]
			if p == nil {
				p = &ProcessInfo{}
				procs[h] = p
			}
			if pi, ok := s.Procs[e.Holders[hi]]; ok {
				// The dump's facts, but when the process was seen is
				// what all the dumps so far say (a dump's own
				// ProcessInfo has no times): it orders the holders.
				pi.FirstSeen, pi.LastSeen = p.FirstSeen, p.LastSeen
				*p = pi
			}
			p.PID, p.Start = h.PID, h.Start
			if p.Comm == "" {
				p.Comm = comm
			}
			if p.FirstSeen == 0 || s.Taken < p.FirstSeen {
				p.FirstSeen = s.Taken
			}
			if s.Taken > p.LastSeen {
				p.LastSeen = s.Taken
			}
		}
		slices.SortFunc(holders, cmpProcKey)
		holders = slices.Compact(holders)
		k := foreignKey{netns: e.Netns, proto: e.Proto, local: e.Local, remote: e.Remote, inode: e.Inode}
		if len(holders) > 0 {
			k.first = holders[0]
			if len(holders) > 1 {
				k.more = holdersKey(holders[1:])
			}
		}
		if i, ok := c.open[k]; ok {
			if c.lastSnap[i] == si {
				continue // listed twice in this dump
			}
			c.lastSnap[i] = si
			o := &c.obs[i]
			o.Last = s.Taken
			o.State = e.State
			if e.BytesAcked > o.BytesAcked {
				o.BytesAcked = e.BytesAcked
			}
			if e.BytesReceived > o.BytesReceived {
				o.BytesReceived = e.BytesReceived
			}
			continue
		}
		holders = slices.Clone(holders) // buf is reused by the next socket
		if len(holders) > 1 {
			// Primary holder first: dumps carry no start times, so the
			// process seen earliest (the parent of a fork, which held
			// the socket first) leads; PIDs, which wrap around, only
			// break ties.
			slices.SortStableFunc(holders, func(a, b ProcKey) int { return cmp.Compare(procs[a].FirstSeen, procs[b].FirstSeen) })
		}
		c.obs = append(c.obs, SocketObservation{
			Proto: e.Proto, Local: e.Local, Remote: e.Remote, State: e.State, Inode: e.Inode,
			Cookie: e.Cookie, UID: e.UID, Netns: e.Netns, First: s.Taken, Last: s.Taken,
			Holders: holders, Source: s.Source, Via: "snapshot",
			BytesAcked: e.BytesAcked, BytesReceived: e.BytesReceived,
		})
		c.lastSnap = append(c.lastSnap, si)
		c.open[k] = len(c.obs) - 1
	}
	// A socket this dump does not list ends its observation.
	for k, i := range c.open {
		if c.lastSnap[i] != si {
			delete(c.open, k)
		}
	}
}

// Finish returns the observations, the coverage and the processes of the
// dumps added (see CompileSnapshots).
func (c *SnapshotCompiler) Finish() ([]SocketObservation, Coverage, map[ProcKey]ProcessInfo) {
	cov, obs := c.cov, c.obs
	for ns, ts := range cov.Inventories {
		slices.Sort(ts)
		cov.Inventories[ns] = slices.Compact(ts)
	}
	for _, f := range c.files {
		cov.Interval = max(cov.Interval, medianGap(map[uint64][]int64{0: c.taken[f]}))
	}
	sortObservations(obs)
	out := make(map[ProcKey]ProcessInfo, len(c.procs))
	for k, p := range c.procs {
		out[k] = *p
	}
	return obs, cov, out
}

// obsStore holds observations in fixed-size chunks while a compiler adds
// them: a bundle of a busy host has millions, and a growing slice would
// copy them again and again (Go grows large slices by a quarter), with the
// garbage collector scanning every copy. flatten makes the one final slice.
type obsStore struct {
	chunks [][]SocketObservation
	n      int
}

const obsChunk = 4096

func (s *obsStore) at(i int) *SocketObservation { return &s.chunks[i/obsChunk][i%obsChunk] }

func (s *obsStore) len() int { return s.n }

func (s *obsStore) push(o SocketObservation) {
	if s.n%obsChunk == 0 {
		s.chunks = append(s.chunks, make([]SocketObservation, 0, obsChunk))
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = append(*last, o)
	s.n++
}

// flatten returns the observations as one slice and empties s.
func (s *obsStore) flatten() []SocketObservation {
	out := make([]SocketObservation, 0, s.n)
	for i, c := range s.chunks {
		out = append(out, c...)
		s.chunks[i] = nil // each chunk can go as soon as it is copied
	}
	s.chunks, s.n = nil, 0
	return out
}

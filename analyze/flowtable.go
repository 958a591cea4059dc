package analyze

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// Hash mixing constants (wyhash).
const (
	hk0 = 0xa0761d6478bd642f
	hk1 = 0xe7037ed1a0b428db
	hk2 = 0x8ebc6af09c88c6e3
	hk3 = 0x589965cc75374cc3
)

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// words returns k as five 64-bit words.
func (k *fkey) words() (a0, a1, b0, b1, x uint64) {
	return binary.LittleEndian.Uint64(k.a[:8]), binary.LittleEndian.Uint64(k.a[8:]),
		binary.LittleEndian.Uint64(k.b[:8]), binary.LittleEndian.Uint64(k.b[8:]),
		uint64(k.pa) | uint64(k.pb)<<16 | uint64(k.proto)<<32 | uint64(k.flags)<<40
}

// hashes returns two 64-bit hashes of k: the high and low halves of the
// same three 128-bit products, crossed and finalised separately, so that
// together they carry about 128 bits of the key.
func (k *fkey) hashes() (h, h2 uint64) {
	a0, a1, b0, b1, x := k.words()
	p1h, p1l := bits.Mul64(a0^hk0, a1^hk1)
	p2h, p2l := bits.Mul64(b0^hk2, b1^hk3)
	p3h, p3l := bits.Mul64(x^hk1, hk2)
	return mix(p1h^p2l^p3h^hk3, hk0), mix(p1l^p2h^p3l^hk1, hk2)
}

// hash returns the first of k's hashes.
func (k *fkey) hash() uint64 { h, _ := k.hashes(); return h }

// slot is one flowTable entry: 96 bits of the key's hashes and its index.
type slot struct {
	fp  uint64 // second hash | 1 (0 marks an empty slot)
	tag uint32 // upper half of hash
	idx uint32
}

// flowTable is an open-addressing hash table (linear probing, load ≤ 1/2,
// four 16-byte slots per cache line) from fkey to a flow index. A key is
// recognised by 96 bits of two independent hashes (the slot's tag and
// fingerprint) without reading the key itself: the table then costs one
// cache miss per lookup instead of two. Two distinct keys are confused only
// if both hashes collide, about n²/2^97 for n flows (below 10^-17 for a
// million flows, 10^-11 for a billion), far below the rate of memory errors.
// Keys are kept, in flow order, for building the result.
type flowTable struct {
	slots []slot
	mask  uint64
	keys  chunked[fkey]
	sink  uint64 // keeps the prefetching loads alive
	// limit is Options.MaxFlows (0: none): from then on resolve folds new
	// flows (lookupFolding); foldedAt is the first folded frame's time (0: none).
	limit    int
	foldedAt int64
}

func newFlowTable(hint int) *flowTable {
	n := 1024
	for n < 2*hint {
		n *= 2
	}
	return &flowTable{slots: makeWritten[slot](n), mask: uint64(n - 1)}
}

// lookup returns the index of k (whose hashes are h and h2), adding it when
// absent (created is then true and the index is keys.len()-1).
func (t *flowTable) lookup(k *fkey, h, h2 uint64) (idx int32, created bool) {
	tag, fp := uint32(h>>32), h2|1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.fp == 0 {
			idx = t.keys.push(*k)
			*s = slot{fp: fp, tag: tag, idx: uint32(idx)}
			if uint64(t.keys.len())*2 > t.mask {
				t.grow()
			}
			return idx, true
		}
		if s.fp == fp && s.tag == tag {
			return int32(s.idx), false
		}
	}
}

// find returns the index of k, or false when it is absent.
func (t *flowTable) find(k *fkey, h, h2 uint64) (int32, bool) {
	tag, fp := uint32(h>>32), h2|1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		if s.fp == 0 {
			return -1, false
		}
		if s.fp == fp && s.tag == tag {
			return int32(s.idx), true
		}
	}
}

// foldRoom is how many aggregates by host pair may follow limit flows.
func foldRoom(limit int) int { return max(limit/4, 1) }

// lookupFolding is lookup once the table holds limit flows: a known key
// keeps its flow; a new one is counted in its aggregate, whose key replaces
// the record's.
func (t *flowTable) lookupFolding(r *arec, k *rec) (idx int32, created bool) {
	if idx, ok := t.find(&k.k, k.hash, k.hash2); ok {
		return idx, false
	}
	if t.foldedAt == 0 {
		t.foldedAt = r.ts
	}
	// Aggregate by addresses and protocol while there is room for more.
	fk := k.k
	fk.pa, fk.pb = 0, 0
	fk.flags |= fFolded
	h, h2 := fk.hashes()
	if t.keys.len() >= t.limit+foldRoom(t.limit) {
		if idx, ok := t.find(&fk, h, h2); ok {
			k.k, k.hash, k.hash2 = fk, h, h2
			return idx, false
		}
		fk = fkey{proto: k.k.proto, flags: k.k.flags&(fOriented|fV4) | fFolded | fFoldedHosts}
		if fk.flags&fV4 != 0 { // 0.0.0.0, v4-mapped
			fk.a[10], fk.a[11], fk.b[10], fk.b[11] = 0xff, 0xff, 0xff, 0xff
		}
		h, h2 = fk.hashes()
		if fk.flags&fOriented == 0 {
			r.rev = 0 // A and B stand for no one: all is counted A→B
		}
	}
	k.k, k.hash, k.hash2 = fk, h, h2
	return t.lookup(&fk, h, h2)
}

func (t *flowTable) grow() {
	n := uint64(len(t.slots)) * 2
	t.slots = makeWritten[slot](int(n))
	t.mask = n - 1
	for j := range int32(t.keys.len()) {
		h, h2 := t.keys.at(j).hashes()
		i := h & t.mask
		for t.slots[i].fp != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = slot{fp: h2 | 1, tag: uint32(h >> 32), idx: uint32(j)}
	}
}

// flowEnt is the per-packet aggregation state of one flow (its key is
// flowTable.keys at the same index, its owner history in flowCold). It is
// exactly three cache lines, and large slices are page-aligned, so an entry
// never straddles more lines than it needs.
type flowEnt struct {
	cnt [2]Counts // Out (A→B), In (B→A)

	first, last int64
	validUntil  int64 // end of the current owner's validity (start in flowCold)
	logSec      int64
	logIdx      int32
	iface       int32
	pair        int32
	remote      int32 // -1 when not oriented
	proc        int32 // current owner's process, -1 when unattributed
	pairPk      int32 // pair whose peak tracker this flow feeds; -1 while the pair has only this flow
	ifName      int32 // the first packet's interface name id (arec.ifName)
	multi       bool  // also seen on an interface of another name
	_           [3]byte

	pk peakTracker
}

// flowLinks repeats a flow's pairPk and remote in a small array (8 bytes a
// flow, cache-resident where flowEnt is not), so that addChunk can touch
// the pair and remote trackers without waiting for the flow's entry.
type flowLinks struct{ pairPk, remote int32 }

// flowCold is the state of a flow used only when its owner changes.
type flowCold struct {
	validFrom int64     // start of the current owner's validity
	share     int32     // current owner share (index into engine.shares)
	shareHead int32     // first share of this flow
	base      [2]Counts // flow counts when the current share began
}

// rec is what classify computes for an IP frame: its direction and its
// flow key with the key's hashes (for the flow table lookup).
type rec struct {
	k     fkey
	hash  uint64
	hash2 uint64
	dir   uint8 // dirOut, dirIn, dirUnknown
	rev   uint8 // 0: the frame went A→B, 1: B→A
}

// arec is the compact record of one frame handed from the reading goroutine
// to the aggregating one (40 bytes: the batches cross between cores, so
// their size is memory traffic). The key of a new flow travels apart, in
// batch.keys.
type arec struct {
	ts      int64
	wire    int64
	ipl     int32
	capl    int32
	iface   int32
	flow    int32 // flow index (flowTable.resolve)
	dir     uint8 // dirOut, dirIn, dirUnknown
	rev     uint8 // 0: the frame went A→B, 1: B→A
	ip      bool  // KindIP (flow, rev valid)
	created bool  // the flow is new; its key is the next of batch.keys
	ifName  int32 // interface name id: the first index with iface's name; -1 unnamed
}

// addFrame counts a frame that is skipped rather than analysed.
func (c *Counts) addFrame(p *ingest.Packet) {
	c.addOne(int64(p.WireLen), int64(p.IPLen), int64(p.CapLen))
}

func (c *Counts) addRec(r *arec) { c.addOne(r.wire, int64(r.ipl), int64(r.capl)) }

// addOne counts one frame of these lengths.
func (c *Counts) addOne(wire, ip, captured int64) {
	c.Packets++
	c.Wire += wire
	c.IP += ip
	c.Captured += captured
}

type ifaceEnt struct {
	cnt         [3]Counts // by dir
	ser         series
	first, last int64
}

// shareEnt is the part of one flow charged to one owner.
type shareEnt struct {
	owner int32
	flow  int32
	next  int32 // next share of the same flow, -1 at the end
	cnt   [2]Counts
}

// ownerKey interns Attributions (Holders and SkewNS of the first answer are
// kept).
type ownerKey struct {
	proc   ingest.ProcKey
	comm   string
	method Method
	conf   Confidence
	cause  Cause
}

type ownerEnt struct {
	a    Attribution
	proc int32 // index into engine.procs, -1 when unattributed
}

type procEnt struct {
	key  ingest.ProcKey
	comm string
	ser  series
}

// engine is the aggregation state. Only the aggregating goroutine touches
// it, except ft, which belongs to the reading goroutine until it is done.
type engine struct {
	opts     Options
	ft       *flowTable
	keys     chunked[fkey] // the aggregator's own copy of the flow keys
	ents     chunked[flowEnt]
	links    chunked[flowLinks] // each flow's pairPk and remote again, apart (addChunk)
	flowAt   chunked[peakAt]
	cold     chunked[flowCold]
	pairIdx  *flowTable // pair keys (as fkeys without ports) → pair index
	pairs    chunked[peakTracker]
	pairAt   chunked[peakAt]
	pairSolo chunked[int32] // the pair's only flow, -1 once it has two
	// pairProc is, per pair, the one process (index into procs) its flows
	// were attributed to, -1 for none yet, -2 for several: an aggregate
	// of the pair's later flows (folding) is charged to it (MethodFoldedPair).
	pairProc chunked[int32]
	remIdx   *flowTable // remote keys (as fkeys with only b) → remote index
	remotes  chunked[peakTracker]
	remAt    chunked[peakAt]
	shares   chunked[shareEnt]
	ownerIdx map[ownerKey]int32
	owners   []ownerEnt
	procIdx  map[ingest.ProcKey]int32
	procs    []procEnt
	wl       *windowLog
	tot      frameTotals // the reader's, taken over when it is done
	tun      tunnelTable // the reader's, taken over when it is done
	outside  Counts
	other    Counts // frames of interfaces not analysed (Options.Interfaces)

	packets, calls           int64  // packets counts the frames aggregated (only with Progress)
	progTS                   int64  // the latest timestamp aggregated (only with Progress)
	multiFlows, multiPackets int64  // flows seen on several interfaces, their packets on the others
	sink                     uint64 // keeps the prefetching loads alive
}

// frameTotals are the sums over all analysed frames: totals, per-second
// series and per interface. They need nothing but the frame itself, so the
// reading goroutine keeps them, which balances the two goroutines' work.
type frameTotals struct {
	packets, reordered int64
	first, last, maxTS int64
	// The largest step forward between a frame and the latest before it,
	// and the largest step back: a clock step or a bogus timestamp (a
	// 1970 frame in a 2026 capture) shows there (timeJumpDiagnostics).
	fwd, back  timeStep
	all, nonIP [3]Counts // by dir
	ser        series
	ifaces     []ifaceEnt
}

func newFrameTotals() frameTotals {
	return frameTotals{first: math.MaxInt64, last: math.MinInt64, maxTS: math.MinInt64}
}

// add counts one analysed frame.
func (t *frameTotals) add(r *arec) {
	t.packets++
	if r.ts < t.maxTS {
		t.reordered++
		if d := t.maxTS - r.ts; d > t.back.d {
			t.back = timeStep{d: d, from: t.maxTS, to: r.ts, frame: t.packets}
		}
	} else {
		if d := r.ts - t.maxTS; d > t.fwd.d && t.packets > 1 {
			t.fwd = timeStep{d: d, from: t.maxTS, to: r.ts, frame: t.packets}
		}
		t.maxTS = r.ts
	}
	t.first = min(t.first, r.ts)
	t.last = max(t.last, r.ts)
	sec := floorSec(r.ts)
	t.all[r.dir].addRec(r)
	t.ser.add(sec, r.dir, r.wire)
	ifc := t.iface(r.iface)
	ifc.cnt[r.dir].addRec(r)
	ifc.first = min(ifc.first, r.ts)
	ifc.last = max(ifc.last, r.ts)
	ifc.ser.add(sec, r.dir, r.wire)
	if !r.ip {
		t.nonIP[r.dir].addRec(r)
	}
}

// timeStep is a step in capture time from one frame to the next: d (ns)
// from from to to, at the frame-th analysed frame.
type timeStep struct {
	d, from, to, frame int64
}

// timeJumpMin is the step in capture time that is reported: a day.
const timeJumpMin = 24 * 3600 * nsPerSec

// timeJumpDiagnostics reports steps of a day or more between consecutive
// frames: the capture's time range, duration and per-second series span
// them, so a report of "126 years" is explained.
func (t *frameTotals) timeJumpDiagnostics() []ingest.Diagnostic {
	var ds []ingest.Diagnostic
	for _, s := range []struct {
		st   timeStep
		what string
	}{{t.fwd, "forward"}, {t.back, "back"}} {
		if s.st.d < timeJumpMin {
			continue
		}
		ds = append(ds, ingest.Diagnostic{Kind: ingest.DiagInfo, Where: fmt.Sprintf("frame %d", s.st.frame), Offset: -1, Count: 1,
			Msg: fmt.Sprintf("capture time jumps %s by %s (the largest such step), from %s to %s: a clock step or a bogus timestamp; "+
				"the time range, duration and per-second series span it (cut it off with --from/--to)", s.what, days(s.st.d),
				time.Unix(0, s.st.from).UTC().Format(time.RFC3339Nano), time.Unix(0, s.st.to).UTC().Format(time.RFC3339Nano))})
	}
	return ds
}

// days formats a duration of a day or more in days, or years past one.
func days(ns int64) string {
	d := float64(ns) / float64(timeJumpMin)
	if d >= 365.25 {
		return fmt.Sprintf("%.1f years", d/365.25)
	}
	return fmt.Sprintf("%.1f days", d)
}

// iface returns the sums of interface i (a negative index counts as 0).
func (t *frameTotals) iface(i int32) *ifaceEnt {
	if i < 0 {
		i = 0
	}
	for int(i) >= len(t.ifaces) {
		t.ifaces = append(t.ifaces, ifaceEnt{first: math.MaxInt64, last: math.MinInt64})
	}
	return &t.ifaces[i]
}

func newEngine(opts Options) *engine {
	ft := newFlowTable(1 << 14)
	ft.limit = max(opts.MaxFlows, 0)
	return &engine{
		opts:     opts,
		ft:       ft,
		pairIdx:  newFlowTable(1 << 12),
		remIdx:   newFlowTable(1 << 10),
		ownerIdx: make(map[ownerKey]int32),
		procIdx:  make(map[ingest.ProcKey]int32),
		wl:       newWindowLog(opts.At),
		tot:      newFrameTotals(),
		progTS:   math.MinInt64,
	}
}

// chunkLen is how many records are resolved or prefetched together.
const chunkLen = 64

// resolve sets the flow index of a few records, whose keys are in keys at
// the same positions. It runs in the reading goroutine, which owns the flow
// table while packets are read. The first pass only touches the slots the
// lookups will read, so the cache misses of different records overlap
// instead of queueing.
func (t *flowTable) resolve(recs []arec, keys []rec) {
	var sink uint64
	keys = keys[:len(recs)]
	for i := range recs {
		if recs[i].ip {
			sink += t.slots[keys[i].hash&t.mask].fp
		}
	}
	for i := range recs {
		if r := &recs[i]; r.ip {
			k := &keys[i]
			if t.limit > 0 && t.keys.len() >= t.limit {
				r.flow, r.created = t.lookupFolding(r, k)
				continue
			}
			r.flow, r.created = t.lookup(&k.k, k.hash, k.hash2)
		}
	}
	t.sink += sink
}

// addChunk aggregates a few records in two passes so that the cache misses
// of different records overlap: touch every entry the update will write,
// then update.
func (e *engine) addChunk(recs []arec, keys *[]fkey) {
	var sink uint64
	for i := range recs {
		r := &recs[i]
		if !r.ip {
			continue
		}
		if r.created {
			e.newFlow(r, &(*keys)[0])
			*keys = (*keys)[1:]
		}
		f := e.ents.at(r.flow)
		sink += uint64(f.cnt[0].Packets + f.last + f.pk.sec)
		l := e.links.at(r.flow)
		if l.pairPk >= 0 {
			sink += uint64(e.pairs.at(l.pairPk).sec)
		}
		if l.remote >= 0 {
			sink += uint64(e.remotes.at(l.remote).sec)
		}
	}
	// The flows' lines are (being) loaded: now what they point to.
	for i := range recs {
		r := &recs[i]
		if !r.ip {
			continue
		}
		f := e.ents.at(r.flow)
		if sec := floorSec(r.ts); f.logSec == sec {
			if s := &e.wl.slots[sec&63]; s.sec == sec {
				sink += uint64(s.ents[f.logIdx].b[0])
			}
		}
	}
	e.sink += sink
	for i := range recs {
		e.add(&recs[i])
	}
}

// add aggregates one frame whose flow is resolved. This is the hot path.
func (e *engine) add(r *arec) {
	if !r.ip {
		return
	}
	sec := floorSec(r.ts)
	idx := r.flow
	f := e.ents.at(idx)
	// A packet before f.last is after the current validity's start
	// (that began at or before some packet ≤ f.last); only older packets
	// need the start, kept in the cold state.
	if r.ts > f.validUntil || (r.ts < f.last && r.ts < e.cold.at(idx).validFrom) {
		e.reattribute(idx, e.keys.at(idx), r.ts)
	}
	if r.ifName != f.ifName && r.ifName >= 0 && f.ifName >= 0 {
		e.multiPackets++
		if !f.multi {
			f.multi = true
			e.multiFlows++
		}
	}
	f.cnt[r.rev].addRec(r)
	f.first = min(f.first, r.ts)
	f.last = max(f.last, r.ts)
	f.pk.add(sec, r.rev, r.wire, e.flowAt.at(idx))
	if f.pairPk >= 0 {
		e.pairs.at(f.pairPk).add(sec, r.rev, r.wire, e.pairAt.at(f.pairPk))
	}
	if f.remote >= 0 {
		e.remotes.at(f.remote).add(sec, r.rev, r.wire, e.remAt.at(f.remote))
	}
	e.wl.add(idx, &f.logSec, &f.logIdx, sec, r.rev, r.wire)
	if f.proc >= 0 {
		e.procs[f.proc].ser.add(sec, r.rev, r.wire)
	}
}

// newFlow initialises the state of the flow just added for r.
func (e *engine) newFlow(r *arec, k *fkey) {
	if int(r.flow) != e.ents.len() {
		panic("analyze: flows created out of order") // resolve and addChunk see records in the same order
	}
	f := e.ents.at(e.ents.push(flowEnt{}))
	e.flowAt.push(peakAt{})
	e.cold.push(flowCold{share: -1, shareHead: -1, validFrom: math.MaxInt64})
	e.keys.push(*k)
	f.iface, f.ifName = r.iface, r.ifName
	f.first, f.last = r.ts, r.ts
	f.logSec = math.MinInt64
	f.proc = -1
	f.validUntil = math.MinInt64
	f.pk = newPeakTracker()
	// The pair's key: no ports, no protocol; aggregates by ports count in
	// their addresses' pair.
	pf := fkey{a: k.a, b: k.b, flags: k.flags &^ fFolded}
	h, h2 := pf.hashes()
	p, created := e.pairIdx.lookup(&pf, h, h2)
	if created {
		e.pairs.push(newPeakTracker())
		e.pairAt.push(peakAt{})
		e.pairSolo.push(r.flow)
		e.pairProc.push(-1)
		f.pairPk = -1 // the flow's own tracker stands for the pair's
	} else {
		if solo := *e.pairSolo.at(p); solo >= 0 {
			// Second flow of the pair: until now the pair's traffic was
			// exactly the first flow's, so its tracker starts as a copy.
			*e.pairs.at(p), *e.pairAt.at(p) = e.ents.at(solo).pk, *e.flowAt.at(solo)
			e.ents.at(solo).pairPk = p
			e.links.at(solo).pairPk = p
			*e.pairSolo.at(p) = -1
		}
		f.pairPk = p
	}
	f.pair = p
	f.remote = -1
	if k.flags&fOriented != 0 {
		rf := fkey{b: k.b, flags: k.flags & (fV4 | fFoldedHosts)} // the remote's key: b alone
		h, h2 := rf.hashes()
		ri, created := e.remIdx.lookup(&rf, h, h2)
		if created {
			e.remotes.push(newPeakTracker())
			e.remAt.push(peakAt{})
		}
		f.remote = ri
	}
	e.links.push(flowLinks{pairPk: f.pairPk, remote: f.remote})
}

// reattribute asks who owns flow idx at ts and makes that owner's share
// current, closing the previous share.
func (e *engine) reattribute(idx int32, k *fkey, ts int64) {
	f, c := e.ents.at(idx), e.cold.at(idx)
	e.closeShare(idx)
	var a Attribution
	from, until := int64(math.MinInt64), int64(math.MaxInt64)
	switch {
	case k.flags&fOriented == 0:
		a = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseUnknownDir}
	case e.opts.Attributor == nil:
		a = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNoSockets}
	case k.flags&fFolded != 0:
		a = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseFolded}
		// An aggregate of two addresses' flows past MaxFlows has no ports
		// to match a socket by; when every earlier flow between the two
		// that had an owner had the same process, the aggregate is its.
		if p := *e.pairProc.at(f.pair); k.flags&fFoldedHosts == 0 && p >= 0 {
			a = Attribution{Proc: e.procs[p].key, Comm: e.procs[p].comm, Method: MethodFoldedPair, Confidence: ConfLow}
		}
	default:
		e.calls++
		a, from, until = e.opts.Attributor.Attribute(k.proto,
			netip.AddrPortFrom(k.addrA(), k.pa), netip.AddrPortFrom(k.addrB(), k.pb), ts)
		if from > ts || until < ts {
			from, until = ts, ts // an answer must at least hold for the packet asked about
		}
		// Both ends on this host (loopback, host ↔ container): when A's
		// socket names nobody, B's socket (the other process) may.
		if !a.Attributed() && e.hostLocal(k.addrB()) {
			e.calls++
			b, bf, bu := e.opts.Attributor.Attribute(k.proto,
				netip.AddrPortFrom(k.addrB(), k.pb), netip.AddrPortFrom(k.addrA(), k.pa), ts)
			if b.Attributed() {
				a, from, until = b, max(bf, ts), min(bu, ts) // re-asked per packet: A may appear
			}
		}
		if a.Method == "" {
			a.Method = MethodNone
		}
		if !a.Attributed() {
			a.Proc, a.Comm = ingest.ProcKey{}, ""
			if a.Cause == "" {
				a.Cause = CauseNeverSeen
			}
			if a.Confidence == "" {
				a.Confidence = ConfNone
			}
		} else {
			a.Cause = ""
		}
	}
	c.validFrom, f.validUntil = from, until
	o := e.owner(a)
	f.proc = e.owners[o].proc
	if f.proc >= 0 && k.flags&fFolded == 0 {
		switch pp := e.pairProc.at(f.pair); *pp {
		case -1:
			*pp = f.proc
		case f.proc:
		default:
			*pp = -2
		}
	}
	for s := c.shareHead; s >= 0; s = e.shares.at(s).next {
		if e.shares.at(s).owner == o {
			c.share = s
			return
		}
	}
	s := e.shares.push(shareEnt{owner: o, flow: idx, next: c.shareHead})
	c.shareHead, c.share = s, s
}

// closeShare charges what flow idx carried since its current share began
// to that share.
func (e *engine) closeShare(idx int32) {
	f, c := e.ents.at(idx), e.cold.at(idx)
	if c.share >= 0 {
		sh := e.shares.at(c.share)
		for d := range f.cnt {
			sh.cnt[d].Add(sub(f.cnt[d], c.base[d]))
		}
	}
	c.base = f.cnt
}

func (e *engine) owner(a Attribution) int32 {
	k := ownerKey{proc: a.Proc, comm: a.Comm, method: a.Method, conf: a.Confidence, cause: a.Cause}
	if o, ok := e.ownerIdx[k]; ok {
		return o
	}
	p := int32(-1)
	if a.Attributed() {
		var ok bool
		p, ok = e.procIdx[a.Proc]
		if !ok {
			p = int32(len(e.procs))
			e.procs = append(e.procs, procEnt{key: a.Proc, comm: a.Comm})
			e.procIdx[a.Proc] = p
		}
		if e.procs[p].comm == "" {
			e.procs[p].comm = a.Comm
		}
	}
	o := int32(len(e.owners))
	e.owners = append(e.owners, ownerEnt{a: a, proc: p})
	e.ownerIdx[k] = o
	return o
}

// makeWritten returns a zeroed slice of n elements whose memory has been
// written once. A large allocation is fresh memory from the kernel; if its
// first access is a read, the kernel maps the shared zero page and the
// first write then faults again and flushes the TLB of every core the
// process runs on (an inter-processor interrupt per page). The hash tables
// and per-flow sums are read before they are written, so they are written
// first here: measured at ~5 % of the CPU of a 200k-flow analysis.
func makeWritten[T any](n int) []T {
	s := make([]T, n)
	clear(s)
	return s
}

// chunkShift sets the size of the chunks of a chunked slice (4096 entries).
const chunkShift = 12

// chunked is an append-only slice stored in fixed-size chunks: growing it
// never copies or doubles memory (a plain slice of 200,000 flows reallocated
// by append would hold two copies at its peak), and each chunk is a large,
// page-aligned allocation, so entries sized to cache lines stay aligned.
type chunked[T any] struct {
	chunks [][]T
	n      int
}

// at returns the i-th element.
func (c *chunked[T]) at(i int32) *T {
	return &c.chunks[i>>chunkShift][i&(1<<chunkShift-1)]
}

// push appends v and returns its index.
func (c *chunked[T]) push(v T) int32 {
	if c.n&(1<<chunkShift-1) == 0 {
		c.chunks = append(c.chunks, make([]T, 1<<chunkShift))
	}
	i := int32(c.n)
	*c.at(i) = v
	c.n++
	return i
}

func (c *chunked[T]) len() int { return c.n }

// hostLocal reports whether a is one of this host's addresses as far as
// the options say (loopback always is): used to try the other end of a flow
// whose both ends are local.
func (e *engine) hostLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, p := range e.opts.Local {
		if p.Contains(a) {
			return true
		}
	}
	for _, ps := range e.opts.IfaceAddrs {
		for _, p := range ps {
			if p.Addr() == a {
				return true
			}
		}
	}
	return false
}

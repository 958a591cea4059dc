package analyze

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"

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

// hash returns a 64-bit hash of k.
func (k *fkey) hash() uint64 {
	a0 := binary.LittleEndian.Uint64(k.a[:8])
	a1 := binary.LittleEndian.Uint64(k.a[8:])
	b0 := binary.LittleEndian.Uint64(k.b[:8])
	b1 := binary.LittleEndian.Uint64(k.b[8:])
	x := uint64(k.pa) | uint64(k.pb)<<16 | uint64(k.proto)<<32 | uint64(k.flags)<<40
	h := mix(a0^hk0, a1^hk1) ^ mix(b0^hk2, b1^hk3) ^ mix(x^hk1, hk2)
	return mix(h^hk3, hk0)
}

// flowTable is an open-addressing hash table (linear probing, load ≤ 1/2)
// from fkey to an index into ents. Each slot holds the upper 32 bits of the
// key's hash and the index+1, so a probe touches the entry only when the
// tags match.
type flowTable struct {
	slots []uint64
	mask  uint64
	ents  []flowEnt
}

func newFlowTable(hint int) *flowTable {
	n := 1024
	for n < 2*hint {
		n *= 2
	}
	return &flowTable{slots: make([]uint64, n), mask: uint64(n - 1)}
}

// lookup returns the index of k's entry, creating it (zero-valued but for
// key and hash) when absent; created reports that.
func (t *flowTable) lookup(k *fkey, h uint64) (idx int32, created bool) {
	tag := h >> 32
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s == 0 {
			idx = int32(len(t.ents))
			t.ents = append(t.ents, flowEnt{k: *k, hash: h})
			t.slots[i] = tag<<32 | uint64(idx+1)
			if uint64(len(t.ents))*2 > t.mask {
				t.grow()
			}
			return idx, true
		}
		if s>>32 == tag {
			j := int32(uint32(s)) - 1
			if t.ents[j].k == *k {
				return j, false
			}
		}
	}
}

func (t *flowTable) grow() {
	n := uint64(len(t.slots)) * 2
	t.slots = make([]uint64, n)
	t.mask = n - 1
	for j := range t.ents {
		h := t.ents[j].hash
		i := h & t.mask
		for t.slots[i] != 0 {
			i = (i + 1) & t.mask
		}
		t.slots[i] = h>>32<<32 | uint64(j+1)
	}
}

// flowEnt is the aggregation state of one flow.
type flowEnt struct {
	k           fkey
	hash        uint64
	cnt         [2]Counts // Out (A→B), In (B→A)
	first, last int64
	iface       int32
	pair        int32
	remote      int32 // -1 when not oriented
	share       int32 // current owner share (index into engine.shares)
	shareHead   int32 // first share of this flow
	logIdx      int32
	logSec      int64
	validFrom   int64 // validity of the current share's attribution
	validUntil  int64
	pk          peakTracker
}

// rec is the compact record of one frame handed from the reading goroutine
// to the aggregating one: only what aggregation needs, copied out of Packet.
type rec struct {
	k     fkey
	hash  uint64
	ts    int64
	wire  int64
	ipl   int32
	capl  int32
	iface int32
	dir   uint8 // dirOut, dirIn, dirUnknown
	rev   uint8 // 0: the frame went A→B, 1: B→A
	ip    bool  // KindIP (k, hash, rev valid)
}

func (c *Counts) addRec(r *rec) {
	c.Packets++
	c.Wire += r.wire
	c.IP += int64(r.ipl)
	c.Captured += int64(r.capl)
}

// pairKey identifies a host pair: the flow key without ports and protocol.
type pairKey struct {
	a, b  [16]byte
	flags uint8
}

type pairEnt struct {
	k  pairKey
	pk peakTracker
}

type remoteKey struct {
	b  [16]byte
	v4 bool
}

type remoteEnt struct {
	k  remoteKey
	pk peakTracker
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

// engine is the aggregation state. Only the aggregating goroutine touches it.
type engine struct {
	opts     Options
	ft       *flowTable
	pairIdx  map[pairKey]int32
	pairs    []pairEnt
	remIdx   map[remoteKey]int32
	remotes  []remoteEnt
	ifaces   []ifaceEnt
	shares   []shareEnt
	ownerIdx map[ownerKey]int32
	owners   []ownerEnt
	procIdx  map[ingest.ProcKey]int32
	procs    []procEnt
	wl       *windowLog
	ser      series
	all      [3]Counts
	nonIP    [3]Counts
	outside  Counts

	packets, reordered, calls int64
	first, last, maxTS        int64
}

func newEngine(opts Options) *engine {
	return &engine{
		opts:     opts,
		ft:       newFlowTable(1 << 14),
		pairIdx:  make(map[pairKey]int32),
		remIdx:   make(map[remoteKey]int32),
		ownerIdx: make(map[ownerKey]int32),
		procIdx:  make(map[ingest.ProcKey]int32),
		wl:       newWindowLog(opts.At),
		first:    math.MaxInt64,
		last:     math.MinInt64,
		maxTS:    math.MinInt64,
	}
}

// add aggregates one frame. This is the hot path.
func (e *engine) add(r *rec) {
	e.packets++
	if r.ts < e.maxTS {
		e.reordered++
	} else {
		e.maxTS = r.ts
	}
	e.first = min(e.first, r.ts)
	e.last = max(e.last, r.ts)
	sec := floorSec(r.ts)
	e.all[r.dir].addRec(r)
	e.ser.add(sec, r.dir, r.wire)
	ifc := e.iface(r.iface)
	ifc.cnt[r.dir].addRec(r)
	ifc.first = min(ifc.first, r.ts)
	ifc.last = max(ifc.last, r.ts)
	ifc.ser.add(sec, r.dir, r.wire)
	if !r.ip {
		e.nonIP[r.dir].addRec(r)
		return
	}
	idx, created := e.ft.lookup(&r.k, r.hash)
	f := &e.ft.ents[idx]
	if created {
		e.newFlow(f, r)
	}
	f.cnt[r.rev].addRec(r)
	f.first = min(f.first, r.ts)
	f.last = max(f.last, r.ts)
	f.pk.add(sec, r.rev, r.wire)
	e.pairs[f.pair].pk.add(sec, r.rev, r.wire)
	if f.remote >= 0 {
		e.remotes[f.remote].pk.add(sec, r.rev, r.wire)
	}
	e.logWindow(idx, f, sec, r)
	if r.ts < f.validFrom || r.ts > f.validUntil {
		e.reattribute(idx, f, r.ts)
	}
	sh := &e.shares[f.share]
	sh.cnt[r.rev].addRec(r)
	if p := e.owners[sh.owner].proc; p >= 0 {
		e.procs[p].ser.add(sec, r.rev, r.wire)
	}
}

func (e *engine) logWindow(idx int32, f *flowEnt, sec int64, r *rec) {
	if f.logSec == sec {
		if s := &e.wl.slots[sec&63]; s.sec == sec {
			s.ents[f.logIdx].b[r.rev] += r.wire
			return
		}
	}
	s := e.wl.slot(sec)
	if s == nil {
		return
	}
	f.logSec, f.logIdx = sec, int32(len(s.ents))
	le := logEnt{flow: idx}
	le.b[r.rev] = r.wire
	s.ents = append(s.ents, le)
}

func (e *engine) iface(i int32) *ifaceEnt {
	if i < 0 {
		i = 0
	}
	for int(i) >= len(e.ifaces) {
		e.ifaces = append(e.ifaces, ifaceEnt{first: math.MaxInt64, last: math.MinInt64})
	}
	return &e.ifaces[i]
}

func (e *engine) newFlow(f *flowEnt, r *rec) {
	f.iface = r.iface
	f.first, f.last = r.ts, r.ts
	f.logSec = math.MinInt64
	f.share, f.shareHead = -1, -1
	f.validFrom, f.validUntil = math.MaxInt64, math.MinInt64
	f.pk = newPeakTracker()
	pk := pairKey{a: f.k.a, b: f.k.b, flags: f.k.flags}
	p, ok := e.pairIdx[pk]
	if !ok {
		p = int32(len(e.pairs))
		e.pairs = append(e.pairs, pairEnt{k: pk, pk: newPeakTracker()})
		e.pairIdx[pk] = p
	}
	f.pair = p
	f.remote = -1
	if f.k.flags&fOriented != 0 {
		rk := remoteKey{b: f.k.b, v4: f.k.flags&fV4 != 0}
		ri, ok := e.remIdx[rk]
		if !ok {
			ri = int32(len(e.remotes))
			e.remotes = append(e.remotes, remoteEnt{k: rk, pk: newPeakTracker()})
			e.remIdx[rk] = ri
		}
		f.remote = ri
	}
}

// reattribute asks who owns f at ts and makes that owner's share current.
func (e *engine) reattribute(idx int32, f *flowEnt, ts int64) {
	var a Attribution
	from, until := int64(math.MinInt64), int64(math.MaxInt64)
	switch {
	case f.k.flags&fOriented == 0:
		a = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseUnknownDir}
	case e.opts.Attributor == nil:
		a = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNoSockets}
	default:
		e.calls++
		a, from, until = e.opts.Attributor.Attribute(f.k.proto,
			netip.AddrPortFrom(f.k.addrA(), f.k.pa), netip.AddrPortFrom(f.k.addrB(), f.k.pb), ts)
		if from > ts || until < ts {
			from, until = ts, ts // an answer must at least hold for the packet asked about
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
	f.validFrom, f.validUntil = from, until
	o := e.owner(a)
	for s := f.shareHead; s >= 0; s = e.shares[s].next {
		if e.shares[s].owner == o {
			f.share = s
			return
		}
	}
	s := int32(len(e.shares))
	e.shares = append(e.shares, shareEnt{owner: o, flow: idx, next: f.shareHead})
	f.shareHead, f.share = s, s
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

package analyze

import (
	"cmp"
	"math"
	"slices"
)

const nsPerSec = int64(1e9)

// windowLens are the clean window lengths in seconds.
var windowLens = [3]int64{2, 10, 40}

// floorSec returns floor(ts / 1 s) for any sign of ts.
func floorSec(ts int64) int64 {
	s := ts / nsPerSec
	if ts%nsPerSec < 0 {
		s--
	}
	return s
}

// RatesAt evaluates the clean window rates of the totals at instant t (Unix
// ns) from Result.Series: TX, RX and direction-unknown. See WindowRatesAt.
func (r *Result) RatesAt(t int64) (out, in, unknown WindowRates) {
	return WindowRatesAt(r.Series, t)
}

// WindowRatesAt evaluates 2/10/40-second window rates at instant t (Unix ns)
// over a per-second series sorted by Sec. With S = floor(t / 1 s), the N-second
// rate is the sum of the buckets with S-N < Sec ≤ S divided by N: the bytes of
// packets with timestamps in [S-N+1, S+1) seconds. Missing seconds count as 0.
func WindowRatesAt(series []SecondBucket, t int64) (out, in, unknown WindowRates) {
	var sums [3][3]int64 // [dir][window]
	S := floorSec(t)
	lo, _ := slices.BinarySearchFunc(series, S-windowLens[2]+1, func(b SecondBucket, s int64) int {
		switch {
		case b.Sec < s:
			return -1
		case b.Sec > s:
			return 1
		}
		return 0
	})
	for _, b := range series[lo:] {
		if b.Sec > S {
			break
		}
		for w, n := range windowLens {
			if b.Sec > S-n {
				sums[dirOut][w] += b.Out
				sums[dirIn][w] += b.In
				sums[dirUnknown][w] += b.Unknown
			}
		}
	}
	return ratesOf(sums[dirOut]), ratesOf(sums[dirIn]), ratesOf(sums[dirUnknown])
}

func ratesOf(s [3]int64) WindowRates {
	return WindowRates{
		S2:  float64(s[0]) / float64(windowLens[0]),
		S10: float64(s[1]) / float64(windowLens[1]),
		S40: float64(s[2]) / float64(windowLens[2]),
	}
}

// PeaksOf returns the peak 2-second rates of a series sorted by Sec: of
// Out, In, Unknown and of their sum. The peak is the maximum over consecutive
// seconds (s-1, s) of their bytes / 2, the earliest s on ties; At is s in Unix
// ns, so WindowRatesAt(series, At).S2 reproduces it.
func PeaksOf(series []SecondBucket) (out, in, unknown, all PeakRate) {
	var best [4]int64
	var at [4]int64
	var prev SecondBucket
	havePrev := false
	for _, b := range series {
		v := [4]int64{b.Out, b.In, b.Unknown, b.Out + b.In + b.Unknown}
		if havePrev && prev.Sec == b.Sec-1 {
			v[0] += prev.Out
			v[1] += prev.In
			v[2] += prev.Unknown
			v[3] += prev.Out + prev.In + prev.Unknown
		}
		for i := range v {
			if v[i] > best[i] {
				best[i], at[i] = v[i], b.Sec*nsPerSec
			}
		}
		prev, havePrev = b, true
	}
	pr := func(i int) PeakRate { return PeakRate{Rate: float64(best[i]) / 2, At: at[i]} }
	return pr(0), pr(1), pr(2), pr(3)
}

// peakOfSum is the combined (Out+In) peak of a series, as Traffic.Peak.
func peakOfOutIn(series []SecondBucket) (out, in, both PeakRate) {
	tmp := make([]SecondBucket, len(series))
	for i, b := range series {
		tmp[i] = SecondBucket{Sec: b.Sec, Out: b.Out, In: b.In}
	}
	out, in, _, both = PeaksOf(tmp)
	return out, in, both
}

// series builds a sparse per-second series. Packets mostly arrive in time
// order, so the last bucket is cached, and while every new second is later
// than the last one, b stays sorted and needs no index: an earlier second is
// found by binary search. Only a new second earlier than the last (a capture
// out of order) builds the index, at about 40 bytes per second; a month at
// one packet a second then saves 100 MB per series.
type series struct {
	lastSec int64
	lastIdx int32
	idx     map[int64]int32 // nil while b is sorted
	b       []SecondBucket
}

func (s *series) bucket(sec int64) *SecondBucket {
	if s.b != nil && sec == s.lastSec {
		return &s.b[s.lastIdx]
	}
	if s.idx == nil {
		n := len(s.b)
		if n == 0 || sec > s.b[n-1].Sec {
			s.b = append(s.b, SecondBucket{Sec: sec})
			s.lastSec, s.lastIdx = sec, int32(n)
			return &s.b[n]
		}
		if i, ok := slices.BinarySearchFunc(s.b, sec, func(b SecondBucket, t int64) int { return cmp.Compare(b.Sec, t) }); ok {
			s.lastSec, s.lastIdx = sec, int32(i)
			return &s.b[i]
		}
		// A new second before the last: from now on, an index.
		s.idx = make(map[int64]int32, n+1)
		for i := range s.b {
			s.idx[s.b[i].Sec] = int32(i)
		}
	}
	i, ok := s.idx[sec]
	if !ok {
		i = int32(len(s.b))
		s.b = append(s.b, SecondBucket{Sec: sec})
		s.idx[sec] = i
	}
	s.lastSec, s.lastIdx = sec, i
	return &s.b[i]
}

// add adds n wire bytes in direction d at second sec.
func (s *series) add(sec int64, d uint8, n int64) {
	b := s.bucket(sec)
	switch d {
	case dirOut:
		b.Out += n
	case dirIn:
		b.In += n
	default:
		b.Unknown += n
	}
}

// sorted returns the buckets in time order.
func (s *series) sorted() []SecondBucket {
	out := slices.Clone(s.b)
	if s.idx == nil { // kept sorted
		if out == nil {
			out = []SecondBucket{}
		}
		return out
	}
	slices.SortFunc(out, func(a, b SecondBucket) int {
		switch {
		case a.Sec < b.Sec:
			return -1
		case a.Sec > b.Sec:
			return 1
		}
		return 0
	})
	if out == nil {
		out = []SecondBucket{}
	}
	return out
}

// peakTracker follows the peak 2-second rate of one entity while packets
// stream in, keeping only the current and previous second. A packet older
// than the current second is charged to the current second. It is 64 bytes
// (one cache line); the seconds where the bests happened live apart, in a
// peakAt, because they are rarely written.
type peakTracker struct {
	sec  int64
	cur  [2]int64 // bytes of second sec: Out, In
	prev [2]int64 // bytes of second sec-1
	best [3]int64 // best 2-second sums: Out, In, both
}

// peakAt holds the second each best of a peakTracker ended at.
type peakAt [3]int64

func newPeakTracker() peakTracker { return peakTracker{sec: math.MinInt64} }

func (p *peakTracker) add(sec int64, d uint8, n int64, at *peakAt) {
	if sec > p.sec {
		p.roll(sec, at)
	}
	p.cur[d] += n
}

func (p *peakTracker) roll(sec int64, at *peakAt) {
	p.flush(at)
	if p.sec != math.MinInt64 && sec == p.sec+1 {
		p.prev = p.cur
	} else {
		p.prev = [2]int64{}
	}
	p.cur = [2]int64{}
	p.sec = sec
}

// flush evaluates the pair of seconds ending at p.sec.
func (p *peakTracker) flush(at *peakAt) {
	o, i := p.prev[0]+p.cur[0], p.prev[1]+p.cur[1]
	if o > p.best[0] {
		p.best[0], at[0] = o, p.sec
	}
	if i > p.best[1] {
		p.best[1], at[1] = i, p.sec
	}
	if o+i > p.best[2] {
		p.best[2], at[2] = o+i, p.sec
	}
}

// peaks returns the final peaks (Out, In, both). It flushes the current
// second; call it once, at the end.
func (p *peakTracker) peaks(at *peakAt) (out, in, both PeakRate) {
	p.flush(at)
	pr := func(i int) PeakRate {
		if p.best[i] == 0 {
			return PeakRate{}
		}
		return PeakRate{Rate: float64(p.best[i]) / 2, At: at[i] * nsPerSec}
	}
	return pr(0), pr(1), pr(2)
}

// mergeSums adds the window sums of o into w.
type winSums [2][3]int64 // [dir][window] wire bytes

func (w *winSums) add(o *winSums) {
	for d := range w {
		for i := range w[d] {
			w[d][i] += o[d][i]
		}
	}
}

func (w *winSums) rates() (out, in WindowRates) { return ratesOf(w[0]), ratesOf(w[1]) }

// logEnt is the bytes of one flow in one second (for window rates). A flow
// whose bytes in one second would overflow gets further entries.
type logEnt struct {
	flow int32
	b    [2]uint32
}

// logSlot is one second of the window log.
type logSlot struct {
	sec  int64
	ents []logEnt
}

// windowLog keeps, per second, the bytes of each flow active in that second,
// for the seconds that can fall in the 40-second window ending at At: a ring
// of 64 seconds. With a fixed At (fixed true) only seconds in
// [floor(At)-39, floor(At)] are kept; otherwise the ring follows the latest
// second seen and At is decided at the end.
type windowLog struct {
	fixed  bool
	atSec  int64
	maxSec int64
	slots  [64]logSlot
}

func newWindowLog(at int64) *windowLog {
	w := &windowLog{maxSec: math.MinInt64}
	for i := range w.slots {
		w.slots[i].sec = math.MinInt64
	}
	if at != 0 {
		w.fixed, w.atSec = true, floorSec(at)
	}
	return w
}

// slot returns the slot for sec, or nil when sec cannot be in the window.
func (w *windowLog) slot(sec int64) *logSlot {
	if w.fixed {
		if sec > w.atSec || sec <= w.atSec-windowLens[2] {
			return nil
		}
	} else {
		if sec > w.maxSec {
			w.maxSec = sec
		} else if sec <= w.maxSec-windowLens[2] {
			return nil
		}
	}
	s := &w.slots[sec&63]
	if s.sec != sec {
		if sec < s.sec {
			return nil
		}
		s.sec = sec
		s.ents = s.ents[:0]
	}
	return s
}

// add logs n bytes of flow idx in direction d at second sec. logSec and
// logIdx are the flow's own state: the second and entry it logged last.
func (w *windowLog) add(idx int32, logSec *int64, logIdx *int32, sec int64, d uint8, n int64) {
	if *logSec == sec {
		if s := &w.slots[sec&63]; s.sec == sec {
			le := &s.ents[*logIdx]
			if v := uint64(le.b[d]) + uint64(n); v <= math.MaxUint32 {
				le.b[d] = uint32(v)
				return
			} // else: start another entry for this flow and second
		}
	}
	s := w.slot(sec)
	if s == nil {
		return
	}
	k := len(s.ents)
	*logSec, *logIdx = sec, int32(k)
	if k < cap(s.ents) {
		s.ents = s.ents[:k+1] // only the length changes: no write barrier
		s.ents[k] = logEnt{flow: idx}
	} else {
		s.ents = append(s.ents, logEnt{flow: idx})
	}
	s.ents[k].b[d] = uint32(n)
}

// sums returns the window sums per flow (indexed by flow) at second at.
func (w *windowLog) sums(nflows int, at int64) []winSums {
	out := makeWritten[winSums](nflows)
	for i := range w.slots {
		s := &w.slots[i]
		if s.sec > at || s.sec <= at-windowLens[2] {
			continue
		}
		for _, e := range s.ents {
			ws := &out[e.flow]
			for wi, n := range windowLens {
				if s.sec > at-n {
					ws[0][wi] += int64(e.b[0])
					ws[1][wi] += int64(e.b[1])
				}
			}
		}
	}
	return out
}

package analyze

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// FlowInterval is one flow's traffic in one time interval, with the process
// that owned it then: the record `flowblame export --flows` writes, for
// spreadsheets and other engines.
type FlowInterval struct {
	Start int64       `json:"start"` // Unix ns, interval start (aligned to the interval)
	End   int64       `json:"end"`   // Unix ns, exclusive
	Key   FlowKey     `json:"key"`
	Out   Counts      `json:"out"` // A→B (TX when Key.Oriented)
	In    Counts      `json:"in"`  // B→A
	First int64       `json:"first"`
	Last  int64       `json:"last"`
	Owner Attribution `json:"owner"`
}

// IntervalStats says what FlowIntervals wrote.
type IntervalStats struct {
	Records int64 // records emitted
	// Late counts packets that came after the records of their interval
	// had been emitted (the capture is not in time order by more than one
	// interval): they were emitted again, as further records for that
	// interval, after records of later intervals.
	Late int64
}

// FlowIntervals aggregates src per flow and per interval (aligned to Unix
// time multiples of interval), deciding direction exactly as Analyze does
// and asking opts.Attributor for each flow's owner once per interval (at its
// first packet there). Non-IP frames, packets outside opts.Window and
// frames of interfaces opts.Interfaces leaves out are skipped.
//
// It streams: emit gets the records of each interval, ordered by bytes
// (descending) then flow key, once the capture is one more interval past
// its end, and the rest at the end, so memory holds about two intervals'
// flows, however long the capture. Intervals come in time order unless
// packets are late (IntervalStats.Late). opts.Progress, when set, is called
// as by Analyze.
func FlowIntervals(ctx context.Context, src ingest.PacketSource, opts Options, interval time.Duration, emit func([]FlowInterval) error) (IntervalStats, error) {
	var st IntervalStats
	if interval <= 0 {
		return st, fmt.Errorf("flow intervals: interval must be positive, got %s", interval)
	}
	cl := newClassifier(opts)
	step := int64(interval)
	// The open intervals, each with its records and an index of them by
	// flow. A flush touches only the intervals it emits (and drops their
	// indexes whole), so a late packet (a capture out of order) costs its
	// own record, not a pass over every open one.
	type openIv struct {
		recs []FlowInterval
		idx  map[fkey]int32
	}
	open := map[int64]*openIv{}
	hint := 0 // the most records an interval has had: the next is sized so
	oldest := int64(math.MaxInt64)
	emitted := int64(math.MinInt64) // the latest interval start emitted
	// flush emits the records of intervals starting at or before upTo.
	flush := func(upTo int64) error {
		var starts []int64
		for b := range open {
			if b <= upTo {
				starts = append(starts, b)
			}
		}
		if len(starts) == 0 {
			return nil
		}
		slices.Sort(starts)
		n := 0
		for _, b := range starts {
			n += len(open[b].recs)
		}
		done := make([]FlowInterval, 0, n)
		for _, b := range starts {
			iv := open[b]
			hint = max(hint, len(iv.recs))
			// Sorted by position: moving 4-byte indices, not 200-byte
			// records (a stable sort of the records took a third of the
			// time of a 200,000-flow export); the position breaks ties.
			pos := make([]int32, len(iv.recs))
			for i := range pos {
				pos[i] = int32(i)
			}
			slices.SortFunc(pos, func(i, j int32) int {
				a, b := &iv.recs[i], &iv.recs[j]
				if x := cmp.Compare(b.Out.Wire+b.In.Wire, a.Out.Wire+a.In.Wire); x != 0 {
					return x
				}
				return cmp.Or(compareFlowKey(a.Key, b.Key), cmp.Compare(i, j))
			})
			for _, i := range pos {
				done = append(done, iv.recs[i])
			}
			delete(open, b)
		}
		oldest = math.MaxInt64
		for b := range open {
			oldest = min(oldest, b)
		}
		emitted = max(emitted, starts[len(starts)-1])
		st.Records += int64(len(done))
		return emit(done)
	}
	var p ingest.Packet
	var r rec
	var ifs []ingest.Interface // the source's, refreshed at an unknown index as in Analyze
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, err
		}
		if opts.Progress != nil && n > 0 && n%progressEvery == 0 {
			opts.Progress(int64(n), p.TS)
		}
		if p.Iface >= len(ifs) {
			ifs = src.Interfaces()
			cl.refresh(ifs)
		}
		if p.Kind != ingest.KindIP || !opts.Window.Contains(p.TS) || !KeepIface(opts.Interfaces, ifs, p.Iface) {
			continue
		}
		cl.classify(&p, &r)
		bucket := p.TS - ((p.TS%step)+step)%step
		if bucket <= emitted {
			st.Late++
		}
		iv := open[bucket]
		if iv == nil {
			iv = &openIv{recs: make([]FlowInterval, 0, hint), idx: make(map[fkey]int32, hint)}
			open[bucket] = iv
			oldest = min(oldest, bucket)
		}
		i, ok := iv.idx[r.k]
		if !ok {
			i = int32(len(iv.recs))
			iv.idx[r.k] = i
			fk := r.k.flowKey()
			fi := FlowInterval{Start: bucket, End: bucket + step, Key: fk, First: p.TS}
			fi.Owner = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNoSockets}
			switch {
			case !fk.Oriented:
				fi.Owner.Cause = CauseUnknownDir
			case opts.Attributor != nil:
				fi.Owner, _, _ = opts.Attributor.Attribute(fk.Proto, fk.A, fk.B, p.TS)
			}
			iv.recs = append(iv.recs, fi)
		}
		fi := &iv.recs[i]
		c := &fi.Out
		if r.rev == 1 {
			c = &fi.In
		}
		c.Packets++
		c.Wire += int64(p.WireLen)
		c.IP += int64(p.IPLen)
		c.Captured += int64(p.CapLen)
		fi.Last = p.TS
		// An interval is done once a packet comes one interval after its
		// end; later packets for it are late. The packet's own time, not
		// the latest seen: after a clock step back the capture goes on
		// from the earlier time, and its packets are aggregated again
		// rather than each written alone.
		if p.TS-oldest >= 2*step {
			if err := flush(p.TS - 2*step); err != nil {
				return st, err
			}
		}
	}
	return st, flush(math.MaxInt64)
}

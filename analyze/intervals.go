package analyze

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
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

type ivKey struct {
	k      fkey
	bucket int64
}

// FlowIntervals aggregates src per flow and per interval (aligned to Unix
// time multiples of interval), deciding direction exactly as Analyze does
// and asking opts.Attributor for each flow's owner once per interval (at its
// first packet there). Non-IP frames and packets outside opts.Window are
// skipped. The result is ordered by interval, then bytes (descending), then
// flow key. Memory grows with flows × intervals.
func FlowIntervals(ctx context.Context, src ingest.PacketSource, opts Options, interval time.Duration) ([]FlowInterval, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("flow intervals: interval must be positive, got %s", interval)
	}
	cl := newClassifier(opts)
	step := int64(interval)
	idx := map[ivKey]int{}
	var out []FlowInterval
	var p ingest.Packet
	var r rec
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		cl.refresh(src.Interfaces())
		if p.Kind != ingest.KindIP || (opts.Window.From != 0 && p.TS < opts.Window.From) || (opts.Window.To != 0 && p.TS > opts.Window.To) {
			continue
		}
		cl.classify(&p, &r)
		bucket := p.TS - ((p.TS%step)+step)%step
		key := ivKey{k: r.k, bucket: bucket}
		i, ok := idx[key]
		if !ok {
			i = len(out)
			idx[key] = i
			fk := r.k.flowKey()
			fi := FlowInterval{Start: bucket, End: bucket + step, Key: fk, First: p.TS}
			fi.Owner = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNoSockets}
			switch {
			case !fk.Oriented:
				fi.Owner.Cause = CauseUnknownDir
			case opts.Attributor != nil:
				fi.Owner, _, _ = opts.Attributor.Attribute(fk.Proto, fk.A, fk.B, p.TS)
			}
			out = append(out, fi)
		}
		fi := &out[i]
		c := &fi.Out
		if r.rev == 1 {
			c = &fi.In
		}
		c.Packets++
		c.Wire += int64(p.WireLen)
		c.IP += int64(p.IPLen)
		c.Captured += int64(p.CapLen)
		fi.Last = p.TS
	}
	slices.SortStableFunc(out, func(a, b FlowInterval) int {
		if x := cmp.Compare(a.Start, b.Start); x != 0 {
			return x
		}
		if x := cmp.Compare(b.Out.Wire+b.In.Wire, a.Out.Wire+a.In.Wire); x != 0 {
			return x
		}
		return compareFlowKey(a.Key, b.Key)
	})
	return out, nil
}

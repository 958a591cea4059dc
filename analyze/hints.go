package analyze

import (
	"errors"
	"io"
	"net/netip"
	"slices"

	"github.com/flowblame/flowblame/ingest"
)

// HintIndex attributes flows from process information recorded in the
// capture itself (Packet.Hint: ptcpdump-style pcapng comments, pcapng
// process options, flowblame's own annotated exports). It is the fallback
// after socket observations: a hint names a PID, not its start time, so its
// confidence is medium.
type HintIndex struct {
	byTuple map[hintKey][]hintObs
}

type hintKey struct {
	proto uint8
	a, b  netip.AddrPort // ordered endpoints
}

// hintObs is a run of consecutive packets of one flow carrying the same
// process, from its first to its last packet.
type hintObs struct {
	from, to int64
	pid      int
	comm     string
}

func orderedKey(proto uint8, x, y netip.AddrPort) hintKey {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return hintKey{proto, x, y}
}

// CollectHints reads src to the end and indexes every packet's hint. It
// returns nil (and no error) when the capture carries no hints.
func CollectHints(src ingest.PacketSource) (*HintIndex, error) {
	idx := &HintIndex{byTuple: map[hintKey][]hintObs{}}
	var p ingest.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.Hint == nil || p.Kind != ingest.KindIP {
			continue
		}
		k := orderedKey(p.Tuple.Proto, p.Tuple.Src, p.Tuple.Dst)
		obs := idx.byTuple[k]
		if n := len(obs); n > 0 && obs[n-1].pid == p.Hint.PID && p.TS >= obs[n-1].to {
			obs[n-1].to = p.TS
			continue
		}
		idx.byTuple[k] = append(obs, hintObs{from: p.TS, to: p.TS, pid: p.Hint.PID, comm: p.Hint.Comm})
	}
	if len(idx.byTuple) == 0 {
		return nil, nil
	}
	for _, obs := range idx.byTuple {
		slices.SortStableFunc(obs, func(a, b hintObs) int { return compareInt64(a.from, b.from) })
	}
	return idx, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Attribute implements Attributor: the hint nearest in time on this flow.
func (h *HintIndex) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	obs := h.byTuple[orderedKey(proto, local, remote)]
	if len(obs) == 0 {
		return Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNeverSeen}, ts, ts
	}
	// The run that starts last at or before ts, else the first run.
	i, _ := slices.BinarySearchFunc(obs, ts, func(o hintObs, t int64) int { return compareInt64(o.from, t) })
	if i == len(obs) || (obs[i].from > ts && i > 0) {
		i--
	}
	o := obs[i]
	var skew int64
	switch {
	case ts < o.from:
		skew = o.from - ts
	case ts > o.to:
		skew = ts - o.to
	}
	return Attribution{Proc: ingest.ProcKey{PID: o.pid}, Comm: o.comm, Method: MethodHint, Confidence: ConfMedium, SkewNS: skew}, ts, ts
}

// Chain asks each Attributor in turn and returns the first attributed
// answer; when none attributes, the first answer (its cause) wins.
type Chain []Attributor

// Attribute implements Attributor.
func (c Chain) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	var first Attribution
	var from, till int64
	for i, a := range c {
		if a == nil {
			continue
		}
		got, f, t := a.Attribute(proto, local, remote, ts)
		if got.Attributed() {
			if i > 0 {
				return got, ts, ts // a fallback's answer holds for this instant only
			}
			return got, f, t
		}
		if i == 0 {
			first, from, till = got, f, t
		}
	}
	if first.Method == "" {
		first = Attribution{Method: MethodNone, Confidence: ConfNone, Cause: CauseNoSockets}
		from, till = ts, ts
	}
	return first, from, till
}

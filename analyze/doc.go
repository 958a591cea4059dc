// Package analyze aggregates decoded packets into flows, host pairs, remote
// hosts, interfaces and processes, with clean sliding-window rates and peaks,
// and charges every byte either to a process (through an Attributor) or to a
// cause of non-attribution.
//
// Example:
//
//	src, err := ingest.OpenCapture("trace.pcapng", ingest.Options{})
//	if err != nil { ... }
//	defer src.Close()
//	res, err := analyze.Analyze(ctx, src, analyze.Options{
//		Local: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
//	})
//	if err != nil { ... }
//	for _, row := range res.Rows(analyze.GroupPair, analyze.Sort2s, 10) { ... }
//
// # Direction
//
// Each frame's direction is decided, in order, from: the local addresses
// (Options.Local CIDRs, the hosts' interface addresses from Options.IfaceAddrs
// and the capture's interface descriptions) when exactly one endpoint is
// local; the direction the capture recorded (pcapng EPB flags, Linux SLL
// packet type); the source/destination MAC against the local MACs; else it
// is unknown. Flows of unknown direction are keyed with ordered endpoints
// (FlowKey.Oriented false) and counted under Totals.All.Unknown.
//
// # Rates
//
// Bytes are bucketed per second keyed by floor(ts). The N-second window rate
// at instant At (N = 2, 10, 40) is the sum of the N buckets ending at
// floor(At), divided by N. The peak is the maximum over every pair of
// consecutive seconds (s-1, s) of their sum / 2 (the earliest on ties);
// PeakRate.At is s (as Unix ns, s·1e9), so RatesAt(Peak.At).S2 reproduces
// it. At defaults to the latest packet timestamp. Totals, interfaces and
// processes keep full per-second series (Result.Series, IfaceSeries,
// ProcessStat.Series; WindowRatesAt evaluates them at any instant); flows,
// host pairs and remote hosts keep only what the windows at At need (a
// 64-second log of per-flow bytes) and a streaming peak tracker (current and
// previous second), so memory grows with flows, not packets × seconds. A
// packet older than an entity's current second (an unsorted capture, counted
// in Meta.Reordered) is charged to that second by the streaming trackers; the
// series-based numbers stay exact.
//
// # Attribution
//
// Options.Attributor is asked once per oriented flow, with the local
// endpoint first, and again only when a packet falls outside the validity
// range of its previous answer; each answer's bytes go to an OwnerShare of
// the flow (a flow can change owner, e.g. after PID reuse) and, when it
// names a process, to that ProcessStat. Unattributed bytes are summed by
// Cause: the Attributor's, CauseNoSockets without an Attributor,
// CauseUnknownDir for flows without a local side, CauseNonIP for frames
// without IP.
//
// # Performance
//
// Analyze reads and classifies packets on one goroutine (direction, compact
// 38-byte key, hash, open-addressing flow table lookup) and aggregates on
// another, in batches of 4096 compact records. Both sides first touch the
// memory a batch chunk will need, so that cache misses overlap. Per-flow
// state is three cache lines in chunked, never-copied storage; host pairs
// and remote hosts are derived from flows at the end, except their peak
// trackers (a pair with a single flow shares the flow's tracker).
package analyze

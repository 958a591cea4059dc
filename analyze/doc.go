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
// consecutive seconds (s-1, s) of their sum / 2; PeakRate.At is s (as Unix ns,
// s·1e9), so RatesAt(Peak.At).S2 reproduces it.
package analyze

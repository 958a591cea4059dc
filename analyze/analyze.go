package analyze

import (
	"cmp"
	"context"
	"net/netip"
	"slices"

	"github.com/flowblame/flowblame/ingest"
)

// Options controls Analyze. The zero value analyses everything, decides
// direction from the capture alone (Packet.Dir, interface MACs and addresses
// recorded in the capture) and attributes nothing (CauseNoSockets).
type Options struct {
	// Local lists CIDRs whose addresses belong to the capturing host (or to
	// the "inside" the operator cares about), e.g. from --local. A packet whose
	// source matches and destination does not is TX; the reverse is RX.
	Local []netip.Prefix
	// IfaceAddrs lists, per interface index of the PacketSource, the host's
	// own addresses (from a bundle manifest). Only each prefix's Addr() is
	// used: "198.51.100.1/24" makes 198.51.100.1 local, not the whole /24.
	// Addresses listed for any interface are local on every interface.
	// Addresses found in the capture's own interface descriptions
	// (ingest.Interface.Addrs) are added automatically the same way.
	IfaceAddrs map[int][]netip.Prefix
	// LocalMACs are the host's own MAC addresses; a frame from one is TX, to
	// one is RX. MACs of the capture's interfaces (ingest.Interface.MAC) are
	// added automatically.
	LocalMACs [][6]byte
	// Window restricts the analysis to packets with From ≤ TS ≤ To (Unix ns,
	// inclusive); 0 leaves that end open. Packets outside are skipped and
	// counted in Meta.Outside.
	Window Window
	// At is the instant (Unix ns) at which the 2/10/40-second window rates
	// are evaluated; 0 means the latest packet timestamp analysed.
	At int64
	// Attributor joins flows to processes; nil attributes nothing and charges
	// every IP byte to CauseNoSockets. It is called once per flow and again
	// only when a packet falls outside the validity range of its previous
	// answer, always from one goroutine.
	Attributor Attributor
	// Serial disables the reader/aggregator pipeline (one goroutine does
	// everything). The result is identical; the pipeline is faster on more
	// than one core.
	Serial bool
	// Progress, when set, is called about every million packets with the
	// number of frames read so far and the latest timestamp (from the
	// aggregating goroutine). It must be cheap.
	Progress func(packets int64, ts int64)
}

// Result is the outcome of Analyze. Every slice is sorted deterministically:
// traffic entities by total wire bytes descending, then by key; series by
// second; Ifaces by index. Result.Validate checks the invariants.
type Result struct {
	Version int    `json:"version"` // ResultVersion
	Meta    Meta   `json:"meta"`
	Totals  Totals `json:"totals"`
	// Flows are the 5-tuple flows (both directions in one entry).
	Flows []Flow `json:"flows"`
	// Pairs are the host pairs (iftop's default line).
	Pairs []HostPair `json:"pairs"`
	// Remotes are the remote addresses of oriented flows (flows whose local
	// side is unknown have no remote and appear only in Flows and Pairs).
	Remotes []RemoteHost `json:"remotes"`
	// Ifaces is the traffic per capture interface, by index; IfaceSeries
	// their per-second series (same order).
	Ifaces      []IfaceStat   `json:"ifaces"`
	IfaceSeries []IfaceSeries `json:"iface_series"`
	// Processes are the processes bytes were charged to.
	Processes []ProcessStat `json:"processes"`
	// Unattributed breaks down every frame not charged to a process by cause.
	Unattributed []UnattributedStat `json:"unattributed"`
	// Series is the per-second wire bytes of all analysed frames by
	// direction; seconds without traffic are omitted.
	Series []SecondBucket `json:"series"`
	// Diagnostics are the source's (ingest.PacketSource.Diagnostics).
	Diagnostics []ingest.Diagnostic `json:"diagnostics"`
	// Coverage says how much of TX and RX was attributed, and how.
	Coverage Coverage `json:"coverage"`
}

// Meta describes what was analysed.
type Meta struct {
	// First and Last are the lowest and highest packet timestamps analysed
	// (Unix ns); Duration is Last-First in seconds.
	First    int64   `json:"first"`
	Last     int64   `json:"last"`
	Duration float64 `json:"duration_s"`
	// At is the instant the window rates are evaluated at (Unix ns).
	At int64 `json:"at"`
	// Window is the requested time range (zero ends are open).
	Window Window `json:"window"`
	// Packets is the number of frames analysed (inside Window).
	Packets int64 `json:"packets"`
	// Outside counts frames skipped because they fell outside Window.
	Outside Counts `json:"outside"`
	// Reordered counts frames whose timestamp was earlier than the one
	// before (the capture was not time-ordered); per-entity peaks charge
	// them to the latest second already seen for that entity.
	Reordered int64 `json:"reordered"`
	// Interfaces and Stats are the source's, read after the last packet.
	Interfaces []ingest.Interface `json:"interfaces"`
	Stats      ingest.SourceStats `json:"stats"`
	// Attributed says an Attributor was used; AttributorCalls counts calls.
	Attributed      bool  `json:"attributed"`
	AttributorCalls int64 `json:"attributor_calls"`
}

// DirCounts are counts by direction relative to the local host. For
// entities without a local side, Out is A→B and In is B→A; in Totals, frames
// whose direction could not be decided are in Unknown.
type DirCounts struct {
	Out     Counts `json:"out"`
	In      Counts `json:"in"`
	Unknown Counts `json:"unknown"`
}

// Sum returns Out+In+Unknown.
func (d DirCounts) Sum() Counts {
	c := d.Out
	c.Add(d.In)
	c.Add(d.Unknown)
	return c
}

// Totals are the totals over every analysed frame.
type Totals struct {
	// All is every analysed frame by direction: Out = TX, In = RX, Unknown
	// = direction undecided. NonIP is the part of All that carries no
	// decodable IP (non-IP, unsupported link, malformed frames).
	All   DirCounts `json:"all"`
	NonIP DirCounts `json:"non_ip"`
	// Traffic is TX (Out) and RX (In) with window rates and peaks; its
	// counts equal All.Out and All.In.
	Traffic Traffic `json:"traffic"`
	// UnknownRate and PeakUnknown are the rates of direction-unknown frames.
	UnknownRate WindowRates `json:"unknown_rate"`
	PeakUnknown PeakRate    `json:"peak_unknown"`
	// PeakAll is the peak 2-s rate of all frames (TX+RX+unknown).
	PeakAll PeakRate `json:"peak_all"`
}

// IfaceSeries is the per-second series of one interface.
type IfaceSeries struct {
	Index  int            `json:"index"`
	Series []SecondBucket `json:"series"`
}

// ProcessStat is the traffic charged to one process. Out is what the
// process's sockets sent (TX), In what they received (RX).
type ProcessStat struct {
	Key     ingest.ProcKey `json:"key"`
	Comm    string         `json:"comm,omitempty"`
	Traffic Traffic        `json:"traffic"`
	// Flows is the number of flows with bytes charged to this process.
	Flows int `json:"flows"`
	// Remotes are the remote addresses of those flows, by bytes descending.
	Remotes []netip.Addr `json:"remotes,omitempty"`
	// Series is the per-second wire bytes (Out/In; Unknown is always 0).
	Series []SecondBucket `json:"series"`
	// ByMethod splits the process's bytes by attribution method.
	ByMethod []MethodCounts `json:"by_method"`
}

// MethodCounts are the bytes attributed with one Method.
type MethodCounts struct {
	Method Method `json:"method"`
	Out    Counts `json:"out"`
	In     Counts `json:"in"`
}

// UnattributedStat is the traffic not charged to any process for one Cause.
// Out/In are TX/RX of oriented flows; Unknown holds direction-unknown frames.
type UnattributedStat struct {
	Cause   Cause  `json:"cause"`
	Out     Counts `json:"out"`
	In      Counts `json:"in"`
	Unknown Counts `json:"unknown"`
	// Flows is the number of flows (0 for CauseNonIP) with bytes here.
	Flows int `json:"flows"`
}

// Coverage is the attributed share of TX and RX wire bytes.
type Coverage struct {
	// TX and RX are attributed wire bytes / all TX (RX) wire bytes, in [0,1]
	// (0 when there was no such traffic).
	TX float64 `json:"tx"`
	RX float64 `json:"rx"`
	// ByMethod splits the attributed bytes by method (most bytes first).
	ByMethod []MethodCoverage `json:"by_method"`
}

// MethodCoverage is the share of TX and RX attributed with one Method.
type MethodCoverage struct {
	Method Method  `json:"method"`
	Out    Counts  `json:"out"`
	In     Counts  `json:"in"`
	TX     float64 `json:"tx_share"`
	RX     float64 `json:"rx_share"`
}

// Analyze reads src to the end and aggregates it. It does not close src.
// A fatal source error is returned with the partial Result analysed so far;
// record-level problems are in Result.Diagnostics. ctx cancels the reading.
func Analyze(ctx context.Context, src ingest.PacketSource, opts Options) (*Result, error) {
	return analyze(ctx, src, opts)
}

// SortBy orders traffic rows, like iftop -o.
type SortBy int

// Sort orders: cumulative wire bytes, or the 2/10/40-second window rate
// (Out+In) at Result.At, or the peak 2-second rate.
const (
	SortTotal SortBy = iota
	Sort2s
	Sort10s
	Sort40s
	SortPeak
)

// String returns "total", "2s", "10s", "40s" or "peak".
func (s SortBy) String() string {
	switch s {
	case Sort2s:
		return "2s"
	case Sort10s:
		return "10s"
	case Sort40s:
		return "40s"
	case SortPeak:
		return "peak"
	}
	return "total"
}

// GroupBy chooses what a Row aggregates.
type GroupBy int

// Groupings: 5-tuple flows, host pairs, remote hosts.
const (
	GroupFlow GroupBy = iota
	GroupPair
	GroupRemote
)

// String returns "flow", "pair" or "remote".
func (g GroupBy) String() string {
	switch g {
	case GroupPair:
		return "pair"
	case GroupRemote:
		return "remote"
	}
	return "flow"
}

// Row is one traffic line of a grouping. For GroupFlow Key is the flow key;
// for GroupPair Key holds the two addresses with zero ports and Proto 0; for
// GroupRemote Key.B is the remote address (A is zero, Oriented true).
type Row struct {
	Group   GroupBy `json:"group"`
	Key     FlowKey `json:"key"`
	Traffic Traffic `json:"traffic"`
	// Flows is the number of 5-tuple flows in the row (1 for GroupFlow).
	Flows int `json:"flows"`
}

// SortValue is the value rows are ranked by for s: wire bytes (Out+In) for
// SortTotal, the Out+In window rate for Sort2s/10s/40s, Peak.Rate for
// SortPeak.
func (t Traffic) SortValue(s SortBy) float64 {
	switch s {
	case Sort2s:
		return t.OutRate.S2 + t.InRate.S2
	case Sort10s:
		return t.OutRate.S10 + t.InRate.S10
	case Sort40s:
		return t.OutRate.S40 + t.InRate.S40
	case SortPeak:
		return t.Peak.Rate
	}
	return float64(t.Out.Wire + t.In.Wire)
}

// Rows returns the rows of grouping g ordered by s (descending, ties broken
// by total bytes then key), cut to the first n when n > 0. The Result is not
// modified.
func (r *Result) Rows(g GroupBy, s SortBy, n int) []Row {
	var rows []Row
	switch g {
	case GroupFlow:
		rows = make([]Row, len(r.Flows))
		for i, f := range r.Flows {
			rows[i] = Row{Group: g, Key: f.Key, Traffic: f.Traffic, Flows: 1}
		}
	case GroupPair:
		rows = make([]Row, len(r.Pairs))
		for i, p := range r.Pairs {
			rows[i] = Row{Group: g, Key: FlowKey{A: netip.AddrPortFrom(p.A, 0), B: netip.AddrPortFrom(p.B, 0), Oriented: p.Oriented}, Traffic: p.Traffic, Flows: p.Flows}
		}
	case GroupRemote:
		rows = make([]Row, len(r.Remotes))
		for i, h := range r.Remotes {
			rows[i] = Row{Group: g, Key: FlowKey{B: netip.AddrPortFrom(h.Addr, 0), Oriented: true}, Traffic: h.Traffic, Flows: h.Flows}
		}
	}
	SortRows(rows, s)
	return TopN(rows, n)
}

// SortRows sorts rows by s descending; ties are broken by total wire bytes
// descending, then by key ascending, so the order is deterministic.
func SortRows(rows []Row, s SortBy) {
	slices.SortStableFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(b.Traffic.SortValue(s), a.Traffic.SortValue(s)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Traffic.Out.Wire+b.Traffic.In.Wire, a.Traffic.Out.Wire+a.Traffic.In.Wire); c != 0 {
			return c
		}
		return compareFlowKey(a.Key, b.Key)
	})
}

// TopN returns the first n elements of s (all of s when n ≤ 0 or n ≥ len(s)).
func TopN[T any](s []T, n int) []T {
	if n <= 0 || n >= len(s) {
		return s
	}
	return s[:n]
}

// compareFlowKey orders keys by protocol, A, B, then Oriented.
func compareFlowKey(a, b FlowKey) int {
	if c := cmp.Compare(a.Proto, b.Proto); c != 0 {
		return c
	}
	if c := a.A.Compare(b.A); c != 0 {
		return c
	}
	if c := a.B.Compare(b.B); c != 0 {
		return c
	}
	return cmp.Compare(b2i(a.Oriented), b2i(b.Oriented))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

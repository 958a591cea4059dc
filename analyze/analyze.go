package analyze

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

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
	// Interfaces, when set, restricts the analysis to frames captured on
	// the interfaces with these names (e.g. the uplink, on a host whose
	// bridges and container veths carry the same packets again); frames
	// of other interfaces are skipped and counted in Meta.OtherInterfaces.
	// Frames of interfaces without a name (classic pcap) are kept.
	Interfaces []string
	// At is the instant (Unix ns) at which the 2/10/40-second window rates
	// are evaluated; 0 means the latest packet timestamp analysed.
	At int64
	// Attributor joins flows to processes; nil attributes nothing and charges
	// every IP byte to CauseNoSockets. It is called once per flow and again
	// only when a packet falls outside the validity range of its previous
	// answer, always from one goroutine.
	Attributor Attributor
	// NAT, when set, holds the host's NAT translations (a bundle's
	// conntrack records, see WithNAT): a connection captured both
	// untranslated (a container's veth or bridge) and translated (the
	// uplink) is then reported as counted twice, like a flow seen on two
	// interfaces.
	NAT *NATIndex
	// MaxFlows bounds the memory a capture with millions of flows (a
	// spoofed-source flood, a scan) can take: once MaxFlows flows exist,
	// the packets of each new flow are counted in an aggregate of its two
	// addresses and protocol, ports dropped (FlowKey.Folded = FoldedPorts),
	// and once MaxFlows/4 (at least 1) such aggregates exist as well, in one aggregate
	// per protocol, IP version and orientation (FoldedHosts). Flows that
	// exist go on being counted exactly; totals, per-second series and
	// interfaces are never folded. 0 means no limit.
	MaxFlows int
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
	// UnattributedTraffic is the TX and RX of Unattributed summed over the
	// causes (direction-unknown bytes left out), with window rates and
	// peaks from its per-second series: the whole capture's minus every
	// process's. First and Last are 0.
	UnattributedTraffic Traffic `json:"unattributed_traffic"`
	// Series is the per-second wire bytes of all analysed frames by
	// direction; seconds without traffic are omitted.
	Series []SecondBucket `json:"series"`
	// Diagnostics are the source's (ingest.PacketSource.Diagnostics).
	Diagnostics []ingest.Diagnostic `json:"diagnostics"`
	// Coverage says how much of TX and RX was attributed, and how.
	Coverage Coverage `json:"coverage"`
	// Tunnels breaks the flows that carry tunnels down by the tunnelled
	// flows inside (see TunnelFlow); empty without tunnels.
	Tunnels []TunnelFlow `json:"tunnels"`
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
	// OnlyInterfaces is Options.Interfaces; OtherInterfaces counts the
	// frames skipped because they were captured on other interfaces.
	OnlyInterfaces  []string `json:"only_interfaces,omitempty"`
	OtherInterfaces Counts   `json:"other_interfaces"`
	// MultiInterfaceFlows counts flows (same 5-tuple) seen on more than
	// one interface, e.g. on a container's veth and on the bridge: their
	// packets are counted once per interface. MultiInterfacePackets counts
	// those packets seen on another interface than the flow's first.
	MultiInterfaceFlows   int64 `json:"multi_interface_flows"`
	MultiInterfacePackets int64 `json:"multi_interface_packets"`
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
	// Folded describes the aggregates of flows past Options.MaxFlows (nil
	// when there are none).
	Folded *FoldStats `json:"folded,omitempty"`
}

// FoldStats describes the flows past Options.MaxFlows, counted in
// aggregates (FlowKey.Folded).
type FoldStats struct {
	MaxFlows int   `json:"max_flows"`
	First    int64 `json:"first"` // Unix ns of the first packet folded
	// PortAggregates and HostAggregates count the aggregates of each kind;
	// Ports and Hosts the frames and bytes counted in them.
	PortAggregates int    `json:"port_aggregates"`
	HostAggregates int    `json:"host_aggregates"`
	Ports          Counts `json:"ports"`
	Hosts          Counts `json:"hosts"`
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
	Index int `json:"index"`
	// Unknown and UnknownRate are the interface's direction-unknown frames
	// (IfaceStat.Traffic holds only TX and RX).
	Unknown     Counts         `json:"unknown"`
	UnknownRate WindowRates    `json:"unknown_rate"`
	Series      []SecondBucket `json:"series"`
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
	e := newEngine(opts)
	var err error
	if opts.Serial {
		err = e.runSerial(ctx, src)
	} else {
		err = e.runPipelined(ctx, src)
	}
	r := e.result(src)
	if opts.NAT != nil {
		opts.NAT.untranslate(r)
		if d, ok := natDuplicates(r); ok {
			r.Diagnostics = append(r.Diagnostics, d)
		}
	}
	return r, err
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
	var count int
	var mk func(i int) Row
	switch g {
	case GroupFlow:
		count = len(r.Flows)
		mk = func(i int) Row { f := &r.Flows[i]; return Row{Group: g, Key: f.Key, Traffic: f.Traffic, Flows: 1} }
	case GroupPair:
		count = len(r.Pairs)
		mk = func(i int) Row {
			p := &r.Pairs[i]
			return Row{Group: g, Key: FlowKey{A: netip.AddrPortFrom(p.A, 0), B: netip.AddrPortFrom(p.B, 0), Oriented: p.Oriented, Folded: foldedHosts(p.Folded)},
				Traffic: p.Traffic, Flows: p.Flows}
		}
	case GroupRemote:
		count = len(r.Remotes)
		mk = func(i int) Row {
			h := &r.Remotes[i]
			return Row{Group: g, Key: FlowKey{B: netip.AddrPortFrom(h.Addr, 0), Oriented: true, Folded: foldedHosts(h.Folded)}, Traffic: h.Traffic, Flows: h.Flows}
		}
	}
	// Sort small references instead of whole rows (a Row is ~300 bytes and
	// there can be hundreds of thousands), then build only the top n; the
	// order is exactly SortRows's.
	type ref struct {
		v   float64
		tot int64
		i   int32
	}
	refs := make([]ref, count)
	for i := range refs {
		row := mk(i)
		refs[i] = ref{row.Traffic.SortValue(s), row.Traffic.Out.Wire + row.Traffic.In.Wire, int32(i)}
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		if c := cmp.Compare(b.v, a.v); c != 0 {
			return c
		}
		if c := cmp.Compare(b.tot, a.tot); c != 0 {
			return c
		}
		return compareFlowKey(mk(int(a.i)).Key, mk(int(b.i)).Key)
	})
	refs = TopN(refs, n)
	rows := make([]Row, len(refs))
	for j, x := range refs {
		rows[j] = mk(int(x.i))
	}
	return rows
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

// compareFlowKey orders keys by protocol, A, B, Oriented, then Folded
// (flows, then aggregates by ports, then by hosts).
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
	if c := cmp.Compare(b2i(a.Oriented), b2i(b.Oriented)); c != 0 {
		return c
	}
	return cmp.Compare(foldRank(a.Folded), foldRank(b.Folded))
}

// foldedHosts is FlowKey.Folded of a row for a HostPair or RemoteHost.
func foldedHosts(folded bool) string {
	if folded {
		return FoldedHosts
	}
	return ""
}

// foldRank orders FlowKey.Folded values: "", FoldedPorts, FoldedHosts.
func foldRank(f string) int {
	switch f {
	case FoldedPorts:
		return 1
	case FoldedHosts:
		return 2
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// batchLen is the number of records handed between goroutines at once.
const batchLen = 4096

type batch struct {
	recs []arec
	keys []fkey // keys of the flows created in recs, in order
	n    int
}

func newBatch() *batch { return &batch{recs: make([]arec, batchLen)} }

// reader reads and classifies frames: the part of the work that does not
// touch the aggregation state, so it can run on another core.
type reader struct {
	src     ingest.PacketSource
	ft      *flowTable
	cls     *classifier
	win     Window
	outside Counts
	only    []string // Options.Interfaces
	keep    []bool   // by interface index: analysed (refreshIfaces)
	names   []int32  // by interface index: name id (first index with the name), -1 unnamed
	nameIdx map[string]int32
	other   Counts // frames of interfaces not in only
	tried   int    // highest interface index looked up (refreshIfaces)
	p       ingest.Packet
	scratch []rec // keys of the chunk being filled, by position
	tot     frameTotals
	tun     tunnelTable
	// summ is src as a SummarySource (nil when it is not one); sums holds
	// the Summaries it last gave, sums[sumPos:sumN] not yet read.
	summ         ingest.SummarySource
	sums         []ingest.Summary
	sumPos, sumN int
	// sumIf is the known interface the last summary was captured on (-1:
	// none yet), sumKeep and sumName what iface and names say of it.
	sumIf   int32
	sumKeep bool
	sumName int32
}

func newReader(src ingest.PacketSource, ft *flowTable, opts Options) *reader {
	rd := &reader{src: src, ft: ft, cls: newClassifier(opts), win: opts.Window, only: opts.Interfaces, tried: -1,
		nameIdx: map[string]int32{},
		scratch: make([]rec, chunkLen), tot: newFrameTotals(), tun: tunnelTable{at: opts.At}}
	if ss, ok := src.(ingest.SummarySource); ok {
		rd.summ, rd.sums, rd.sumIf = ss, make([]ingest.Summary, chunkLen), -1
	}
	return rd
}

// KeepIface reports whether frames of interface i (an index into ifs, the
// source's interfaces) are analysed under Options.Interfaces (only): all
// are when it is empty, and so are those of an unnamed or not yet
// described interface.
func KeepIface(only []string, ifs []ingest.Interface, i int) bool {
	return len(only) == 0 || i < 0 || i >= len(ifs) || ifs[i].Name == "" || slices.Contains(only, ifs[i].Name)
}

// refreshIfaces takes in the interfaces the source has described since the
// last call (they are described as the capture goes): the classifier's
// addresses and MACs, and per index the name id (the first index with the
// same name: rotated capture files describe the same interface again; -1
// without a name) and whether its frames are analysed.
func (rd *reader) refreshIfaces() {
	ifs := rd.src.Interfaces()
	rd.cls.refresh(ifs)
	for j := len(rd.names); j < len(ifs); j++ {
		name, id := ifs[j].Name, int32(-1)
		if name != "" {
			first, ok := rd.nameIdx[name]
			if !ok {
				first = int32(j)
				rd.nameIdx[name] = first
			}
			id = first
		}
		rd.names = append(rd.names, id)
		rd.keep = append(rd.keep, KeepIface(rd.only, ifs, j))
	}
}

// fill reads up to len(b.recs) frames into b and resolves their flows. It
// returns io.EOF (with the last records in b) at the end. It works a chunk
// at a time (read, resolve), so the chunk's keys are still in the core's
// first-level cache when they are resolved.
func (rd *reader) fill(b *batch) error {
	b.n, b.keys = 0, b.keys[:0]
	for b.n < len(b.recs) {
		m := min(chunkLen, len(b.recs)-b.n)
		n, err := rd.read(b.recs[b.n:b.n+m], rd.scratch[:m])
		out, keys := b.recs[b.n:b.n+n], rd.scratch[:n]
		rd.ft.resolve(out, keys)
		for i := range out {
			if out[i].created {
				b.keys = append(b.keys, keys[i].k)
			}
		}
		b.n += n
		if err != nil {
			return err
		}
	}
	return nil
}

// read reads and classifies up to len(dst) frames into dst, the keys of IP
// frames into keys at the same positions. From a SummarySource it takes
// common frames as Summaries, in bulk; the others, and every frame of other
// sources, as Packets.
func (rd *reader) read(dst []arec, keys []rec) (n int, err error) {
	p := &rd.p
	for n < len(dst) {
		if rd.sumPos < rd.sumN {
			s := &rd.sums[rd.sumPos]
			rd.sumPos++
			if rd.addSummary(s, &dst[n], &keys[n]) {
				n++
			}
			continue
		}
		if rd.summ != nil {
			m, err := rd.summ.NextSummaries(rd.sums, p)
			if err != nil {
				return n, err
			}
			if m > 0 {
				rd.sumPos, rd.sumN = 0, m
				continue
			}
		} else if err := rd.src.Next(p); err != nil {
			return n, err
		}
		if rd.addPacket(p, &dst[n], &keys[n]) {
			n++
		}
	}
	return n, nil
}

// iface looks interface i up: whether it is known yet and whether its
// frames are analysed (otherwise they go to other).
func (rd *reader) iface(i int) (known, keep bool) {
	known = i >= 0 && i < len(rd.names)
	if !known && i > rd.tried { // each unknown index is looked up once
		rd.tried = i
		rd.refreshIfaces()
		known = i >= 0 && i < len(rd.names)
	}
	return known, !known || rd.keep[i]
}

// addPacket classifies p into r (its key into k) and reports whether it is
// analysed.
func (rd *reader) addPacket(p *ingest.Packet, r *arec, k *rec) bool {
	if !rd.win.Contains(p.TS) {
		rd.outside.addFrame(p)
		return false
	}
	known, keep := rd.iface(p.Iface)
	if !keep {
		rd.other.addFrame(p)
		return false
	}
	r.ts = p.TS
	r.wire = int64(p.WireLen)
	r.ipl = int32(p.IPLen)
	r.capl = int32(p.CapLen)
	r.iface = int32(p.Iface)
	r.ifName = -1
	if known {
		r.ifName = rd.names[p.Iface]
	}
	r.created = false
	if p.Kind == ingest.KindIP {
		rd.cls.classify(p, k)
		r.ip, r.dir, r.rev = true, k.dir, k.rev
	} else {
		r.ip = false
		r.dir = rd.cls.frameDir(p)
	}
	rd.tot.add(r)
	if p.NInner > 0 {
		rd.tun.add(p)
	}
	return true
}

// addSummary is addPacket for a summarised frame.
func (rd *reader) addSummary(s *ingest.Summary, r *arec, k *rec) bool {
	if !rd.win.Contains(s.TS) {
		rd.outside.addOne(int64(s.Wire), int64(s.IPLen), int64(s.Cap))
		return false
	}
	if s.Iface != rd.sumIf { // the interface of the last summary is cached
		known, keep := rd.iface(int(s.Iface))
		name := int32(-1)
		rd.sumIf = -1 // an unknown interface is looked up again
		if known {
			name = rd.names[s.Iface]
			rd.sumIf = s.Iface
		}
		rd.sumKeep, rd.sumName = keep, name
	}
	if !rd.sumKeep {
		rd.other.addOne(int64(s.Wire), int64(s.IPLen), int64(s.Cap))
		return false
	}
	r.ts = s.TS
	r.wire = int64(s.Wire)
	r.ipl = int32(s.IPLen)
	r.capl = int32(s.Cap)
	r.iface = s.Iface
	r.ifName = rd.sumName
	r.created = false
	rd.cls.classifySummary(s, k)
	r.ip, r.dir, r.rev = true, k.dir, k.rev
	rd.tot.add(r)
	return true
}

const progressEvery = 1 << 20

func (e *engine) addBatch(b *batch) {
	recs, keys := b.recs[:b.n], b.keys
	for len(recs) > 0 {
		n := min(len(recs), chunkLen)
		e.addChunk(recs[:n], &keys)
		if e.opts.Progress != nil {
			e.progress(recs[:n])
		}
		recs = recs[n:]
	}
}

// progress counts recs, just aggregated, for Options.Progress and calls it
// about every progressEvery frames.
func (e *engine) progress(recs []arec) {
	before := e.packets
	e.packets += int64(len(recs))
	for i := range recs {
		e.progTS = max(e.progTS, recs[i].ts)
	}
	if e.packets/progressEvery != before/progressEvery {
		e.opts.Progress(e.packets, e.progTS)
	}
}

func (e *engine) runSerial(ctx context.Context, src ingest.PacketSource) error {
	rd := newReader(src, e.ft, e.opts)
	b := newBatch()
	defer func() { e.outside, e.other, e.tot, e.tun = rd.outside, rd.other, rd.tot, rd.tun }()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := rd.fill(b)
		e.addBatch(b)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// runPipelined reads and classifies in one goroutine while this one
// aggregates; batches are recycled through a free list. Which side is the
// slower changes as the capture goes (new flows load the aggregating side,
// known ones the reading side), so up to inFlight batches (262,144 frames,
// 10 MiB) queue between them: with 4, each side waited 0.3-0.4 s of a
// 2.7 s analysis for the other.
func (e *engine) runPipelined(ctx context.Context, src ingest.PacketSource) error {
	const inFlight = 64
	rd := newReader(src, e.ft, e.opts)
	full := make(chan *batch, inFlight)
	free := make(chan *batch, inFlight)
	for range inFlight {
		free <- newBatch()
	}
	done := make(chan struct{})
	var rerr error
	go func() {
		defer close(full)
		for {
			if err := ctx.Err(); err != nil {
				rerr = err
				return
			}
			var b *batch
			select {
			case b = <-free:
			case <-done:
				return
			}
			err := rd.fill(b)
			full <- b
			if err == io.EOF {
				return
			}
			if err != nil {
				rerr = err
				return
			}
		}
	}()
	for b := range full {
		e.addBatch(b)
		free <- b
	}
	close(done)
	e.outside, e.other, e.tot, e.tun = rd.outside, rd.other, rd.tot, rd.tun
	return rerr
}

// result builds the Result from the aggregation state.
func (e *engine) result(src ingest.PacketSource) *Result {
	r := &Result{Version: ResultVersion}
	ifs := src.Interfaces()
	r.Meta = Meta{
		Window:          e.opts.Window,
		Packets:         e.tot.packets,
		Outside:         e.outside,
		OnlyInterfaces:  e.opts.Interfaces,
		OtherInterfaces: e.other,

		MultiInterfaceFlows:   e.multiFlows,
		MultiInterfacePackets: e.multiPackets,
		Reordered:             e.tot.reordered,
		Interfaces:            ifs,
		Stats:                 src.Stats(),
		Attributed:            e.opts.Attributor != nil,
		AttributorCalls:       e.calls,
	}
	if e.tot.packets > 0 {
		r.Meta.First, r.Meta.Last = e.tot.first, e.tot.last
		r.Meta.Duration = float64(e.tot.last-e.tot.first) / 1e9
	}
	at := e.opts.At
	if at == 0 && e.tot.packets > 0 {
		at = e.tot.maxTS
	}
	r.Meta.At = at
	atSec := floorSec(at)
	r.Diagnostics = append(append(src.Diagnostics(), e.ifaceDiagnostics()...), e.tot.timeJumpDiagnostics()...)
	var tunDiags []ingest.Diagnostic
	r.Tunnels, tunDiags = e.tun.result(at)
	r.Diagnostics = append(r.Diagnostics, tunDiags...)
	if e.opts.Attributor != nil {
		r.Meta.AttributorCalls += attributeTunnels(e.opts.Attributor, r.Tunnels)
	}

	// Totals.
	r.Series = e.tot.ser.sorted()
	r.Totals.All = DirCounts{Out: e.tot.all[dirOut], In: e.tot.all[dirIn], Unknown: e.tot.all[dirUnknown]}
	r.Totals.NonIP = DirCounts{Out: e.tot.nonIP[dirOut], In: e.tot.nonIP[dirIn], Unknown: e.tot.nonIP[dirUnknown]}
	r.Totals.Traffic = seriesTraffic(r.Series, e.tot.all[dirOut], e.tot.all[dirIn], at, r.Meta.First, r.Meta.Last)
	_, _, r.Totals.UnknownRate = WindowRatesAt(r.Series, at)
	_, _, r.Totals.PeakUnknown, r.Totals.PeakAll = PeaksOf(r.Series)

	// Interfaces: every one the source described, and any index seen.
	if len(ifs) > 0 {
		e.tot.iface(int32(len(ifs) - 1))
	}
	for i := range e.tot.ifaces {
		ie := &e.tot.ifaces[i]
		ser := ie.ser.sorted()
		st := IfaceStat{Index: i, Traffic: seriesTraffic(ser, ie.cnt[dirOut], ie.cnt[dirIn], at, ie.first, ie.last)}
		if i < len(ifs) {
			st.Info = ifs[i]
		}
		if ie.first > ie.last { // an interface index no frame was seen on
			st.Traffic.First, st.Traffic.Last = 0, 0
		}
		r.Ifaces = append(r.Ifaces, st)
		_, _, ur := WindowRatesAt(ser, at)
		r.IfaceSeries = append(r.IfaceSeries, IfaceSeries{Index: i, Unknown: ie.cnt[dirUnknown], UnknownRate: ur, Series: ser})
	}

	// Flows.
	// Let the collector take what result building no longer needs.
	e.pairIdx.slots, e.remIdx.slots, e.ft.slots = nil, nil, nil
	nflows := e.ents.len()
	for i := range nflows {
		e.closeShare(int32(i))
	}
	ents := &e.ents
	sums := e.wl.sums(nflows, atSec)
	e.wl = nil
	// Sort indices, not 300-byte Flows: pos[i] is flow i's place in r.Flows.
	// The sort reads only counts and keys, and filling r.Flows then touches
	// nothing else, so both run on the other core while the pairs and
	// remotes are summed here.
	r.Flows = make([]Flow, nflows)
	posc := make(chan []int32, 1)
	go func() {
		pos := sortedPositionsBy(nflows, func(i int32) (int64, uint64, uint64) {
			f := ents.at(i)
			p1, p2 := e.keys.at(i).prefix()
			return f.cnt[0].Wire + f.cnt[1].Wire, p1, p2
		}, func(a, b int32) int { return e.keys.at(a).compare(e.keys.at(b)) })
		for i := range int32(nflows) {
			f := ents.at(i)
			fl := &r.Flows[pos[i]]
			fl.Key = e.keys.at(i).flowKey()
			fl.Iface = int(f.iface)
			t := &fl.Traffic
			t.Out, t.In = f.cnt[0], f.cnt[1]
			t.OutRate, t.InRate = sums[i].rates()
			t.PeakOut, t.PeakIn, t.Peak = f.pk.peaks(e.flowAt.at(i))
			t.First, t.Last = f.first, f.last
		}
		posc <- pos
	}()
	pairs := make([]HostPair, e.pairs.len())
	pairSums := makeWritten[winSums](e.pairs.len())
	for i := range int32(e.pairs.len()) {
		k := e.pairIdx.keys.at(i) // a flow key without ports and protocol
		pairs[i] = HostPair{A: k.addrA(), B: k.addrB(), Oriented: k.flags&fOriented != 0, Folded: k.flags&fFoldedHosts != 0}
		pairs[i].Traffic.First, pairs[i].Traffic.Last = math.MaxInt64, math.MinInt64
		if *e.pairSolo.at(i) < 0 { // else the pair's peaks are its only flow's, below
			t := &pairs[i].Traffic
			t.PeakOut, t.PeakIn, t.Peak = (*e.pairs.at(i)).peaks(e.pairAt.at(i))
		}
	}
	remotes := make([]RemoteHost, e.remotes.len())
	remSums := makeWritten[winSums](e.remotes.len())
	for i := range int32(e.remotes.len()) {
		k := e.remIdx.keys.at(i) // a flow key with only b
		remotes[i] = RemoteHost{Addr: k.addrB(), Folded: k.flags&fFoldedHosts != 0}
		remotes[i].Traffic.First, remotes[i].Traffic.Last = math.MaxInt64, math.MinInt64
		t := &remotes[i].Traffic
		t.PeakOut, t.PeakIn, t.Peak = (*e.remotes.at(i)).peaks(e.remAt.at(i))
	}
	// Only the counts, first/last and indexes of the flows are read here,
	// and nothing the other goroutine writes.
	flowRemote := make([]int32, nflows)
	for i := range int32(nflows) {
		f := ents.at(i)
		flowRemote[i] = f.remote
		addTo(&pairs[f.pair].Traffic, f)
		pairs[f.pair].Flows++
		pairSums[f.pair].add(&sums[i])
		if f.remote >= 0 {
			addTo(&remotes[f.remote].Traffic, f)
			remotes[f.remote].Flows++
			remSums[f.remote].add(&sums[i])
		}
	}
	if lim := e.ft.limit; lim > 0 && nflows > lim { // flows from lim on are aggregates
		fs := &FoldStats{MaxFlows: lim, First: e.ft.foldedAt}
		for i := int32(lim); i < int32(nflows); i++ {
			f := ents.at(i)
			c := f.cnt[0]
			c.Add(f.cnt[1])
			if e.keys.at(i).flags&fFoldedHosts != 0 {
				fs.HostAggregates++
				fs.Hosts.Add(c)
			} else {
				fs.PortAggregates++
				fs.Ports.Add(c)
			}
		}
		r.Meta.Folded = fs
		r.Diagnostics = append(r.Diagnostics, foldDiagnostic(fs, e.tot.all))
	}
	pos := <-posc
	for i := range int32(e.pairs.len()) {
		if solo := *e.pairSolo.at(i); solo >= 0 {
			ft, pt := &r.Flows[pos[solo]].Traffic, &pairs[i].Traffic
			pt.PeakOut, pt.PeakIn, pt.Peak = ft.PeakOut, ft.PeakIn, ft.Peak
		}
	}
	for i := range pairs {
		pairs[i].Traffic.OutRate, pairs[i].Traffic.InRate = pairSums[i].rates()
	}
	for i := range remotes {
		remotes[i].Traffic.OutRate, remotes[i].Traffic.InRate = remSums[i].rates()
	}
	// The per-flow aggregation state is no longer needed: let it go before
	// the owners are built.
	heads := make([]int32, nflows) // each flow's first share
	for i := range int32(nflows) {
		heads[i] = e.cold.at(i).shareHead
	}
	e.ents, e.flowAt, e.cold, e.keys, e.ft.keys = chunked[flowEnt]{}, chunked[peakAt]{}, chunked[flowCold]{}, chunked[fkey]{}, chunked[fkey]{}
	// Sorting the pairs touches nothing owned() does: do it on the other core.
	pairsDone := make(chan struct{})
	go func() {
		sortPairs(pairs)
		close(pairsDone)
	}()
	e.owned(r, pos, heads, flowRemote, remotes, at)
	<-pairsDone
	sortResult(r, pairs, remotes)
	return r
}

// foldDiagnostic says that flows past Options.MaxFlows were folded, how
// much of the capture that is, and what to do for the whole detail.
func foldDiagnostic(fs *FoldStats, all [3]Counts) ingest.Diagnostic {
	var ip Counts
	for _, c := range all {
		ip.Add(c)
	}
	n := fs.Ports
	n.Add(fs.Hosts)
	msg := fmt.Sprintf("more than %d flows: from %s on, new flows were counted in aggregates (no process, port or per-connection detail): "+
		"%d by host pair and protocol (ports dropped)", fs.MaxFlows, time.Unix(0, fs.First).UTC().Format(time.RFC3339Nano), fs.PortAggregates)
	if fs.HostAggregates > 0 {
		msg += fmt.Sprintf(", then, past %d of those, %d by protocol alone (hosts dropped too)", foldRoom(fs.MaxFlows), fs.HostAggregates)
	}
	msg += fmt.Sprintf("; they hold %d frames, %d wire bytes (%.1f%% of the bytes analysed). Totals, per-second series and interfaces are exact, "+
		"and flows that existed by then are still counted exactly; raise --max-flows (about 2 KB of memory per flow) or cut the capture with --from/--to for the detail",
		n.Packets, n.Wire, 100*share(n.Wire, ip.Wire))
	return ingest.Diagnostic{Kind: ingest.DiagInfo, Where: "flows", Offset: -1, Count: 1, Bytes: n.Wire, Msg: msg}
}

// ifaceDiagnostics says what Options.Interfaces left out, and how many
// flows were seen on interfaces of different names (counted once on each).
func (e *engine) ifaceDiagnostics() []ingest.Diagnostic {
	var ds []ingest.Diagnostic
	if o := e.other; o.Packets > 0 {
		ds = append(ds, ingest.Diagnostic{Kind: ingest.DiagInfo, Where: "--interface", Offset: -1, Count: o.Packets,
			Bytes: o.Wire, Msg: fmt.Sprintf("%d frames (%d bytes) captured on other interfaces than %s were not analysed",
				o.Packets, o.Wire, strings.Join(e.opts.Interfaces, ", "))})
	}
	if e.multiFlows > 0 {
		ds = append(ds, ingest.Diagnostic{Kind: ingest.DiagInfo, Where: "interfaces", Offset: -1, Count: e.multiPackets,
			Msg: fmt.Sprintf("%d flows were captured on more than one interface (a bridge and its ports, a container's "+
				"veth): %d of their packets are counted again on the second; --interface NAME counts one interface",
				e.multiFlows, e.multiPackets)})
	}
	return ds
}

func addTo(t *Traffic, f *flowEnt) {
	t.Out.Add(f.cnt[0])
	t.In.Add(f.cnt[1])
	t.First = min(t.First, f.first)
	t.Last = max(t.Last, f.last)
}

// seriesTraffic builds a Traffic from counts and a per-second series.
func seriesTraffic(ser []SecondBucket, out, in Counts, at, first, last int64) Traffic {
	t := Traffic{Out: out, In: in, First: first, Last: last}
	t.OutRate, t.InRate, _ = WindowRatesAt(ser, at)
	t.PeakOut, t.PeakIn, t.Peak = peakOfOutIn(ser)
	return t
}

// owned fills Flow.Owners, Processes, Unattributed, Coverage and
// RemoteHost.Processes from the owner shares.
// The shares are walked flow by flow (heads[i] starts flow i's chain), so
// counting each flow once per process and per cause needs no set of flows.
func (e *engine) owned(r *Result, pos, heads, flowRemote []int32, remotes []RemoteHost, at int64) {
	// One backing array for every flow's Owners.
	nOwners := make([]int32, len(r.Flows))
	for si := range int32(e.shares.len()) {
		nOwners[pos[(*e.shares.at(si)).flow]]++
	}
	backing := make([]OwnerShare, e.shares.len())
	off := 0
	for i, n := range nOwners {
		r.Flows[i].Owners = backing[off : off : off+int(n)]
		off += int(n)
	}
	type procAcc struct {
		remotes map[netip.Addr]int64
		methods map[Method]*MethodCounts
	}
	accs := make([]procAcc, len(e.procs))
	procs := make([]ProcessStat, len(e.procs))
	for i := range e.procs {
		pe := &e.procs[i]
		procs[i] = ProcessStat{Key: pe.key, Comm: pe.comm}
		procs[i].Series = pe.ser.sorted()
		procs[i].Traffic = seriesTraffic(procs[i].Series, Counts{}, Counts{}, at, math.MaxInt64, math.MinInt64)
		accs[i] = procAcc{remotes: map[netip.Addr]int64{}, methods: map[Method]*MethodCounts{}}
	}
	unatt := map[Cause]*UnattributedStat{}
	getU := func(c Cause) *UnattributedStat {
		u, ok := unatt[c]
		if !ok {
			u = &UnattributedStat{Cause: c}
			unatt[c] = u
		}
		return u
	}
	methods := map[Method]*MethodCoverage{}
	remProcs := make([]map[ingest.ProcKey]int64, len(remotes))
	var seenCause []Cause
	var seenProc []int32
	// Flows in r.Flows order (which the sums do not depend on): their
	// 300-byte entries are then written in sequence.
	byPos := make([]int32, len(pos))
	for fi, p := range pos {
		byPos[p] = int32(fi)
	}
	for p, fi := range byPos {
		seenCause, seenProc = seenCause[:0], seenProc[:0]
		fl := &r.Flows[p]
		for si := heads[fi]; si >= 0; si = e.shares.at(si).next {
			sh := e.shares.at(si)
			o := &e.owners[sh.owner]
			tot := sh.cnt[0]
			tot.Add(sh.cnt[1])
			fl.Owners = append(fl.Owners, OwnerShare{Owner: o.a, Traffic: tot, Out: sh.cnt[0], In: sh.cnt[1]})
			if o.proc < 0 {
				u := getU(o.a.Cause)
				if fl.Key.Oriented {
					u.Out.Add(sh.cnt[0])
					u.In.Add(sh.cnt[1])
				} else {
					u.Unknown.Add(tot)
				}
				if !slices.Contains(seenCause, o.a.Cause) {
					seenCause = append(seenCause, o.a.Cause)
					u.Flows++
				}
				continue
			}
			p := &procs[o.proc]
			acc := &accs[o.proc]
			p.Traffic.Out.Add(sh.cnt[0])
			p.Traffic.In.Add(sh.cnt[1])
			p.Traffic.First = min(p.Traffic.First, fl.Traffic.First)
			p.Traffic.Last = max(p.Traffic.Last, fl.Traffic.Last)
			if !slices.Contains(seenProc, o.proc) {
				seenProc = append(seenProc, o.proc)
				p.Flows++
			}
			acc.remotes[fl.Key.B.Addr()] += tot.Wire
			mc, ok := acc.methods[o.a.Method]
			if !ok {
				mc = &MethodCounts{Method: o.a.Method}
				acc.methods[o.a.Method] = mc
			}
			mc.Out.Add(sh.cnt[0])
			mc.In.Add(sh.cnt[1])
			cv, ok := methods[o.a.Method]
			if !ok {
				cv = &MethodCoverage{Method: o.a.Method}
				methods[o.a.Method] = cv
			}
			cv.Out.Add(sh.cnt[0])
			cv.In.Add(sh.cnt[1])
			if rem := flowRemote[fi]; rem >= 0 {
				if remProcs[rem] == nil {
					remProcs[rem] = map[ingest.ProcKey]int64{}
				}
				remProcs[rem][p.Key] += tot.Wire
			}
		}
	}
	for i := range r.Flows {
		if len(r.Flows[i].Owners) < 2 {
			continue
		}
		slices.SortStableFunc(r.Flows[i].Owners, func(a, b OwnerShare) int {
			if c := cmp.Compare(b.Traffic.Wire, a.Traffic.Wire); c != 0 {
				return c
			}
			return compareAttribution(a.Owner, b.Owner)
		})
	}
	for i := range procs {
		acc := &accs[i]
		procs[i].Remotes = sortedByBytes(acc.remotes, func(a, b netip.Addr) int { return a.Compare(b) })
		for _, mc := range acc.methods {
			procs[i].ByMethod = append(procs[i].ByMethod, *mc)
		}
		slices.SortFunc(procs[i].ByMethod, func(a, b MethodCounts) int {
			if c := cmp.Compare(b.Out.Wire+b.In.Wire, a.Out.Wire+a.In.Wire); c != 0 {
				return c
			}
			return cmp.Compare(a.Method, b.Method)
		})
		if procs[i].Traffic.First == math.MaxInt64 {
			procs[i].Traffic.First, procs[i].Traffic.Last = 0, 0
		}
	}
	for i := range remotes {
		remotes[i].Processes = sortedByBytes(remProcs[i], compareProcKey)
	}
	if nonIP := r.Totals.NonIP; nonIP.Sum().Packets > 0 {
		u := getU(CauseNonIP)
		u.Out.Add(nonIP.Out)
		u.In.Add(nonIP.In)
		u.Unknown.Add(nonIP.Unknown)
	}
	for _, u := range unatt {
		r.Unattributed = append(r.Unattributed, *u)
	}
	slices.SortFunc(r.Unattributed, func(a, b UnattributedStat) int {
		wa := a.Out.Wire + a.In.Wire + a.Unknown.Wire
		wb := b.Out.Wire + b.In.Wire + b.Unknown.Wire
		if c := cmp.Compare(wb, wa); c != 0 {
			return c
		}
		return cmp.Compare(a.Cause, b.Cause)
	})
	var uout, uin Counts
	for _, u := range r.Unattributed {
		uout.Add(u.Out)
		uin.Add(u.In)
	}
	r.UnattributedTraffic = seriesTraffic(unattributedSeries(r.Series, procs), uout, uin, at, 0, 0)
	tx, rx := r.Totals.All.Out.Wire, r.Totals.All.In.Wire
	var atx, arx int64
	for _, cv := range methods {
		cv.TX, cv.RX = share(cv.Out.Wire, tx), share(cv.In.Wire, rx)
		atx += cv.Out.Wire
		arx += cv.In.Wire
		r.Coverage.ByMethod = append(r.Coverage.ByMethod, *cv)
	}
	r.Coverage.TX, r.Coverage.RX = share(atx, tx), share(arx, rx)
	slices.SortFunc(r.Coverage.ByMethod, func(a, b MethodCoverage) int {
		if c := cmp.Compare(b.Out.Wire+b.In.Wire, a.Out.Wire+a.In.Wire); c != 0 {
			return c
		}
		return cmp.Compare(a.Method, b.Method)
	})
	r.Processes = procs
}

// unattributedSeries is the per-second TX and RX no process was charged
// with: all's (the capture's series) minus every process's. Unknown-direction
// bytes are never a process's and are left out.
func unattributedSeries(all []SecondBucket, procs []ProcessStat) []SecondBucket {
	var owned []SecondBucket
	for i := range procs {
		owned = append(owned, procs[i].Series...)
	}
	slices.SortStableFunc(owned, func(a, b SecondBucket) int { return cmp.Compare(a.Sec, b.Sec) })
	out := make([]SecondBucket, 0, len(all))
	j := 0
	for _, b := range all {
		u := SecondBucket{Sec: b.Sec, Out: b.Out, In: b.In}
		for ; j < len(owned) && owned[j].Sec <= b.Sec; j++ {
			if owned[j].Sec == b.Sec {
				u.Out -= owned[j].Out
				u.In -= owned[j].In
			}
		}
		if u.Out != 0 || u.In != 0 {
			out = append(out, u)
		}
	}
	return out
}

func share(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// sortedByBytes returns the keys of m by value descending, then key.
func sortedByBytes[K comparable](m map[K]int64, cmpKey func(a, b K) int) []K {
	if len(m) == 0 {
		return nil
	}
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b K) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmpKey(a, b)
	})
	return keys
}

func compareProcKey(a, b ingest.ProcKey) int {
	if c := cmp.Compare(a.PID, b.PID); c != 0 {
		return c
	}
	return cmp.Compare(a.Start, b.Start)
}

func compareAttribution(a, b Attribution) int {
	if c := compareProcKey(a.Proc, b.Proc); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Method, b.Method); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Cause, b.Cause); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Confidence, b.Confidence); c != 0 {
		return c
	}
	return cmp.Compare(a.Comm, b.Comm)
}

func totalWire(t *Traffic) int64 { return t.Out.Wire + t.In.Wire }

// sortResult orders every slice of r (see Result).
// Flows are already in order (placed by sortedPositions), pairs by
// sortPairs.
func sortResult(r *Result, pairs []HostPair, remotes []RemoteHost) {
	permute(remotes, sortedPositionsBy(len(remotes), func(i int32) (int64, uint64, uint64) {
		return totalWire(&remotes[i].Traffic), addrPrefix(remotes[i].Addr), 0
	},
		func(a, b int32) int { return remotes[a].Addr.Compare(remotes[b].Addr) }))
	slices.SortFunc(r.Processes, func(a, b ProcessStat) int {
		if c := cmp.Compare(totalWire(&b.Traffic), totalWire(&a.Traffic)); c != 0 {
			return c
		}
		return compareProcKey(a.Key, b.Key)
	})
	r.Pairs, r.Remotes = pairs, remotes
	if r.Flows == nil {
		r.Flows = []Flow{}
	}
}

// sortPairs orders pairs by total wire bytes descending, then by key.
func sortPairs(pairs []HostPair) {
	permute(pairs, sortedPositionsBy(len(pairs), func(i int32) (int64, uint64, uint64) {
		p := &pairs[i]
		if p.A.Is6() { // A's prefix is not the whole address: its next bits
			b := p.A.As16()
			return totalWire(&p.Traffic), addrPrefix(p.A), binary.BigEndian.Uint64(b[:8])<<62 | binary.BigEndian.Uint64(b[8:])>>2
		}
		return totalWire(&p.Traffic), addrPrefix(p.A), addrPrefix(p.B)
	},
		func(a, b int32) int { return comparePair(pairs[a], pairs[b]) }))
}

func comparePair(a, b HostPair) int {
	if c := a.A.Compare(b.A); c != 0 {
		return c
	}
	if c := a.B.Compare(b.B); c != 0 {
		return c
	}
	if c := cmp.Compare(b2i(a.Oriented), b2i(b.Oriented)); c != 0 {
		return c
	}
	return cmp.Compare(b2i(a.Folded), b2i(b.Folded))
}

// sortedPositionsBy sorts the indices 0..n-1 by weight, largest first, then
// by tie, and returns, for each index, its position in that order. keys
// gives each index's weight and a 128-bit prefix of its tie order, two
// words compared in turn (a prefix that differs decides as tie would; 0
// for none). They are copied next to the indices, so that most comparisons
// read only that compact array rather than the entries it stands for
// (which, for a million flows, are cache misses).
func sortedPositionsBy(n int, keys func(i int32) (weight int64, p1, p2 uint64), tie func(a, b int32) int) []int32 {
	type ent struct {
		w      int64
		p1, p2 uint64
		i      int32
	}
	es := make([]ent, n)
	for i := range es {
		w, p1, p2 := keys(int32(i))
		es[i] = ent{w, p1, p2, int32(i)}
	}
	slices.SortFunc(es, func(a, b ent) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p1, b.p1); c != 0 {
			return c
		}
		if c := cmp.Compare(a.p2, b.p2); c != 0 {
			return c
		}
		return tie(a.i, b.i)
	})
	pos := make([]int32, n)
	for p, e := range es {
		pos[e.i] = int32(p)
	}
	return pos
}

// permute moves s[i] to s[pos[i]] in place (pos is a permutation; it is
// consumed).
func permute[T any](s []T, pos []int32) {
	for i := range s {
		for pos[i] >= 0 && int(pos[i]) != i {
			j := pos[i]
			s[i], s[j] = s[j], s[i]
			pos[i], pos[j] = pos[j], -1
		}
		pos[i] = -1
	}
}

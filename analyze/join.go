package analyze

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// JoinOptions configures a SocketIndex.
type JoinOptions struct {
	// Slack is how far (ns) outside a socket's observed lifetime a packet
	// still matches it. Zero means the coverage's snapshot interval, or 1 s
	// when the coverage has fewer than two inventories.
	Slack int64
	// HostPrefixes are the addresses of the captured host (from the
	// manifest or --local). Loopback addresses always count as host
	// addresses. Empty means "unknown": every local address is trusted.
	HostPrefixes []netip.Prefix
	// UninventoriedNetns is the number of network namespaces known to exist
	// (manifest) whose sockets were not inventoried. When it is positive, a
	// flow whose local address is neither a host address nor seen in any
	// observation is reported as CauseOtherNetns instead of CauseNotLocal.
	UninventoriedNetns int
	// NoSamePeer disables the same-peer rule (rule 5 of the lookup chain).
	NoSamePeer bool
	// Netns is the inode of the captured network namespace (the bundle's
	// host netns); when several namespaces hold a socket with the same
	// tuple (tests and containers reuse addresses), the one in Netns wins.
	// Zero means no preference.
	Netns uint64
}

// DefaultSlack is the slack used when neither JoinOptions.Slack nor the
// coverage gives an interval.
const DefaultSlack int64 = 1e9

// SocketIndex joins flows to processes through socket observations. It
// implements Attributor and is safe for concurrent use after construction
// (it is read-only).
//
// # Lookup chain
//
// For a flow (proto, local, remote) and a packet time t, the first rule that
// matches wins:
//
//  1. A connected socket with the same tuple (compared unmapped, without
//     zone) whose lifetime covers t. Lifetime is [First, max(Last, Closed)]
//     for sockets listed by an inventory; for sockets known only from a
//     destroy or probe record it is (the inventory before First, Closed or
//     Last]: the socket was not listed by that inventory, so it was created
//     after it. Method: MethodExact; MethodMapped when the socket or the
//     packet used the IPv4-mapped IPv6 form and the other did not;
//     MethodEvent for destroy/probe-only sockets; MethodForeign for foreign
//     dumps.
//  2. The same within the slack zone: Slack before and after the lifetime,
//     widened to the inventory before First and the inventory after the
//     end (the first that did not list the socket), plus one Slack on the
//     side where the inventory's time stamp may precede or follow its
//     listing (see NewSocketIndex): MethodExactSlack
//     (MethodMapped, MethodEvent or MethodForeign as above, with lower
//     confidence).
//  3. A TCP listener on the local port (same address or wildcard) whose
//     lifetime (± Slack) covers t: MethodListener (the server side of an
//     accepted connection that lived between inventories). An accepted
//     connection seen only closed (TIME-WAIT, owner-less destroy) keeps
//     the listener's holders until it closed, even when the listener went
//     away first (the server exited).
//  4. An unconnected UDP socket bound to the local port (same address or
//     wildcard): MethodUnconnected.
//  5. On the client side (no socket bound to the local port), a sibling
//     connection from the same local address to the same remote endpoint
//     seen with holders within 15 slacks, when they all name one process
//     that was alive then: MethodSamePeer, low confidence (samePeer).
//  6. Otherwise unattributed, with a Cause: CauseClosedBetween when only
//     holder-less TIME-WAIT/CLOSE sockets or holder-less destroy events of
//     the tuple were seen (it lived and died between inventories),
//     CauseNoOwner when a holder-less socket in another state was seen,
//     CauseNoSockets when there is no socket data at all, CauseOtherNetns /
//     CauseNotLocal when the local address is not a host address and was
//     never seen in any observation (see JoinOptions.UninventoriedNetns),
//     CauseNoSnapshot when no inventory was taken within Slack of t, and
//     CauseNeverSeen when one was but did not list the socket.
//
// Among several candidates of one rule (port reuse), the one whose lifetime
// ends first is preferred (then the later First, then the lower cookie).
//
// # Confidence
//
//	method            native dump   foreign dump (MethodForeign)
//	exact / mapped    high          medium
//	event             high          -
//	exact-slack       medium        low
//	mapped/event ±slack medium      low
//	listener          medium        low   (low for native too in its slack)
//	unconnected-udp   medium        low   (low for native too in its slack)
//
// # Shared sockets and PID reuse
//
// All holders are reported in Attribution.Holders; the bytes are charged to
// Attribution.Proc, the primary holder: the one with the earliest known start
// time (the parent after a fork), ties broken by lowest PID; holders of
// unknown start (socket dumps) sort last, the one seen first first.
// Processes are identified by (PID, start): an observation held by
// (pid, start A) never names (pid, start B).
//
// # What the engine does
//
// MethodHint (a process recorded in the capture itself, Packet.Hint) is the
// engine's business: it should use the hint only when this index answers
// unattributed. A flow whose both ends are local (loopback, container ↔
// host) is two sockets: the engine calls Attribute(proto, A, B, t) for the
// A-side socket and Attribute(proto, B, A, t) for the B-side socket, and
// charges packets sent from A to the A-side owner and packets sent from B to
// the B-side owner (each process is charged what it sent; what it received
// is charged to the other end).
//
// The validity range returned with each answer is the largest interval around
// t in which the same rule and candidate apply; math.MinInt64/MaxInt64 mean
// unbounded. SkewNS is the distance from t to the lifetime used (0 inside);
// it is exact for t and an upper bound for the validity range only in the
// direction of the lifetime.
type SocketIndex struct {
	slack int64
	opts  JoinOptions
	exact map[tupleKey][]*joinEntry
	bound map[portKey][]*joinEntry
	peers map[peerKey][]*joinEntry // connected sockets with holders, by (local addr, remote endpoint)
	procs map[ingest.ProcKey]ingest.ProcessInfo
	inv   []int64            // all inventory times, ascending
	invNS map[uint64][]int64 // per netns
	seen  map[netip.Addr]bool
	empty bool
	// covered are the maximal time ranges within slack of an inventory.
	covered [][2]int64
	// first and last bound the times the socket data saw anything (both
	// 0 when it saw nothing).
	first, last int64
	// asked is, for the tuples same-peer was considered for, the earliest
	// time it was asked about (see samePeerMargin).
	asked map[tupleKey]int64
}

// samePeerMargin: a connection seen in traffic at least this long before
// and after an inventory was open while the inventory was taken; if the
// inventory did not list it, the listing left it out (lsof -i6, a filter),
// and same-peer, meant for connections that lived between inventories,
// does not apply from then on.
const samePeerMargin = 250 * int64(time.Millisecond)

type tupleKey struct {
	proto         uint8
	local, remote netip.AddrPort
}

type portKey struct {
	proto uint8
	port  uint16
}

// peerKey is a client connection without its local port: one program that
// keeps connecting to the same server from the same address.
type peerKey struct {
	proto  uint8
	local  netip.Addr
	remote netip.AddrPort
}

type joinEntry struct {
	obs      *ingest.SocketObservation
	local    netip.Addr // unmapped, no zone
	mapped   bool
	event    bool
	foreign  bool
	listener bool
	// accepted: a synthetic entry giving a closed, holder-less connection
	// on a listening port the listener's holders (see inheritListeners).
	accepted  bool
	coreFrom  int64
	coreTo    int64
	slackFrom int64
	slackTo   int64
	holders   []ingest.ProcKey // sorted, primary first
}

// NewSocketIndex builds the index. obs are the compiled observations (native
// and/or foreign; see ingest.CompileNative, ingest.CompileSnapshots), procs
// the process facts (for Attribution.Comm), cov the inventory coverage. The
// index keeps obs and procs by reference.
func NewSocketIndex(obs []ingest.SocketObservation, procs map[ingest.ProcKey]ingest.ProcessInfo, cov ingest.Coverage, opts JoinOptions) *SocketIndex {
	x := &SocketIndex{
		opts:  opts,
		slack: opts.Slack,
		exact: map[tupleKey][]*joinEntry{},
		bound: map[portKey][]*joinEntry{},
		peers: map[peerKey][]*joinEntry{},
		procs: procs,
		inv:   cov.Times(),
		invNS: cov.Inventories,
		seen:  map[netip.Addr]bool{},
		empty: len(obs) == 0 && cov.Empty(),
	}
	x.first, x.last = math.MaxInt64, math.MinInt64
	for _, o := range obs {
		x.first, x.last = min(x.first, o.First), max(x.last, o.Last, o.Closed)
	}
	if len(x.inv) > 0 {
		x.first, x.last = min(x.first, x.inv[0]), max(x.last, x.inv[len(x.inv)-1])
	}
	if x.first > x.last {
		x.first, x.last = 0, 0
	}
	if x.slack <= 0 {
		x.slack = cov.Interval
	}
	if x.slack <= 0 {
		x.slack = DefaultSlack
	}
	x.covered = coveredRuns(x.inv, x.slack)
	for i := range obs {
		o := &obs[i]
		if !o.Local.IsValid() {
			continue
		}
		e := &joinEntry{
			obs:     o,
			local:   o.Local.Addr().Unmap().WithZone(""),
			mapped:  o.Local.Addr().Is4In6() || o.Remote.Addr().Is4In6(),
			foreign: o.Source != ingest.FormatNative && o.Source != "",
			holders: sortHolders(o.Holders),
		}
		if !e.local.IsUnspecified() {
			x.seen[e.local] = true
		}
		end := max(o.Last, o.Closed)
		e.coreFrom, e.coreTo = o.First, end
		if o.Via == "destroy" || o.Via == "probe" {
			e.event = true
			if prev, ok := x.invBefore(o.Netns, o.First); ok {
				e.coreFrom = prev + 1
			} else {
				e.coreFrom = o.First - x.slack
			}
			if o.Closed == 0 {
				e.coreTo = o.Last + x.slack
			}
		}
		// The slack zone reaches at least one slack beyond the lifetime and
		// at least to the neighbouring inventories that did not list the
		// socket (dump loops slow down on busy hosts, so gaps exceed the
		// median). An inventory's time is imprecise by up to its own
		// duration (≤ slack): native inventories are stamped when complete
		// (the listing happened before), foreign dump loops stamp before
		// running the tool (the listing happened after), so the zone
		// extends by one more slack on that side.
		e.slackFrom, e.slackTo = e.coreFrom-x.slack, e.coreTo+x.slack
		before, after := int64(1), int64(-1)
		if e.foreign {
			after = x.slack
		} else {
			before = 1 - x.slack
		}
		if prev, ok := x.invBefore(o.Netns, e.coreFrom); ok && prev+before < e.slackFrom {
			e.slackFrom = prev + before
		}
		if next, ok := x.invAfter(o.Netns, e.coreTo); ok && next+after > e.slackTo {
			e.slackTo = next + after
		}
		if unconnected(o) {
			e.listener = o.Proto == ingest.ProtoTCP
			k := portKey{o.Proto, o.Local.Port()}
			x.bound[k] = append(x.bound[k], e)
			continue
		}
		k := tupleKey{o.Proto, netip.AddrPortFrom(e.local, o.Local.Port()), unmapPort(o.Remote)}
		x.exact[k] = append(x.exact[k], e)
		if len(e.holders) > 0 {
			pk := peerKey{o.Proto, e.local, unmapPort(o.Remote)}
			x.peers[pk] = append(x.peers[pk], e)
		}
	}
	x.inheritListeners()
	return x
}

// peerWindow is how far (in slacks) from a packet the same-peer rule looks
// for sibling connections.
const peerWindow = 15

// samePeer is the last resort for client connections that opened and
// closed between inventories inside a long-lived process (no exec probe
// fires for them, and a close event names no owner): if the connections
// from the same local address to the same remote endpoint that were seen
// with holders within peerWindow slacks of t all belong to one process,
// and that process was alive at t, it is named with MethodSamePeer and low
// confidence. Several candidate processes mean no answer.
// siblings reports whether any sibling exists at all (whatever the time).
// cands are x.peers of the connection's local address and remote endpoint.
func (x *SocketIndex) samePeer(cands []*joinEntry, local netip.AddrPort, ts int64) (a Attribution, ok, siblings bool) {
	win := peerWindow * x.slack
	var best *joinEntry
	var bestDist int64 = -1
	for _, e := range cands {
		if e.obs.Local.Port() == local.Port() {
			continue // the socket itself, outside its own lifetime: not a sibling
		}
		siblings = true
		var d int64
		switch {
		case ts < e.coreFrom:
			d = e.coreFrom - ts
		case ts > e.coreTo:
			d = ts - e.coreTo
		}
		if d > win {
			continue
		}
		if best != nil && e.holders[0] != best.holders[0] {
			return Attribution{}, false, true // two programs talk to this peer
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = e, d
		}
	}
	if best == nil {
		return Attribution{}, false, siblings
	}
	pk := best.holders[0]
	if p, ok := x.procs[pk]; ok {
		if (p.Start != 0 && ts < p.Start) || (p.Exited != 0 && ts > p.Exited) {
			return Attribution{}, false, true
		}
	}
	return Attribution{Proc: pk, Comm: x.procs[pk].Comm, Holders: best.holders, Method: MethodSamePeer, Confidence: ConfLow, SkewNS: bestDist}, true, true
}

// inheritListeners covers accepted connections that lived and died between
// inventories: the inventories list them only in TIME-WAIT (or a destroy
// event names no owner), and the listener may be gone by the time the last
// packets flow. Such a tuple on a port whose listener (with holders) existed
// before the close gets a synthetic entry naming the listener's holders,
// from the listener's first sighting to the close, charged as
// MethodListener. Real observations of the tuple always win over it.
func (x *SocketIndex) inheritListeners() {
	keys := make([]tupleKey, 0, len(x.exact))
	for k := range x.exact {
		keys = append(keys, k)
	}
	for _, k := range keys {
		for _, e := range x.exact[k] {
			if len(e.holders) > 0 || e.accepted || !(closedState(e.obs.State) || e.obs.Via == "destroy") || k.proto != ingest.ProtoTCP {
				continue
			}
			var ln *joinEntry
			for _, l := range x.bound[portKey{k.proto, k.local.Port()}] {
				if !l.listener || len(l.holders) == 0 || l.coreFrom > e.coreFrom || !(l.local.IsUnspecified() || l.local == k.local.Addr()) {
					continue
				}
				if ln == nil || l.coreTo > ln.coreTo {
					ln = l
				}
			}
			if ln == nil {
				continue
			}
			a := &joinEntry{obs: e.obs, local: e.local, mapped: e.mapped, foreign: ln.foreign || e.foreign,
				accepted: true, holders: ln.holders, coreFrom: ln.coreFrom, coreTo: e.coreFrom}
			a.slackFrom, a.slackTo = a.coreFrom-x.slack, a.coreTo+x.slack
			x.exact[k] = append(x.exact[k], a)
		}
	}
}

// Len returns the number of indexed observations.
func (x *SocketIndex) Len() int {
	n := 0
	for _, es := range x.exact {
		n += len(es)
	}
	for _, es := range x.bound {
		n += len(es)
	}
	return n
}

func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// unconnected: a listener or an unconnected UDP socket (no peer).
func unconnected(o *ingest.SocketObservation) bool {
	if strings.EqualFold(o.State, "LISTEN") {
		return true
	}
	return !o.Remote.IsValid() || o.Remote.Addr().Unmap().IsUnspecified() || o.Remote.Port() == 0
}

// sortHolders orders holders: known start ascending, then PID, and the
// unknown (0) starts last in the order given (socket dumps list the holder
// seen first, the parent of a fork, first: ingest.CompileSnapshots);
// duplicates removed.
func sortHolders(h []ingest.ProcKey) []ingest.ProcKey {
	out := slices.Clone(h)
	slices.SortStableFunc(out, func(a, b ingest.ProcKey) int {
		if (a.Start == 0) != (b.Start == 0) {
			if a.Start == 0 {
				return 1
			}
			return -1
		}
		if a.Start == 0 {
			return 0
		}
		if c := cmp.Compare(a.Start, b.Start); c != 0 {
			return c
		}
		return a.PID - b.PID
	})
	seen := make(map[ingest.ProcKey]bool, len(out))
	return slices.DeleteFunc(out, func(k ingest.ProcKey) bool {
		dup := seen[k]
		seen[k] = true
		return dup
	})
}

// invBefore is the latest inventory of netns strictly before t (falling back
// to all inventories when the netns has none).
func (x *SocketIndex) invBefore(netns uint64, t int64) (int64, bool) {
	ts := x.invNS[netns]
	if len(ts) == 0 {
		ts = x.inv
	}
	i := sort.Search(len(ts), func(i int) bool { return ts[i] >= t })
	if i == 0 {
		return 0, false
	}
	return ts[i-1], true
}

// invAfter is the earliest inventory of netns strictly after t (falling
// back to all inventories when the netns has none).
func (x *SocketIndex) invAfter(netns uint64, t int64) (int64, bool) {
	ts := x.invNS[netns]
	if len(ts) == 0 {
		ts = x.inv
	}
	i := sort.Search(len(ts), func(i int) bool { return ts[i] > t })
	if i == len(ts) {
		return 0, false
	}
	return ts[i], true
}

// closedState: states in which a socket no longer belongs to a process.
func closedState(s string) bool {
	switch strings.ToUpper(strings.ReplaceAll(s, "_", "-")) {
	case "TIME-WAIT", "CLOSE", "CLOSED", "CLOSING", "LAST-ACK":
		return true
	}
	return false
}

// TimeDiagnostics says when the socket data and the capture of r do not
// overlap in time (clocks apart, or files from different times): then no
// flow can be attributed, and the report must say why.
func (x *SocketIndex) TimeDiagnostics(r *Result) []ingest.Diagnostic {
	if x.first == 0 && x.last == 0 || r.Meta.Packets == 0 {
		return nil
	}
	const slack = int64(time.Minute)
	if x.last+slack >= r.Meta.First && x.first-slack <= r.Meta.Last {
		return nil
	}
	t := func(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339) }
	return []ingest.Diagnostic{{File: "sockets", Kind: ingest.DiagSkipped, Where: "time", Offset: -1, Count: 1,
		Msg: fmt.Sprintf("the socket data (%s to %s) and the capture (%s to %s) do not overlap in time: no flow can be attributed to a process (clocks apart, or files from different times?)",
			t(x.first), t(x.last), t(r.Meta.First), t(r.Meta.Last))}}
}

// anyHolders reports whether any of the entries was seen with owners.
func anyHolders(es []*joinEntry) bool {
	for _, e := range es {
		if len(e.holders) > 0 {
			return true
		}
	}
	return false
}

// Attribute implements Attributor.
func (x *SocketIndex) Attribute(proto uint8, local, remote netip.AddrPort, ts int64) (Attribution, int64, int64) {
	b := bounds{t: ts, from: math.MinInt64, until: math.MaxInt64}
	ql := unmapPort(local)
	qMapped := local.Addr().Is4In6() || remote.Addr().Is4In6()
	k := tupleKey{proto, ql, unmapPort(remote)}
	cands := x.exact[k]
	for _, e := range cands {
		b.entry(e)
	}
	var bound []*joinEntry
	for _, e := range x.bound[portKey{proto, local.Port()}] {
		if e.local.IsUnspecified() || e.local == ql.Addr() {
			bound = append(bound, e)
			b.entry(e)
		}
	}
	a, ok := x.pick(cands, ts, qMapped, false, &b)
	if !ok {
		a, ok = x.pick(bound, ts, qMapped, true, &b)
	}
	if ok {
		return a, b.from, b.until
	}
	siblings := false
	// A flow whose own socket was seen with its owners is not given a
	// sibling's owner outside that socket's lifetime: the sibling may be
	// another program's (a sweep of real ss dumps swapped a fork's
	// connections and charged 3.7 MB to the wrong PIDs that way).
	// Only TCP: a UDP socket is not opened and closed per exchange, so one
	// missing from the inventories is not a short connection but one the
	// listing left out (ss without -a, a state filter), and another
	// program's socket to the same peer says nothing about its owner.
	var peers []*joinEntry
	if proto == ingest.ProtoTCP && len(bound) == 0 && !x.opts.NoSamePeer && !anyHolders(cands) {
		peers = x.peers[peerKey{proto, ql.Addr(), unmapPort(remote)}]
	}
	if len(peers) > 0 {
		if x.asked == nil {
			x.asked = map[tupleKey]int64{}
		}
		first, seen := x.asked[k]
		if !seen || ts < first {
			first = ts
			x.asked[k] = ts
		}
		if x.invBetween(first+samePeerMargin, ts-samePeerMargin) {
			siblings = true // unlisted while open: no guess
		} else {
			var a Attribution
			if a, ok, siblings = x.samePeer(peers, ql, ts); ok {
				return a, ts, ts // re-asked for every packet outside the sockets' own lifetimes
			}
		}
	}
	// Unattributed: the cause also depends on the coverage around t.
	a = Attribution{Method: MethodNone, Confidence: ConfNone}
	holderless, closedOnly := false, true
	for _, e := range append(slices.Clone(cands), bound...) {
		if ts >= e.slackFrom && ts <= e.slackTo && len(e.holders) == 0 {
			holderless = true
			// Known only from its close (destroy event) or left in a
			// closing state: it lived and died between inventories.
			closedOnly = closedOnly && (closedState(e.obs.State) || e.obs.Via == "destroy")
		}
	}
	switch {
	case holderless && closedOnly:
		a.Cause = CauseClosedBetween
	case holderless:
		a.Cause = CauseNoOwner
	case x.empty:
		a.Cause = CauseNoSockets
	case !x.hostAddr(ql.Addr()) && !x.seen[ql.Addr()]:
		a.Cause = CauseNotLocal
		if x.opts.UninventoriedNetns > 0 {
			a.Cause = CauseOtherNetns
		}
	default:
		a.Cause = CauseNeverSeen
		if !x.inventoryNear(ts) {
			a.Cause = CauseNoSnapshot
		}
		x.coverageBounds(&b)
	}
	if siblings {
		return a, ts, ts // a sibling's window may open at any later packet
	}
	return a, b.from, b.until
}

// invBetween: an inventory was taken in [a, b].
func (x *SocketIndex) invBetween(a, b int64) bool {
	if a > b {
		return false
	}
	i := sort.Search(len(x.inv), func(i int) bool { return x.inv[i] >= a })
	return i < len(x.inv) && x.inv[i] <= b
}

// hostAddr: a is a host address (or the host addresses are unknown).
func (x *SocketIndex) hostAddr(a netip.Addr) bool {
	if len(x.opts.HostPrefixes) == 0 || a.IsLoopback() {
		return true
	}
	for _, p := range x.opts.HostPrefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// inventoryNear: some inventory was taken within slack of t.
func (x *SocketIndex) inventoryNear(t int64) bool {
	i := sort.Search(len(x.covered), func(i int) bool { return x.covered[i][1] >= t })
	return i < len(x.covered) && x.covered[i][0] <= t
}

// coverageBounds narrows b by the edges where inventoryNear changes.
func (x *SocketIndex) coverageBounds(b *bounds) {
	i := sort.Search(len(x.covered), func(i int) bool { return x.covered[i][1] >= b.t })
	if i < len(x.covered) {
		b.edge(x.covered[i][0])
		b.edge(x.covered[i][1] + 1)
	}
	if i > 0 {
		b.edge(x.covered[i-1][1] + 1)
	}
}

// coveredRuns merges [inv-slack, inv+slack] over all inventories.
func coveredRuns(inv []int64, slack int64) [][2]int64 {
	var runs [][2]int64
	for _, t := range inv {
		if n := len(runs); n > 0 && t-slack <= runs[n-1][1]+1 {
			runs[n-1][1] = t + slack
			continue
		}
		runs = append(runs, [2]int64{t - slack, t + slack})
	}
	return runs
}

// pick applies rules 1–2 (bound false) or 3–4 (bound true) to cands.
func (x *SocketIndex) pick(cands []*joinEntry, ts int64, qMapped, bound bool, bd *bounds) (Attribution, bool) {
	var best *joinEntry
	bestCore := false
	var bestDist int64
	for _, e := range cands {
		if len(e.holders) == 0 || ts < e.slackFrom || ts > e.slackTo {
			continue
		}
		core := ts >= e.coreFrom && ts <= e.coreTo
		var dist int64
		switch {
		case core:
		case ts < e.coreFrom:
			dist = e.coreFrom - ts
		default:
			dist = ts - e.coreTo
		}
		if best == nil || x.better(e, core, dist, best, bestCore, bestDist) {
			best, bestCore, bestDist = e, core, dist
		}
	}
	if best == nil {
		return Attribution{}, false
	}
	if !bestCore {
		// In the slack zone the nearest lifetime wins: the choice can flip
		// where the distances to two lifetimes are equal.
		for _, e := range cands {
			if e == best || len(e.holders) == 0 {
				continue
			}
			for _, p := range []int64{best.coreFrom, best.coreTo} {
				for _, q := range []int64{e.coreFrom, e.coreTo} {
					m := p/2 + q/2 + (p%2+q%2)/2
					bd.edge(m)
					bd.edge(m + 1)
				}
			}
		}
	}
	a := Attribution{
		Proc:    best.holders[0],
		Holders: best.holders,
		SkewNS:  bestDist,
	}
	if p, ok := x.procs[a.Proc]; ok {
		a.Comm = p.Comm
	}
	a.Method, a.Confidence = method(best, bestCore, qMapped, bound)
	return a, true
}

// better orders candidates: the captured netns first; inside the lifetime
// before slack; nearer first;
// among overlapping ones the lifetime that ends first, then later First,
// native before foreign, lower cookie.
func (x *SocketIndex) better(e *joinEntry, core bool, dist int64, b *joinEntry, bCore bool, bDist int64) bool {
	if x.opts.Netns != 0 && (e.obs.Netns == x.opts.Netns) != (b.obs.Netns == x.opts.Netns) {
		return e.obs.Netns == x.opts.Netns
	}
	if e.accepted != b.accepted {
		return !e.accepted
	}
	if core != bCore {
		return core
	}
	if dist != bDist {
		return dist < bDist
	}
	if e.foreign != b.foreign {
		return !e.foreign
	}
	if e.coreTo != b.coreTo {
		return e.coreTo < b.coreTo
	}
	if e.coreFrom != b.coreFrom {
		return e.coreFrom > b.coreFrom
	}
	if e.obs.Cookie != b.obs.Cookie {
		return e.obs.Cookie < b.obs.Cookie
	}
	return e.obs.Inode < b.obs.Inode
}

// method returns the method and confidence of a match (see the table in the
// SocketIndex doc).
func method(e *joinEntry, core, qMapped, bound bool) (Method, Confidence) {
	conf := ConfHigh
	if !core || bound || e.accepted {
		conf = ConfMedium
	}
	if (bound || e.accepted) && !core {
		conf = ConfLow
	}
	var m Method
	switch {
	case e.foreign:
		m = MethodForeign
		conf = lower(conf)
	case bound && e.listener, e.accepted:
		m = MethodListener
	case bound:
		m = MethodUnconnected
	case e.event:
		m = MethodEvent
	case e.mapped != qMapped:
		m = MethodMapped
	case core:
		m = MethodExact
	default:
		m = MethodExactSlack
	}
	return m, conf
}

func lower(c Confidence) Confidence {
	switch c {
	case ConfHigh:
		return ConfMedium
	default:
		return ConfLow
	}
}

// bounds accumulates the validity range around t from interval edges: an
// edge is a time at which some candidate's membership changes.
type bounds struct {
	t, from, until int64
}

func (b *bounds) edge(v int64) {
	if v <= b.t {
		if v > b.from {
			b.from = v
		}
	} else if v-1 < b.until {
		b.until = v - 1
	}
}

func (b *bounds) entry(e *joinEntry) {
	b.edge(e.coreFrom)
	b.edge(e.coreTo + 1)
	b.edge(e.slackFrom)
	b.edge(e.slackTo + 1)
}

// IndexBundle builds the index of an opened bundle: its observations,
// processes and coverage, with the options the manifest implies filled in
// where opts leaves them zero (HostPrefixes = the host's addresses, Netns =
// the captured netns, UninventoriedNetns = namespaces the manifest lists
// without any inventory).
func IndexBundle(b *ingest.Bundle, opts JoinOptions) *SocketIndex {
	if len(opts.HostPrefixes) == 0 {
		opts.HostPrefixes = b.LocalPrefixes()
	}
	if opts.Netns == 0 {
		opts.Netns = b.HostNetns()
	}
	if opts.UninventoriedNetns == 0 {
		opts.UninventoriedNetns = b.UninventoriedNetns()
	}
	return NewSocketIndex(b.Observations, b.Processes, b.Coverage, opts)
}

// IndexSnapshots builds the index of foreign socket dumps (ss, lsof,
// netstat, ...; see ingest.ReadSocketDumps): every attribution it makes is
// MethodForeign.
func IndexSnapshots(snaps []ingest.SocketSnapshot, opts JoinOptions) *SocketIndex {
	obs, cov, procs := ingest.CompileSnapshots(snaps)
	return NewSocketIndex(obs, procs, cov, opts)
}

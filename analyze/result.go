package analyze

import (
	"net/netip"

	"github.com/flowblame/flowblame/ingest"
)

// ResultVersion is the version of the Result model (and of the JSON schema
// report builds from it).
const ResultVersion = 1

// Counts are packet and byte totals counted three ways. Wire is the original
// frame length (what tshark counts and what flowblame ranks by), IP is the IP
// length as iftop 1.0pre4 counts it, Captured is what the capture kept.
type Counts struct {
	Packets  int64 `json:"packets"`
	Wire     int64 `json:"wire_bytes"`
	IP       int64 `json:"ip_bytes"`
	Captured int64 `json:"captured_bytes"`
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Packets += o.Packets
	c.Wire += o.Wire
	c.IP += o.IP
	c.Captured += o.Captured
}

// WindowRates are average rates in wire bytes per second over the 2, 10 and
// 40 seconds that end at Result.At (clean sliding windows, not iftop's ring).
type WindowRates struct {
	S2  float64 `json:"2s"`
	S10 float64 `json:"10s"`
	S40 float64 `json:"40s"`
}

// Add adds o's rates to w (window rates of disjoint traffic add up).
func (w *WindowRates) Add(o WindowRates) {
	w.S2 += o.S2
	w.S10 += o.S10
	w.S40 += o.S40
}

// PeakRate is the highest 2-second average rate (wire bytes/s) over the whole
// capture, and the end of the 2-second window (Unix ns) where it happened.
type PeakRate struct {
	Rate float64 `json:"rate"`
	At   int64   `json:"at"`
}

// Traffic is the traffic of one entity in its two directions. For an entity
// with a known local side, Out is what the local host sent (TX) and In what it
// received (RX). For an entity whose direction could not be decided
// (Oriented false on the entity), Out is A→B and In is B→A in the entity's
// own address order.
type Traffic struct {
	Out     Counts      `json:"out"`
	In      Counts      `json:"in"`
	OutRate WindowRates `json:"out_rate"`
	InRate  WindowRates `json:"in_rate"`
	Peak    PeakRate    `json:"peak"` // of Out+In
	PeakOut PeakRate    `json:"peak_out"`
	PeakIn  PeakRate    `json:"peak_in"`
	First   int64       `json:"first"` // Unix ns
	Last    int64       `json:"last"`  // Unix ns
}

// Total returns Out+In.
func (t Traffic) Total() Counts { c := t.Out; c.Add(t.In); return c }

// FlowKey is a direction-normalised 5-tuple. When the local side is known, A
// is the local endpoint and Oriented is true; otherwise A is the smaller
// endpoint (address, then port).
//
// Past Options.MaxFlows, new flows are counted in aggregates (Folded set):
// FoldedPorts is every further flow between A's and B's addresses with that
// protocol (ports are 0); FoldedHosts is every further flow of that
// protocol, IP version and orientation (addresses and ports are 0).
type FlowKey struct {
	Proto    uint8          `json:"proto"`
	A        netip.AddrPort `json:"a"`
	B        netip.AddrPort `json:"b"`
	Oriented bool           `json:"oriented"`
	Folded   string         `json:"folded,omitempty"` // "", FoldedPorts or FoldedHosts
}

// Values of FlowKey.Folded.
const (
	FoldedPorts = "ports" // the flows past Options.MaxFlows between two addresses
	FoldedHosts = "hosts" // the flows past Options.MaxFlows that no port aggregate took
)

// Method says how a flow's bytes were joined to a process.
type Method string

// Attribution methods, from most to least certain.
const (
	MethodExact       Method = "exact"           // exact tuple, packet inside the socket's observed lifetime
	MethodExactSlack  Method = "exact-slack"     // exact tuple, packet within one snapshot interval of the lifetime
	MethodMapped      Method = "v4-mapped"       // matched through the IPv4-mapped IPv6 form
	MethodEvent       Method = "event"           // destroy event / exec probe record between snapshots
	MethodListener    Method = "listener"        // no connected socket; the listener on the local port
	MethodUnconnected Method = "unconnected-udp" // unconnected UDP socket bound to the local port
	MethodHint        Method = "pcapng-hint"     // process recorded in the capture file itself
	MethodForeign     Method = "foreign-dump"    // ss/lsof/netstat dump (coarser timing)
	MethodSamePeer    Method = "same-peer"       // sibling connections of one process to the same server (low confidence)
	MethodFoldedPair  Method = "folded-pair"     // an aggregate past MaxFlows whose host pair's earlier flows had this one process (low confidence)
	MethodNone        Method = "none"
)

// Confidence grades an attribution.
type Confidence string

// Confidence levels.
const (
	ConfHigh   Confidence = "high"
	ConfMedium Confidence = "medium"
	ConfLow    Confidence = "low"
	ConfNone   Confidence = "none"
)

// Cause says why bytes could not be attributed.
type Cause string

// Causes of unattributed traffic.
const (
	CauseNoSnapshot    Cause = "no-snapshot"              // no socket inventory covers that time
	CauseNeverSeen     Cause = "socket-never-seen"        // snapshots cover the time but list no such socket
	CauseClosedBetween Cause = "closed-between-snapshots" // only seen closed/TIME_WAIT, owner unknown
	CauseNotLocal      Cause = "not-local"                // neither endpoint is a local address (forwarded, promiscuous)
	CauseOtherNetns    Cause = "other-netns"              // the socket lives in a netns that was not inventoried
	CauseNoOwner       Cause = "owner-unknown"            // socket seen but no process held it (orphaned, TIME_WAIT)
	CauseNoSockets     Cause = "no-socket-data"           // analysis had no socket data at all
	CauseNonIP         Cause = "non-ip"                   // frames without IP/ports
	CauseUnknownDir    Cause = "direction-unknown"
	CauseFolded        Cause = "folded" // an aggregate of flows past Options.MaxFlows: no ports to match a socket by
)

// Attribution is the owner of (part of) a flow's bytes.
type Attribution struct {
	Proc       ingest.ProcKey   `json:"proc"` // zero when unattributed
	Comm       string           `json:"comm,omitempty"`
	Holders    []ingest.ProcKey `json:"holders,omitempty"` // all holders when shared after fork; bytes charged to Proc
	Method     Method           `json:"method"`
	Confidence Confidence       `json:"confidence"`
	SkewNS     int64            `json:"skew_ns"`         // distance to the observation used
	Cause      Cause            `json:"cause,omitempty"` // when unattributed
}

// Attributed reports whether a process was found.
func (a Attribution) Attributed() bool { return a.Method != MethodNone && a.Method != "" }

// OwnerShare is the part of a flow charged to one Attribution.
type OwnerShare struct {
	Owner   Attribution `json:"owner"`
	Traffic Counts      `json:"counts"` // both directions
	Out, In Counts
}

// Flow is one 5-tuple's traffic.
type Flow struct {
	Key     FlowKey      `json:"key"`
	Iface   int          `json:"iface"`
	Traffic Traffic      `json:"traffic"`
	Owners  []OwnerShare `json:"owners,omitempty"`
	// Untranslated is the connection's tuple on the other side of the
	// host's NAT (a container's own address and port) when the flow is a
	// translation the bundle's conntrack records know (Options.NAT).
	Untranslated *FlowKey `json:"untranslated,omitempty"`
}

// HostPair is the traffic between two addresses (iftop's default line).
type HostPair struct {
	A        netip.Addr `json:"a"`
	B        netip.Addr `json:"b"`
	Oriented bool       `json:"oriented"`
	// Folded marks the pair of FoldedHosts aggregates: the traffic of
	// flows past Options.MaxFlows between hosts not told apart (A and B
	// are unspecified addresses).
	Folded  bool    `json:"folded,omitempty"`
	Traffic Traffic `json:"traffic"`
	Flows   int     `json:"flows"`
}

// RemoteHost is all traffic to and from one remote address.
type RemoteHost struct {
	Addr netip.Addr `json:"addr"`
	// Folded marks the remote of FoldedHosts aggregates: remote hosts not
	// told apart (Addr is unspecified), see HostPair.Folded.
	Folded    bool             `json:"folded,omitempty"`
	Traffic   Traffic          `json:"traffic"`
	Flows     int              `json:"flows"`
	Processes []ingest.ProcKey `json:"processes,omitempty"`
}

// IfaceStat is the traffic of one capture interface.
type IfaceStat struct {
	Index   int              `json:"index"`
	Info    ingest.Interface `json:"info"`
	Traffic Traffic          `json:"traffic"`
}

// SecondBucket is one second of traffic (wire bytes) by direction.
type SecondBucket struct {
	Sec     int64 `json:"sec"` // Unix seconds
	Out     int64 `json:"out"`
	In      int64 `json:"in"`
	Unknown int64 `json:"unknown"`
}

// Window is the time range analysed.
type Window struct {
	From, To int64 // Unix ns, inclusive; 0: open
}

// Contains reports whether ts is in the window.
func (w Window) Contains(ts int64) bool {
	return (w.From == 0 || ts >= w.From) && (w.To == 0 || ts <= w.To)
}

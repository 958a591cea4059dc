package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

// DocumentVersion is the version of the JSON report schema (README "JSON
// schema"). It changes when a field is removed or changes meaning; added
// fields do not change it.
const DocumentVersion = 1

// Input is everything a report is built from.
type Input struct {
	Result *analyze.Result
	// Procs are the process facts of the bundle or dumps (may be nil).
	Procs map[ingest.ProcKey]ingest.ProcessInfo
	// Manifest of the bundle (nil for bare captures).
	Manifest *ingest.Manifest
	// Findings of analyze's rules (may be nil).
	Findings []analyze.Finding
	// Geo answers country/ASN questions (nil: special ranges only).
	Geo analyze.GeoLookup
	// Extra diagnostics (bundle, socket dumps) beyond Result.Diagnostics.
	Diagnostics []ingest.Diagnostic
	// Names are what the capture's DNS answers called remote addresses
	// (analyze.Signals.Names; may be nil).
	Names map[netip.Addr]string
}

// Options control what a report shows. They never change the numbers.
type Options struct {
	// Top is how many rows each table keeps (default 10; 0 = default, <0 = all).
	Top int
	// Group selects conversation rows: host pairs (default), 5-tuples or remote hosts.
	Group analyze.GroupBy
	// Sort orders conversation rows (iftop -o): total (default), 2s, 10s, 40s, peak.
	Sort analyze.SortBy
	// Bytes shows rates in bytes/s instead of bits/s.
	Bytes bool
	// Source names what was analysed (bundle or capture paths).
	Source []string
	// Command reproduces the report ("flowblame analyze ...").
	Command string
	// Tool is "flowblame <version>".
	Tool string
}

// Document is the report model every renderer prints. Rows carry raw values
// (serialised to JSON) and their formatted twins (json:"-") for text formats.
type Document struct {
	Schema   int       `json:"schema"`
	Tool     string    `json:"tool"`
	Command  string    `json:"command"`
	Source   []string  `json:"source"`
	Host     *Host     `json:"host,omitempty"`
	Capture  Capture   `json:"capture"`
	Verdict  Verdict   `json:"verdict"`
	Findings []Finding `json:"findings"`
	Totals   Totals    `json:"totals"`
	// Processes by bytes (TX+RX wire), with facts and risk.
	Processes []ProcessRow `json:"processes"`
	// Users and Containers roll the processes up by user and by container
	// (processes without one are left out).
	Users      []GroupRow `json:"users,omitempty"`
	Containers []GroupRow `json:"containers,omitempty"`
	// Remotes: remote hosts by bytes, with country/ASN.
	Remotes []RemoteRow `json:"remotes"`
	// Conversations: host pairs, 5-tuples or remote hosts (Options.Group).
	Group         string    `json:"group"`
	Sort          string    `json:"sort"`
	Conversations []ConvRow `json:"conversations"`
	// Tunnels: the biggest flows carried inside tunnels (VXLAN, Geneve,
	// GRE, IP-in-IP, ...), with the outer flow that carried each; empty
	// without tunnels.
	Tunnels []TunnelRow `json:"tunnels,omitempty"`
	// TunnelProcesses sums the flows inside tunnels by the process owning
	// them (a pod behind an overlay): what the process table, which counts
	// the outer flows, cannot show. Absent when no inner flow has an owner.
	TunnelProcesses []TunnelProcRow `json:"tunnel_processes,omitempty"`
	Coverage        Coverage        `json:"coverage"`
	Diagnostics     []Diag          `json:"diagnostics"`
	Evidence        Evidence        `json:"evidence"`
	Units           Units           `json:"units"`
	// Series is the per-second traffic of the whole capture (for charts).
	Series []analyze.SecondBucket `json:"series,omitempty"`
	// ProcessSeries are the per-second series of the top processes.
	ProcessSeries []ProcSeries `json:"process_series,omitempty"`
	// Geo names the database that answered location questions.
	Geo GeoSource `json:"geo"`
	// Timeline lists the biggest connections with their lifetimes (charts).
	Timeline []TimelineRow `json:"timeline,omitempty"`
}

// TimelineRow is one connection's lifetime and owner.
type TimelineRow struct {
	Label string `json:"label"` // "tcp 198.51.100.10:45678 → 45.9.148.21:3333"
	Owner string `json:"owner"` // "kdevtmpfsi[4242]" or "(unattributed)"
	First int64  `json:"first"`
	Last  int64  `json:"last"`
	Bytes int64  `json:"wire_bytes"`
}

// Units says which byte count and unit each column uses.
type Units struct {
	Bytes string `json:"bytes"` // "wire"
	Rates string `json:"rates"` // "bits/s" or "bytes/s"
	Note  string `json:"note"`
}

// Host is the captured host.
type Host struct {
	Hostname string   `json:"hostname"`
	Kernel   string   `json:"kernel,omitempty"`
	BootID   string   `json:"boot_id,omitempty"`
	Addrs    []string `json:"addrs,omitempty"`
}

// Capture summarises what was captured and how completely.
type Capture struct {
	First, Last   time.Time `json:"-"`
	FirstNS       int64     `json:"first"`
	LastNS        int64     `json:"last"`
	Duration      float64   `json:"duration_s"`
	Packets       int64     `json:"packets"`
	Wire          int64     `json:"wire_bytes"`
	IP            int64     `json:"ip_bytes"`
	Captured      int64     `json:"captured_bytes"`
	Truncated     int64     `json:"truncated_packets"`
	NonIP         int64     `json:"non_ip_packets"`
	Malformed     int64     `json:"malformed_packets"`
	Interfaces    []Iface   `json:"interfaces"`
	KernelDropped uint64    `json:"kernel_dropped"`
	SnapLen       int       `json:"snaplen,omitempty"`
	Filter        string    `json:"filter,omitempty"` // the collector's capture filter (bundle)
	HeadersOnly   bool      `json:"headers_only"`
	CounterTX     int64     `json:"counter_tx_bytes,omitempty"` // interface counters (bundle) over the capture
	CounterRX     int64     `json:"counter_rx_bytes,omitempty"`
	// Folded describes the flows past --max-flows counted in aggregates
	// (analyze.Meta.Folded; absent when there are none).
	Folded *analyze.FoldStats `json:"folded,omitempty"`
	Text   []string           `json:"-"` // formatted summary lines
}

// Iface is one capture interface.
type Iface struct {
	Name     string   `json:"name"`
	Link     int      `json:"link_type"`
	TX       int64    `json:"tx_bytes"`
	RX       int64    `json:"rx_bytes"`
	Unknown  int64    `json:"unknown_bytes"`
	Dropped  uint64   `json:"kernel_dropped"`
	Received uint64   `json:"kernel_received"`
	Fmt      []string `json:"-"`
	unnamed  bool     // the capture gave no name (Name is made up): a pcap file of a merge, say
}

// Verdict is the report's first line: who used the bandwidth, to where, and
// what that looks like.
type Verdict struct {
	Severity string `json:"severity"` // highest finding severity, or "none"
	Summary  string `json:"summary"`
	Next     string `json:"next_step,omitempty"`
}

// Finding is one rule's conclusion with its evidence.
type Finding struct {
	ID       string   `json:"id"`
	Severity string   `json:"severity"`
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence"`
	Next     string   `json:"next_step"`
}

// Totals are the whole capture's traffic by direction.
type Totals struct {
	TX, RX, Unknown analyze.Counts      `json:"-"`
	TXRaw           analyze.Counts      `json:"tx"`
	RXRaw           analyze.Counts      `json:"rx"`
	UnknownRaw      analyze.Counts      `json:"unknown"`
	TXRate          analyze.WindowRates `json:"tx_rate"`
	RXRate          analyze.WindowRates `json:"rx_rate"`
	Peak            analyze.PeakRate    `json:"peak"`
	PeakTX          analyze.PeakRate    `json:"peak_tx"`
	PeakRX          analyze.PeakRate    `json:"peak_rx"`
	At              int64               `json:"at"`
	Fmt             []string            `json:"-"`
}

// ProcessRow is one process's traffic and facts.
type ProcessRow struct {
	PID         int                 `json:"pid"`
	Start       int64               `json:"start"`
	Comm        string              `json:"comm"`
	User        string              `json:"user,omitempty"`
	UID         int                 `json:"uid"`
	Exe         string              `json:"exe,omitempty"`
	ExeDeleted  bool                `json:"exe_deleted,omitempty"`
	ExeReplaced bool                `json:"exe_replaced,omitempty"`
	Cmdline     string              `json:"cmdline,omitempty"`
	PPID        int                 `json:"ppid,omitempty"`
	Container   string              `json:"container,omitempty"`
	ExeSHA256   string              `json:"exe_sha256,omitempty"`
	Vendor      string              `json:"vendor_agent,omitempty"`
	TX          analyze.Counts      `json:"tx"`
	RX          analyze.Counts      `json:"rx"`
	Share       float64             `json:"share"` // of all attributed+unattributed wire bytes
	TXRate      analyze.WindowRates `json:"tx_rate"`
	RXRate      analyze.WindowRates `json:"rx_rate"`
	Peak        analyze.PeakRate    `json:"peak"`
	Flows       int                 `json:"flows"`
	Remotes     []string            `json:"remotes,omitempty"`
	Methods     []MethodShare       `json:"methods"`
	Risk        []analyze.RiskFact  `json:"risk,omitempty"`
	Unknown     bool                `json:"unattributed"` // the "unattributed" pseudo-row
	Fmt         map[string]string   `json:"-"`
}

// GroupRow is the traffic of the processes of one user or container.
type GroupRow struct {
	Name      string              `json:"name"`
	Processes int                 `json:"processes"`
	TX        analyze.Counts      `json:"tx"`
	RX        analyze.Counts      `json:"rx"`
	Share     float64             `json:"share"`
	TXRate    analyze.WindowRates `json:"tx_rate"`
	RXRate    analyze.WindowRates `json:"rx_rate"`
	Fmt       map[string]string   `json:"-"`
}

// groupRows sums process rows by key (empty keys skipped), biggest first.
func groupRows(rows []ProcessRow, key func(*ProcessRow) string, f formatter, top int) []GroupRow {
	idx := map[string]int{}
	var out []GroupRow
	for i := range rows {
		r := &rows[i]
		k := key(r)
		if k == "" || r.Unknown {
			continue
		}
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, GroupRow{Name: k})
		}
		g := &out[j]
		g.Processes++
		g.TX.Add(r.TX)
		g.RX.Add(r.RX)
		g.Share += r.Share
		g.TXRate.Add(r.TXRate)
		g.RXRate.Add(r.RXRate)
	}
	slices.SortStableFunc(out, func(a, b GroupRow) int {
		if c := cmp.Compare(b.TX.Wire+b.RX.Wire, a.TX.Wire+a.RX.Wire); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	out = capRows(out, top)
	for i := range out {
		g := &out[i]
		g.Fmt = map[string]string{"tx": f.bytes(g.TX.Wire), "rx": f.bytes(g.RX.Wire), "share": fmtPct(g.Share),
			"10s": f.rate(g.TXRate.S10 + g.RXRate.S10), "procs": fmt.Sprint(g.Processes)}
	}
	return out
}

// MethodShare is the share of a process's bytes attributed by one method.
type MethodShare struct {
	Method analyze.Method `json:"method"`
	Bytes  int64          `json:"wire_bytes"`
	Share  float64        `json:"share"`
}

// RemoteRow is one remote host.
type RemoteRow struct {
	Addr string `json:"addr"` // 0.0.0.0/0 or ::/0 for the remote hosts of aggregates by protocol
	// Folded marks the remote hosts of the flows past --max-flows that were
	// counted in aggregates by protocol alone (analyze.RemoteHost.Folded).
	Folded      bool                `json:"folded,omitempty"`
	Country     string              `json:"country,omitempty"` // ISO code
	CountryName string              `json:"country_name,omitempty"`
	ASN         uint                `json:"asn,omitempty"`
	ASOrg       string              `json:"as_org,omitempty"`
	Special     string              `json:"special,omitempty"` // "private (RFC 1918)", "cloud metadata", ...
	Proxy       string              `json:"proxy,omitempty"`   // a CDN or cloud load balancer: "Cloudflare", ...
	Name        string              `json:"name,omitempty"`    // the name a DNS answer in the capture gave it
	Foreign     bool                `json:"foreign,omitempty"`
	TX          analyze.Counts      `json:"tx"`
	RX          analyze.Counts      `json:"rx"`
	TXRate      analyze.WindowRates `json:"tx_rate"`
	RXRate      analyze.WindowRates `json:"rx_rate"`
	Peak        analyze.PeakRate    `json:"peak"`
	Flows       int                 `json:"flows"`
	Processes   []string            `json:"processes,omitempty"` // "comm[pid]"
	Fmt         map[string]string   `json:"-"`
}

// ConvRow is one conversation line (host pair, 5-tuple or remote host).
type ConvRow struct {
	Proto    string              `json:"proto,omitempty"`
	A        string              `json:"a"`
	B        string              `json:"b"`
	Oriented bool                `json:"oriented"` // A is the local side; Out = TX
	Out      analyze.Counts      `json:"out"`
	In       analyze.Counts      `json:"in"`
	OutRate  analyze.WindowRates `json:"out_rate"`
	InRate   analyze.WindowRates `json:"in_rate"`
	Peak     analyze.PeakRate    `json:"peak"`
	First    int64               `json:"first"`
	Last     int64               `json:"last"`
	Flows    int                 `json:"flows"`
	Owner    string              `json:"owner,omitempty"` // for 5-tuples: "comm[pid] (method)"
	// Folded is analyze.FlowKey.Folded: the row is an aggregate of flows
	// past --max-flows ("ports": by host pair, "hosts": by protocol), and
	// what it does not tell apart is "*" (ports) or 0.0.0.0/0, ::/0 (hosts)
	// in A and B.
	Folded string `json:"folded,omitempty"`
	// Untranslated is, for a 5-tuple the host's NAT translated, the
	// container-side endpoint ("172.17.0.2:45678"; analyze.Flow.Untranslated).
	Untranslated string            `json:"untranslated,omitempty"`
	Fmt          map[string]string `json:"-"`
}

// TunnelRow is one flow seen inside a tunnel (analyze.TunnelFlow).
type TunnelRow struct {
	Proto      string              `json:"proto"`
	A          string              `json:"a"`
	B          string              `json:"b"`
	OuterProto string              `json:"outer_proto"`
	OuterA     string              `json:"outer_a"`
	OuterB     string              `json:"outer_b"`
	AB         analyze.Counts      `json:"ab"` // inner A→B
	BA         analyze.Counts      `json:"ba"`
	ABRate     analyze.WindowRates `json:"ab_rate"`
	BARate     analyze.WindowRates `json:"ba_rate"`
	Peak       analyze.PeakRate    `json:"peak"`
	First      int64               `json:"first"`
	Last       int64               `json:"last"`
	Owner      string              `json:"owner,omitempty"` // "comm[pid] (method)" of the end whose socket was seen
	OwnerEnd   string              `json:"owner_end,omitempty"`
	Fmt        map[string]string   `json:"-"`
}

// TunnelProcRow is one process's flows inside tunnels, summed: TX is what
// its end sent, RX what it received (whole frames); the window rates add
// up exactly (a peak would not, so there is none).
type TunnelProcRow struct {
	Proc   ingest.ProcKey      `json:"proc"`
	Comm   string              `json:"comm"`
	Exe    string              `json:"exe,omitempty"`
	Flows  int                 `json:"flows"`
	TX     analyze.Counts      `json:"tx"`
	RX     analyze.Counts      `json:"rx"`
	TXRate analyze.WindowRates `json:"tx_rate"`
	RXRate analyze.WindowRates `json:"rx_rate"`
	Share  float64             `json:"share"` // of the wire bytes inside tunnels
	Fmt    map[string]string   `json:"-"`
}

// Coverage says how much of the traffic was joined to processes.
type Coverage struct {
	TX         float64        `json:"tx"`
	RX         float64        `json:"rx"`
	HasSockets bool           `json:"has_socket_data"`
	ByMethod   []CoverageLine `json:"by_method"`
	ByCause    []CoverageLine `json:"unattributed_by_cause"`
	Text       []string       `json:"-"`
}

// CoverageLine is bytes attributed by one method or unattributed by one cause.
type CoverageLine struct {
	Name    string  `json:"name"`
	TX      int64   `json:"tx_bytes"`
	RX      int64   `json:"rx_bytes"`
	Unknown int64   `json:"unknown_bytes,omitempty"`
	Share   float64 `json:"share"` // of all wire bytes
	Flows   int     `json:"flows,omitempty"`
}

// Diag is a diagnostic about the input.
type Diag struct {
	File    string `json:"file"`
	Kind    string `json:"kind"`
	Where   string `json:"where"`
	Count   int64  `json:"count"`
	Message string `json:"message"`
}

// Evidence identifies the analysed input.
type Evidence struct {
	Files     []ingest.FileEntry `json:"files,omitempty"`
	Tool      string             `json:"tool"`
	Command   string             `json:"command"`
	Collector string             `json:"collector,omitempty"`
}

// ProcSeries is one process's per-second series.
type ProcSeries struct {
	Label  string                 `json:"label"`
	Series []analyze.SecondBucket `json:"series"`
}

// GeoSource names the database that answered country/ASN questions.
type GeoSource struct {
	Country string `json:"country_db,omitempty"`
	ASN     string `json:"asn_db,omitempty"`
	Note    string `json:"note,omitempty"`
}

func procLabel(comm string, pid int) string { return fmt.Sprintf("%s[%d]", comm, pid) }

// ownerLabel names an attributed owner: "comm[pid] (method)".
func ownerLabel(a analyze.Attribution) string {
	return fmt.Sprintf("%s (%s)", procLabel(a.Comm, a.Proc.PID), a.Method)
}

// Build turns an analysis into the report model. All ordering decisions are
// made here (stable, with explicit tie-breakers), never in renderers.
func Build(in Input, opts Options) (*Document, error) {
	r := in.Result
	if r == nil {
		return nil, fmt.Errorf("build report: no analysis result")
	}
	top := opts.Top
	if top == 0 {
		top = 10
	}
	f := formatter{bits: !opts.Bytes}
	d := &Document{
		Schema:  DocumentVersion,
		Tool:    opts.Tool,
		Command: opts.Command,
		Source:  opts.Source,
		Group:   opts.Group.String(),
		Sort:    opts.Sort.String(),
		Units: Units{Bytes: "wire", Rates: f.rateUnit(),
			Note: "Volumes count original frame lengths (wire bytes, as tshark). Rates are " + f.rateUnit() + " of wire bytes, SI prefixes (k = 1000), averaged over the 2 s / 10 s / 40 s before the report instant; peak is the highest 2 s average."},
	}
	if in.Geo != nil {
		d.Geo = GeoSource{Country: in.Geo.CountrySource(), ASN: in.Geo.ASNSource()}
	} else {
		d.Geo = GeoSource{Note: "no geo database: special ranges only"}
	}
	if m := in.Manifest; m != nil {
		h := &Host{Hostname: m.Host.Hostname, Kernel: m.Host.Kernel, BootID: m.Host.BootID}
		for _, i := range m.Interfaces {
			if i.Captured {
				for _, a := range i.Addrs {
					h.Addrs = append(h.Addrs, i.Name+" "+a)
				}
			}
		}
		d.Host = h
		d.Evidence.Files = m.Files
		d.Evidence.Collector = m.Tool
	}
	d.Evidence.Tool = opts.Tool
	d.Evidence.Command = opts.Command
	buildCapture(d, in, f)
	buildTotals(d, r, f)
	buildProcesses(d, in, f, top)
	buildRemotes(d, in, f, top)
	buildConversations(d, in, opts, f, top)
	buildTunnels(d, r, f, top)
	buildTunnelProcesses(d, in, f, top)
	buildCoverage(d, r, f)
	buildFindings(d, in)
	for _, dg := range append(append([]ingest.Diagnostic(nil), in.Diagnostics...), r.Diagnostics...) {
		d.Diagnostics = append(d.Diagnostics, Diag{File: dg.File, Kind: string(dg.Kind), Where: dg.Where, Count: max(dg.Count, 1), Message: dg.Msg})
	}
	d.Series = r.Series
	buildTimeline(d, r)
	return d, nil
}

// buildTimeline keeps the 20 biggest flows, in order of first packet.
func buildTimeline(d *Document, r *analyze.Result) {
	// The 20 biggest by wire bytes (ties: earlier in Result.Flows), chosen
	// without copying every flow.
	idx := make([]int32, len(r.Flows))
	for i := range idx {
		idx[i] = int32(i)
	}
	tot := func(i int32) int64 { return r.Flows[i].Traffic.Out.Wire + r.Flows[i].Traffic.In.Wire }
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(tot(b), tot(a)) })
	idx = capRows(idx, 20)
	slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(r.Flows[a].Traffic.First, r.Flows[b].Traffic.First) })
	for _, i := range idx {
		f := &r.Flows[i]
		arrow := "⇄"
		if f.Key.Oriented {
			arrow = "→"
		}
		owner := "(unattributed)"
		var best analyze.OwnerShare
		for _, o := range f.Owners {
			if o.Traffic.Wire > best.Traffic.Wire {
				best = o
			}
		}
		if best.Owner.Attributed() {
			owner = procLabel(best.Owner.Comm, best.Owner.Proc.PID)
		}
		d.Timeline = append(d.Timeline, TimelineRow{
			Label: fmt.Sprintf("%s %s %s %s", ingest.ProtoName(f.Key.Proto), f.Key.A, arrow, f.Key.B),
			Owner: owner, First: f.Traffic.First, Last: f.Traffic.Last, Bytes: f.Traffic.Out.Wire + f.Traffic.In.Wire})
	}
}

// maxIfaceLines bounds the per-interface lines of the Capture section.
const maxIfaceLines = 10

func buildCapture(d *Document, in Input, f formatter) {
	r := in.Result
	c := &d.Capture
	c.FirstNS, c.LastNS = r.Meta.First, r.Meta.Last
	c.First, c.Last = time.Unix(0, r.Meta.First).UTC(), time.Unix(0, r.Meta.Last).UTC()
	c.Duration = r.Meta.Duration
	st := r.Meta.Stats
	c.Packets, c.Wire, c.Captured = st.Packets, st.Bytes, st.CapturedBytes
	c.IP = r.Totals.All.Sum().IP
	c.Truncated, c.NonIP, c.Malformed = st.Truncated, st.NonIP, st.Malformed
	for i, is := range r.Ifaces {
		ifc := Iface{Name: is.Info.Name, Link: int(is.Info.Link), Dropped: is.Info.Dropped, Received: is.Info.Received}
		if ifc.Name == "" {
			ifc.Name, ifc.unnamed = fmt.Sprintf("#%d (%s)", is.Index, filepath.Base(is.Info.File)), true
		}
		ifc.TX, ifc.RX = is.Traffic.Out.Wire, is.Traffic.In.Wire
		if i < len(r.IfaceSeries) {
			ifc.Unknown = r.IfaceSeries[i].Unknown.Wire
		}
		// Drops count whether or not a packet of the interface made it.
		c.KernelDropped += is.Info.Dropped
		if ifc.TX+ifc.RX+ifc.Unknown == 0 && is.Info.Dropped == 0 {
			continue
		}
		if is.Info.SnapLen > 0 && (c.SnapLen == 0 || is.Info.SnapLen < c.SnapLen) {
			c.SnapLen = is.Info.SnapLen
		}
		c.Interfaces = append(c.Interfaces, ifc)
	}
	if m := in.Manifest; m != nil {
		c.SnapLen, c.Filter = m.Capture.SnapLen, m.Capture.Filter
		for _, i := range m.Interfaces {
			if tx, rx, ok := i.CounterBytes(); ok && i.Captured {
				c.CounterTX += tx
				c.CounterRX += rx
			}
			if i.Captured && i.CaptureDropped > c.KernelDropped {
				c.KernelDropped = i.CaptureDropped
			}
		}
	}
	c.HeadersOnly = c.Truncated > 0 && c.Truncated*2 >= c.Packets
	c.Text = append(c.Text,
		fmt.Sprintf("%s → %s (%s)", c.First.Format(time.RFC3339Nano), c.Last.Format(time.RFC3339Nano), fmtDuration(c.Duration)),
		fmt.Sprintf("%d packets, %s on the wire (%s IP, %s captured)", c.Packets, f.bytes(c.Wire), f.bytes(c.IP), f.bytes(c.Captured)))
	if c.Truncated > 0 {
		cut := "the capture"
		if c.SnapLen > 0 {
			cut = fmt.Sprintf("snaplen %d", c.SnapLen)
		}
		c.Text = append(c.Text, fmt.Sprintf("%d packets cut by %s: volumes still count their full wire length", c.Truncated, cut))
	}
	if c.Filter != "" {
		c.Text = append(c.Text, fmt.Sprintf("capture filter %q: what it kept out is in no total or table (the interface counters include it)", c.Filter))
	}
	// A line per named interface when there are several (not per file of
	// a merge of pcap files, which name none).
	shown := slices.DeleteFunc(slices.Clone(c.Interfaces), func(i Iface) bool { return i.unnamed })
	if len(shown) > 1 {
		// The biggest, on a host with many container veths.
		slices.SortStableFunc(shown, func(a, b Iface) int { return cmp.Compare(b.TX+b.RX+b.Unknown, a.TX+a.RX+a.Unknown) })
		more := len(shown) - maxIfaceLines
		shown = analyze.TopN(shown, maxIfaceLines)
		for _, i := range shown {
			l := fmt.Sprintf("interface %s: TX %s, RX %s", i.Name, f.bytes(i.TX), f.bytes(i.RX))
			if i.Unknown > 0 {
				l += fmt.Sprintf(", direction unknown %s", f.bytes(i.Unknown))
			}
			if i.Dropped > 0 {
				l += fmt.Sprintf(", kernel dropped %d packets", i.Dropped)
			}
			c.Text = append(c.Text, l)
		}
		if more > 0 {
			c.Text = append(c.Text, fmt.Sprintf("and %d more interfaces (the JSON report's capture.interfaces lists every one)", more))
		}
	}
	if st.Duplicates > 0 {
		c.Text = append(c.Text, fmt.Sprintf("%d duplicate appearances skipped (Windows pktmon logs a packet at several stack components; the first is counted)", st.Duplicates))
	}
	if c.NonIP > 0 || c.Malformed > 0 {
		c.Text = append(c.Text, fmt.Sprintf("%d non-IP and %d malformed frames counted in totals only", c.NonIP, c.Malformed))
	}
	if c.KernelDropped > 0 {
		c.Text = append(c.Text, fmt.Sprintf("kernel dropped %d packets during capture: totals are a lower bound", c.KernelDropped))
	} else if len(c.Interfaces) > 0 {
		c.Text = append(c.Text, "no kernel drops recorded")
	}
	if c.CounterTX+c.CounterRX > 0 {
		c.Text = append(c.Text, fmt.Sprintf("interface counters over the capture: TX %s, RX %s (capture saw %s / %s)",
			f.bytes(c.CounterTX), f.bytes(c.CounterRX), f.bytes(r.Totals.All.Out.Wire), f.bytes(r.Totals.All.In.Wire)))
	}
	if fs := r.Meta.Folded; fs != nil {
		c.Folded = fs
		n := fs.Ports
		n.Add(fs.Hosts)
		c.Text = append(c.Text, fmt.Sprintf("more than %d flows: %s of the traffic of later new flows is in %d aggregates (rows with * or /0; see the diagnostics; --max-flows)",
			fs.MaxFlows, f.bytes(n.Wire), fs.PortAggregates+fs.HostAggregates))
	}
}

func buildTotals(d *Document, r *analyze.Result, f formatter) {
	t := &d.Totals
	t.TX, t.RX, t.Unknown = r.Totals.All.Out, r.Totals.All.In, r.Totals.All.Unknown
	t.TXRaw, t.RXRaw, t.UnknownRaw = t.TX, t.RX, t.Unknown
	t.TXRate, t.RXRate = r.Totals.Traffic.OutRate, r.Totals.Traffic.InRate
	t.Peak, t.PeakTX, t.PeakRX = r.Totals.PeakAll, r.Totals.Traffic.PeakOut, r.Totals.Traffic.PeakIn
	t.At = r.Meta.At
}

func methodOrder(m analyze.Method) int {
	for i, x := range []analyze.Method{analyze.MethodExact, analyze.MethodExactSlack, analyze.MethodMapped, analyze.MethodEvent,
		analyze.MethodListener, analyze.MethodUnconnected, analyze.MethodHint, analyze.MethodForeign} {
		if x == m {
			return i
		}
	}
	return 99
}

func buildProcesses(d *Document, in Input, f formatter, top int) {
	r := in.Result
	all := r.Totals.All.Sum().Wire
	rows := make([]ProcessRow, 0, len(r.Processes))
	for _, p := range r.Processes {
		row := ProcessRow{PID: p.Key.PID, Start: p.Key.Start, Comm: p.Comm, TX: p.Traffic.Out, RX: p.Traffic.In,
			TXRate: p.Traffic.OutRate, RXRate: p.Traffic.InRate, Peak: p.Traffic.Peak, Flows: p.Flows, UID: -1}
		for i, a := range p.Remotes {
			if i == 5 {
				row.Remotes = append(row.Remotes, fmt.Sprintf("+%d more", len(p.Remotes)-5))
				break
			}
			row.Remotes = append(row.Remotes, a.String())
		}
		tot := p.Traffic.Out.Wire + p.Traffic.In.Wire
		if all > 0 {
			row.Share = float64(tot) / float64(all)
		}
		for _, m := range p.ByMethod {
			b := m.Out.Wire + m.In.Wire
			ms := MethodShare{Method: m.Method, Bytes: b}
			if tot > 0 {
				ms.Share = float64(b) / float64(tot)
			}
			row.Methods = append(row.Methods, ms)
		}
		slices.SortStableFunc(row.Methods, func(a, b MethodShare) int {
			if c := cmp.Compare(b.Bytes, a.Bytes); c != 0 {
				return c
			}
			return cmp.Compare(methodOrder(a.Method), methodOrder(b.Method))
		})
		if pi, ok := in.Procs[p.Key]; ok {
			row.User, row.UID, row.Exe, row.ExeDeleted, row.ExeReplaced, row.PPID = pi.User, pi.UID, pi.Exe, pi.ExeDeleted, pi.ExeReplaced, pi.PPID
			row.Cmdline = strings.Join(pi.Cmdline, " ")
			row.Container, row.ExeSHA256 = pi.Container, pi.ExeSHA256
			if row.Comm == "" {
				row.Comm = pi.Comm
			}
			var parent *ingest.ProcessInfo
			for k, q := range in.Procs {
				if k.PID == pi.PPID && pi.PPID != 0 {
					q := q
					if parent == nil || q.Start > parent.Start {
						parent = &q
					}
				}
			}
			row.Risk = analyze.ProcessRisk(pi, parent)
			if v, ok := analyze.VendorAgent(pi); ok {
				row.Vendor = v
			}
		}
		rows = append(rows, row)
	}
	// Unattributed traffic as one pseudo-row so shares add up to 100 %.
	var un ProcessRow
	un.Unknown, un.Comm, un.UID = true, "(unattributed)", -1
	ut := &r.UnattributedTraffic
	un.TX, un.RX, un.TXRate, un.RXRate, un.Peak = ut.Out, ut.In, ut.OutRate, ut.InRate, ut.Peak
	for _, u := range r.Unattributed {
		un.Flows += u.Flows
	}
	if un.TX.Wire+un.RX.Wire > 0 && all > 0 {
		un.Share = float64(un.TX.Wire+un.RX.Wire) / float64(all)
		rows = append(rows, un)
	}
	slices.SortStableFunc(rows, func(a, b ProcessRow) int {
		if c := cmp.Compare(b.TX.Wire+b.RX.Wire, a.TX.Wire+a.RX.Wire); c != 0 {
			return c
		}
		if c := cmp.Compare(a.PID, b.PID); c != 0 {
			return c
		}
		return cmp.Compare(a.Start, b.Start)
	})
	d.Users = groupRows(rows, func(r *ProcessRow) string {
		if r.User != "" {
			return r.User
		}
		if r.UID >= 0 {
			return fmt.Sprintf("uid %d", r.UID)
		}
		return ""
	}, f, top)
	d.Containers = groupRows(rows, func(r *ProcessRow) string { return r.Container }, f, top)
	rows = capRows(rows, top)
	for i := range rows {
		row := &rows[i]
		row.Fmt = map[string]string{
			"proc":  procLabel(row.Comm, row.PID),
			"tx":    f.bytes(row.TX.Wire),
			"rx":    f.bytes(row.RX.Wire),
			"share": fmtPct(row.Share),
			"2s":    f.rate(row.TXRate.S2 + row.RXRate.S2),
			"10s":   f.rate(row.TXRate.S10 + row.RXRate.S10),
			"40s":   f.rate(row.TXRate.S40 + row.RXRate.S40),
			"peak":  f.rate(row.Peak.Rate),
			"flows": fmt.Sprint(row.Flows),
		}
		if row.Unknown {
			row.Fmt["proc"] = "(unattributed)"
		}
		var how []string
		for _, m := range row.Methods {
			how = append(how, fmt.Sprintf("%s %s", m.Method, fmtPct(m.Share)))
		}
		row.Fmt["method"] = strings.Join(how, ", ")
		var notes []string
		if row.Vendor != "" {
			notes = append(notes, "cloud agent: "+row.Vendor)
		}
		for _, rf := range row.Risk {
			if rf.Severity != analyze.RiskInfo {
				notes = append(notes, rf.ID)
			}
		}
		row.Fmt["notes"] = strings.Join(notes, ", ")
		row.Fmt["exe"] = ingest.ProcessInfo{Exe: row.Exe, ExeDeleted: row.ExeDeleted, ExeReplaced: row.ExeReplaced}.ExeLabel()
		row.Fmt["remotes"] = strings.Join(row.Remotes, " ")
	}
	d.Processes = rows
	// Per-second series of the top processes (for charts).
	for _, p := range r.Processes {
		if len(d.ProcessSeries) == 8 {
			break
		}
		if len(p.Series) > 0 {
			d.ProcessSeries = append(d.ProcessSeries, ProcSeries{Label: procLabel(p.Comm, p.Key.PID), Series: p.Series})
		}
	}
}

func capRows[T any](rows []T, top int) []T {
	if top > 0 && len(rows) > top {
		return rows[:top]
	}
	return rows
}

// foldedWhere is the place of the remote hosts of flows counted in
// aggregates by protocol past --max-flows (analyze.FlowKey.Folded).
const foldedWhere = "many hosts (folded)"

// anyHost stands for the hosts an aggregate by protocol does not tell
// apart: 0.0.0.0/0 or ::/0.
func anyHost(a netip.Addr) string { return netip.PrefixFrom(a, 0).String() }

// flowEnd formats one end of a flow row: an aggregate's ports are "*",
// an aggregate by protocol is 0.0.0.0/0 or ::/0.
func flowEnd(a netip.AddrPort, folded string) string {
	switch folded {
	case analyze.FoldedPorts:
		if a.Addr().Is6() {
			return "[" + a.Addr().String() + "]:*"
		}
		return a.Addr().String() + ":*"
	case analyze.FoldedHosts:
		return anyHost(a.Addr())
	}
	return a.String()
}

// hostEnd formats one end of a host-pair or remote-host row.
func hostEnd(a netip.Addr, folded string) string {
	if folded == analyze.FoldedHosts {
		return anyHost(a)
	}
	return a.String()
}

func buildRemotes(d *Document, in Input, f formatter, top int) {
	r := in.Result
	procNames := map[ingest.ProcKey]string{}
	for _, p := range r.Processes {
		procNames[p.Key] = procLabel(p.Comm, p.Key.PID)
	}
	rows := make([]RemoteRow, 0, len(r.Remotes))
	for _, h := range r.Remotes {
		row := RemoteRow{Addr: h.Addr.String(), Folded: h.Folded, TX: h.Traffic.Out, RX: h.Traffic.In, TXRate: h.Traffic.OutRate,
			RXRate: h.Traffic.InRate, Peak: h.Traffic.Peak, Flows: h.Flows}
		if h.Folded {
			row.Addr = anyHost(h.Addr)
		}
		for _, k := range h.Processes {
			if n, ok := procNames[k]; ok {
				row.Processes = append(row.Processes, n)
			}
		}
		rows = append(rows, row)
	}
	// Result.Remotes is already sorted by bytes; keep it, but be explicit.
	slices.SortStableFunc(rows, func(a, b RemoteRow) int {
		if c := cmp.Compare(b.TX.Wire+b.RX.Wire, a.TX.Wire+a.RX.Wire); c != 0 {
			return c
		}
		aa, _ := netip.ParseAddr(a.Addr) // a folded row's CIDR is the invalid Addr: first
		bb, _ := netip.ParseAddr(b.Addr)
		return aa.Compare(bb)
	})
	rows = capRows(rows, top)
	for i := range rows {
		row := &rows[i]
		place := foldedWhere
		if !row.Folded {
			a, _ := netip.ParseAddr(row.Addr)
			loc := analyze.Locate(in.Geo, a)
			row.Country, row.CountryName, row.ASN, row.ASOrg, row.Special, row.Proxy = loc.Country, loc.CountryName, loc.ASN, loc.ASOrg, loc.Special, loc.Proxy
			place = loc.String()
			row.Name = in.Names[a]
			place = analyze.WithName(row.Name, place)
		}
		row.Fmt = map[string]string{
			"tx": f.bytes(row.TX.Wire), "rx": f.bytes(row.RX.Wire),
			"2s":    f.rate(row.TXRate.S2 + row.RXRate.S2),
			"10s":   f.rate(row.TXRate.S10 + row.RXRate.S10),
			"40s":   f.rate(row.TXRate.S40 + row.RXRate.S40),
			"peak":  f.rate(row.Peak.Rate),
			"where": place, "procs": strings.Join(row.Processes, " "), "flows": fmt.Sprint(row.Flows),
		}
	}
	d.Remotes = rows
}

func buildConversations(d *Document, in Input, opts Options, f formatter, top int) {
	r := in.Result
	rows := r.Rows(opts.Group, opts.Sort, top)
	owners := map[analyze.FlowKey]string{}
	ownerFmt := map[analyze.FlowKey]string{} // the owner column, with where a NAT'ed flow came from
	untranslated := map[analyze.FlowKey]string{}
	if opts.Group == analyze.GroupFlow {
		for _, fl := range r.Flows {
			from := ""
			if fl.Untranslated != nil {
				from = fl.Untranslated.A.String()
				untranslated[fl.Key] = from
			}
			if len(fl.Owners) == 0 {
				if from != "" {
					ownerFmt[fl.Key] = " (NAT'ed from " + from + ")"
				}
				continue
			}
			best := fl.Owners[0]
			for _, o := range fl.Owners[1:] {
				if o.Traffic.Wire > best.Traffic.Wire {
					best = o
				}
			}
			if best.Owner.Attributed() {
				owners[fl.Key] = ownerLabel(best.Owner)
			} else {
				owners[fl.Key] = "? (" + string(best.Owner.Cause) + ")"
			}
			switch {
			case from == "":
				ownerFmt[fl.Key] = owners[fl.Key]
			case best.Owner.Method == analyze.MethodNAT:
				ownerFmt[fl.Key] = fmt.Sprintf("%s (%s from %s)", procLabel(best.Owner.Comm, best.Owner.Proc.PID), best.Owner.Method, from)
			default:
				ownerFmt[fl.Key] = owners[fl.Key] + " (NAT'ed from " + from + ")"
			}
		}
	}
	for _, row := range rows {
		c := ConvRow{Oriented: row.Key.Oriented, Out: row.Traffic.Out, In: row.Traffic.In, OutRate: row.Traffic.OutRate,
			InRate: row.Traffic.InRate, Peak: row.Traffic.Peak, First: row.Traffic.First, Last: row.Traffic.Last, Flows: row.Flows}
		switch opts.Group {
		case analyze.GroupFlow:
			c.Proto = ingest.ProtoName(row.Key.Proto)
			c.A, c.B = flowEnd(row.Key.A, row.Key.Folded), flowEnd(row.Key.B, row.Key.Folded)
			c.Owner = owners[row.Key]
			c.Untranslated = untranslated[row.Key]
		case analyze.GroupPair:
			c.A, c.B = hostEnd(row.Key.A.Addr(), row.Key.Folded), hostEnd(row.Key.B.Addr(), row.Key.Folded)
		case analyze.GroupRemote:
			c.A, c.B = "(local)", hostEnd(row.Key.B.Addr(), row.Key.Folded)
		}
		c.Folded = row.Key.Folded
		arrow := "⇄"
		if c.Oriented {
			arrow = "→"
		}
		c.Fmt = map[string]string{
			"pair":  c.A + " " + arrow + " " + c.B,
			"out":   f.bytes(c.Out.Wire),
			"in":    f.bytes(c.In.Wire),
			"out2s": f.rate(c.OutRate.S2), "out10s": f.rate(c.OutRate.S10), "out40s": f.rate(c.OutRate.S40),
			"in2s": f.rate(c.InRate.S2), "in10s": f.rate(c.InRate.S10), "in40s": f.rate(c.InRate.S40),
			"peak":  f.rate(c.Peak.Rate),
			"owner": ownerFmt[row.Key],
			"flows": fmt.Sprint(c.Flows),
		}
		if c.Proto != "" {
			c.Fmt["pair"] = c.Proto + " " + c.Fmt["pair"]
		}
		d.Conversations = append(d.Conversations, c)
	}
}

// buildTunnels keeps the top tunnelled flows (by wire bytes).
func buildTunnels(d *Document, r *analyze.Result, f formatter, top int) {
	for _, t := range analyze.TopN(r.Tunnels, top) {
		row := TunnelRow{Proto: ingest.ProtoName(t.Inner.Proto), A: t.Inner.A.String(), B: t.Inner.B.String(),
			OuterProto: ingest.ProtoName(t.Outer.Proto), OuterA: t.Outer.A.String(), OuterB: t.Outer.B.String(),
			AB: t.AB, BA: t.BA, ABRate: t.ABRate, BARate: t.BARate, Peak: t.Peak, First: t.First, Last: t.Last, OwnerEnd: t.OwnerEnd}
		row.Fmt = map[string]string{
			"inner": row.Proto + " " + row.A + " ⇄ " + row.B,
			"outer": row.OuterProto + " " + row.OuterA + " ⇄ " + row.OuterB,
			"ab":    f.bytes(t.AB.Wire),
			"ba":    f.bytes(t.BA.Wire),
			"10s":   f.rate(t.ABRate.S10) + " / " + f.rate(t.BARate.S10),
			"peak":  f.rate(t.Peak.Rate),
			"pkts":  fmt.Sprint(t.AB.Packets + t.BA.Packets),
		}
		if o := t.Owner; o != nil {
			row.Owner = ownerLabel(*o)
			row.Fmt["owner"] = strings.ToUpper(row.OwnerEnd) + ": " + row.Owner
		}
		d.Tunnels = append(d.Tunnels, row)
	}
}

// buildTunnelProcesses sums the owned flows inside tunnels by process.
func buildTunnelProcesses(d *Document, in Input, f formatter, top int) {
	var all int64
	byProc := map[ingest.ProcKey]*TunnelProcRow{}
	for i := range in.Result.Tunnels {
		t := &in.Result.Tunnels[i]
		all += t.AB.Wire + t.BA.Wire
		if t.Owner == nil || !t.Owner.Attributed() {
			continue
		}
		row, ok := byProc[t.Owner.Proc]
		if !ok {
			row = &TunnelProcRow{Proc: t.Owner.Proc, Comm: t.Owner.Comm, Exe: in.Procs[t.Owner.Proc].Exe}
			byProc[t.Owner.Proc] = row
		}
		tx, rx, txr, rxr := t.AB, t.BA, t.ABRate, t.BARate
		if t.OwnerEnd == "b" {
			tx, rx, txr, rxr = rx, tx, rxr, txr
		}
		row.Flows++
		row.TX.Add(tx)
		row.RX.Add(rx)
		row.TXRate.Add(txr)
		row.RXRate.Add(rxr)
	}
	rows := make([]TunnelProcRow, 0, len(byProc))
	for _, row := range byProc {
		if all > 0 {
			row.Share = float64(row.TX.Wire+row.RX.Wire) / float64(all)
		}
		rows = append(rows, *row)
	}
	slices.SortFunc(rows, func(a, b TunnelProcRow) int {
		if c := cmp.Compare(b.TX.Wire+b.RX.Wire, a.TX.Wire+a.RX.Wire); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Proc.PID, b.Proc.PID), cmp.Compare(a.Proc.Start, b.Proc.Start))
	})
	for _, row := range analyze.TopN(rows, top) {
		row.Fmt = map[string]string{
			"process": procLabel(row.Comm, row.Proc.PID),
			"tx":      f.bytes(row.TX.Wire),
			"rx":      f.bytes(row.RX.Wire),
			"10s":     f.rate(row.TXRate.S10) + " / " + f.rate(row.RXRate.S10),
			"flows":   fmt.Sprint(row.Flows),
			"share":   fmtPct(row.Share),
			"exe":     row.Exe,
		}
		d.TunnelProcesses = append(d.TunnelProcesses, row)
	}
}

func buildCoverage(d *Document, r *analyze.Result, f formatter) {
	cv := &d.Coverage
	cv.TX, cv.RX, cv.HasSockets = r.Coverage.TX, r.Coverage.RX, r.Meta.Attributed
	all := r.Totals.All.Sum().Wire
	share := func(b int64) float64 {
		if all == 0 {
			return 0
		}
		return float64(b) / float64(all)
	}
	for _, m := range r.Coverage.ByMethod {
		cv.ByMethod = append(cv.ByMethod, CoverageLine{Name: string(m.Method), TX: m.Out.Wire, RX: m.In.Wire, Share: share(m.Out.Wire + m.In.Wire)})
	}
	for _, u := range r.Unattributed {
		cv.ByCause = append(cv.ByCause, CoverageLine{Name: string(u.Cause), TX: u.Out.Wire, RX: u.In.Wire, Unknown: u.Unknown.Wire,
			Share: share(u.Out.Wire + u.In.Wire + u.Unknown.Wire), Flows: u.Flows})
	}
	sortLines := func(ls []CoverageLine) {
		slices.SortStableFunc(ls, func(a, b CoverageLine) int {
			if c := cmp.Compare(b.TX+b.RX+b.Unknown, a.TX+a.RX+a.Unknown); c != 0 {
				return c
			}
			return cmp.Compare(a.Name, b.Name)
		})
	}
	sortLines(cv.ByMethod)
	sortLines(cv.ByCause)
	if !cv.HasSockets {
		cv.Text = append(cv.Text, "no socket data: traffic is not attributed to processes (analyze a bundle, or add --sockets dumps)")
	} else {
		cv.Text = append(cv.Text, fmt.Sprintf("%s of TX bytes and %s of RX bytes attributed to a process", fmtPct(cv.TX), fmtPct(cv.RX)))
	}
	for _, l := range cv.ByMethod {
		cv.Text = append(cv.Text, fmt.Sprintf("  %s by %s", fmtPct(l.Share), l.Name))
	}
	for _, l := range cv.ByCause {
		cv.Text = append(cv.Text, fmt.Sprintf("  %s unattributed: %s (%d flows)", fmtPct(l.Share), l.Name, l.Flows))
	}
}

func sevRank(s string) int {
	switch s {
	case "critical":
		return 5
	case "high":
		return 4
	case "medium":
		return 3
	case "low":
		return 2
	case "info":
		return 1
	}
	return 0
}

// SeverityRank orders severities: none < info < low < medium < high < critical.
func SeverityRank(s string) int { return sevRank(s) }

func buildFindings(d *Document, in Input) {
	fs := slices.Clone(in.Findings)
	analyze.SortFindings(fs)
	for _, fd := range fs {
		d.Findings = append(d.Findings, Finding{ID: fd.ID, Severity: string(fd.Severity), Summary: fd.Summary, Evidence: fd.Evidence, Next: fd.Next})
	}
	d.Verdict = Verdict{Severity: "none"}
	if i := analyze.VerdictIndex(fs); i >= 0 {
		top := d.Findings[i]
		d.Verdict = Verdict{Severity: top.Severity, Summary: top.Summary, Next: top.Next}
		return
	}
	// No rule fired: state the top talker plainly.
	if len(d.Processes) > 0 && !d.Processes[0].Unknown {
		p := d.Processes[0]
		d.Verdict.Summary = fmt.Sprintf("%s sent %s and received %s (%s of all traffic); no suspicious pattern found",
			p.Fmt["proc"], p.Fmt["tx"], p.Fmt["rx"], p.Fmt["share"])
	} else if d.Totals.TX.Wire+d.Totals.RX.Wire+d.Totals.Unknown.Wire > 0 {
		d.Verdict.Summary = "traffic could not be attributed to processes; no suspicious pattern found in the packets"
	} else {
		d.Verdict.Summary = "no IP traffic in the capture"
	}
}

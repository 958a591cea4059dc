package ingest

import "net/netip"

// BundleFormat is the version of the bundle layout written by
// `flowblame collect` and read by OpenBundle.
const BundleFormat = 1

// File names inside a bundle (directory or .tar.gz).
const (
	ManifestFile  = "manifest.json"
	CaptureDir    = "capture"         // capture/*.pcapng, rotated by size
	SocketsFile   = "sockets.jsonl"   // SocketRecord per line
	ProcessesFile = "processes.jsonl" // ProcessInfo per line
	CountersFile  = "counters.jsonl"  // CounterSample per line
	ConntrackFile = "conntrack.jsonl" // NATRecord per line (optional: only where the kernel translates)
)

// Manifest is manifest.json: what was captured, where, when and how well.
type Manifest struct {
	Format      int            `json:"format"` // BundleFormat
	Tool        string         `json:"tool"`   // "flowblame 0.1.0"
	Host        HostInfo       `json:"host"`
	Interfaces  []IfaceInfo    `json:"interfaces"`
	AddrChanges []AddrChange   `json:"addr_changes,omitempty"`
	Capture     CaptureParams  `json:"capture"`
	Clock       ClockInfo      `json:"clock"`
	Collector   CollectorUsage `json:"collector"`
	Netns       []NetnsInfo    `json:"netns,omitempty"`
	Files       []FileEntry    `json:"files"`
	Notes       []string       `json:"notes,omitempty"` // partial observation, degraded modes
}

// HostInfo identifies the captured host.
type HostInfo struct {
	Hostname      string `json:"hostname"`
	OS            string `json:"os"`              // "linux"
	Kernel        string `json:"kernel"`          // uname -r
	BootID        string `json:"boot_id"`         // /proc/sys/kernel/random/boot_id
	MachineIDHash string `json:"machine_id_hash"` // sha256 of /etc/machine-id, hex
	BootTime      int64  `json:"boot_time_ns"`    // Unix ns of boot (for /proc start times)
	ClockTicks    int    `json:"clock_ticks"`     // USER_HZ
}

// IfaceInfo is one host interface with its addresses (direction needs them).
type IfaceInfo struct {
	Index    int      `json:"index"`
	Name     string   `json:"name"`
	MAC      string   `json:"mac,omitempty"` // "aa:bb:cc:dd:ee:ff"
	MTU      int      `json:"mtu,omitempty"`
	Flags    []string `json:"flags,omitempty"`
	Addrs    []string `json:"addrs"` // CIDR prefixes, "198.51.100.1/24"
	Captured bool     `json:"captured"`
	// Kernel capture statistics of this interface's capture socket.
	CaptureReceived uint64 `json:"capture_received"`
	CaptureDropped  uint64 `json:"capture_dropped"`
	// Interface counters (/sys/class/net/X/statistics) at start and end.
	CountersStart *IfaceCounters `json:"counters_start,omitempty"`
	CountersEnd   *IfaceCounters `json:"counters_end,omitempty"`
}

// CounterBytes returns the bytes the interface's kernel counters moved
// during the capture. ok is false without both readings, or when a counter
// went backwards (the interface was re-created, or a 32-bit counter
// wrapped): then the counters say nothing about the capture.
func (i *IfaceInfo) CounterBytes() (tx, rx int64, ok bool) {
	s, e := i.CountersStart, i.CountersEnd
	if s == nil || e == nil || e.TxBytes < s.TxBytes || e.RxBytes < s.RxBytes {
		return 0, 0, false
	}
	return int64(e.TxBytes - s.TxBytes), int64(e.RxBytes - s.RxBytes), true
}

// IfaceCounters are kernel interface counters.
type IfaceCounters struct {
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxDropped uint64 `json:"rx_dropped"`
	TxDropped uint64 `json:"tx_dropped"`
}

// AddrChange records an address added to or removed from an interface during
// the capture.
type AddrChange struct {
	T      int64  `json:"t"` // Unix ns
	Iface  string `json:"iface"`
	Addr   string `json:"addr"`   // CIDR
	Action string `json:"action"` // "add" | "del"
}

// CaptureParams are the parameters of the packet capture.
type CaptureParams struct {
	Interfaces   []string `json:"interfaces"`
	SnapLen      int      `json:"snaplen"`
	Filter       string   `json:"filter,omitempty"`
	Start        int64    `json:"start"` // Unix ns
	End          int64    `json:"end"`   // Unix ns
	Duration     float64  `json:"duration_s"`
	Interval     float64  `json:"snapshot_interval_s"`
	StopReason   string   `json:"stop_reason"` // "duration", "signal", "max-size", "disk-floor", "error: ..."
	MaxSize      int64    `json:"max_size,omitempty"`
	DroppedFiles []string `json:"dropped_files,omitempty"` // capture files removed to honour max-size
}

// ClockInfo allows detecting clock jumps during the capture.
type ClockInfo struct {
	RealtimeStart  int64 `json:"realtime_start"`
	RealtimeEnd    int64 `json:"realtime_end"`
	MonotonicStart int64 `json:"monotonic_start"`
	MonotonicEnd   int64 `json:"monotonic_end"`
}

// CollectorUsage is the collector's own resource use.
type CollectorUsage struct {
	UserCPU    float64 `json:"user_cpu_s"`
	SysCPU     float64 `json:"sys_cpu_s"`
	MaxRSS     int64   `json:"max_rss_bytes"`
	Snapshots  int     `json:"snapshots"`
	FullWalks  int     `json:"full_walks"`
	Events     int64   `json:"events"`
	EventsLost int64   `json:"events_lost"`
	// NATRecords is the number of conntrack.jsonl lines (translated
	// connections); NATPolls how often the conntrack table was read.
	NATRecords int64 `json:"nat_records"`
	NATPolls   int   `json:"nat_polls"`
}

// NetnsInfo is one network namespace the collector observed.
type NetnsInfo struct {
	Inode uint64 `json:"inode"`
	Name  string `json:"name,omitempty"`
	PIDs  []int  `json:"pids,omitempty"` // a few pids living in it
	Host  bool   `json:"host"`           // the collector's own (captured) netns
}

// FileEntry is one file of the bundle with its integrity hash.
type FileEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ProcKey identifies a process across PID reuse: PID plus start time.
type ProcKey struct {
	PID   int   `json:"pid"`
	Start int64 `json:"start"` // Unix ns of process start (0 if unknown)
}

// ProcessInfo is one line of processes.jsonl (and the process facts of foreign
// dumps, where many fields stay empty).
type ProcessInfo struct {
	PID        int    `json:"pid"`
	Start      int64  `json:"start"` // Unix ns
	PPID       int    `json:"ppid"`
	UID        int    `json:"uid"`
	User       string `json:"user,omitempty"`
	Comm       string `json:"comm"`
	Exe        string `json:"exe,omitempty"`
	ExeDeleted bool   `json:"exe_deleted,omitempty"`
	// ExeReplaced: the executable was deleted, and a file is at its path
	// now (in the process's own mount namespace): a package upgrade or a
	// deploy replaced the binary while the process kept running the old one.
	ExeReplaced bool     `json:"exe_replaced,omitempty"`
	Cmdline     []string `json:"cmdline,omitempty"`
	Cwd         string   `json:"cwd,omitempty"`
	ExeSize     int64    `json:"exe_size,omitempty"`
	ExeMtime    int64    `json:"exe_mtime,omitempty"`
	ExeSHA256   string   `json:"exe_sha256,omitempty"` // empty when skipped (cost cap)
	Cgroup      string   `json:"cgroup,omitempty"`
	Container   string   `json:"container,omitempty"`
	Netns       uint64   `json:"netns,omitempty"`
	FirstSeen   int64    `json:"first_seen"`
	LastSeen    int64    `json:"last_seen"`
	Exited      int64    `json:"exited,omitempty"` // exit event time, if seen
}

// Key returns the process identity.
func (p ProcessInfo) Key() ProcKey { return ProcKey{PID: p.PID, Start: p.Start} }

// ExeLabel is Exe with " (replaced)" or " (deleted)" after it when the
// binary is no longer the file at that path.
func (p ProcessInfo) ExeLabel() string {
	switch {
	case p.Exe == "":
		return ""
	case p.ExeReplaced:
		return p.Exe + " (replaced)"
	case p.ExeDeleted:
		return p.Exe + " (deleted)"
	}
	return p.Exe
}

// SocketRecord is one line of sockets.jsonl. Kind says which fields are set:
//
//   - "snapshot": an inventory of network namespace Netns completed at T
//     (Seq numbers them); every socket it listed is either in an earlier
//     "seen" record still open, or in a "seen" record with Snap == Seq.
//     Count is the number of sockets it listed.
//   - "seen": a socket first observed (or whose holders changed) in snapshot
//     Snap at time T, with its tuple, state, inode, cookie and Holders.
//   - "gone": a socket (by Cookie, else tuple+inode) listed in the previous
//     snapshot of its netns but not in snapshot Snap at T.
//   - "destroy": a sock_diag destroy notification at T (exact close time) with
//     final TCP byte counters; Holders come from the collector's cookie cache.
//   - "probe": sockets found by a targeted /proc/PID/fd probe (exec events,
//     unknown inodes) at T, between snapshots.
//   - "bytes": updated TCP byte counters of Cookie at T.
type SocketRecord struct {
	Kind          string    `json:"kind"`
	T             int64     `json:"t"` // Unix ns
	Seq           int       `json:"seq,omitempty"`
	Snap          int       `json:"snap,omitempty"`
	Count         int       `json:"count,omitempty"`
	Netns         uint64    `json:"netns,omitempty"`
	Proto         string    `json:"proto,omitempty"`  // "tcp" | "udp"
	Local         string    `json:"local,omitempty"`  // "198.51.100.1:443", "[2001:db8::1]:443"
	Remote        string    `json:"remote,omitempty"` // "0.0.0.0:0" for listeners / unconnected UDP
	State         string    `json:"state,omitempty"`  // "ESTAB", "LISTEN", "TIME-WAIT", "UNCONN", ... (ss names)
	Inode         uint64    `json:"inode,omitempty"`
	Cookie        uint64    `json:"cookie,omitempty"`
	UID           int       `json:"uid,omitempty"`
	CgroupID      uint64    `json:"cgroup_id,omitempty"`
	BytesAcked    uint64    `json:"bytes_acked,omitempty"`
	BytesReceived uint64    `json:"bytes_received,omitempty"`
	BytesSent     uint64    `json:"bytes_sent,omitempty"`
	Holders       []ProcKey `json:"holders,omitempty"`
	// Partial says why an observation is incomplete ("inode-unknown",
	// "owner-exited", "no-pid-walk-yet", ...).
	Partial string `json:"partial,omitempty"`
}

// CounterSample is one line of counters.jsonl: one interface's kernel counters
// at T (sampled every second).
type CounterSample struct {
	T     int64  `json:"t"`
	Iface string `json:"iface"`
	IfaceCounters
}

// NATRecord is one line of conntrack.jsonl: a connection the host's kernel
// translates (source NAT or masquerade for a container or VM behind it,
// destination NAT for a published port), from the conntrack table, written
// when the collector first sees it. The original tuple is the packet as its
// sender sent it, the reply tuple the answer as it comes back; a NAT'ed
// flow is captured with the original tuple on the inner side (a container's
// veth or bridge) and with the reverse of the reply tuple on the uplink.
// Endpoints are written as in sockets.jsonl ("ip:port", "[v6]:port").
type NATRecord struct {
	T        int64  `json:"t"` // first seen (Unix ns)
	Proto    uint8  `json:"proto"`
	OrigSrc  string `json:"orig_src"`
	OrigDst  string `json:"orig_dst"`
	ReplySrc string `json:"reply_src"`
	ReplyDst string `json:"reply_dst"`
	// Zone is the conntrack zone (0 on most hosts).
	Zone uint16 `json:"zone,omitempty"`
}

// SocketFormat names where a socket observation came from.
type SocketFormat string

// Socket observation sources.
const (
	FormatNative     SocketFormat = "native"      // flowblame collect sockets.jsonl
	FormatSS         SocketFormat = "ss"          // ss -tunap
	FormatLsof       SocketFormat = "lsof"        // lsof -i -n -P
	FormatLsofF      SocketFormat = "lsof-F"      // lsof -F
	FormatNetstat    SocketFormat = "netstat"     // netstat -tunap (Linux)
	FormatNetstatANO SocketFormat = "netstat-ano" // Windows netstat -ano (+ tasklist)
	FormatPowerShell SocketFormat = "powershell"  // Get-NetTCPConnection / Get-NetUDPEndpoint
	FormatProcNet    SocketFormat = "procnet"     // /proc/net/tcp etc.
)

// SocketEntry is one socket in a snapshot.
type SocketEntry struct {
	Proto  uint8 // ProtoTCP | ProtoUDP
	Local  netip.AddrPort
	Remote netip.AddrPort // zero/unspecified for listeners and unconnected UDP
	State  string
	Inode  uint64
	Cookie uint64
	UID    int // -1 unknown
	Netns  uint64
	// Holders are the processes holding the socket (several after fork).
	Holders []ProcKey
	// Comm per holder when the dump names the process but not its exe.
	Comms                     []string
	BytesAcked, BytesReceived uint64
}

// SocketSnapshot is one inventory of sockets taken at Taken (Unix ns).
type SocketSnapshot struct {
	Taken  int64
	Source SocketFormat
	// TimeFromMtime: no timestamp line was found; Taken is the file's mtime.
	TimeFromMtime bool
	File          string
	Sockets       []SocketEntry
	Procs         map[ProcKey]ProcessInfo
}

// SocketObservation is one socket's observed lifetime, compiled from
// snapshots and events: the unit the attribution join works on.
type SocketObservation struct {
	Proto  uint8
	Local  netip.AddrPort
	Remote netip.AddrPort // unspecified for listeners / unconnected UDP
	State  string         // last state seen
	Inode  uint64
	Cookie uint64
	UID    int
	Netns  uint64
	// First and Last are the first and last times (Unix ns) the socket was
	// observed; Closed is the exact close time from a destroy event (0 if
	// none). The slack around [First, Last] is the snapshot interval.
	First, Last, Closed int64
	Holders             []ProcKey
	// Source says which mechanism observed it.
	Source SocketFormat
	// Via: "snapshot", "event", "probe", "destroy".
	Via string
	// Final TCP counters (destroy event or last snapshot).
	BytesAcked, BytesReceived uint64
	Partial                   string
}

// Package sockwatch is the collector's socket↔process machinery on Linux.
//
// Run keeps a socket inventory (NETLINK_SOCK_DIAG dumps of TCP and UDP, IPv4
// and IPv6, in every network namespace it finds), joins each socket to the
// processes holding it (an inode→holders cache fed by walks of /proc/PID/fd),
// listens to sock_diag destroy notifications (exact close time and final TCP
// byte counters) and to proc-connector fork/exec/exit events (which trigger
// early fd probes of short-lived processes), and reports everything to a Sink
// as ingest.SocketRecord and ingest.ProcessInfo values, the lines of
// sockets.jsonl and processes.jsonl.
//
// Example:
//
//	st, err := sockwatch.Run(ctx, sockwatch.Config{Interval: 2 * time.Second}, sink)
//
// # Records
//
// Output is compact. Per inventory and network namespace: "seen" for each
// socket that is new or whose state or holders changed (with Snap = the
// inventory's Seq), "bytes" for TCP sockets whose tcp_info counters moved,
// "gone" for sockets no longer listed, then one "snapshot" marker (Seq
// increases across all namespaces). Unchanged sockets are never re-emitted.
// Between inventories: "destroy" for every socket the kernel frees (tuple,
// cookie, final bytes, receive time, Holders from the cookie cache; a
// destroyed socket gets no "gone" unless the inventory saw it vanish first)
// and "probe" for sockets a new process was found holding.
//
// A process's ProcessInfo is emitted when it first appears as a holder, again
// when it execs (later lines for the same (pid, start) supersede earlier
// ones) or exits (Exited), and once more at the end of Run with LastSeen.
// Start is BootTimeNs() + /proc/PID/stat starttime × 10 ms.
//
// # Owner resolution
//
// A full /proc/*/fd walk runs at start and every FullWalkEvery. Sockets whose
// inode has no known holder trigger, in order: walks of processes that are new
// or whose fd count changed (st_size of /proc/PID/fd, Linux ≥ 6.2), newest
// first; walks of the processes of the socket's uid when they are few; and a
// full walk at most every 10 s. A socket that a full walk has missed is not
// searched again until the next periodic walk (Partial "owner-unknown").
//
// New processes (fork and exec events) are probed from +10 ms to +2 s (at
// most 100 ms apart for the first 450 ms) on a separate goroutine whose
// thread runs at nice −10, so a busy inventory cannot delay them; later
// probes whose fd count did not change cost one stat. A probe describes each socket straight from
// the fd (pidfd_getfd: name, peer, cookie, tcp_info) and reads the process
// facts while the process is alive.
//
// TIME-WAIT and NEW-SYN-RECV sockets are not inventoried when destroy events
// are available: they have no inode or owner, and the destroy event already
// gave their tuple, close time and final bytes. Without destroy events
// (no CAP_NET_ADMIN) TIME-WAIT sockets are inventoried with Partial
// "time-wait", so locally closed tuples are at least seen.
//
// # Degraded modes
//
// Everything degrades rather than fails: without root only the collector's own
// processes can be walked, without CAP_NET_ADMIN there are no destroy events,
// without the proc connector there are no exec probes. Each degraded mode is
// listed in Stats.Notes and marked on records (SocketRecord.Partial:
// "owner-unknown", "walk-lag", "time-wait", "inode-0").
//
// Sockets in other network namespaces are inventoried through one sock_diag
// socket per namespace, created on a thread switched there with setns. These
// sockets keep their namespace alive until Run returns.
package sockwatch

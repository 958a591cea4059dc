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
// Output is compact: a socket is reported ("seen") when it first appears or
// when its state or holders change, "gone" when an inventory no longer lists
// it, and every inventory emits one "snapshot" marker. Unchanged sockets are
// never re-emitted.
//
// Example:
//
//	st, err := sockwatch.Run(ctx, sockwatch.Config{Interval: 2 * time.Second}, sink)
//
// Everything degrades rather than fails: without root only the collector's own
// processes can be walked, without CAP_NET_ADMIN there are no destroy events,
// without the proc connector there are no exec probes. Each degraded mode is
// listed in Stats.Notes and marked on records (SocketRecord.Partial).
package sockwatch

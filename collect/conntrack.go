package collect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/flowblame/flowblame/collect/sockwatch"
	"github.com/flowblame/flowblame/ingest"
)

// NAT recording.
//
// On a host that runs containers or VMs behind NAT (Docker's masquerade, a
// libvirt network, a published port), the same connection is captured twice:
// with the container's own addresses on its veth or bridge, and translated
// to the host's address on the uplink, where no socket has that tuple. The
// kernel's conntrack table holds both tuples of every translated
// connection; the collector records them (conntrack.jsonl) so that analysis
// can charge the uplink flow to the container's process (analyze.WithNAT).
//
// The table is only read, never enabled: conntrack changes firewall
// behaviour and costs per-packet work (spec/collector.md), so when the
// module is not loaded (/proc/sys/net/netfilter absent) nothing is done, and
// where it is loaded but nothing uses it the table is empty. It is read
// every natPollEvery: conntrack keeps a TCP entry at least 10 s after the
// close (120 s in TIME_WAIT) and a UDP one 30 s after the last packet, so a
// poll every 5 s sees every translated connection. A dump costs the kernel
// about 1.7 µs per entry (and this reader 0.04–0.2 µs more: 0.16–0.21 s for
// a 100,000-entry table, 4 MB of memory), so on a host with a huge table
// the period grows to keep the reading under 2 % of a core.

// natPollEvery is the shortest conntrack polling period; natPollBudget the
// share of a core the polls may use (the period is at least the last
// dump's duration divided by it).
const (
	natPollEvery  = 5 * time.Second
	natPollBudget = 0.02
)

// conntrackCount is the file whose presence says the conntrack module is
// loaded in this network namespace.
var conntrackCount = "/proc/sys/net/netfilter/nf_conntrack_count"

// natSeenKey identifies one translated connection between polls.
type natSeenKey struct {
	proto          uint8
	zone           uint16
	os, od, rs, rd netip.AddrPort
}

// natRecordOf returns the record of a conntrack entry and whether the
// kernel translates it (its reply tuple is not the reverse of the original).
func natRecordOf(e *sockwatch.CtEntry, t int64) (ingest.NATRecord, natSeenKey, bool) {
	k := natSeenKey{proto: e.Orig.Proto, zone: e.Zone, os: e.Orig.Src, od: e.Orig.Dst, rs: e.Reply.Src, rd: e.Reply.Dst}
	if !k.os.Addr().IsValid() || !k.rs.Addr().IsValid() || !e.Translated() {
		return ingest.NATRecord{}, k, false
	}
	return ingest.NATRecord{T: t, Proto: k.proto, Zone: k.zone,
		OrigSrc: k.os.String(), OrigDst: k.od.String(), ReplySrc: k.rs.String(), ReplyDst: k.rd.String()}, k, true
}

// watchNAT records the translated connections of this network namespace's
// conntrack table into rec every natPollEvery until ctx ends (and once
// more then). It returns the number of polls and a note for the manifest
// when conntrack is loaded but could not be read.
func watchNAT(ctx context.Context, rec *records) (polls int, note string) {
	if _, err := os.Stat(conntrackCount); err != nil {
		return 0, "" // not loaded: nothing on this host translates
	}
	c, err := sockwatch.OpenConntrack()
	if err != nil {
		return 0, "conntrack: " + err.Error() + ": NAT translations not recorded"
	}
	defer c.Close()
	seen := map[natSeenKey]struct{}{}
	var took time.Duration
	poll := func() error {
		start := time.Now()
		// An empty table (conntrack loaded, nothing tracked) is not dumped:
		// the kernel would still walk every hash bucket (~9 ms here).
		if b, err := os.ReadFile(conntrackCount); err == nil && strings.TrimSpace(string(b)) == "0" {
			polls++
			took, seen = 0, map[natSeenKey]struct{}{}
			return nil
		}
		now := make(map[natSeenKey]struct{}, len(seen))
		var werr error
		_, _, err := c.Dump(func(e *sockwatch.CtEntry) {
			r, k, ok := natRecordOf(e, start.UnixNano())
			if !ok || werr != nil {
				return
			}
			now[k] = struct{}{}
			if _, old := seen[k]; !old {
				werr = rec.natRecord(r)
			}
		})
		took = time.Since(start)
		if err = errors.Join(err, werr); err != nil {
			return err
		}
		polls++
		seen = now // forget what the kernel forgot: memory stays bounded by the table
		return nil
	}
	var errs []error
	for {
		if err := poll(); err != nil {
			errs = append(errs, err)
			if len(errs) >= 3 {
				break
			}
		}
		wait := max(natPollEvery, time.Duration(float64(took)/natPollBudget))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if err := poll(); err != nil {
				errs = append(errs, err)
			}
			if len(errs) > 0 {
				note = fmt.Sprintf("conntrack: %d of %d reads failed: %v", len(errs), polls+len(errs), errors.Join(errs...))
			}
			return polls, note
		case <-t.C:
		}
	}
	return polls, fmt.Sprintf("conntrack: reading stopped after %d failures: %v", len(errs), errors.Join(errs...))
}

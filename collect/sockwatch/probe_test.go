package sockwatch

import (
	"container/heap"
	"os"
	"testing"
	"time"
)

func TestProberSchedule(t *testing.T) {
	p := newProber("/proc", newProcReader("/proc", 0, 1, 1), 0)
	now := time.Now().UnixNano()
	p.schedule(procEvent{What: procEventFork, PID: 10, Mono: now})
	p.schedule(procEvent{What: procEventExec, PID: 10, Mono: now})
	if len(p.heap) != 2*len(probeDelays) {
		t.Fatalf("%d probes queued", len(p.heap))
	}
	live, last := 0, 0
	var prev time.Time
	for len(p.heap) > 0 {
		it := heap.Pop(&p.heap).(probeItem)
		if it.due.Before(prev) {
			t.Fatal("probes out of order")
		}
		prev = it.due
		if it.gen == p.gens[10] {
			live++
			if it.last {
				last++
			}
		}
	}
	if live != len(probeDelays) || last != 1 {
		t.Errorf("the exec should supersede the fork's probes: %d live, %d last", live, last)
	}
	// A kernel timestamp in the future or far past falls back to now.
	p.schedule(procEvent{What: procEventExec, PID: 11, Mono: now + int64(time.Hour)})
	if d := time.Until(p.heap[0].due); d > time.Second {
		t.Errorf("first probe in %v", d)
	}
}

// TestProbeSelf probes this process: its TCP connection is described from
// the fd, with the process facts read on the way.
func TestProbeSelf(t *testing.T) {
	c, _ := tcpPair(t)
	p := newProber("/proc", newProcReader("/proc", BootTimeNs(), DefaultHashMaxBytes, DefaultHashBudget), 0)
	r := p.probe(os.Getpid(), true)
	if r == nil {
		t.Fatal("no probe result")
	}
	found := false
	for _, s := range r.socks {
		if s.failed != nil {
			t.Skipf("pidfd_getfd unavailable: %v", s.failed)
		}
		found = found || s.inet && s.s.Local.String() == c.LocalAddr().String()
	}
	if !found || r.info == nil || r.info.PID != os.Getpid() || r.start == 0 {
		t.Fatalf("probe %+v", r)
	}
	if r.exe != nil {
		r.exe.Close() // probing ourselves: the open exe is one of our fds
	}
	// Nothing changed: a late probe is skipped by the fd count (Linux ≥ 6.2).
	if cnt, _ := p.walker.fdCount(os.Getpid()); cnt != 0 {
		if r2 := p.probe(os.Getpid(), false); r2 != nil {
			t.Errorf("unchanged process probed again: %+v", r2)
		}
	}
}

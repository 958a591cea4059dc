package analyze

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Validate checks the invariants of r, as pprof's CheckValid does for a
// profile: per-flow sums equal the totals, per-process plus unattributed sums
// equal the totals, host pairs and remote hosts add up to their flows, rates
// are finite and not negative, first ≤ last, and every slice is in its
// documented order. It returns all violations found, joined.
func (r *Result) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	t := &r.Totals
	if t.Traffic.Out != t.All.Out || t.Traffic.In != t.All.In {
		bad("totals: traffic %+v/%+v differs from all %+v/%+v", t.Traffic.Out, t.Traffic.In, t.All.Out, t.All.In)
	}
	if got := t.All.Sum().Packets; got != r.Meta.Packets {
		bad("totals: %d packets by direction, meta says %d", got, r.Meta.Packets)
	}

	// Flows against totals.
	var fo, fu DirCounts
	for i := range r.Flows {
		f := &r.Flows[i]
		checkTraffic(&f.Traffic, fmt.Sprintf("flow %v", f.Key), bad)
		if f.Key.Oriented {
			fo.Out.Add(f.Traffic.Out)
			fo.In.Add(f.Traffic.In)
		} else {
			fu.Unknown.Add(f.Traffic.Total())
		}
		var os Counts
		for _, o := range f.Owners {
			os.Add(o.Traffic)
			if o.Out.Packets+o.In.Packets != o.Traffic.Packets || o.Out.Wire+o.In.Wire != o.Traffic.Wire {
				bad("flow %v: owner %v out+in differs from its counts", f.Key, o.Owner.Proc)
			}
		}
		if os != f.Traffic.Total() {
			bad("flow %v: owners sum to %+v, flow has %+v", f.Key, os, f.Traffic.Total())
		}
	}
	want := DirCounts{Out: sub(t.All.Out, t.NonIP.Out), In: sub(t.All.In, t.NonIP.In), Unknown: sub(t.All.Unknown, t.NonIP.Unknown)}
	if fo.Out != want.Out || fo.In != want.In || fu.Unknown != want.Unknown {
		bad("flows sum to out %+v in %+v unknown %+v; IP totals are %+v", fo.Out, fo.In, fu.Unknown, want)
	}

	// Pairs and remotes against flows.
	var pc, rc Counts
	pflows := 0
	for i := range r.Pairs {
		p := &r.Pairs[i]
		checkTraffic(&p.Traffic, fmt.Sprintf("pair %v-%v", p.A, p.B), bad)
		pc.Add(p.Traffic.Total())
		pflows += p.Flows
	}
	if pc != add(add(want.Out, want.In), want.Unknown) || pflows != len(r.Flows) {
		bad("pairs sum to %+v over %d flows; flows have %+v over %d", pc, pflows, add(add(want.Out, want.In), want.Unknown), len(r.Flows))
	}
	for i := range r.Remotes {
		h := &r.Remotes[i]
		checkTraffic(&h.Traffic, fmt.Sprintf("remote %v", h.Addr), bad)
		rc.Add(h.Traffic.Total())
	}
	if rc != add(want.Out, want.In) {
		bad("remotes sum to %+v; oriented flows have %+v", rc, add(want.Out, want.In))
	}

	// Processes + unattributed against totals.
	var po, pi, uo, ui, uu Counts
	for i := range r.Processes {
		p := &r.Processes[i]
		checkTraffic(&p.Traffic, fmt.Sprintf("process %d", p.Key.PID), bad)
		po.Add(p.Traffic.Out)
		pi.Add(p.Traffic.In)
		var mo, mi Counts
		for _, m := range p.ByMethod {
			mo.Add(m.Out)
			mi.Add(m.In)
		}
		if mo != p.Traffic.Out || mi != p.Traffic.In {
			bad("process %d: methods sum to %+v/%+v, process has %+v/%+v", p.Key.PID, mo, mi, p.Traffic.Out, p.Traffic.In)
		}
		if !sortedBySec(p.Series) {
			bad("process %d: series not sorted", p.Key.PID)
		}
	}
	for _, u := range r.Unattributed {
		uo.Add(u.Out)
		ui.Add(u.In)
		uu.Add(u.Unknown)
	}
	if add(po, uo) != t.All.Out || add(pi, ui) != t.All.In || uu != t.All.Unknown {
		bad("processes+unattributed sum to out %+v in %+v unknown %+v; totals are %+v", add(po, uo), add(pi, ui), uu, t.All)
	}
	ut := &r.UnattributedTraffic
	checkTraffic(ut, "unattributed traffic", bad)
	if ut.Out != uo || ut.In != ui {
		bad("unattributed traffic %+v/%+v; the causes sum to %+v/%+v", ut.Out, ut.In, uo, ui)
	}
	// Window rates add up: the processes' and the unattributed are the
	// totals'.
	ro, ri := ut.OutRate, ut.InRate
	for i := range r.Processes {
		ro.Add(r.Processes[i].Traffic.OutRate)
		ri.Add(r.Processes[i].Traffic.InRate)
	}
	for _, c := range [][2]WindowRates{{ro, t.Traffic.OutRate}, {ri, t.Traffic.InRate}} {
		for w, v := range []float64{c[0].S2, c[0].S10, c[0].S40} {
			if tot := []float64{c[1].S2, c[1].S10, c[1].S40}[w]; math.Abs(v-tot) > 1e-9*tot+1e-9 {
				bad("processes+unattributed window rate %v; totals %v", v, tot)
			}
		}
	}

	// Interfaces against totals.
	var io DirCounts
	for i := range r.Ifaces {
		checkTraffic(&r.Ifaces[i].Traffic, fmt.Sprintf("iface %d", r.Ifaces[i].Index), bad)
		io.Out.Add(r.Ifaces[i].Traffic.Out)
		io.In.Add(r.Ifaces[i].Traffic.In)
		if r.Ifaces[i].Index != i {
			bad("ifaces: entry %d has index %d", i, r.Ifaces[i].Index)
		}
	}
	for _, s := range r.IfaceSeries {
		io.Unknown.Add(s.Unknown)
	}
	if io != t.All {
		bad("interfaces sum to %+v; totals are %+v", io, t.All)
	}

	// Series against totals.
	var so, si, su int64
	for _, b := range r.Series {
		so += b.Out
		si += b.In
		su += b.Unknown
	}
	if so != t.All.Out.Wire || si != t.All.In.Wire || su != t.All.Unknown.Wire {
		bad("series sums %d/%d/%d differ from total wire bytes %d/%d/%d", so, si, su, t.All.Out.Wire, t.All.In.Wire, t.All.Unknown.Wire)
	}
	if !sortedBySec(r.Series) {
		bad("series not sorted by second")
	}
	checkRates(t.UnknownRate, "totals unknown", bad)
	if r.Meta.Packets > 0 && r.Meta.First > r.Meta.Last {
		bad("meta: first %d after last %d", r.Meta.First, r.Meta.Last)
	}
	if r.Coverage.TX < 0 || r.Coverage.TX > 1 || r.Coverage.RX < 0 || r.Coverage.RX > 1 {
		bad("coverage %v/%v outside [0,1]", r.Coverage.TX, r.Coverage.RX)
	}

	// Order.
	if !slices.IsSortedFunc(r.Flows, func(a, b Flow) int {
		return orderBy(totalWire(&a.Traffic), totalWire(&b.Traffic), compareFlowKey(a.Key, b.Key))
	}) {
		bad("flows not sorted by bytes, then key")
	}
	if !slices.IsSortedFunc(r.Pairs, func(a, b HostPair) int {
		return orderBy(totalWire(&a.Traffic), totalWire(&b.Traffic), comparePair(a, b))
	}) {
		bad("pairs not sorted by bytes, then key")
	}
	if !slices.IsSortedFunc(r.Remotes, func(a, b RemoteHost) int {
		return orderBy(totalWire(&a.Traffic), totalWire(&b.Traffic), a.Addr.Compare(b.Addr))
	}) {
		bad("remotes not sorted by bytes, then address")
	}
	if !slices.IsSortedFunc(r.Processes, func(a, b ProcessStat) int {
		return orderBy(totalWire(&a.Traffic), totalWire(&b.Traffic), compareProcKey(a.Key, b.Key))
	}) {
		bad("processes not sorted by bytes, then key")
	}
	// Tunnelled flows: frames of analysed flows, counted once each.
	var tun Counts
	for i := range r.Tunnels {
		tf := &r.Tunnels[i]
		tot := tf.Total()
		tun.Add(tot)
		if tot.Packets <= 0 || tf.First > tf.Last {
			bad("tunnel %v in %v: %d packets, first %d after last %d", tf.Inner, tf.Outer, tot.Packets, tf.First, tf.Last)
		}
		if i > 0 && tot.Wire > r.Tunnels[i-1].Total().Wire {
			bad("tunnels not sorted by wire bytes at %d", i)
		}
	}
	if all := t.All.Sum(); tun.Packets > all.Packets || tun.Wire > all.Wire {
		bad("tunnels: %d packets / %d bytes, more than all %d / %d", tun.Packets, tun.Wire, all.Packets, all.Wire)
	}
	return errors.Join(errs...)
}

// orderBy compares by bytes descending, then by the key comparison kc.
func orderBy(a, b int64, kc int) int {
	if c := cmp.Compare(b, a); c != 0 {
		return c
	}
	return kc
}

func sub(a, b Counts) Counts {
	return Counts{Packets: a.Packets - b.Packets, Wire: a.Wire - b.Wire, IP: a.IP - b.IP, Captured: a.Captured - b.Captured}
}

func add(a, b Counts) Counts { a.Add(b); return a }

func sortedBySec(s []SecondBucket) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1].Sec >= s[i].Sec {
			return false
		}
	}
	return true
}

func checkTraffic(t *Traffic, what string, bad func(string, ...any)) {
	for _, c := range []Counts{t.Out, t.In} {
		if c.Packets < 0 || c.Wire < 0 || c.IP < 0 || c.Captured < 0 {
			bad("%s: negative counts %+v", what, c)
		}
	}
	if t.Total().Packets > 0 && t.First > t.Last {
		bad("%s: first %d after last %d", what, t.First, t.Last)
	}
	checkRates(t.OutRate, what+" out", bad)
	checkRates(t.InRate, what+" in", bad)
	for _, p := range []PeakRate{t.Peak, t.PeakOut, t.PeakIn} {
		if p.Rate < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) {
			bad("%s: bad peak %v", what, p.Rate)
		}
	}
	if t.Peak.Rate*2 > float64(totalWire(t)) || t.PeakOut.Rate*2 > float64(t.Out.Wire) || t.PeakIn.Rate*2 > float64(t.In.Wire) {
		bad("%s: peak exceeds what was sent", what)
	}
}

func checkRates(w WindowRates, what string, bad func(string, ...any)) {
	for _, v := range []float64{w.S2, w.S10, w.S40} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s: bad rate %v", what, v)
		}
	}
}

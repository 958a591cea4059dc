package analyze

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/flowblame/flowblame/ingest"
)

// iftop 1.0pre4 constants (iftop.h, ui_common.c).
const (
	iftopResolution = 2  // seconds per history slot
	iftopHistoryLen = 20 // slots in the ring (40 s)
	iftopBuckets    = 256
	iftopHashMod    = 255
)

// iftopDivs are the slot counts of the 2 s, 10 s and 40 s columns.
var iftopDivs = [3]int{1, 5, 20}

// DefaultIftopLines is iftop's default -L (number of flows printed).
const DefaultIftopLines = 10

// IftopNoLines asks for iftop's "-L 0": pre4 then prints no flow lines
// (the totals are still printed).
const IftopNoLines = -1

// IftopOrder is iftop's -o sort order.
type IftopOrder uint8

// Sort orders, as iftop's -o accepts them.
const (
	IftopOrder10s         IftopOrder = iota // -o 10s (iftop's default)
	IftopOrder2s                            // -o 2s
	IftopOrder40s                           // -o 40s
	IftopOrderSource                        // -o source
	IftopOrderDestination                   // -o destination
)

// ParseIftopOrder parses an -o argument: "2s", "10s", "40s", "source" or
// "destination".
func ParseIftopOrder(s string) (IftopOrder, error) {
	switch s {
	case "2s":
		return IftopOrder2s, nil
	case "10s", "":
		return IftopOrder10s, nil
	case "40s":
		return IftopOrder40s, nil
	case "source":
		return IftopOrderSource, nil
	case "destination":
		return IftopOrderDestination, nil
	}
	return 0, fmt.Errorf("parse iftop sort order %q: want 2s, 10s, 40s, source or destination", s)
}

// IftopPortDisplay is how ports take part in a screen line's key.
type IftopPortDisplay uint8

// Port display modes.
const (
	IftopPortsOff  IftopPortDisplay = iota // default: one line per host pair
	IftopPortsOn                           // -P: full key (protocol, both ports)
	IftopPortsSrc                          // port-display: source-only
	IftopPortsDest                         // port-display: destination-only
)

// IftopVariant selects which iftop build's semantics to reproduce.
type IftopVariant uint8

// Variants.
const (
	// IftopPre4 is the 1.0pre4 tarball (Debian/Ubuntu iftop 1.0~pre4):
	// bytes are the IP length; -L 0 prints no flow lines.
	IftopPre4 IftopVariant = iota
	// IftopGit2017 is upstream git after 2017-01-04: bytes are the pcap
	// length minus the link header, packets shorter than one IP header are
	// dropped, and -L 0 means unlimited.
	IftopGit2017
)

// IftopOptions are the iftop command-line options that change what
// `iftop -t -s S -n -N` prints, plus what iftop reads from the live
// interface (its addresses) and the clock model.
type IftopOptions struct {
	// At is -s: the screen is the one iftop prints at the first tick with
	// t - first >= At (seconds).
	At int
	// PortDisplay is -P (IftopPortsOn) or the default host-pair view.
	PortDisplay IftopPortDisplay
	// Bytes is -B: rates in bytes instead of bits.
	Bytes bool
	// Lines is -L; 0 means DefaultIftopLines, IftopNoLines means "-L 0".
	Lines int
	// Order is -o.
	Order IftopOrder
	// NetFilter4 is -F (IPv4 only); the zero Prefix means not given.
	NetFilter4 netip.Prefix
	// NetFilter6 is -G (IPv6 only); the zero Prefix means not given.
	NetFilter6 netip.Prefix
	// LinkLocal is -l: keep IPv6 packets to or from fe80::/10.
	LinkLocal bool
	// LocalIPv4 is the interface's first IPv4 address (invalid: none).
	LocalIPv4 netip.Addr
	// LocalIPv6 is the interface's first global IPv6 address (invalid: none).
	LocalIPv6 netip.Addr
	// LocalMAC is the interface's hardware address (nil: none).
	LocalMAC []byte
	// Interface is the name printed in "Listening on"; empty takes the
	// first interface name of the source.
	Interface string
	// OnlyInterface, when set, keeps only packets captured on interfaces
	// of that name (iftop watches one interface; a bundle may hold
	// several). Packets whose interface has no name are kept.
	OnlyInterface string
	// Start is when iftop started (Unix ns): its clock starts at
	// floor(Start) and packets captured before Start are ignored. Zero
	// takes the clock second of the first IP packet.
	Start int64
	// EmulateBlocks turns on the libpcap block-delivery model: a packet
	// captured at ts is processed at second ceil(ts - Phase) instead of
	// floor(ts) (spec/iftop.md §1.5). A non-zero Phase turns it on too;
	// φ = 0 needs EmulateBlocks.
	EmulateBlocks bool
	// Phase is φ in [0,1) seconds (its fractional part is used).
	Phase float64
	// Variant selects pre4 (default) or post-2017 git semantics.
	Variant IftopVariant
}

// IftopLine is one two-line entry of iftop's text screen. Rates are what
// iftop hands to readable_size: bytes per second as a float32 (the long
// double quotient converted), before any ×8 for bits.
type IftopLine struct {
	// V6 says the addresses are IPv6 (AF_INET6).
	V6 bool
	// Src is the local side (first line, "=>"), Dst the remote side.
	Src, Dst netip.Addr
	// SrcPort and DstPort are 0 when not displayed.
	SrcPort, DstPort uint16
	// Proto is the IP protocol (0 in the host-pair view).
	Proto uint8
	// Sent and Recv are the 2 s, 10 s and 40 s rates in bytes/s.
	Sent, Recv [3]float32
	// CumSent and CumRecv are the flow's cumulative bytes.
	CumSent, CumRecv int64
}

// IftopScreen is the state iftop -t -s S prints: the flows in display order
// (already cut to -L) and the interface totals.
type IftopScreen struct {
	// Interface is the name for the "Listening on" line.
	Interface string
	// Bytes is -B (rates rendered in bytes).
	Bytes bool
	// Reached is true when a tick with t - first >= At occurred in the
	// capture, i.e. iftop would have printed this screen. When false the
	// capture ended first (iftop would never print: it ticks only on
	// packets); the screen is then the state at the end of the capture.
	Reached bool
	// Clock is the iftop clock second of the print (or of the last packet
	// when Reached is false); First is the clock's start second.
	Clock, First int64
	// Lines are the printed lines, in order, at most -L of them.
	Lines []IftopLine
	// AllLines is the number of screen lines before the -L cut.
	AllLines int
	// SentRate, RecvRate and TotalRate are the interface totals (bytes/s)
	// for the 2 s, 10 s and 40 s columns.
	SentRate, RecvRate, TotalRate [3]float32
	// PeakSent, PeakRecv and PeakTotal are iftop's int peak slot bytes
	// already divided by 2 (bytes/s).
	PeakSent, PeakRecv, PeakTotal int32
	// CumSent and CumRecv are all bytes since start, by direction.
	CumSent, CumRecv int64
	// Packets is how many IP packets drove the clock, Counted how many were
	// accounted (not dropped by the direction and link-local rules).
	Packets, Counted int64
}

// Warning returns a one-line note for stderr when the screen is not one
// iftop would have printed, or "".
func (s *IftopScreen) Warning() string {
	if s.Reached {
		return ""
	}
	if s.Clock < s.First {
		return fmt.Sprintf("iftop view: the capture's timestamps go backwards (its last packet is %d s before its first), "+
			"so the -s tick was never reached; real iftop would not have printed yet; showing the state at the end of the capture",
			s.First-s.Clock)
	}
	return fmt.Sprintf("iftop view: the capture ends %d s after start, before the -s tick; "+
		"real iftop would not have printed yet (it ticks only on packets); showing the state at the end of the capture",
		s.Clock-s.First)
}

// ParseIftopNetFilter parses an iftop -F/-G argument: "net/len", or for
// IPv4 also "net/a.b.c.d" (dotted mask, which must be contiguous). A bare
// address means a host (/32 or /128). The result is masked.
func ParseIftopNetFilter(s string) (netip.Prefix, error) {
	addrPart, maskPart, hasMask := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addrPart)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("parse iftop net filter %q: bad address", s)
	}
	a = a.Unmap()
	bits := a.BitLen()
	if hasMask {
		if n, err := strconv.Atoi(maskPart); err == nil {
			if n < 0 || n > a.BitLen() || (a.Is6() && n == 0) {
				return netip.Prefix{}, fmt.Errorf("parse iftop net filter %q: prefix length out of range", s)
			}
			bits = n
		} else {
			m, err := netip.ParseAddr(maskPart)
			if err != nil || !m.Is4() || !a.Is4() {
				return netip.Prefix{}, fmt.Errorf("parse iftop net filter %q: bad mask", s)
			}
			v := binary.BigEndian.Uint32(m.AsSlice())
			ones := 0
			for ones < 32 && v&(1<<(31-ones)) != 0 {
				ones++
			}
			if ones < 32 && v<<ones != 0 {
				return netip.Prefix{}, fmt.Errorf("parse iftop net filter %q: non-contiguous mask", s)
			}
			bits = ones
		}
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("parse iftop net filter %q: %w", s, err)
	}
	return p, nil
}

// iftopKey is iftop's addr_pair: address family, both addresses (IPv4 in
// the first 4 bytes), ports and protocol.
type iftopKey struct {
	v6           bool
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
}

func (k *iftopKey) hash() int {
	n := 4
	if k.v6 {
		n = 16
	}
	s := 0
	for _, b := range k.src[:n] {
		s += int(b)
	}
	h := (s + int(k.sport)) % iftopHashMod
	s = 0
	for _, b := range k.dst[:n] {
		s += int(b)
	}
	return (h + s + int(k.dport)) % iftopHashMod
}

// iftopHist is one history entry (history_type).
type iftopHist struct {
	key              iftopKey
	sent, recv       [iftopHistoryLen]int64
	totSent, totRecv int64
	lastWrite        int
}

// iftopHash reproduces iftop's chained hash: 256 buckets, new entries at
// the head of their bucket, iteration bucket by bucket from the head. A
// bucket's slice holds its chain tail first (the head is the last element),
// so that adding at the head is an append, not a copy of the chain.
type iftopHash[T any] struct {
	buckets [iftopBuckets][]T
	index   map[iftopKey]T
}

func newIftopHash[T any]() *iftopHash[T] {
	return &iftopHash[T]{index: make(map[iftopKey]T)}
}

func (h *iftopHash[T]) insert(k iftopKey, v T) {
	b := k.hash()
	h.buckets[b] = append(h.buckets[b], v)
	h.index[k] = v
}

func (h *iftopHash[T]) each(f func(T)) {
	for _, b := range h.buckets {
		for i := len(b) - 1; i >= 0; i-- {
			f(b[i])
		}
	}
}

// iftopState is iftop's capture-side state: the history hash, the totals
// ring and the clock.
type iftopState struct {
	opts       IftopOptions
	hist       *iftopHash[*iftopHist]
	pos, hlen  int
	totSent    [iftopHistoryLen]int64
	totRecv    [iftopHistoryLen]int64
	cumSent    int64
	cumRecv    int64
	first      int64
	last       int64
	started    bool
	nPackets   int64
	nCounted   int64
	lastClock  int64
	phaseNanos int64
}

// Iftop replays src in capture order through iftop 1.0pre4's text-mode
// engine and returns the screen `iftop -t -s opts.At` would print. Only IP
// packets (those passing iftop's "ip or ip6" filter) drive the clock. If
// the capture ends before the print tick, the state at the end of the
// capture is returned with Reached false (see IftopScreen.Warning). The
// error is non-nil only when src fails or ctx is cancelled.
func Iftop(ctx context.Context, src ingest.PacketSource, opts IftopOptions) (*IftopScreen, error) {
	st := &iftopState{opts: opts, hist: newIftopHash[*iftopHist](), hlen: 1}
	if opts.Phase != 0 {
		st.opts.EmulateBlocks = true
	}
	if st.opts.EmulateBlocks {
		ph := opts.Phase - math.Floor(opts.Phase)
		if math.IsNaN(ph) || math.IsInf(opts.Phase, 0) {
			ph = 0
		}
		st.phaseNanos = min(int64(math.Round(ph*1e9)), 1e9-1)
	}
	if opts.Start != 0 {
		st.first = floorDiv(opts.Start, 1e9)
		st.last = st.first
		st.started = true
	}
	var p ingest.Packet
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("iftop view: read packets: %w", err)
		}
		// "ip or ip6" also passes IP frames the decoder found malformed:
		// they tick iftop's clock (what iftop then counts from the garbage
		// cannot be reproduced; flowblame counts nothing).
		malformedIP := p.Kind == ingest.KindMalformed && (p.EtherType == 0x0800 || p.EtherType == 0x86dd)
		if p.Kind != ingest.KindIP && !malformedIP {
			continue
		}
		if opts.OnlyInterface != "" {
			if ifs := src.Interfaces(); p.Iface >= 0 && p.Iface < len(ifs) && ifs[p.Iface].Name != "" && ifs[p.Iface].Name != opts.OnlyInterface {
				continue
			}
		}
		if opts.Start != 0 && p.TS < opts.Start {
			continue
		}
		t := st.clock(p.TS)
		if !st.started {
			st.first, st.last, st.started = t, t, true
		}
		st.nPackets++
		st.lastClock = t
		if t-st.last >= iftopResolution {
			if t-st.first >= int64(opts.At) {
				scr := st.analyse()
				scr.Reached = true
				scr.Clock = t
				return st.finish(scr, src), nil
			}
			st.rotate()
			st.last = t
		}
		if !malformedIP {
			st.account(&p)
		}
	}
	scr := st.analyse()
	scr.Clock = st.lastClock
	if !st.started {
		scr.Clock = st.first
	}
	return st.finish(scr, src), nil
}

func (st *iftopState) finish(scr *IftopScreen, src ingest.PacketSource) *IftopScreen {
	scr.First = st.first
	scr.Packets = st.nPackets
	scr.Counted = st.nCounted
	scr.Bytes = st.opts.Bytes
	scr.Interface = st.opts.Interface
	if scr.Interface == "" {
		if ifs := src.Interfaces(); len(ifs) > 0 {
			scr.Interface = ifs[0].Name
		}
	}
	return scr
}

// clock maps a capture timestamp to iftop's time(NULL) at processing.
func (st *iftopState) clock(ts int64) int64 {
	if !st.opts.EmulateBlocks {
		return floorDiv(ts, 1e9)
	}
	return -floorDiv(-(ts - st.phaseNanos), 1e9) // ceil((ts-φ)/1s)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// rotate is history_rotate: one slot forward, expire entries last written
// 20 rotations ago, clear the new slot.
func (st *iftopState) rotate() {
	st.pos = (st.pos + 1) % iftopHistoryLen
	for b := range st.hist.buckets {
		chain := st.hist.buckets[b]
		kept := chain[:0]
		for _, h := range chain {
			if h.lastWrite == st.pos {
				delete(st.hist.index, h.key)
				continue
			}
			h.sent[st.pos], h.recv[st.pos] = 0, 0
			kept = append(kept, h)
		}
		for i := len(kept); i < len(chain); i++ {
			chain[i] = nil
		}
		st.hist.buckets[b] = kept
	}
	st.totSent[st.pos], st.totRecv[st.pos] = 0, 0
	if st.hlen < iftopHistoryLen {
		st.hlen++
	}
}

// hwDir is the direction the link layer gives away: 1 out, 0 in, -1 unknown.
func (st *iftopState) hwDir(p *ingest.Packet) int {
	switch {
	case p.HasMAC:
		mac := st.opts.LocalMAC
		if len(mac) == 6 && bytes.Equal(p.SrcMAC[:], mac) {
			return 1
		}
		if len(mac) == 6 && bytes.Equal(p.DstMAC[:], mac) {
			return 0
		}
		if p.DstMAC == [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
			return 0
		}
	case p.Link == ingest.LinkSLL || p.Link == ingest.LinkSLL2:
		switch p.SLLType {
		case 0: // LINUX_SLL_HOST
			return 0
		case 4: // LINUX_SLL_OUTGOING
			return 1
		}
	}
	return -1
}

// account is handle_ip_packet after the tick: direction, key, accounting.
func (st *iftopState) account(p *ingest.Packet) {
	o := &st.opts
	src, dst := p.Tuple.Src.Addr(), p.Tuple.Dst.Addr()
	v4 := src.Is4()
	flip, out := -1, false
	nf := o.NetFilter4
	if !v4 {
		nf = o.NetFilter6
	}
	if !nf.IsValid() {
		hw := st.hwDir(p)
		switch {
		case hw == 1:
			flip, out = 0, true
		case hw == 0:
			flip = 1
		case v4 && o.LocalIPv4.IsValid() && src == o.LocalIPv4:
			flip, out = 0, true
		case v4 && o.LocalIPv4.IsValid() && dst == o.LocalIPv4:
			flip = 1
		case !v4 && o.LocalIPv6.IsValid() && src == o.LocalIPv6:
			flip, out = 0, true
		case !v4 && o.LocalIPv6.IsValid() && dst == o.LocalIPv6:
			flip = 1
		case v4 && dst.As4()[3]&0xf0 == 0xe0:
			// IN_MULTICAST applied to the network-order word: on a
			// little-endian host it tests the last octet.
			flip = 1
		case !v4 && dst.As16()[0] == 0xff:
			flip = 1
		case v4:
			s4, d4 := src.As4(), dst.As4()
			if binary.LittleEndian.Uint32(s4[:]) < binary.LittleEndian.Uint32(d4[:]) {
				flip = 1
			} else {
				flip = 0
			}
		default:
			return // IPv6 with no decision: dropped
		}
	}
	if nf.IsValid() {
		// Rule B (-F/-G): direction by net membership; both in or both out
		// are dropped.
		sIn, dIn := nf.Contains(src), nf.Contains(dst)
		switch {
		case sIn && !dIn:
			flip, out = 0, true
		case dIn && !sIn:
			flip, out = 1, false
		default:
			return
		}
	}
	if !v4 && !o.LinkLocal && (src.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast()) {
		return
	}
	var length int64
	if o.Variant == IftopGit2017 {
		length = int64(p.WireLen - linkHeaderLen(p))
		min := 20
		if !v4 {
			min = 40
		}
		if length < int64(min) {
			return
		}
	} else {
		length = int64(p.IPLen)
	}

	k := iftopKey{v6: !v4, proto: p.Tuple.Proto}
	var sport, dport uint16
	if p.Tuple.Proto == ingest.ProtoTCP || p.Tuple.Proto == ingest.ProtoUDP {
		sport, dport = p.Tuple.Src.Port(), p.Tuple.Dst.Port()
	}
	s16, d16 := addrBytes(src), addrBytes(dst)
	if flip == 0 {
		k.src, k.dst, k.sport, k.dport = s16, d16, sport, dport
	} else {
		k.src, k.dst, k.sport, k.dport = d16, s16, dport, sport
	}
	h, ok := st.hist.index[k]
	if !ok {
		h = &iftopHist{key: k}
		st.hist.insert(k, h)
	}
	h.lastWrite = st.pos
	if k.src == s16 {
		h.sent[st.pos] += length
		h.totSent += length
	} else {
		h.recv[st.pos] += length
		h.totRecv += length
	}
	if out {
		st.totSent[st.pos] += length
		st.cumSent += length
	} else {
		st.totRecv[st.pos] += length
		st.cumRecv += length
	}
	st.nCounted++
}

// linkHeaderLen is the link header the post-2017 variant subtracts.
func linkHeaderLen(p *ingest.Packet) int {
	switch p.Link {
	case ingest.LinkEthernet:
		return 14
	case ingest.LinkSLL:
		return 16
	case ingest.LinkSLL2:
		return 20
	case ingest.LinkNull, ingest.LinkLoop:
		return 4
	}
	return 0
}

func addrBytes(a netip.Addr) [16]byte {
	var b [16]byte
	if a.Is4() {
		v := a.As4()
		copy(b[:], v[:])
		return b
	}
	return a.As16()
}

func bytesAddr(v6 bool, b [16]byte) netip.Addr {
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// ld is an x87 long double (64-bit significand), emulated with big.Float.
type ld = *big.Float

func ldQuo(sum int64, div int) ld {
	z := new(big.Float).SetPrec(64).SetMode(big.ToNearestEven)
	return z.Quo(new(big.Float).SetInt64(sum), new(big.Float).SetInt64(int64(div)))
}

func ldAdd(a, b ld) ld {
	return new(big.Float).SetPrec(64).SetMode(big.ToNearestEven).Add(a, b)
}

func ldFloat32(x ld) float32 {
	f, _ := x.Float32()
	return f
}

// screenLine is host_pair_line during analysis.
type screenLine struct {
	key              iftopKey
	sentSum, recvSum [3]int64
	sent, recv       [3]ld
	both             [3]ld // sent+recv, what the sort compares
	bothKey          [3]ldKeyT
	totSent, totRecv int64
	host             string // rendered address for -o source/destination
}

// histLength is history_length(j) in seconds.
func (st *iftopState) histLength(j int) int {
	if st.hlen < iftopDivs[j] {
		return st.hlen * iftopResolution
	}
	return iftopDivs[j] * iftopResolution
}

// analyse is analyse_data + make_screen_list + calculate_totals.
func (st *iftopState) analyse() *IftopScreen {
	o := &st.opts
	screen := newIftopHash[*screenLine]()
	st.hist.each(func(h *iftopHist) {
		k := h.key
		if o.PortDisplay == IftopPortsDest || o.PortDisplay == IftopPortsOff {
			k.sport = 0
		}
		if o.PortDisplay == IftopPortsSrc || o.PortDisplay == IftopPortsOff {
			k.dport = 0
		}
		if o.PortDisplay == IftopPortsOff {
			k.proto = 0
		}
		l, ok := screen.index[k]
		if !ok {
			l = &screenLine{key: k}
			screen.insert(k, l)
		}
		l.totSent += h.totSent
		l.totRecv += h.totRecv
		for i := 0; i < iftopHistoryLen; i++ {
			ii := (iftopHistoryLen + st.pos - i) % iftopHistoryLen
			for j := range iftopDivs {
				if i < iftopDivs[j] {
					l.sentSum[j] += h.sent[ii]
					l.recvSum[j] += h.recv[ii]
				}
			}
		}
	})

	var list []*screenLine
	screen.each(func(l *screenLine) {
		for j := range iftopDivs {
			n := st.histLength(j)
			l.sent[j] = ldQuo(l.sentSum[j], n)
			l.recv[j] = ldQuo(l.recvSum[j], n)
			l.both[j] = ldAdd(l.recv[j], l.sent[j])
		}
		switch o.Order {
		case IftopOrderSource:
			l.host = inetNtop(l.key.v6, l.key.src)
		case IftopOrderDestination:
			l.host = inetNtop(l.key.v6, l.key.dst)
		}
		for j := range iftopDivs {
			l.bothKey[j] = ldKey(l.both[j])
		}
		list = append(list, l)
	})
	// sorted_list_insert skips every item the new one does not beat, so
	// the list is the lines in insertion order, stably sorted (a sort, not
	// iftop's insertion, which is quadratic: a flood has millions of pairs).
	slices.SortStableFunc(list, st.compare)

	scr := &IftopScreen{AllLines: len(list)}
	limit := o.Lines
	switch {
	case limit == 0:
		limit = DefaultIftopLines
	case limit < 0 && o.Variant == IftopGit2017:
		limit = len(list)
	case limit < 0:
		limit = 0
	}
	for i, l := range list {
		if i >= limit {
			break
		}
		il := IftopLine{
			V6: l.key.v6, Src: bytesAddr(l.key.v6, l.key.src), Dst: bytesAddr(l.key.v6, l.key.dst),
			SrcPort: l.key.sport, DstPort: l.key.dport, Proto: l.key.proto,
			CumSent: l.totSent, CumRecv: l.totRecv,
		}
		for j := range iftopDivs {
			il.Sent[j] = ldFloat32(l.sent[j])
			il.Recv[j] = ldFloat32(l.recv[j])
		}
		scr.Lines = append(scr.Lines, il)
	}

	// calculate_totals
	var sumS, sumR [3]int64
	var peakS, peakR, peakT int32
	for i := 0; i < iftopHistoryLen; i++ {
		ii := (iftopHistoryLen + st.pos - i) % iftopHistoryLen
		for j := range iftopDivs {
			if i < iftopDivs[j] {
				sumS[j] += st.totSent[ii]
				sumR[j] += st.totRecv[ii]
			}
		}
		if st.totRecv[i] > int64(peakR) {
			peakR = int32(st.totRecv[i])
		}
		if st.totSent[i] > int64(peakS) {
			peakS = int32(st.totSent[i])
		}
		if t := st.totRecv[i] + st.totSent[i]; t > int64(peakT) {
			peakT = int32(t)
		}
	}
	for j := range iftopDivs {
		n := st.histLength(j)
		s, r := ldQuo(sumS[j], n), ldQuo(sumR[j], n)
		scr.SentRate[j] = ldFloat32(s)
		scr.RecvRate[j] = ldFloat32(r)
		scr.TotalRate[j] = ldFloat32(ldAdd(s, r))
	}
	scr.PeakSent = peakS / iftopResolution
	scr.PeakRecv = peakR / iftopResolution
	scr.PeakTotal = peakT / iftopResolution
	scr.CumSent, scr.CumRecv = st.cumSent, st.cumRecv
	return scr
}

// after reports whether sorted_list_insert moves the new line a past the
// existing line b (screen_line_compare(a, b) > 0).
// compare orders screen lines as iftop's screen_line_bandwidth_compare
// (two-line display) and its -o source/destination do: by the chosen
// column and those after it, bigger first (the first differing column
// decides), or by the host string, then the 40 s column. 0 means iftop
// would keep the insertion order.
func (st *iftopState) compare(a, b *screenLine) int {
	start := 2
	switch st.opts.Order {
	case IftopOrder2s:
		start = 0
	case IftopOrder10s:
		start = 1
	case IftopOrder40s:
	default:
		if c := strings.Compare(a.host, b.host); c != 0 {
			return c
		}
	}
	for j := start; j < len(iftopDivs); j++ {
		if c := b.bothKey[j].cmp(a.bothKey[j]); c != 0 {
			return c // bigger first
		}
	}
	return 0
}

// ldKeyT is a non-negative ld as integers that compare as it does: its
// binary exponent, then its 64-bit significand.
type ldKeyT struct {
	exp  int
	mant uint64
}

func (k ldKeyT) cmp(o ldKeyT) int {
	if c := cmp.Compare(k.exp, o.exp); c != 0 {
		return c
	}
	return cmp.Compare(k.mant, o.mant)
}

// ldKey returns x's key; x must be ≥ 0 with at most 64 bits of precision.
func ldKey(x ld) ldKeyT {
	if x.Sign() == 0 {
		return ldKeyT{exp: math.MinInt}
	}
	m := new(big.Float)
	exp := x.MantExp(m) // x = m × 2^exp, 0.5 ≤ m < 1
	m.SetMantExp(m, 64) // an integer in [2^63, 2^64)
	u, _ := m.Uint64()
	return ldKeyT{exp: exp, mant: u}
}

// inetNtop formats an address as glibc's inet_ntop does.
func inetNtop(v6 bool, b [16]byte) string {
	if !v6 {
		return netip.AddrFrom4([4]byte(b[:4])).String()
	}
	var w [8]int
	for i := range w {
		w[i] = int(b[2*i])<<8 | int(b[2*i+1])
	}
	// Longest run of zero words (first one on ties), at least 2 long.
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i := 0; i < 8; i++ {
		if w[i] == 0 {
			if curBase < 0 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
			continue
		}
		if curBase >= 0 && curLen > bestLen {
			bestBase, bestLen = curBase, curLen
		}
		curBase = -1
	}
	if curBase >= 0 && curLen > bestLen {
		bestBase, bestLen = curBase, curLen
	}
	if bestLen < 2 {
		bestBase = -1
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if bestBase >= 0 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				sb.WriteByte(':')
			}
			continue
		}
		if i != 0 {
			sb.WriteByte(':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && w[5] == 0xffff)) {
			fmt.Fprintf(&sb, "%d.%d.%d.%d", b[12], b[13], b[14], b[15])
			break
		}
		sb.WriteString(strconv.FormatInt(int64(w[i]), 16))
	}
	if bestBase >= 0 && bestBase+bestLen == 8 {
		sb.WriteByte(':')
	}
	return sb.String()
}

// InetNtop formats a as glibc inet_ntop does (what iftop -n prints): IPv6
// in the compressed form, with an embedded IPv4 dotted quad for
// ::ffff:a.b.c.d and ::a.b.c.d.
func InetNtop(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return inetNtop(true, a.As16())
}

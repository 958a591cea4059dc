package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/analyze/geoip"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/report"
)

// analyzeOptions is everything `flowblame analyze` needs; Action fills it
// from flags and runAnalyze does the work.
type analyzeOptions struct {
	Inputs    []string  // bundle, or capture files ("-": Stdin)
	Stdin     io.Reader // standard input (nil: os.Stdin)
	Pcaps     []string
	Sockets   []string
	Conntrack []string
	Format    string
	Output    string
	Local     []string
	LocalMACs []string
	Top       int
	Group     string
	Sort      string
	From, To  string
	At        string
	Bytes     bool
	Strict    bool
	FailOn    string
	MaxFlows  int // analyze.Options.MaxFlows
	// iftop view
	Ports     bool
	Lines     int
	Order     string
	NetFilter string
	// NetFilter6 is iftop's -G (IPv6 only).
	NetFilter6 string
	LinkLocal  bool
	Phase      float64
	Ifaces     []string
	Start      string

	GeoDB       string
	ASNDB       string
	HomeCountry string
	Policy      string
	Proxies     []string // [NAME=]CIDR of reverse proxies in front of the host

	Command string
	Version string
}

func analyzeCommand() *cli.Command {
	return &cli.Command{
		Name:      "analyze",
		Usage:     "replay a bundle or captures: rates, owning processes, remote hosts, findings",
		ArgsUsage: "BUNDLE | CAPTURE...",
		Description: `Analyze a bundle written by 'flowblame collect' (a directory or .tar.gz), or bare
pcap/pcapng captures, plain or gzip/zstd/lz4-compressed, or a directory of them (several
files are merged in time order; - reads one from standard input, e.g.
'tcpdump -w - | flowblame analyze -'). With --sockets,
ss/lsof/netstat/PowerShell dumps taken in a loop join the capture's flows to processes.

Volumes count wire bytes (original frame length, as tshark). Rates are averages over the
2 s / 10 s / 40 s before the report instant (--at; default: the last packet), in bits/s
unless --bytes; peak is the highest 2 s average over the whole capture.

--format iftop prints exactly what 'iftop -t -s AT -n -N' (1.0pre4) would have printed,
had it been started at the capture's first packet; -P, -B, -L, -o, -F, -G as in iftop.

Exit status: 0 ok, 1 error, 2 usage, 3 a finding at or above --fail-on exists.`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "pcap", Usage: "capture `FILE` (repeatable; also accepted as arguments)"},
			&cli.StringSliceFlag{Name: "sockets", Usage: "socket dump `FILE` (ss -tunap, lsof -i, netstat, Windows netstat -ano + tasklist, PowerShell); repeatable"},
			&cli.StringSliceFlag{Name: "conntrack", Usage: "NAT translations `FILE` (conntrack -L, or a copy of /proc/net/nf_conntrack) taken with the capture on a host with containers behind NAT; repeatable"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "output `FORMAT`: text (tables), json (the versioned schema), md (for a ticket), html (one self-contained page with charts), brief (the short console answer collect prints) or iftop (iftop -t's block)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"w"}, Usage: "write the report to `FILE` instead of stdout"},
			&cli.StringSliceFlag{Name: "local", Usage: "local address `CIDR`s (comma-separated) for direction; default: the bundle's interface addresses"},
			&cli.StringSliceFlag{Name: "local-mac", Usage: "local interface `MAC`(s) for direction (and iftop's hardware direction)"},
			&cli.IntFlag{Name: "top", Aliases: []string{"n"}, Value: 10, Usage: "rows per table (-1: all)"},
			&cli.StringFlag{Name: "group", Value: "pair", Usage: "conversation rows: pair (host pairs), flow (5-tuples) or remote (remote hosts)"},
			&cli.StringFlag{Name: "sort", Aliases: []string{"o", "order"}, Usage: "`ORDER` of the conversations: total (default), 2s, 10s, 40s or peak, like iftop -o; of the iftop view: 2s, 10s (default), 40s, source or destination"},
			&cli.StringFlag{Name: "from", Usage: "analyse from `TIME` (RFC 3339, or seconds after the first packet)"},
			&cli.StringFlag{Name: "to", Usage: "analyse up to `TIME` (RFC 3339, or seconds after the first packet)"},
			&cli.StringFlag{Name: "at", Usage: "report instant `TIME` for 2/10/40 s rates (RFC 3339, or seconds after the first packet); for --format iftop, iftop's -s seconds (default 10)"},
			&cli.BoolFlag{Name: "bytes", Aliases: []string{"B"}, Usage: "rates in bytes/s instead of bits/s"},
			&cli.BoolFlag{Name: "strict", Usage: "treat any unreadable record as a fatal error"},
			&cli.IntFlag{Name: "max-flows", Value: defaultMaxFlows, Usage: "keep at most `N` flows (5-tuples) apart, about 2 KB of memory each; further new flows (a spoofed-source flood, a scan) are counted in aggregates by host pair, then by protocol, and a diagnostic says so (0: no limit)"},
			&cli.StringFlag{Name: "fail-on", Usage: "exit 3 when a finding of `SEVERITY` or worse exists (info, low, medium, high, critical)"},
			&cli.StringFlag{Name: "policy", Usage: "allow-list `FILE` (JSON: processes, countries, ASNs, rate limits); traffic outside it is a policy-violation finding"},
			&cli.StringSliceFlag{Name: "proxy", Usage: "[NAME=]`CIDR` of a reverse proxy in front of this host that flowblame does not know (a CDN's or load balancer's origin-facing range, e.g. CloudFront=130.176.0.0/16; comma-separated or repeated): its connections carry many visitors and are not taken for flooding clients"},
			&cli.StringFlag{Name: "geoip-db", Usage: "country (or city) mmdb `FILE` (GeoLite2, DB-IP); default: $FLOWBLAME_GEOIP_DB, /usr/share/GeoIP, /var/lib/GeoIP, else the embedded DB-IP Lite country database"},
			&cli.StringFlag{Name: "asn-db", Usage: "ASN mmdb `FILE` (GeoLite2-ASN, DB-IP ASN Lite); default: $FLOWBLAME_ASN_DB or the usual locations"},
			&cli.StringFlag{Name: "home-country", Usage: "ISO `CODE` of the host's country; other countries are flagged foreign (default: the country of the host's own public address)"},
			&cli.BoolFlag{Name: "ports", Aliases: []string{"P"}, Usage: "iftop view: show ports (iftop -P)"},
			&cli.IntFlag{Name: "lines", Aliases: []string{"L"}, Value: 10, Usage: "iftop view: number of lines (iftop -L)"},
			&cli.StringFlag{Name: "net-filter", Aliases: []string{"F"}, Usage: "iftop view: IPv4 `NET/LEN` that decides direction (iftop -F; an IPv6 network is taken as -G)"},
			&cli.StringFlag{Name: "net-filter6", Aliases: []string{"G"}, Usage: "iftop view: IPv6 `NET/LEN` that decides direction (iftop -G)"},
			&cli.BoolFlag{Name: "link-local", Usage: "iftop view: count IPv6 link-local traffic (iftop -l)"},
			&cli.Float64Flag{Name: "phase", Usage: "iftop view: emulate libpcap's 1 s block delivery with this phase in [0,1) (spec/iftop.md §1.5)"},
			&cli.StringSliceFlag{Name: "interface", Aliases: []string{"i"}, Usage: "analyse only frames captured on these `NAME`s (comma-separated or repeated; default all), e.g. the uplink of a host whose bridges and container veths carry the same packets again; the iftop view takes one, like iftop -i"},
			&cli.StringFlag{Name: "start", Usage: "iftop view: when iftop would have been started (RFC 3339); default: the bundle's collection start, else the first IP packet"},
		},
		Action: func(c *cli.Context) error {
			o := analyzeOptions{
				Inputs: c.Args().Slice(), Pcaps: c.StringSlice("pcap"), Sockets: c.StringSlice("sockets"), Conntrack: c.StringSlice("conntrack"),
				Format: c.String("format"), Output: c.String("output"), Local: c.StringSlice("local"),
				LocalMACs: c.StringSlice("local-mac"), Top: c.Int("top"), Group: c.String("group"), Sort: c.String("sort"),
				From: c.String("from"), To: c.String("to"), At: c.String("at"), Bytes: c.Bool("bytes"),
				Strict: c.Bool("strict"), FailOn: c.String("fail-on"), MaxFlows: c.Int("max-flows"), Ports: c.Bool("ports"), Lines: c.Int("lines"),
				Order: c.String("sort"), NetFilter: c.String("net-filter"), NetFilter6: c.String("net-filter6"), LinkLocal: c.Bool("link-local"),
				Phase: c.Float64("phase"), Ifaces: c.StringSlice("interface"), Start: c.String("start"),
				GeoDB: c.String("geoip-db"), ASNDB: c.String("asn-db"), HomeCountry: c.String("home-country"), Policy: c.String("policy"),
				Proxies: c.StringSlice("proxy"),
				Command: commandLine(c), Version: version, Stdin: c.App.Reader,
			}
			return runAnalyze(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// defaultMaxFlows is --max-flows: 500,000 flows take about 1 GB (with the
// aggregates past them, at most 625,000 entries); the benchmark's 200,000
// stay exact.
const defaultMaxFlows = 500_000

// parseTimeArg accepts RFC 3339 or seconds after first (Unix ns). Zero
// means unset.
func parseTimeArg(s string, first int64) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, usagef("bad time %q: want RFC 3339 or seconds after the first packet", s)
	}
	return first + int64(f*1e9), nil
}

// isBundle reports whether path is a bundle (directory with manifest.json or
// a tar archive).
func isBundle(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		_, err := os.Stat(filepath.Join(path, ingest.ManifestFile))
		return err == nil
	}
	n := strings.ToLower(path)
	return strings.HasSuffix(n, ".tar.gz") || strings.HasSuffix(n, ".tgz") || strings.HasSuffix(n, ".tar")
}

// notBundleHint explains an input that looks like a bundle but is not one:
// a directory without manifest.json (perhaps the bundle is one level down),
// or the manifest itself given instead of its directory.
func notBundleHint(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return nil // the capture reader says what is wrong
	}
	if st.IsDir() {
		hint := ""
		if ents, err := os.ReadDir(path); err == nil {
			for _, e := range ents {
				if sub := filepath.Join(path, e.Name()); e.IsDir() && isBundle(sub) {
					hint = fmt.Sprintf("; the bundle is %s", sub)
					break
				}
			}
		}
		return fmt.Errorf("%s is a directory but not a bundle: it has no %s%s", path, ingest.ManifestFile, hint)
	}
	if filepath.Base(path) == ingest.ManifestFile {
		return fmt.Errorf("%s is a bundle's manifest: give the bundle directory, %s", path, filepath.Dir(path))
	}
	return nil
}

// maxProbed bounds the files of a directory captureDir opens.
const maxProbed = 10_000

// captureDir resolves a directory that is not a bundle to the capture
// files in it (rotated tcpdump files, say: each is opened to check its
// header, at most maxProbed), in name order, with a diagnostic saying so.
// ok is false for anything else: a file, a bundle, a directory holding a
// bundle or no capture (notBundleHint explains those).
func captureDir(dir string) (files []string, d ingest.Diagnostic, ok bool) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || isBundle(dir) {
		return nil, d, false
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, d, false
	}
	other := 0
	for _, e := range ents[:min(len(ents), maxProbed)] {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() && isBundle(p) {
			return nil, d, false
		}
		if !e.Type().IsRegular() {
			continue
		}
		src, err := ingest.OpenCapture(p, ingest.Options{})
		if err != nil {
			other++
			continue
		}
		src.Close()
		files = append(files, p)
	}
	if len(files) == 0 {
		return nil, d, false
	}
	msg := fmt.Sprintf("not a bundle (no %s): its %d capture files are analysed, merged in time order", ingest.ManifestFile, len(files))
	if other > 0 {
		msg += fmt.Sprintf("; %d other files left out", other)
	}
	if len(ents) > maxProbed {
		msg += fmt.Sprintf("; only the first %d entries were looked at", maxProbed)
	}
	return files, ingest.Diagnostic{File: dir, Kind: ingest.DiagInfo, Where: "directory", Offset: -1, Count: 1, Msg: msg}, true
}

// prefixOrAddr parses a CIDR (masked) or a single address (as a /32 or
// /128).
func prefixOrAddr(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// analysisInput is what the inputs resolve to.
type analysisInput struct {
	bundle  *ingest.Bundle
	src     ingest.PacketSource
	local   []netip.Prefix
	macs    [][6]byte
	proxies []analyze.UserProxy // --proxy
	attr    analyze.Attributor
	nat     *analyze.NATIndex // the bundle's NAT translations, nil without
	procs   map[ingest.ProcKey]ingest.ProcessInfo
	diags   []ingest.Diagnostic
	sources []string
	// sockets is the socket-data join (nil without socket data).
	sockets *analyze.SocketIndex
	// stdin: the capture is standard input; stdinFirst is its first
	// packet's time (0 without packets), stdinHints the process hints it
	// carries (nil without).
	stdin         bool
	stdinFirst    int64
	stdinFirstErr error // why stdinFirst is unknown
	stdinHints    *analyze.HintIndex
	// stdinInterrupted: a signal came while the look-aheads read standard
	// input; the source holds what they read, the analysis must not stop.
	stdinInterrupted bool
}

// stdinLookahead bounds what is kept of standard input to look at its
// beginning before the analysis reads it from the start (a variable for
// tests).
var stdinLookahead = 64 << 20

// openStdin sets standard input as the capture. It can be read only once,
// so the look-aheads that reopen files (the first packet's time, process
// hints) read its first bytes, kept in memory, and the analysis then reads
// it from the start. Process hints need a whole pass before the analysis:
// they are used when the capture fits in stdinLookahead, else a diagnostic
// says they were not.
func (in *analysisInput) openStdin(ctx context.Context, stdin io.Reader, iopts ingest.Options) error {
	const name = "stdin"
	if stdin == nil {
		stdin = os.Stdin
	}
	if isTerminal(stdin) {
		return usagef("- reads the capture from standard input, which is a terminal: pipe a capture into it (tcpdump -w - | flowblame analyze -)")
	}
	rw := ingest.NewRewinder(newCtxReader(ctx, stdin), stdinLookahead)
	diag := func(msg string) {
		in.diags = append(in.diags, ingest.Diagnostic{File: name, Kind: ingest.DiagUnsupported, Where: "file", Offset: -1, Count: 1, Msg: msg})
	}
	src, err := ingest.NewReader(rw.Open(), name, ingest.Options{})
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted while reading standard input: %w", ctx.Err())
		}
		return err
	}
	var p ingest.Packet
	if err := src.Next(&p); err == nil {
		in.stdinFirst = p.TS
	} else if rw.Exceeded() {
		in.stdinFirstErr = fmt.Errorf("times relative to the first packet: standard input has no packet in its first %d MiB (the look-ahead kept); give RFC 3339 times or the file", stdinLookahead>>20)
	}
	src.Close()
	var head [4]byte
	if n, _ := io.ReadFull(rw.Open(), head[:]); n == 4 && ingest.MayHoldPcapng(head) {
		hints, found, err := collectHints(func() (ingest.PacketSource, error) { return ingest.NewReader(rw.Open(), name, ingest.Options{}) })
		switch {
		case found && (err != nil || rw.Exceeded()):
			diag(fmt.Sprintf("the capture carries process information (pcapng comments or process blocks), not used: read from standard input, it is longer than the %d MiB kept to look ahead (give the file instead)", stdinLookahead>>20))
		case found:
			in.stdinHints = hints
		case rw.Exceeded():
			diag(fmt.Sprintf("process information a pcapng may carry (comments, process blocks) was looked for only in the first %d MiB of standard input (give the file to have it all)", stdinLookahead>>20))
		}
	}
	if ctx.Err() != nil {
		// Interrupted while looking ahead: analyse what was read.
		rw.Stop()
		in.stdinInterrupted = true
	}
	if in.src, err = ingest.NewReader(rw.Final(), name, iopts); err != nil {
		return err
	}
	in.stdin, in.sources = true, []string{name}
	return nil
}

// ctxReader reads r, but gives up when ctx is done: a Read from a pipe whose
// writer stalls would otherwise keep the first Ctrl-C from stopping the
// analysis. Each Read runs in a goroutine into a buffer of its own, so one
// left blocked never writes into the caller's.
type ctxReader struct {
	ctx     context.Context
	r       io.Reader
	res     chan readResult
	buf     []byte
	pending bool
}

type readResult struct {
	n   int
	err error
}

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	return &ctxReader{ctx: ctx, r: r, res: make(chan readResult, 1)}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if !c.pending {
		if len(c.buf) < len(p) {
			c.buf = make([]byte, len(p))
		}
		buf := c.buf[:len(p)]
		c.pending = true
		go func() {
			n, err := c.r.Read(buf)
			c.res <- readResult{n, err}
		}()
	}
	select {
	case r := <-c.res:
		c.pending = false
		return copy(p, c.buf[:r.n]), r.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}

func (in *analysisInput) Close() {
	if in.src != nil {
		in.src.Close()
	}
	if in.bundle != nil {
		in.bundle.Close()
	}
}

// openInputs resolves a bundle or captures plus socket dumps.
func openInputs(ctx context.Context, o analyzeOptions) (*analysisInput, error) {
	in := &analysisInput{}
	iopts := ingest.Options{Strict: o.Strict}
	caps := append([]string(nil), o.Pcaps...)
	var bundlePath string
	for _, a := range o.Inputs {
		if isBundle(a) {
			if bundlePath != "" {
				return nil, usagef("analyze one bundle at a time (got %s and %s)", bundlePath, a)
			}
			bundlePath = a
			continue
		}
		if files, d, ok := captureDir(a); ok {
			caps = append(caps, files...)
			in.diags = append(in.diags, d)
			continue
		}
		if err := notBundleHint(a); err != nil {
			return nil, err
		}
		caps = append(caps, a)
	}
	if bundlePath == "" && len(caps) == 0 {
		return nil, usagef("nothing to analyze: give a bundle or capture files (see --help)")
	}
	if slices.Contains(caps, "-") && len(caps) > 1 {
		return nil, usagef("- (standard input) must be the only capture (got %s)", strings.Join(caps, " "))
	}
	if bundlePath != "" && len(caps) > 0 {
		return nil, usagef("give either a bundle or capture files, not both")
	}
	for _, s := range o.Local {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, ok := prefixOrAddr(s)
		if !ok {
			return nil, usagef("bad --local %q: want CIDR or address", s)
		}
		in.local = append(in.local, p)
	}
	for _, s := range o.Proxies {
		name, cidr, named := strings.Cut(strings.TrimSpace(s), "=")
		if !named {
			cidr = name
		}
		p, ok := prefixOrAddr(cidr)
		if !ok {
			return nil, usagef("bad --proxy %q: want [NAME=]CIDR", s)
		}
		if name = strings.TrimSpace(name); !named || name == "" {
			name = "your proxy " + p.String()
		}
		in.proxies = append(in.proxies, analyze.UserProxy{Prefix: p, Name: name})
	}
	for _, s := range o.LocalMACs {
		m, err := net.ParseMAC(strings.TrimSpace(s))
		if err != nil || len(m) != 6 {
			return nil, usagef("bad --local-mac %q", s)
		}
		in.macs = append(in.macs, [6]byte(m))
	}
	var obs []ingest.SocketObservation
	var cov ingest.Coverage
	in.procs = map[ingest.ProcKey]ingest.ProcessInfo{}
	if bundlePath != "" {
		b, err := ingest.OpenBundle(bundlePath, iopts)
		if err != nil {
			return nil, err
		}
		in.bundle = b
		in.sources = []string{bundlePath}
		in.diags = append(in.diags, b.Diagnostics...)
		if len(in.local) == 0 {
			in.local = b.LocalPrefixes()
		}
		if len(in.macs) == 0 {
			for _, i := range b.Ifaces() {
				if len(i.MAC) == 6 && i.Name != "lo" {
					in.macs = append(in.macs, [6]byte(i.MAC))
				}
			}
		}
		obs, cov = b.Observations, b.Coverage
		for k, v := range b.Processes {
			in.procs[k] = v
		}
		src, err := b.Packets()
		if err != nil {
			in.Close()
			return nil, err
		}
		in.src = src
	} else if len(caps) == 1 && caps[0] == "-" {
		if err := in.openStdin(ctx, o.Stdin, iopts); err != nil {
			return nil, err
		}
	} else {
		src, err := ingest.OpenCaptures(caps, iopts)
		if err != nil {
			return nil, err
		}
		in.src = src
		in.sources = caps
	}
	if len(o.Sockets) > 0 {
		fobs, fcov, fprocs, diags, err := ingest.CompileSocketDumps(o.Sockets, iopts)
		if err != nil {
			in.Close()
			return nil, err
		}
		in.diags = append(in.diags, diags...)
		obs = append(obs, fobs...)
		cov = cov.Merge(fcov)
		for k, v := range fprocs {
			if _, ok := in.procs[k]; !ok {
				in.procs[k] = v
			}
		}
		in.sources = append(in.sources, o.Sockets...)
	}
	var chain analyze.Chain
	if len(obs) > 0 || !cov.Empty() {
		jo := analyze.JoinOptions{HostPrefixes: in.local}
		if in.bundle != nil {
			// Which netns the capture saw, and how many were not inventoried,
			// let the join say "other-netns" instead of "not-local".
			jo.Netns, jo.UninventoriedNetns = in.bundle.HostNetns(), in.bundle.UninventoriedNetns()
		}
		in.sockets = analyze.NewSocketIndex(obs, in.procs, cov, jo)
		chain = append(chain, in.sockets)
	}
	// Bare pcapng captures may carry process information themselves
	// (ptcpdump comments, process blocks, flowblame's annotated exports):
	// one extra read collects it as the last fallback.
	if bundlePath == "" && !in.stdin && anyPcapng(caps) {
		hints, _, err := collectHints(func() (ingest.PacketSource, error) { return ingest.OpenCaptures(caps, ingest.Options{}) })
		if err != nil {
			in.Close()
			return nil, err
		}
		if hints != nil {
			chain = append(chain, hints)
		}
	}
	if in.stdinHints != nil {
		chain = append(chain, in.stdinHints)
	}
	switch len(chain) {
	case 0:
	case 1:
		in.attr = chain[0]
	default:
		in.attr = chain
	}
	// Containers and VMs behind the host's NAT: their uplink flows are
	// attributed through the conntrack translations (the bundle's, and any
	// --conntrack listings).
	var nat []ingest.NATRecord
	if in.bundle != nil {
		nat = in.bundle.NAT
	}
	if len(o.Conntrack) > 0 {
		recs, diags, err := ingest.ReadConntrackDumps(o.Conntrack)
		if err != nil {
			in.Close()
			return nil, err
		}
		nat = append(slices.Clone(nat), recs...)
		in.diags = append(in.diags, diags...)
		in.sources = append(in.sources, o.Conntrack...)
	}
	if len(nat) > 0 {
		in.nat = analyze.NewNATIndex(nat)
		in.attr = analyze.WithNAT(in.attr, in.nat)
	}
	return in, nil
}

// anyPcapng reports whether one of the files starts with the pcapng magic
// (compressed files are checked after decompression by the reader, so they
// count as possible pcapng too).
func anyPcapng(paths []string) bool {
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var head [4]byte
		n, _ := io.ReadFull(f, head[:])
		f.Close()
		if n == 4 && ingest.MayHoldPcapng(head) {
			return true
		}
	}
	return false
}

func parseGroup(s string) (analyze.GroupBy, error) {
	switch s {
	case "pair", "":
		return analyze.GroupPair, nil
	case "flow", "5tuple", "5-tuple":
		return analyze.GroupFlow, nil
	case "remote":
		return analyze.GroupRemote, nil
	}
	return 0, usagef("bad --group %q: want pair, flow or remote", s)
}

func parseSort(s string) (analyze.SortBy, error) {
	switch s {
	case "total", "":
		return analyze.SortTotal, nil
	case "2s":
		return analyze.Sort2s, nil
	case "10s":
		return analyze.Sort10s, nil
	case "40s":
		return analyze.Sort40s, nil
	case "peak":
		return analyze.SortPeak, nil
	}
	return 0, usagef("bad --sort %q: want total, 2s, 10s, 40s or peak", s)
}

// runAnalyze is `flowblame analyze`.
func runAnalyze(ctx context.Context, o analyzeOptions, stdout, stderr io.Writer) (err error) {
	if o.FailOn != "" && report.SeverityRank(o.FailOn) == 0 {
		return usagef("bad --fail-on %q: want info, low, medium, high or critical", o.FailOn)
	}
	group, err := parseGroup(o.Group)
	if err != nil {
		return err
	}
	var rend report.Renderer
	var sortBy analyze.SortBy
	if o.Format == "iftop" {
		if _, err := analyze.ParseIftopOrder(o.Order); err != nil {
			return usageError{err}
		}
	} else {
		if sortBy, err = parseSort(o.Sort); err != nil {
			return err
		}
		if rend, err = report.RendererFor(o.Format); err != nil {
			return usageError{err}
		}
	}
	in, err := openInputs(ctx, o)
	if err != nil {
		return err
	}
	defer in.Close()

	out, closeOut, err := outputFile(o.Output, stdout)
	if err != nil {
		return err
	}
	defer closeOut(&err)
	if o.Format == "iftop" {
		return runIftop(ctx, o, in, out, stderr)
	}

	var policy *analyze.Policy
	if o.Policy != "" {
		f, err := os.Open(o.Policy)
		if err != nil {
			return err
		}
		policy, err = analyze.ParsePolicy(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", o.Policy, err)
		}
	}
	// The geolocation databases load (the embedded one decompresses) while
	// the packets are read; a database path that cannot be read fails now.
	for _, p := range []string{o.GeoDB, o.ASNDB} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				return err
			}
		}
	}
	type geoOpened struct {
		db  *geoip.DB
		err error
	}
	geoc := make(chan geoOpened, 1)
	go func() {
		db, err := geoip.Open(geoip.Options{CountryDB: o.GeoDB, ASNDB: o.ASNDB})
		geoc <- geoOpened{db, err}
	}()
	if o.MaxFlows < 0 {
		return usagef("--max-flows %d: must be 0 (no limit) or more", o.MaxFlows)
	}
	aopts := analyze.Options{Local: in.local, LocalMACs: in.macs, Attributor: in.attr, NAT: in.nat, Interfaces: o.Ifaces, MaxFlows: o.MaxFlows}
	if err := checkIfaceArgs(o, in); err != nil {
		return err
	}
	if aopts.Window, aopts.At, err = timeArgs(o, in); err != nil {
		return err
	}
	progress, done := progressPrinter(stderr)
	aopts.Progress = progress
	sig := analyze.NewSignalSource(in.src, in.local, in.macs)
	actx := ctx
	if in.stdinInterrupted {
		actx = context.Background() // the input is what was read before the signal
	}
	res, err := analyze.Analyze(actx, sig, aopts)
	done()
	if res != nil && (in.stdinInterrupted || err != nil && ctx.Err() != nil) {
		// Ctrl-C or SIGTERM: report what was read, like the end of the input
		// (the way to end the analysis of a live pipe).
		res.Diagnostics = append(res.Diagnostics, ingest.Diagnostic{File: strings.Join(in.sources, ","), Kind: ingest.DiagTruncated,
			Where: "input", Offset: -1, Count: 1, Msg: "interrupted (SIGINT/SIGTERM): the report covers what was read before the signal"})
		if ctx.Err() != nil && !in.stdinInterrupted {
			err = nil
		}
		fmt.Fprintln(stderr, "flowblame: interrupted: the report covers what was read before the signal")
	}
	if err != nil {
		return fmt.Errorf("analyze: %w", err)
	}
	if other := res.Meta.OtherInterfaces; other.Packets > 0 && res.Meta.Packets == 0 {
		return usagef("--interface %s: no frame was captured on it (%d frames on other interfaces)", strings.Join(o.Ifaces, ","), other.Packets)
	}
	g := <-geoc
	if g.err != nil {
		return g.err
	}
	defer g.db.Close()
	geo := analyze.WithProxies(g.db, in.proxies)
	var man *ingest.Manifest
	if in.bundle != nil {
		man = &in.bundle.Manifest
	}
	if in.sockets != nil {
		in.diags = append(in.diags, in.sockets.TimeDiagnostics(res)...)
	}
	signals := sig.Signals()
	findings := policy.Filter(analyze.Findings(analyze.FindingInput{Result: res, Procs: in.procs, Manifest: man,
		Signals: signals, Geo: geo, HomeCountry: o.HomeCountry, Policy: policy}))
	doc, err := report.Build(report.Input{Result: res, Procs: in.procs, Manifest: man, Diagnostics: in.diags, Findings: findings, Geo: geo,
		Names: signals.Names},
		report.Options{Top: o.Top, Group: group, Sort: sortBy, Bytes: o.Bytes, Source: in.sources,
			Command: o.Command, Tool: "flowblame " + o.Version})
	if err != nil {
		return err
	}
	if err := rend.Render(out, doc); err != nil {
		return err
	}
	if o.FailOn != "" {
		for _, f := range doc.Findings {
			if report.SeverityRank(f.Severity) >= report.SeverityRank(o.FailOn) {
				return findingsError{fmt.Sprintf("finding %s (%s) at or above --fail-on %s", f.ID, f.Severity, o.FailOn)}
			}
		}
	}
	return nil
}

// firstPacketTime opens the captures once more to read the first timestamp.
// checkIfaceArgs rejects an --interface a bundle did not capture.
func checkIfaceArgs(o analyzeOptions, in *analysisInput) error {
	if in.bundle == nil {
		return nil
	}
	have := in.bundle.Manifest.Capture.Interfaces
	for _, n := range o.Ifaces {
		if !slices.Contains(have, n) {
			return usagef("--interface %s: the bundle captured %s", n, strings.Join(have, ", "))
		}
	}
	return nil
}

// timeArgs resolves --from, --to and --at (Unix ns; 0 when not given).
// Times relative to the first packet need the first packet: a bundle's
// manifest knows it; for bare captures, relative times are relative to the
// capture start as recorded in the first packet.
func timeArgs(o analyzeOptions, in *analysisInput) (w analyze.Window, at int64, err error) {
	first := int64(0)
	if in.bundle != nil {
		first = in.bundle.Manifest.Capture.Start
	}
	if (o.From != "" || o.To != "" || o.At != "") && first == 0 {
		if first, err = firstPacketTime(o, in); err != nil {
			return w, 0, err
		}
	}
	if w.From, err = parseTimeArg(o.From, first); err != nil {
		return w, 0, err
	}
	if w.To, err = parseTimeArg(o.To, first); err != nil {
		return w, 0, err
	}
	at, err = parseTimeArg(o.At, first)
	return w, at, err
}

func firstPacketTime(o analyzeOptions, in *analysisInput) (int64, error) {
	if in.stdin {
		return in.stdinFirst, in.stdinFirstErr
	}
	var src ingest.PacketSource
	var err error
	if in.bundle != nil {
		src, err = in.bundle.Packets()
	} else {
		src, err = ingest.OpenCaptures(in.sources[:len(in.sources)-len(o.Sockets)-len(o.Conntrack)], ingest.Options{})
	}
	if err != nil {
		return 0, err
	}
	defer src.Close()
	var p ingest.Packet
	if err := src.Next(&p); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, nil
		}
		return 0, err
	}
	return p.TS, nil
}

func runIftop(ctx context.Context, o analyzeOptions, in *analysisInput, out, stderr io.Writer) error {
	if len(o.Ifaces) > 1 {
		return usagef("--format iftop listens on one interface, like iftop -i (got %s)", strings.Join(o.Ifaces, ", "))
	}
	io := analyze.IftopOptions{At: 10, Bytes: o.Bytes, Lines: o.Lines, LinkLocal: o.LinkLocal, Phase: o.Phase}
	if len(o.Ifaces) == 1 {
		io.Interface, io.OnlyInterface = o.Ifaces[0], o.Ifaces[0]
	}
	if o.Lines == 0 {
		io.Lines = analyze.IftopNoLines // iftop 1.0pre4 -L 0 prints no lines
	}
	// iftop's clock starts when iftop starts: for a bundle, when collection
	// started; else --start, else the first IP packet.
	if in.bundle != nil {
		io.Start = in.bundle.Manifest.Capture.Start
	}
	if o.Start != "" {
		t, err := time.Parse(time.RFC3339Nano, o.Start)
		if err != nil {
			return usagef("bad --start %q: want an RFC 3339 time", o.Start)
		}
		io.Start = t.UnixNano()
	}
	if o.At != "" {
		s, err := strconv.Atoi(o.At)
		if err != nil || s < 1 {
			return usagef("bad --at %q for the iftop view: want whole seconds ≥ 1 (iftop -s)", o.At)
		}
		io.At = s
	}
	if o.Ports {
		io.PortDisplay = analyze.IftopPortsOn
	}
	ord, err := analyze.ParseIftopOrder(o.Order)
	if err != nil {
		return usageError{err}
	}
	io.Order = ord
	if o.NetFilter != "" {
		p, err := analyze.ParseIftopNetFilter(o.NetFilter)
		if err != nil {
			return usageError{err}
		}
		if p.Addr().Is4() {
			io.NetFilter4 = p
		} else {
			io.NetFilter6 = p
		}
	}
	if o.NetFilter6 != "" {
		p, err := analyze.ParseIftopNetFilter(o.NetFilter6)
		if err != nil {
			return usageError{err}
		}
		if !p.Addr().Is6() {
			return usagef("-G/--net-filter6 %q: want an IPv6 network (IPv4 goes to -F)", o.NetFilter6)
		}
		io.NetFilter6 = p
	}
	// iftop takes the first IPv4 and first global IPv6 address and the MAC
	// of the interface.
	for _, p := range in.local {
		a := p.Addr()
		if a.Is4() && !io.LocalIPv4.IsValid() && !a.IsLoopback() {
			io.LocalIPv4 = a
		}
		if a.Is6() && !io.LocalIPv6.IsValid() && !a.IsLoopback() && !a.IsLinkLocalUnicast() && !isSiteLocal(a) {
			io.LocalIPv6 = a
		}
	}
	if len(in.macs) > 0 {
		io.LocalMAC = in.macs[0][:]
	}
	if io.Interface == "" && in.bundle != nil && len(in.bundle.Manifest.Capture.Interfaces) > 0 {
		io.Interface = in.bundle.Manifest.Capture.Interfaces[0]
	}
	scr, err := analyze.Iftop(ctx, in.src, io)
	if err != nil {
		return fmt.Errorf("iftop view: %w", err)
	}
	if w := scr.Warning(); w != "" {
		fmt.Fprintln(stderr, "flowblame:", w)
	}
	return report.RenderIftop(out, scr)
}

// isSiteLocal reports fec0::/10 (deprecated site-local), which iftop skips.
func isSiteLocal(a netip.Addr) bool {
	return netip.MustParsePrefix("fec0::/10").Contains(a)
}

// commandLine is the command that reproduces this run, as main recorded it
// in App.Metadata (tests record their own).
func commandLine(c *cli.Context) string {
	s, _ := c.App.Metadata["command"].(string)
	return s
}

// outputFile opens path for a report or export ("" or "-" is stdout). Defer
// the returned closeInto(&err) in a function with a named error result: it
// closes the file and, when err is nil, reports Close's error there (the
// error that matters for a written file).
func outputFile(path string, stdout io.Writer) (w io.Writer, closeInto func(*error), err error) {
	if path == "" || path == "-" {
		return stdout, func(*error) {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func(errp *error) {
		if cerr := f.Close(); *errp == nil {
			*errp = cerr
		}
	}, nil
}

// collectHints collects the process hints of a capture that open opens
// (ptcpdump comments, process blocks, flowblame's annotated exports). Tools
// that annotate packets annotate all of them, so a capture whose first
// 10,000 packets carry none is not read to the end: found is false. A
// capture that cannot be opened has no hints.
func collectHints(open func() (ingest.PacketSource, error)) (hints *analyze.HintIndex, found bool, err error) {
	src, err := open()
	if err != nil {
		return nil, false, nil
	}
	found = hintsIn(src, 10000)
	src.Close()
	if !found {
		return nil, false, nil
	}
	if src, err = open(); err != nil {
		return nil, true, err
	}
	defer src.Close()
	hints, err = analyze.CollectHints(src)
	return hints, true, err
}

// hintsIn reports whether any of the first n packets of src carries a
// process hint.
func hintsIn(src ingest.PacketSource, n int) bool {
	var p ingest.Packet
	for i := 0; i < n; i++ {
		if src.Next(&p) != nil {
			return false
		}
		if p.Hint != nil {
			return true
		}
	}
	return false
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowblame/flowblame/collect"
	"github.com/flowblame/flowblame/collect/sockwatch"
	"github.com/flowblame/flowblame/ingest"
)

// afterCollect, when set (by the integrator), runs on the finished bundle
// to print the on-host verdict (top processes and remote hosts by bytes).
var afterCollect func(ctx context.Context, bundle string, stdout, stderr io.Writer) error

func collectCommand() *cli.Command {
	return &cli.Command{
		Name:      "collect",
		Usage:     "capture packets, sockets and processes on this host into a bundle (needs root)",
		ArgsUsage: " ",
		Description: `Records, cheaply and safely, what 'flowblame analyze' needs to say which process
sent or received the traffic and to where:
  capture/NNNNN.pcapng   packet headers (kernel-truncated to --snaplen), rotated by size
  sockets.jsonl          socket <-> process observations (inventories, close events)
  processes.jsonl        process facts (exe, cmdline, user, start time, exe SHA-256)
  counters.jsonl         per-interface kernel byte/packet/drop counters every second
  conntrack.jsonl        NAT translations (containers/VMs masqueraded on the uplink), when
                         conntrack is already loaded (read only: collect never turns it on)
  manifest.json          host, interfaces+addresses, clocks, capture stats, file SHA-256s
The bundle is a directory while running and DIR.tar.gz when done. Stop with Ctrl-C
(or SIGTERM) or --duration: files stay valid either way; even after a SIGKILL the
capture is readable up to the last second. Runs at low CPU and I/O priority.`,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "duration", Aliases: []string{"d"}, Usage: "stop after this long (e.g. 30s, 5m); 0 = until Ctrl-C"},
			&cli.StringSliceFlag{Name: "interfaces", Aliases: []string{"i"}, Usage: "interfaces to capture (comma-separated or repeated); default: every interface that is up, except lo; 'any': every interface that is up, lo included (both also capture interfaces that come up during the collection)"},
			&cli.BoolFlag{Name: "include-loopback", Usage: "with the default interface list, capture lo too (local traffic between processes)"},
			&cli.IntFlag{Name: "snaplen", Value: collect.DefaultSnapLen, Usage: "bytes kept per packet; 96 holds Ethernet+VLAN+IPv6+TCP headers with options, no payload (smaller files, no content)"},
			&cli.IntFlag{Name: "json-snaplen", Value: collect.DefaultJSONSnapLen, Usage: "bytes kept of TCP segments whose payload starts with '{' (JSON-RPC such as Stratum mining, so analyze can spot miners) and of DNS messages (UDP port 53: whole query names); 0 = headers only for everything"},
			&cli.StringFlag{Name: "filter", Aliases: []string{"f"}, Usage: "tcpdump filter expression, e.g. 'not port 22' (compiled with tcpdump, which must be installed)"},
			&cli.DurationFlag{Name: "interval", Value: collect.DefaultInterval, Usage: "how often sockets are listed and joined to processes (shorter catches shorter connections, costs more CPU)"},
			&cli.StringFlag{Name: "max-size", Usage: "hard cap on the bundle size (e.g. 500MiB, 2G); the oldest capture files are deleted to stay under it"},
			&cli.StringFlag{Name: "rotate-size", Value: "64MiB", Usage: "start a new capture file at this size"},
			&cli.StringFlag{Name: "min-free", Value: "auto", Usage: "stop cleanly when the disk holding the bundle has less free space than this; auto = max(1GiB, 5%), 0 = never"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "bundle directory (default ./flowblame-<host>-<UTC time>)"},
			&cli.BoolFlag{Name: "no-tar", Usage: "leave the bundle as a directory instead of DIR.tar.gz"},
			&cli.BoolFlag{Name: "no-sockets", Usage: "capture packets and counters only: no socket/process observation (cheapest; analyze then cannot name processes)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("collect takes no arguments (got %q)", c.Args().First())
			}
			o := collect.Options{
				Duration:        c.Duration("duration"),
				IncludeLoopback: c.Bool("include-loopback"),
				SnapLen:         c.Int("snaplen"),
				JSONSnapLen:     c.Int("json-snaplen"),
				Filter:          c.String("filter"),
				Interval:        c.Duration("interval"),
				Out:             c.String("out"),
				NoTar:           c.Bool("no-tar"),
				LowPriority:     true,
				Tool:            "flowblame " + version,
				Progress:        c.App.ErrWriter,
			}
			for _, v := range c.StringSlice("interfaces") {
				for _, n := range strings.Split(v, ",") {
					if n = strings.TrimSpace(n); n != "" {
						o.Interfaces = append(o.Interfaces, n)
					}
				}
			}
			var err error
			if o.MaxSize, err = parseSize(c.String("max-size")); err != nil {
				return usagef("--max-size: %v", err)
			}
			if o.RotateSize, err = parseSize(c.String("rotate-size")); err != nil {
				return usagef("--rotate-size: %v", err)
			}
			if mf := c.String("min-free"); mf != "auto" {
				if o.MinFree, err = parseSize(mf); err != nil {
					return usagef("--min-free: %v", err)
				}
				if o.MinFree == 0 {
					o.MinFree = -1
				}
			}
			if o.JSONSnapLen == 0 {
				o.JSONSnapLen = -1
			}
			if o.SnapLen <= 0 {
				return usagef("--snaplen must be positive")
			}
			if c.Bool("no-sockets") {
				o.Sockets = noSockets
			}
			// A filter tcpdump rejects is a usage error (exit 2), found
			// before anything is started.
			if o.Filter != "" {
				if _, err := collect.CompileFilter(c.Context, "", o.Filter, ingest.LinkEthernet, o.SnapLen); err != nil && !errors.Is(err, collect.ErrNoFilterCompiler) {
					return usagef("--filter: %v", err)
				}
			}
			return runCollect(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// runCollect collects a bundle, then hands it to afterCollect if set.
func runCollect(ctx context.Context, o collect.Options, stdout, stderr io.Writer) error {
	res, err := collect.Run(ctx, o)
	if err != nil {
		if res != nil {
			fmt.Fprintf(stderr, "flowblame: partial bundle at %s\n", res.Path)
		}
		return err
	}
	fmt.Fprintln(stdout, res.Path)
	if afterCollect != nil {
		return afterCollect(ctx, res.Path, stdout, stderr)
	}
	return nil
}

// parseSize parses "123", "64MiB", "1.5G", "500k" (K/M/G/T are 1024-based,
// as are KiB/MiB/GiB/TiB; "" = 0).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 500MiB, 2G)", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("bad size unit %q in %q (use K, M, G, T)", unit, s)
	}
	return int64(v * mult), nil
}

// noSockets is the socket observer of --no-sockets: it observes nothing and
// says so in the manifest's notes.
func noSockets(ctx context.Context, _ sockwatch.Config, _ sockwatch.Sink) (sockwatch.Stats, error) {
	<-ctx.Done()
	return sockwatch.Stats{Notes: []string{"--no-sockets: no socket or process observation; traffic cannot be attributed"}}, nil
}

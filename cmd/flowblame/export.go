package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/analyze/geoip"
	"github.com/flowblame/flowblame/report"
)

type exportOptions struct {
	analyzeOptions
	Flows       string
	FlowsFormat string
	Interval    time.Duration
	Pcapng      string
}

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write flows per interval (CSV/JSON lines) or the capture annotated with processes (pcapng)",
		ArgsUsage: "BUNDLE | CAPTURE...",
		Description: `--flows writes one record per flow per interval: time range, 5-tuple, packets and bytes
each way (wire and IP), the owning process (pid, start, comm) with the attribution method
and confidence (or why it is unattributed), and the remote's country/ASN.

--pcapng writes the capture again with every packet annotated with its process: an EPB
comment "pid=4242 comm=kdevtmpfsi exe=/tmp/kdevtmpfsi method=exact" (Wireshark shows it;
tshark -Y 'frame.comment contains "pid="' filters on it) and the pcapng process-id option.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "flows", Usage: "write flow records to `FILE` (.csv or .jsonl; - for stdout)"},
			&cli.StringFlag{Name: "flows-format", Usage: "csv or jsonl (default: from the file extension, jsonl for stdout)"},
			&cli.DurationFlag{Name: "interval", Value: 10 * time.Second, Usage: "flow record interval"},
			&cli.StringFlag{Name: "pcapng", Usage: "write the annotated capture to `FILE`"},
			&cli.StringSliceFlag{Name: "pcap", Usage: "capture `FILE` (repeatable)"},
			&cli.StringSliceFlag{Name: "sockets", Usage: "socket dump `FILE` (repeatable)"},
			&cli.StringSliceFlag{Name: "conntrack", Usage: "NAT translations `FILE` (conntrack -L, /proc/net/nf_conntrack; repeatable)"},
			&cli.StringSliceFlag{Name: "local", Usage: "local address `CIDR`s"},
			&cli.StringSliceFlag{Name: "local-mac", Usage: "local interface `MAC`(s)"},
			&cli.StringFlag{Name: "geoip-db", Usage: "country mmdb `FILE`"},
			&cli.StringFlag{Name: "asn-db", Usage: "ASN mmdb `FILE`"},
			&cli.BoolFlag{Name: "strict", Usage: "treat any unreadable record as a fatal error"},
			&cli.StringFlag{Name: "from", Usage: "export from `TIME` (RFC 3339, or seconds after the first packet)"},
			&cli.StringFlag{Name: "to", Usage: "export up to `TIME` (RFC 3339, or seconds after the first packet)"},
			&cli.StringSliceFlag{Name: "interface", Aliases: []string{"i"}, Usage: "export only frames captured on these `NAME`s (comma-separated or repeated; default all)"},
		},
		Action: func(c *cli.Context) error {
			o := exportOptions{
				analyzeOptions: analyzeOptions{Inputs: c.Args().Slice(), Pcaps: c.StringSlice("pcap"), Sockets: c.StringSlice("sockets"), Conntrack: c.StringSlice("conntrack"),
					Local: c.StringSlice("local"), LocalMACs: c.StringSlice("local-mac"), Strict: c.Bool("strict"),
					GeoDB: c.String("geoip-db"), ASNDB: c.String("asn-db"), Stdin: c.App.Reader, From: c.String("from"), To: c.String("to"),
					Ifaces: c.StringSlice("interface")},
				Flows: c.String("flows"), FlowsFormat: c.String("flows-format"), Interval: c.Duration("interval"), Pcapng: c.String("pcapng"),
			}
			return runExport(c.Context, o, c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runExport(ctx context.Context, o exportOptions, stdout, stderr io.Writer) error {
	if o.Flows == "" && o.Pcapng == "" {
		return usagef("export what? give --flows FILE and/or --pcapng FILE")
	}
	if o.Flows != "" && o.Pcapng != "" && slices.Contains(append(o.Inputs, o.Pcaps...), "-") {
		return usagef("--flows and --pcapng each read the capture, and standard input (-) can be read once: give one of them, or the file")
	}
	format := o.FlowsFormat
	if format == "" {
		format = "jsonl"
		if strings.HasSuffix(strings.ToLower(o.Flows), ".csv") {
			format = "csv"
		}
	}
	if format != "csv" && format != "jsonl" {
		return usagef("bad --flows-format %q: want csv or jsonl", format)
	}
	if o.Interval <= 0 {
		return usagef("bad --interval %s: must be positive", o.Interval)
	}
	if o.Flows != "" {
		if err := exportFlows(ctx, o, format, stdout, stderr); err != nil {
			return err
		}
	}
	if o.Pcapng != "" {
		if err := exportPcapng(ctx, o, stdout, stderr); err != nil {
			return err
		}
	}
	return nil
}

func exportFlows(ctx context.Context, o exportOptions, format string, stdout, stderr io.Writer) (err error) {
	in, err := openInputs(ctx, o.analyzeOptions)
	if err != nil {
		return err
	}
	defer in.Close()
	defer func() {
		if err == nil {
			printDiagnostics(stderr, in)
		}
	}()
	geo, err := geoip.Open(geoip.Options{CountryDB: o.GeoDB, ASNDB: o.ASNDB})
	if err != nil {
		return err
	}
	defer geo.Close()
	win, err := exportScope(o, in)
	if err != nil {
		return err
	}
	w, closeOut, err := outputFile(o.Flows, stdout)
	if err != nil {
		return err
	}
	defer closeOut(&err)
	fw := report.NewFlowWriter(w, format)
	progress, done := progressPrinter(stderr)
	st, err := analyze.FlowIntervals(ctx, in.src, analyze.Options{Local: in.local, LocalMACs: in.macs, Attributor: in.attr, Window: win, Interfaces: o.Ifaces, Progress: progress}, o.Interval,
		func(ivs []analyze.FlowInterval) error { return fw.Write(report.FlowRecords(ivs, geo)) })
	done()
	if err != nil {
		return fmt.Errorf("export flows: %w", err)
	}
	if st.Late > 0 {
		fmt.Fprintf(stderr, "flowblame: %d packets came more than one interval after their interval's records were written (the capture is not in time order); they are in further records for their interval, after later intervals\n", st.Late)
	}
	return fw.Close()
}

// exportScope resolves what both exports keep: the --from/--to window,
// after checking the --interface names against a bundle's.
func exportScope(o exportOptions, in *analysisInput) (analyze.Window, error) {
	if err := checkIfaceArgs(o.analyzeOptions, in); err != nil {
		return analyze.Window{}, err
	}
	win, _, err := timeArgs(o.analyzeOptions, in)
	return win, err
}

// maxPrintedDiagnostics bounds the diagnostics export prints.
const maxPrintedDiagnostics = 20

// printDiagnostics writes what reading the inputs skipped or could not use
// to stderr, one line each: export's outputs have no place for them
// (analyze puts them in its report).
func printDiagnostics(stderr io.Writer, in *analysisInput) {
	ds := append(slices.Clone(in.diags), in.src.Diagnostics()...)
	for i, d := range ds {
		if i == maxPrintedDiagnostics {
			fmt.Fprintf(stderr, "flowblame: and %d more diagnostics (flowblame analyze lists them all)\n", len(ds)-i)
			break
		}
		fmt.Fprintf(stderr, "flowblame: %s: %s: %s: %s\n", d.Kind, d.File, d.Where, d.Msg)
	}
}

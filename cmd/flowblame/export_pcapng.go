package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
	"github.com/flowblame/flowblame/report"
)

// progressEvery is how many packets export reads between progress lines.
const progressEvery = 1 << 20

// exportPcapng writes the capture annotated with each packet's process.
func exportPcapng(ctx context.Context, o exportOptions, stdout, stderr io.Writer) (err error) {
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
	win, err := exportScope(o, in)
	if err != nil {
		return err
	}
	f, closeOut, err := outputFile(o.Pcapng, stdout)
	if err != nil {
		return err
	}
	defer closeOut(&err)
	w, err := report.NewPcapngAnnotator(f, "flowblame "+version+" export", in.procs)
	if err != nil {
		return err
	}
	owners := analyze.NewPacketOwners(analyze.Options{Local: in.local, LocalMACs: in.macs, Attributor: in.attr})
	progress, done := progressPrinter(stderr)
	defer done()
	var p ingest.Packet
	var ifs []ingest.Interface // the source's, refreshed at an unknown index
	for n := 0; ; n++ {
		if n&4095 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if progress != nil && n > 0 && n%progressEvery == 0 {
			progress(int64(n), p.TS)
		}
		if err := in.src.Next(&p); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("export pcapng: %w", err)
		}
		if p.Iface >= len(ifs) {
			ifs = in.src.Interfaces()
		}
		if !win.Contains(p.TS) || !analyze.KeepIface(o.Ifaces, ifs, p.Iface) {
			continue
		}
		_, owner, dir := owners.Owner(&p, ifs)
		if err := w.WritePacket(&p, ifs, owner, dir); err != nil {
			return fmt.Errorf("export pcapng: %w", err)
		}
	}
	return w.Close()
}

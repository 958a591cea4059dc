// Command analyzebench opens a capture with ingest.OpenCapture, runs
// analyze.Analyze on it and prints a one-line summary. It stands in for
// `flowblame analyze` in bench/run.sh until that command exists.
//
//	go run ./bench/analyzebench -local 198.51.100.0/24,2001:db8:1::/64 F.pcap
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/flowblame/flowblame/analyze"
	"github.com/flowblame/flowblame/ingest"
)

func main() {
	local := flag.String("local", "", "comma-separated local CIDRs")
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile here")
	serial := flag.Bool("serial", false, "no reader/aggregator pipeline")
	validate := flag.Bool("validate", false, "run Result.Validate")
	heap := flag.Bool("heap", false, "print the heap the Result keeps alive (after a GC)")
	memprof := flag.String("memprofile", "", "write an allocation profile here")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: analyzebench [-local CIDRS] [-cpuprofile F] FILE")
		os.Exit(2)
	}
	if *memprof != "" {
		runtime.MemProfileRate = 64 << 10
		defer func() {
			f, err := os.Create(*memprof)
			if err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if err := run(flag.Arg(0), *local, *cpuprof, *serial, *validate, *heap); err != nil {
		fmt.Fprintln(os.Stderr, "analyzebench:", err)
		os.Exit(1)
	}
}

func run(path, local, cpuprof string, serial, validate, heap bool) error {
	var opts analyze.Options
	opts.Serial = serial
	for _, s := range strings.Split(local, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return err
		}
		opts.Local = append(opts.Local, p)
	}
	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	src, err := ingest.OpenCapture(path, ingest.Options{})
	if err != nil {
		return err
	}
	defer src.Close()
	res, err := analyze.Analyze(context.Background(), src, opts)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("packets %d flows %d pairs %d remotes %d tx %d rx %d unknown %d bytes; %.2fs %.2f Mpps\n",
		res.Meta.Packets, len(res.Flows), len(res.Pairs), len(res.Remotes),
		res.Totals.All.Out.Wire, res.Totals.All.In.Wire, res.Totals.All.Unknown.Wire,
		el.Seconds(), float64(res.Meta.Packets)/el.Seconds()/1e6)
	if heap {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		fmt.Printf("heap in use with the Result alive: %.0f MiB\n", float64(ms.HeapInuse)/(1<<20))
		runtime.KeepAlive(res)
	}
	if validate {
		if err := res.Validate(); err != nil {
			return err
		}
		fmt.Println("valid")
	}
	return nil
}

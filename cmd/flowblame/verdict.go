package main

import (
	"context"
	"fmt"
	"io"
)

// The on-host answer: when collection ends, analyse the finished bundle
// and print the brief report, because the operator on the console wants
// the answer now. Collection may have ended by Ctrl-C, so the analysis does
// not inherit the (cancelled) collection context.
// onHostMaxFlows is the on-host verdict's --max-flows: on a host that is
// already in trouble (a flood can make millions of flows), it keeps the
// analysis to about 200 MB; the full analysis elsewhere has the default.
const onHostMaxFlows = 100_000

func init() {
	afterCollect = func(_ context.Context, bundle string, stdout, stderr io.Writer) error {
		fmt.Fprintf(stdout, "\nanalyzing %s ...\n\n", bundle)
		err := runAnalyze(context.Background(), analyzeOptions{Inputs: []string{bundle}, Format: "brief", Top: 5,
			MaxFlows: onHostMaxFlows, Command: "flowblame analyze " + bundle, Version: version}, stdout, stderr)
		if err != nil {
			return fmt.Errorf("on-host verdict: %w (the bundle is complete; analyze it elsewhere)", err)
		}
		fmt.Fprintf(stdout, "\nfull report: flowblame analyze -f md %s\n", bundle)
		return nil
	}
}

// Package report renders analysis results. Renderers are pure functions of
// a model built by the analyze package: they do no analysis, no sorting
// decisions and no filesystem or clock access.
//
// RenderIftop prints an analyze.IftopScreen exactly as iftop 1.0pre4 prints
// its text screen (`iftop -t -s S -n -N`), byte for byte:
//
//	scr, err := analyze.Iftop(ctx, src, analyze.IftopOptions{At: 10, PortDisplay: analyze.IftopPortsOn})
//	if err != nil { ... }
//	err = report.RenderIftop(os.Stdout, scr)
package report

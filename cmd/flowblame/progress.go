package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether w (a reader or writer) is a terminal: progress
// is shown only there, so logs and pipes stay clean.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progressPrinter returns an analyze.Options.Progress callback that keeps
// one status line on a terminal, or nil when stderr is not one, and a
// function that clears the line (call it before printing anything else).
func progressPrinter(stderr io.Writer) (func(packets, ts int64), func()) {
	if !isTerminal(stderr) {
		return nil, func() {}
	}
	start := time.Now()
	shown := false
	return func(packets, ts int64) {
			shown = true
			el := time.Since(start).Seconds()
			fmt.Fprintf(stderr, "\r%d packets read (%.1f M/s), capture time %s ", packets, float64(packets)/el/1e6,
				time.Unix(0, ts).UTC().Format("15:04:05"))
		}, func() {
			if shown {
				fmt.Fprint(stderr, "\r\033[K")
				shown = false
			}
		}
}

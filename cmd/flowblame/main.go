// Command flowblame finds which process sent or received a host's traffic,
// to where, and whether that looks malicious. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes (part of the interface).
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitFindings = 3
)

// usageError marks errors caused by bad command-line use (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// findingsError is returned by analyze --fail-on (exit code 3).
type findingsError struct{ msg string }

func (e findingsError) Error() string { return e.msg }

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:            "flowblame",
		Usage:           "which process sent or received all that traffic, to where, and is it malicious",
		Version:         version,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: false,
		// Exit codes come from returned errors; App.Run never exits itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   func(_ *cli.Context, err error, _ bool) error { return usageError{err} },
		Commands:       commands(),
	}
	return app
}

// commands lists the subcommands; each lives in its own file.
func commands() []*cli.Command {
	var cs []*cli.Command
	for _, c := range []func() *cli.Command{
		analyzeCommand,
		collectCommand,
		verifyCommand,
		exportCommand,
	} {
		if c != nil {
			if cmd := c(); cmd != nil {
				if cmd.OnUsageError == nil {
					cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error { return usageError{err} }
				}
				cs = append(cs, cmd)
			}
		}
	}
	return cs
}

// exitCode maps an error returned by the app to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	var fe findingsError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &fe):
		return exitFindings
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitError
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first SIGINT/SIGTERM asks the command to stop cleanly (collect
	// finishes its bundle, analyze stops reading); the signals then get
	// their default action back, so a second one ends the process even if
	// something is stuck.
	go func() { <-ctx.Done(); stop() }()
	// FLOWBLAME_CPUPROFILE=FILE writes a Go CPU profile of the run (for
	// measuring flowblame itself, e.g. the collector under load).
	if p := os.Getenv("FLOWBLAME_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	app := newApp(os.Stdout, os.Stderr)
	app.Metadata = map[string]any{"command": "flowblame " + strings.Join(os.Args[1:], " ")}
	err := app.RunContext(ctx, interspersed(app, os.Args))
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowblame:", err)
	}
	pprof.StopCPUProfile()
	os.Exit(exitCode(err))
}

// interspersed moves a subcommand's flags in front of its positional
// arguments, so `flowblame analyze BUNDLE --format json` works as users
// expect (urfave/cli v2 stops parsing flags at the first argument). "--"
// ends flag handling as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if takesValue[name] && i+1 < len(rest) {
				flags = append(flags, rest[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out
}

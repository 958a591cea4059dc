package main

import "github.com/urfave/cli/v2"

// collectCommand is not built yet.
func collectCommand() *cli.Command { return nil }

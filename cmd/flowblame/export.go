package main

import "github.com/urfave/cli/v2"

// exportCommand is not built yet.
func exportCommand() *cli.Command { return nil }

package main

import "github.com/urfave/cli/v2"

// analyzeCommand is not built yet.
func analyzeCommand() *cli.Command { return nil }

package main

import "github.com/urfave/cli/v2"

// verifyCommand is not built yet.
func verifyCommand() *cli.Command { return nil }

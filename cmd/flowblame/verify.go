package main

import (
	"github.com/urfave/cli/v2"

	"github.com/flowblame/flowblame/collect"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check a bundle's files against the SHA-256 sums in its manifest",
		ArgsUsage: "BUNDLE (directory or .tar.gz)",
		Description: `Reports files that are missing, extra or whose size or SHA-256 differ from
manifest.json. Exit status 0 when the bundle is intact, 1 otherwise.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("verify needs exactly one BUNDLE argument")
			}
			return collect.Verify(c.Args().First(), c.App.Writer)
		},
	}
}

//go:build !unix

package ingest

import "errors"

func syscallMkfifo(string) error { return errors.New("no FIFOs on this platform") }

package main

import (
	"context"
	"errors"
)

// exportPcapng writes the annotated capture.
func exportPcapng(ctx context.Context, o exportOptions) error {
	return errors.New("export --pcapng: not implemented yet")
}

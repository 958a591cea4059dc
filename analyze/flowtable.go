package analyze

import (
	"context"
	"errors"

	"github.com/flowblame/flowblame/ingest"
)

func analyze(ctx context.Context, src ingest.PacketSource, opts Options) (*Result, error) {
	return nil, errors.New("analyze: not implemented yet")
}

func windowRatesAt(series []SecondBucket, t int64) (out, in, unknown WindowRates) { return }

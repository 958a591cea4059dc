package sockwatch

import (
	"time"

	"github.com/flowblame/flowblame/ingest"
)

// Sink receives observations; calls come from one goroutine. An error returned
// by the Sink stops Run, which returns it.
type Sink interface {
	Socket(r ingest.SocketRecord) error
	Process(p ingest.ProcessInfo) error
}

// Config tunes Run. Zero values select the defaults.
type Config struct {
	Interval      time.Duration // socket inventory period (default 2s)
	FullWalkEvery time.Duration // full /proc/*/fd walk period (default 30s)
	HashMaxBytes  int64         // cap on exe bytes hashed per process (default 64 MiB); 0 = default
	HashBudget    int64         // total exe bytes hashed per run; 0 = default 512 MiB
}

// Default configuration values.
const (
	DefaultInterval      = 2 * time.Second
	DefaultFullWalkEvery = 30 * time.Second
	DefaultHashMaxBytes  = 64 << 20
	DefaultHashBudget    = 512 << 20
)

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.FullWalkEvery <= 0 {
		c.FullWalkEvery = DefaultFullWalkEvery
	}
	if c.HashMaxBytes <= 0 {
		c.HashMaxBytes = DefaultHashMaxBytes
	}
	if c.HashBudget <= 0 {
		c.HashBudget = DefaultHashBudget
	}
	return c
}

// Stats summarises a Run: how many inventories and full walks were done, how
// many kernel events were received and lost, the network namespaces observed,
// and notes about degraded modes.
type Stats struct {
	Snapshots, FullWalks int
	Events, EventsLost   int64
	Netns                []ingest.NetnsInfo
	Notes                []string
}

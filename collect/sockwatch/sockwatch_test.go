package sockwatch

import (
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{Interval: 2 * time.Second, FullWalkEvery: 30 * time.Second, HashMaxBytes: 64 << 20, HashBudget: 512 << 20}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	set := Config{Interval: time.Second, FullWalkEvery: time.Minute, HashMaxBytes: 1, HashBudget: 2}
	if set.withDefaults() != set {
		t.Errorf("explicit values changed: %+v", set.withDefaults())
	}
}

package analyze

import (
	"testing"
	"unsafe"
)

// The hot per-flow state and the peak trackers are sized to whole cache
// lines (see flowEnt); a field added carelessly would silently cost a miss.
func TestHotStateSizes(t *testing.T) {
	if got := unsafe.Sizeof(flowEnt{}); got != 192 {
		t.Errorf("sizeof(flowEnt) = %d, want 192 (3 cache lines)", got)
	}
	if got := unsafe.Sizeof(peakTracker{}); got != 64 {
		t.Errorf("sizeof(peakTracker) = %d, want 64", got)
	}
}

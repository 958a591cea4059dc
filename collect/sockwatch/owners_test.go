package sockwatch

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowblame/flowblame/ingest"
)

func TestHolderKeys(t *testing.T) {
	a, b, c := ingest.ProcKey{PID: 1, Start: 5}, ingest.ProcKey{PID: 2, Start: 1}, ingest.ProcKey{PID: 2, Start: 3}
	ks := addKey(addKey(addKey(nil, c), a), b)
	shared := ks[:2:3] // a record holding the first two keys, with room to grow
	_ = addKey(shared, ingest.ProcKey{PID: 1, Start: 9})
	if ks[2] != c {
		t.Fatal("addKey modified a slice that records may share")
	}
	ks = addKey(ks, b)
	if d := cmp.Diff([]ingest.ProcKey{a, b, c}, ks); d != "" {
		t.Fatal(d)
	}
	orig := ks
	ks = removeKey(ks, b)
	if d := cmp.Diff([]ingest.ProcKey{a, c}, ks); d != "" {
		t.Fatal(d)
	}
	if orig[1] != b {
		t.Error("removeKey modified a slice that records may share")
	}
}

// TestWalkOwnSockets: a full walk and a targeted walk find this process as
// the holder of its own socket (no privileges needed), and a process that
// goes away stops being a holder.
func TestWalkOwnSockets(t *testing.T) {
	sfd := ownListener(t)
	var ino uint64
	if _, err := newFDWalker("/proc").socketInodes(os.Getpid(), func(fd int, i uint64) {
		if fd == sfd {
			ino = i
		}
	}); err != nil || ino == 0 {
		t.Fatalf("own socket not found: %v", err)
	}
	w := newWatcher(Config{}.withDefaults(), &memSink{}, "/proc")
	defer w.close()
	w.fullWalk(time.Now())
	self := func() bool {
		return slices.ContainsFunc(w.holders[ino], func(k ingest.ProcKey) bool { return k.PID == os.Getpid() && k.Start > 0 })
	}
	if !self() {
		t.Fatalf("full walk: holders of %d = %v", ino, w.holders[ino])
	}
	w.setPid(os.Getpid(), nil, nil)
	if len(w.holders[ino]) != 0 {
		t.Fatalf("after exit: holders %v", w.holders[ino])
	}
	if inos := w.walkPid(os.Getpid()); !slices.Contains(inos, ino) || !self() {
		t.Fatalf("targeted walk: %v, holders %v", inos, w.holders[ino])
	}
}

package sockwatch

import (
	"encoding/binary"
	"net"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func dirent(name string) []byte {
	l := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, l)
	binary.LittleEndian.PutUint16(b[16:], uint16(l))
	copy(b[19:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	var in []byte
	for _, n := range []string{".", "..", "0", "17", "self"} {
		in = append(in, dirent(n)...)
	}
	tests := []struct {
		name string
		in   []byte
		want []string
	}{
		{"entries", in, []string{"0", "17", "self"}},
		{"truncated record", append(dirent("5"), 1, 2, 3), []string{"5"}},
		{"bad reclen", func() []byte { b := dirent("5"); b[16] = 3; return b }(), nil},
		{"reclen past end", func() []byte { b := dirent("5"); b[16] = 200; return b }(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			parseDirents(tt.in, func(name []byte) { got = append(got, string(name)) })
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestParseSocketLink(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[]", 0, false},
		{"socket:[12x]", 0, false},
		{"pipe:[12345]", 0, false},
		{"/dev/null", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSocketLink([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSocketLink(%q) = %d, %v", tt.in, got, ok)
		}
	}
}

func TestAtoiBytes(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "4194304": 4194304, "": -1, "12a": -1, "12345678901": -1} {
		got, ok := atoiBytes([]byte(in))
		if (want < 0) == ok || ok && got != want {
			t.Errorf("atoiBytes(%q) = %d, %v", in, got, ok)
		}
	}
}

// ownListener opens a loopback listener for the test and returns one fd of
// it (a dup: the listener's own fd is another holder of the same socket).
func ownListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestWalkSelf walks this process's own fds, which needs no privileges.
func TestWalkSelf(t *testing.T) {
	fd := ownListener(t)
	w := newFDWalker("/proc")
	found := map[int]uint64{}
	n, err := w.socketInodes(os.Getpid(), func(fd int, ino uint64) { found[fd] = ino })
	if err != nil || n < 3 {
		t.Fatalf("walk: %d fds, %v", n, err)
	}
	if found[fd] == 0 {
		t.Fatalf("socket fd %d not found in %v", fd, found)
	}
	cnt, err := w.fdCount(os.Getpid())
	if err != nil || cnt != 0 && cnt < int64(len(found)) {
		t.Errorf("fdCount %d, %v", cnt, err)
	}
	pids, err := w.pids(nil)
	if err != nil || len(pids) == 0 {
		t.Fatalf("pids: %v %v", pids, err)
	}
	self := false
	for _, p := range pids {
		self = self || p == os.Getpid()
	}
	if !self {
		t.Error("own pid not listed")
	}
	if allocs := testing.AllocsPerRun(20, func() { _, _ = w.socketInodes(os.Getpid(), func(int, uint64) {}) }); allocs > 2 {
		t.Errorf("walk allocates %.0f times per process", allocs)
	}
}

// FuzzParseDirents: the linux_dirent64 decoder never panics and never
// yields "." or "..".
func FuzzParseDirents(f *testing.F) {
	f.Add(append(dirent("."), dirent("17")...))
	f.Add(dirent("socket"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseDirents(b, func(name []byte) {
			if string(name) == "." || string(name) == ".." {
				t.Fatalf("yielded %q", name)
			}
		})
	})
}

package collect

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowblame/flowblame/ingest"
	"github.com/google/go-cmp/cmp"
)

func TestCaptureSetMaxSize(t *testing.T) {
	tests := []struct {
		name        string
		maxSize     int64
		other       int64
		packets     int
		wantDropped int
		wantErr     error
	}{
		{"no cap keeps all", 0, 0, 3000, 0, nil},
		{"cap drops oldest", 8 << 20, 1 << 20, 6000, 5, nil},
		{"others exceed cap", 4 << 20, 4 << 20, 10, 0, errMaxSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, ingest.CaptureDir), 0o755)
			cs := &captureSet{dir: dir, app: "t", ifaces: []PcapngIface{{Name: "x", Link: ingest.LinkEthernet, SnapLen: 2048}},
				rotateSize: effectiveRotate(1<<20, tc.maxSize), maxSize: tc.maxSize, start: time.Unix(0, 0)}
			cs.other.Store(tc.other)
			if err := cs.open(); err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 2000)
			var err error
			for i := 0; i < tc.packets && err == nil; i++ {
				err = cs.writeLocked(0, time.Unix(int64(i), 0).UnixNano(), len(data), data, 0)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err := cs.finish(time.Unix(9999, 0)); err != nil {
				t.Fatal(err)
			}
			if len(cs.dropped) != tc.wantDropped {
				t.Errorf("dropped %v, want %d files", cs.dropped, tc.wantDropped)
			}
			for i, d := range cs.dropped {
				if d != captureFileName(i) {
					t.Errorf("dropped[%d] = %s: not the oldest", i, d)
				}
				if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
					t.Errorf("%s still exists", d)
				}
			}
			files, _ := listFiles(dir)
			var total int64
			for _, f := range files {
				total += f.Size
			}
			if tc.wantErr == nil && tc.maxSize > 0 && total+tc.other > tc.maxSize {
				t.Errorf("bundle %d + %d bytes > cap %d", total, tc.other, tc.maxSize)
			}
			if tc.maxSize == 0 && int64(len(files)) != int64(cs.seq) {
				t.Errorf("%d files for %d rotations", len(files), cs.seq)
			}
		})
	}
}

func TestEffectiveRotate(t *testing.T) {
	for _, tc := range []struct{ rotate, max, want int64 }{
		{0, 0, DefaultRotateSize},
		{10 << 20, 0, 10 << 20},
		{64 << 20, 100 << 20, 25 << 20},
		{64 << 20, 2 << 20, 1 << 20},
	} {
		if got := effectiveRotate(tc.rotate, tc.max); got != tc.want {
			t.Errorf("effectiveRotate(%d, %d) = %d, want %d", tc.rotate, tc.max, got, tc.want)
		}
	}
}

func TestFloorFor(t *testing.T) {
	if got := floorFor(0, 100<<30); got != 5<<30 {
		t.Errorf("5%% of 100 GiB = %d", got)
	}
	if got := floorFor(0, 4<<30); got != 1<<30 {
		t.Errorf("small fs floor = %d", got)
	}
	if floorFor(-1, 1<<40) != 0 || floorFor(42, 1<<40) != 42 {
		t.Error("explicit floors")
	}
}

func TestRecordsSink(t *testing.T) {
	dir := t.TempDir()
	r, err := openRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	r.Socket(ingest.SocketRecord{Kind: "snapshot", T: 5, Seq: 1})
	r.Process(ingest.ProcessInfo{PID: 7, Comm: "x"})
	r.counter(ingest.CounterSample{T: 1, Iface: "lo"})
	n, err := r.flush()
	if err != nil || n == 0 {
		t.Fatalf("flush = %d, %v", n, err)
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ingest.SocketsFile))
	if d := cmp.Diff(`{"kind":"snapshot","t":5,"seq":1}`+"\n", string(b)); d != "" {
		t.Error(d)
	}
}

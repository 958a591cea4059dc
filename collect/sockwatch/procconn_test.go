package sockwatch

import (
	"encoding/binary"
	"testing"
)

// cnProc builds a cn_msg carrying one proc_event.
func cnProc(what uint32, mono uint64, data ...uint32) []byte {
	ev := make([]byte, 16+4*len(data))
	binary.LittleEndian.PutUint32(ev[0:], what)
	binary.LittleEndian.PutUint64(ev[8:], mono)
	for i, d := range data {
		binary.LittleEndian.PutUint32(ev[16+4*i:], d)
	}
	b := make([]byte, cnMsgLen, cnMsgLen+len(ev))
	binary.LittleEndian.PutUint32(b[0:], cnIdxProc)
	binary.LittleEndian.PutUint32(b[4:], cnValProc)
	binary.LittleEndian.PutUint16(b[16:], uint16(len(ev)))
	return append(b, ev...)
}

func TestParseProcEvent(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    procEvent
		ok      bool
		wantErr bool
	}{
		{"fork of a process", cnProc(procEventFork, 5, 100, 100, 200, 200), procEvent{What: procEventFork, PID: 200, PPID: 100, Mono: 5}, true, false},
		{"fork of a thread", cnProc(procEventFork, 5, 100, 100, 201, 200), procEvent{}, false, false},
		{"exec", cnProc(procEventExec, 7, 300, 300), procEvent{What: procEventExec, PID: 300, Mono: 7}, true, false},
		{"exit of a process", cnProc(procEventExit, 9, 300, 300, 0, 17, 1, 1), procEvent{What: procEventExit, PID: 300, Mono: 9}, true, false},
		{"exit of a thread", cnProc(procEventExit, 9, 301, 300, 0, 17, 1, 1), procEvent{}, false, false},
		{"uid change ignored", cnProc(0x4, 1, 1, 1, 0, 0), procEvent{}, false, false},
		{"ack (no event)", cnProc(0, 0), procEvent{}, false, false},
		{"other connector", append([]byte{9, 0, 0, 0}, cnProc(procEventExec, 7, 300, 300)[4:]...), procEvent{}, false, false},
		{"short cn_msg", make([]byte, 10), procEvent{}, false, true},
		{"data length past end", func() []byte { b := cnProc(procEventExec, 7, 300, 300); b[16] = 200; return b }(), procEvent{}, false, true},
		{"truncated fork", cnProc(procEventFork, 5, 100, 100), procEvent{}, false, true},
		{"truncated exec", cnProc(procEventExec, 5, 100), procEvent{}, false, true},
		{"truncated exit", cnProc(procEventExit, 5, 100), procEvent{}, false, true},
		{"truncated header", cnProc(procEventExec, 5)[:cnMsgLen+8], procEvent{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "truncated header" {
				binary.LittleEndian.PutUint16(tt.in[16:], 8)
			}
			got, ok, err := parseProcEvent(tt.in)
			if (err != nil) != tt.wantErr || ok != tt.ok {
				t.Fatalf("ok %v err %v", ok, err)
			}
			if ok && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseProcEvent: the proc-connector parser never panics.
func FuzzParseProcEvent(f *testing.F) {
	f.Add(cnProc(procEventFork, 5, 100, 100, 200, 200))
	f.Add(cnProc(procEventExit, 9, 300, 300, 0, 17, 1, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok, err := parseProcEvent(b)
		if ok && (err != nil || ev.PID < 0 && ev.What == 0) {
			t.Fatalf("ok with %v", err)
		}
	})
}

package ingest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

// TestRewinder: look-ahead readers see the stream from its start, each
// keeps what it pulls for the next, and Final yields the whole stream
// without keeping it; past the limit only Final goes on.
func TestRewinder(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	w := NewRewinder(iotest.OneByteReader(bytes.NewReader(data)), 100)
	a := make([]byte, 30)
	if _, err := io.ReadFull(w.Open(), a); err != nil || !bytes.Equal(a, data[:30]) {
		t.Fatalf("first look: %q, %v", a, err)
	}
	b, err := io.ReadAll(w.Open())
	if !errors.Is(err, ErrRewindLimit) || !bytes.Equal(b, data[:100]) {
		t.Fatalf("second look: %d bytes, %v", len(b), err)
	}
	all, err := io.ReadAll(w.Final())
	if err != nil || !bytes.Equal(all, data) {
		t.Fatalf("final: %d bytes, %v", len(all), err)
	}

	if !w.Exceeded() {
		t.Error("Exceeded false after a look-ahead hit the limit")
	}

	// A stream exactly as long as the limit fits.
	w = NewRewinder(bytes.NewReader(data[:100]), 100)
	if b, err := io.ReadAll(w.Open()); err != nil || !bytes.Equal(b, data[:100]) || w.Exceeded() {
		t.Fatalf("exact fit: %d bytes, %v, exceeded %v", len(b), err, w.Exceeded())
	}
	if all, err := io.ReadAll(w.Final()); err != nil || !bytes.Equal(all, data[:100]) {
		t.Fatalf("exact fit final: %d bytes, %v", len(all), err)
	}
	// Larger than a kept chunk.
	big := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 3*rewindChunk/26)
	w = NewRewinder(bytes.NewReader(big), 2*rewindChunk+5)
	if b, err := io.ReadAll(w.Open()); !errors.Is(err, ErrRewindLimit) || !bytes.Equal(b, big[:2*rewindChunk+5]) {
		t.Fatalf("chunks: %d bytes, %v", len(b), err)
	}
	if all, err := io.ReadAll(w.Final()); err != nil || !bytes.Equal(all, big) {
		t.Fatalf("chunks final: %d bytes, %v", len(all), err)
	}

	// A stream shorter than what was looked at: Final replays it and ends.
	w = NewRewinder(bytes.NewReader(data[:10]), 100)
	if b, _ := io.ReadAll(w.Open()); !bytes.Equal(b, data[:10]) {
		t.Fatalf("short look: %q", b)
	}
	if all, err := io.ReadAll(w.Final()); err != nil || !bytes.Equal(all, data[:10]) {
		t.Fatalf("short final: %q, %v", all, err)
	}
}

// TestRewinderCapture reads a capture through a pipe three times, as
// `flowblame analyze -` does: the first packet, a look at the first
// packets, then everything.
func TestRewinderCapture(t *testing.T) {
	data, err := os.ReadFile("../fixtures/captures/small.pcap")
	if err != nil {
		t.Fatal(err)
	}
	want := countPackets(t, bytes.NewReader(data))
	pr, pw := io.Pipe()
	go func() {
		// Small writes, like a live tcpdump -w -.
		for b := data; len(b) > 0; {
			n := min(len(b), 700)
			pw.Write(b[:n])
			b = b[n:]
		}
		pw.Close()
	}()
	w := NewRewinder(pr, 1<<10) // less than the file: the second look stops short
	src, err := NewReader(w.Open(), "stdin", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := src.Next(&p); err != nil {
		t.Fatal(err)
	}
	src, err = NewReader(w.Open(), "stdin", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for src.Next(&p) == nil {
	}
	if got := countPackets(t, w.Final()); got != want {
		t.Errorf("final reader: %d packets, want %d", got, want)
	}
}

func countPackets(t *testing.T, r io.Reader) int {
	t.Helper()
	src, err := NewReader(r, "x", Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var p Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
}

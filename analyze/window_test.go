package analyze

import (
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFloorSec(t *testing.T) {
	for _, tt := range []struct{ ts, want int64 }{
		{0, 0}, {999_999_999, 0}, {1e9, 1}, {-1, -1}, {-1e9, -1}, {-1e9 - 1, -2},
	} {
		if got := floorSec(tt.ts); got != tt.want {
			t.Errorf("floorSec(%d) = %d, want %d", tt.ts, got, tt.want)
		}
	}
}

func TestWindowRatesAt(t *testing.T) {
	// Seconds 100..141 carry Out = sec-99 bytes (1..42); In = 10 at 130 only.
	var ser []SecondBucket
	for s := int64(100); s <= 141; s++ {
		b := SecondBucket{Sec: s, Out: s - 99}
		if s == 130 {
			b.In = 10
		}
		ser = append(ser, b)
	}
	ser = append(ser, SecondBucket{Sec: 200, Unknown: 7})
	tests := []struct {
		name            string
		at              int64
		out, in, unkown WindowRates
	}{
		// At 141.9: 2 s = (41+42)/2; 10 s = sum 33..42 / 10; 40 s = sum 3..42 / 40.
		{"end", 141*nsPerSec + 900_000_000, WindowRates{S2: 41.5, S10: 37.5, S40: 22.5}, WindowRates{S40: 0.25}, WindowRates{}},
		// At 100.0: only second 100 (1 byte).
		{"first second", 100 * nsPerSec, WindowRates{S2: 0.5, S10: 0.1, S40: 0.025}, WindowRates{}, WindowRates{}},
		// At 130.5: Out 22..31 in the 10 s window, 1..31 in 40 s; In 10 bytes at 130 → 5, 1, 0.25.
		{"mid", 130*nsPerSec + 500_000_000, WindowRates{S2: (30 + 31) / 2.0, S10: 265 / 10.0, S40: 496 / 40.0}, WindowRates{S2: 5, S10: 1, S40: 0.25}, WindowRates{}},
		// At 170: only seconds 131..141 (Out 32..42, sum 407) are in the 40 s window.
		{"gap", 170 * nsPerSec, WindowRates{S40: 407 / 40.0}, WindowRates{}, WindowRates{}},
		{"lone unknown", 201 * nsPerSec, WindowRates{}, WindowRates{}, WindowRates{S2: 3.5, S10: 0.7, S40: 0.175}},
		{"before", 10 * nsPerSec, WindowRates{}, WindowRates{}, WindowRates{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, in, unk := WindowRatesAt(ser, tt.at)
			if d := cmp.Diff([]WindowRates{tt.out, tt.in, tt.unkown}, []WindowRates{out, in, unk}); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestPeaksOf(t *testing.T) {
	ser := []SecondBucket{
		{Sec: 10, Out: 100, In: 1},
		{Sec: 11, Out: 300},        // Out pair (10,11) = 400
		{Sec: 13, Out: 390, In: 5}, // isolated: pair (12,13) = 390
		{Sec: 20, In: 50},
		{Sec: 21, In: 50, Unknown: 8}, // In pair (20,21) = 100; Unknown 8
		{Sec: 30, Out: 400},           // ties Out 400: the earliest (11) wins
	}
	out, in, unk, all := PeaksOf(ser)
	want := []PeakRate{{200, 11 * nsPerSec}, {50, 21 * nsPerSec}, {4, 21 * nsPerSec}, {200.5, 11 * nsPerSec}}
	if d := cmp.Diff(want, []PeakRate{out, in, unk, all}); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// The peak is what WindowRatesAt reports at Peak.At.
	o, _, _ := WindowRatesAt(ser, out.At)
	if o.S2 != out.Rate {
		t.Errorf("WindowRatesAt(peak.At).S2 = %v, want %v", o.S2, out.Rate)
	}
}

// The streaming tracker agrees with PeaksOf on in-order input.
func TestPeakTrackerMatchesSeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		pt := newPeakTracker()
		var at peakAt
		var s series
		sec := int64(rng.IntN(5))
		for range rng.IntN(60) {
			sec += int64(rng.IntN(3))
			d := uint8(rng.IntN(2))
			n := int64(rng.IntN(1500))
			pt.add(sec, d, n, &at)
			s.add(sec, d, n)
		}
		o, i, b := pt.peaks(&at)
		wo, wi, wb := peakOfOutIn(s.sorted())
		if d := cmp.Diff([]PeakRate{wo, wi, wb}, []PeakRate{o, i, b}); d != "" {
			t.Fatalf("trial %d (-series +tracker):\n%s", trial, d)
		}
	}
}

func TestWindowLog(t *testing.T) {
	tests := []struct {
		name string
		at   int64 // 0: follow the latest second
		secs []int64
		want []int64 // seconds kept, among secs, for at = latest
	}{
		{"follow", 0, []int64{1, 50, 60, 61, 100, 99, 60}, []int64{61, 100, 99}},
		{"fixed", 62 * nsPerSec, []int64{1, 22, 23, 50, 62, 63, 100}, []int64{23, 50, 62}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWindowLog(tt.at)
			for i, s := range tt.secs {
				if sl := w.slot(s); sl != nil {
					sl.ents = append(sl.ents, logEnt{flow: int32(i), b: [2]uint32{uint32(s), 0}})
				}
			}
			at := floorSec(tt.at)
			if tt.at == 0 {
				at = w.maxSec
			}
			sums := w.sums(len(tt.secs), at)
			var got []int64
			for i, ws := range sums {
				if ws[0][2] != 0 {
					got = append(got, tt.secs[i])
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

// TestSeriesOrderedAndNot: the series keeps no index while seconds come in
// order (earlier ones found by binary search) and builds one at the first
// new earlier second; either way its buckets are the sums per second.
func TestSeriesOrderedAndNot(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, reorder := range []int{0, 50, 2} { // never, rarely, often a new earlier second
		var s series
		want := map[int64][3]int64{}
		sec := int64(1000)
		for i := range 5000 {
			switch {
			case reorder > 0 && rng.IntN(reorder) == 0:
				sec -= int64(rng.IntN(30)) // maybe a second never seen
			case rng.IntN(3) == 0:
				sec += int64(1 + rng.IntN(3))
			}
			d := uint8(i % 3)
			n := int64(1 + rng.IntN(1500))
			s.add(sec, d, n)
			w := want[sec]
			w[d] += n
			want[sec] = w
		}
		got := s.sorted()
		if len(got) != len(want) {
			t.Fatalf("reorder %d: %d buckets, want %d", reorder, len(got), len(want))
		}
		for i, b := range got {
			if i > 0 && got[i-1].Sec >= b.Sec {
				t.Fatalf("reorder %d: not sorted at %d", reorder, i)
			}
			if w := want[b.Sec]; w != [3]int64{b.Out, b.In, b.Unknown} {
				t.Errorf("reorder %d: second %d: %v, want %v", reorder, b.Sec, b, w)
			}
		}
		if (s.idx == nil) != (reorder == 0) {
			t.Errorf("reorder %d: index built %v", reorder, s.idx != nil)
		}
	}
}

package metrics

import (
	"math"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	s := func(sec, v float64) sample { return sample{int64(sec * 1000), v} }
	tests := []struct {
		name       string
		samples    []sample
		start, end float64 // seconds
		window     time.Duration
		want       float64
		ok         bool
	}{
		{
			// increase 30 over 15 s of samples, extrapolated 5 s back to
			// the window's start (within 1.1 intervals): 30*20/15/20.
			name:    "steady counter",
			samples: []sample{s(5, 10), s(10, 20), s(15, 30), s(20, 40)},
			start:   0, end: 20, window: 20 * time.Second, want: 2, ok: true,
		},
		{
			// 10→20, reset, 0→5, 5→15: increase 10+5+10 = 25; 25*20/15/20.
			name:    "counter reset",
			samples: []sample{s(5, 10), s(10, 20), s(15, 5), s(20, 15)},
			start:   0, end: 20, window: 20 * time.Second, want: 25.0 / 15, ok: true,
		},
		{
			// The window starts 10 s before the first sample (more than
			// 1.1 intervals): extrapolate half an interval only: 20*12.5/10/20.
			name:    "gap at start",
			samples: []sample{s(10, 100), s(15, 110), s(20, 120)},
			start:   0, end: 20, window: 20 * time.Second, want: 1.25, ok: true,
		},
		{
			// A counter at 2 that grows 2/s was 0 one second before the
			// first sample: extrapolate 1 s back only: 20*11/10/20.
			name:    "no extrapolation below zero",
			samples: []sample{s(10, 2), s(15, 12), s(20, 22)},
			start:   0, end: 20, window: 20 * time.Second, want: 1.1, ok: true,
		},
		{
			// Samples outside (start, end] are ignored; the one at start too.
			name:    "window bounds",
			samples: []sample{s(0, 1000), s(5, 10), s(10, 20), s(15, 30), s(20, 40), s(25, 1e6)},
			start:   0, end: 20, window: 20 * time.Second, want: 2, ok: true,
		},
		{
			name:    "one sample",
			samples: []sample{s(10, 5)},
			start:   0, end: 20, window: 20 * time.Second, ok: false,
		},
		{
			name:    "flat",
			samples: []sample{s(5, 7), s(10, 7)},
			start:   0, end: 10, window: 10 * time.Second, want: 0, ok: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rate(tt.samples, int64(tt.start*1000), int64(tt.end*1000), tt.window)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("rate = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 40 observations: 10 in (0.5,1], 20 in (1,5], 10 in (5,10].
	b := []bucket{{0.5, 0}, {1, 10}, {5, 30}, {10, 40}, {25, 40}, {inf, 40}}
	tests := []struct {
		name    string
		q       float64
		buckets []bucket
		want    float64
	}{
		{"p50: rank 20 in (1,5]: 1+4*(10/20)", 0.5, b, 3},
		{"p95: rank 38 in (5,10]: 5+5*(8/10)", 0.95, b, 9},
		{"p99: rank 39.6 in (5,10]: 5+5*(9.6/10)", 0.99, b, 9.8},
		{"p25: rank 10 ends (0.5,1]", 0.25, b, 1},
		{"p0", 0, b, 0.5},
		{"unsorted input", 0.5, []bucket{{inf, 40}, {10, 40}, {1, 10}, {5, 30}, {0.5, 0}, {25, 40}}, 3},
		{"in +Inf: highest finite bound", 0.9, []bucket{{1, 10}, {inf, 20}}, 1},
		{"first bucket starts at 0", 0.5, []bucket{{10, 10}, {inf, 10}}, 5},
		{"non-monotonic rates are fixed: rank 15 in (5,10]", 0.75, []bucket{{1, 10}, {5, 9}, {10, 20}, {inf, 20}}, 7.5},
		{"no observations", 0.5, []bucket{{1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{1, 5}, {10, 10}}, math.NaN()},
		{"q > 1", 1.5, b, inf},
		{"q < 0", -1, b, math.Inf(-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := histogramQuantile(tt.q, tt.buckets)
			if math.IsNaN(tt.want) {
				if !math.IsNaN(got) {
					t.Fatalf("got %v, want NaN", got)
				}
				return
			}
			if math.Abs(got-tt.want) > 1e-9 && got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

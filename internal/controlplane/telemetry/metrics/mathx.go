package metrics

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"
)

// rate is Prometheus's rate() of a counter over the window (start, end]
// (Unix ms): the increase between the first and last sample in the window,
// counter resets added back (a sample lower than the one before it means the
// counter restarted from zero), extrapolated towards the window's edges as
// Prometheus does (by at most half a sample interval past the samples, and
// never below zero), divided by the window. ok is false with fewer than two
// samples in the window.
func rate(samples []sample, start, end int64, window time.Duration) (float64, bool) {
	i := sort.Search(len(samples), func(i int) bool { return samples[i].t > start })
	j := sort.Search(len(samples), func(i int) bool { return samples[i].t > end })
	in := samples[i:j]
	if len(in) < 2 {
		return 0, false
	}
	first, last := in[0], in[len(in)-1]
	increase := last.v - first.v
	prev := first.v
	for _, s := range in[1:] {
		if s.v < prev {
			increase += prev // reset: the counter went back to 0 before s
		}
		prev = s.v
	}
	sampled := float64(last.t-first.t) / 1000
	toStart := float64(first.t-start) / 1000
	toEnd := float64(end-last.t) / 1000
	avg := sampled / float64(len(in)-1)
	if increase > 0 && first.v >= 0 {
		// A counter cannot have been below zero: do not extrapolate past
		// the time it would have been zero.
		if toZero := sampled * (first.v / increase); toZero < toStart {
			toStart = toZero
		}
	}
	threshold := avg * 1.1
	interval := sampled
	if toStart < threshold {
		interval += toStart
	} else {
		interval += avg / 2
	}
	if toEnd < threshold {
		interval += toEnd
	} else {
		interval += avg / 2
	}
	return increase * interval / sampled / window.Seconds(), true
}

// bucket is one cumulative histogram bucket: observations <= upper.
type bucket struct {
	upper float64
	count float64
}

// parseLe reads a bucket bound as Prometheus writes it (+Inf included).
func parseLe(le string) (float64, bool) {
	v, err := strconv.ParseFloat(le, 64)
	return v, err == nil
}

// histogramQuantile is PromQL's histogram_quantile(q, buckets): buckets are
// cumulative (rates or counts) with their upper bounds, one of them +Inf.
// The quantile is interpolated linearly inside the bucket it falls in, the
// first bucket starting at 0; a quantile in the +Inf bucket is the highest
// finite bound. It returns NaN without observations or without a +Inf
// bucket, -Inf/+Inf for q < 0 / q > 1.
func histogramQuantile(q float64, buckets []bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(1)
	}
	b := slices.Clone(buckets)
	slices.SortFunc(b, func(x, y bucket) int {
		switch {
		case x.upper < y.upper:
			return -1
		case x.upper > y.upper:
			return 1
		}
		return 0
	})
	if len(b) < 2 || !math.IsInf(b[len(b)-1].upper, 1) {
		return math.NaN()
	}
	// Counts from rates may be slightly non-monotonic; Prometheus fixes that.
	for i := 1; i < len(b); i++ {
		if b[i].count < b[i-1].count {
			b[i].count = b[i-1].count
		}
	}
	total := b[len(b)-1].count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	i := sort.Search(len(b)-1, func(i int) bool { return b[i].count >= rank })
	if i == len(b)-1 {
		return b[len(b)-2].upper
	}
	if i == 0 && b[0].upper <= 0 {
		return b[0].upper
	}
	start, end, count := 0.0, b[i].upper, b[i].count
	if i > 0 {
		start = b[i-1].upper
		count -= b[i-1].count
		rank -= b[i-1].count
	}
	if count == 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

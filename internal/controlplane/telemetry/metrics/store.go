// Package metrics is the control plane's embedded metrics pipeline: a
// scraper that reads every connected proxy's /stats/prometheus, a bounded
// in-memory time-series store of Istio's standard metrics, and the queries
// the console needs (edges, nodes, chart series) answered either from that
// store or from a real Prometheus, with the same JSON.
package metrics

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for StoreOptions.
const (
	DefaultRetention = time.Hour
	DefaultMaxSeries = 20000
)

// StoreOptions bounds a Store.
type StoreOptions struct {
	// Retention is how long samples are kept (DefaultRetention when 0).
	Retention time.Duration
	// MaxSeries is how many series are kept at most (DefaultMaxSeries when
	// 0); at the limit the least recently updated series is evicted.
	MaxSeries int
}

// Labels are a series' labels, without its name and, for histogram
// buckets, without le (kept apart so buckets share one map).
type Labels map[string]string

// sample is one scraped value.
type sample struct {
	t int64 // Unix milliseconds
	v float64
}

// series is one time series: a metric name, labels and its samples, oldest first.
type series struct {
	name    string
	labels  Labels
	le      string // histogram bucket bound ("" for other series)
	samples []sample
}

func (s *series) last() int64 {
	if len(s.samples) == 0 {
		return 0
	}
	return s.samples[len(s.samples)-1].t
}

// Point is one value to append: Name is the full series name
// (istio_request_duration_milliseconds_bucket), Le the bucket bound.
type Point struct {
	Name   string
	Labels Labels
	Le     string
	Value  float64
}

// Store keeps recent samples of Istio's metrics in memory, bounded by
// series count and retention. It is safe for concurrent use.
type Store struct {
	opts StoreOptions

	mu      sync.RWMutex
	byName  map[string]map[string]*series // name -> key -> series
	count   int
	evicted int
}

var _ Source = (*Store)(nil)

// NewStore returns an empty store.
func NewStore(opts StoreOptions) *Store {
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.MaxSeries <= 0 {
		opts.MaxSeries = DefaultMaxSeries
	}
	return &Store{opts: opts, byName: map[string]map[string]*series{}}
}

// seriesKey identifies a series by its labels and le.
func seriesKey(l Labels, le string) string {
	keys := slices.Sorted(maps.Keys(l))
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	b.WriteString(le)
	return b.String()
}

// Append adds the points of one scrape taken at t. Samples older than the
// series' last one are dropped.
func (s *Store) Append(t time.Time, points []Point) {
	ms := t.UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(ms)
	for _, p := range points {
		key := seriesKey(p.Labels, p.Le)
		sr := s.byName[p.Name][key]
		if sr == nil {
			if s.count >= s.opts.MaxSeries && !s.evictOldest(ms) {
				continue
			}
			byKey := s.byName[p.Name]
			if byKey == nil {
				byKey = map[string]*series{}
				s.byName[p.Name] = byKey
			}
			sr = &series{name: p.Name, labels: p.Labels, le: p.Le}
			byKey[key] = sr
			s.count++
		}
		if n := len(sr.samples); n > 0 && sr.samples[n-1].t >= ms {
			continue
		}
		sr.samples = append(sr.samples, sample{ms, p.Value})
	}
}

// expire drops samples older than the retention, and series left empty.
func (s *Store) expire(now int64) {
	cutoff := now - s.opts.Retention.Milliseconds()
	for name, byKey := range s.byName {
		for key, sr := range byKey {
			i := 0
			for i < len(sr.samples) && sr.samples[i].t < cutoff {
				i++
			}
			if i == len(sr.samples) {
				delete(byKey, key)
				s.count--
				continue
			}
			if i > 0 {
				sr.samples = slices.Clone(sr.samples[i:])
			}
		}
		if len(byKey) == 0 {
			delete(s.byName, name)
		}
	}
}

// evictOldest removes the least recently updated series, unless every
// series was updated at now (then the new one is the one dropped).
func (s *Store) evictOldest(now int64) bool {
	var oldest *series
	var oldestKey string
	for _, byKey := range s.byName {
		for key, sr := range byKey {
			if oldest == nil || sr.last() < oldest.last() {
				oldest, oldestKey = sr, key
			}
		}
	}
	if oldest == nil || oldest.last() >= now {
		s.evicted++
		return false
	}
	delete(s.byName[oldest.name], oldestKey)
	if len(s.byName[oldest.name]) == 0 {
		delete(s.byName, oldest.name)
	}
	s.count--
	s.evicted++
	return true
}

// Stats reports the store's size: series kept and series evicted or
// refused at the limit so far.
func (s *Store) Stats() (series, evicted int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.count, s.evicted
}

// Rates implements Source over the stored samples: for each evaluation
// time, rate(metric{matchers}[rng]) per series, summed by the labels in by.
func (s *Store) Rates(_ context.Context, q RateQuery) ([]Vector, error) {
	times := q.times()
	s.mu.RLock()
	defer s.mu.RUnlock()
	groups := map[string]*Vector{}
	var order []string
	for _, sr := range s.byName[q.Metric] {
		if !matches(sr.labels, q.Matchers) {
			continue
		}
		var key string
		var lbls Labels
		for i, at := range times {
			v, ok := rate(sr.samples, at.Add(-q.Range).UnixMilli(), at.UnixMilli(), q.Range)
			if !ok {
				continue
			}
			if lbls == nil {
				lbls = groupLabels(sr, q.By)
				key = seriesKey(lbls, "")
			}
			g := groups[key]
			if g == nil {
				g = &Vector{Labels: lbls, Values: make([]float64, len(times)), Present: make([]bool, len(times))}
				groups[key] = g
				order = append(order, key)
			}
			g.Values[i] += v
			g.Present[i] = true
		}
	}
	slices.Sort(order)
	out := make([]Vector, 0, len(order))
	for _, k := range order {
		g := groups[k]
		g.Times = times
		out = append(out, *g)
	}
	return out, nil
}

func matches(l Labels, m map[string]string) bool {
	for k, v := range m {
		if l[k] != v {
			return false
		}
	}
	return true
}

func groupLabels(sr *series, by []string) Labels {
	l := make(Labels, len(by))
	for _, k := range by {
		if k == "le" {
			l[k] = sr.le
			continue
		}
		l[k] = sr.labels[k]
	}
	return l
}

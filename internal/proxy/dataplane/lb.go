package dataplane

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// state is what outlives config updates: endpoint counters (least-request
// reads the active ones) and round-robin positions, keyed by cluster name.
type state struct {
	stats    sync.Map // cluster|addr -> *endpointStats
	rr       sync.Map // cluster -> *atomic.Uint64
	breakers sync.Map // cluster -> *breaker
	buckets  sync.Map // rate limit bucket key -> *tokenBucket
}

// breaker returns the cluster's circuit breaker, with limits l.
func (s *state) breaker(clusterName string, l *breakerLimits) *breaker {
	v, ok := s.breakers.Load(clusterName)
	if !ok {
		v, _ = s.breakers.LoadOrStore(clusterName, &breaker{})
	}
	b := v.(*breaker)
	b.limits.Store(l)
	return b
}

func (s *state) endpointStats(clusterName, addr string) *endpointStats {
	if v, ok := s.stats.Load(clusterName + "|" + addr); ok {
		return v.(*endpointStats)
	}
	v, _ := s.stats.LoadOrStore(clusterName+"|"+addr, &endpointStats{})
	return v.(*endpointStats)
}

// rrPosition returns the cluster's round-robin position, starting at a random
// one so proxies don't all hit the same endpoint first.
func (s *state) rrPosition(clusterName string) *atomic.Uint64 {
	if v, ok := s.rr.Load(clusterName); ok {
		return v.(*atomic.Uint64)
	}
	p := new(atomic.Uint64)
	p.Store(rand.Uint64N(1 << 32))
	v, _ := s.rr.LoadOrStore(clusterName, p)
	return v.(*atomic.Uint64)
}

// endpointStats are an endpoint's live counters; they outlive config updates.
type endpointStats struct {
	active atomic.Int64
	total  atomic.Int64
	failed atomic.Int64
	// Outlier detection: consecutive errors, ejections, ejected until (unix ns).
	consec5xx, consecGateway atomic.Int64
	ejections, ejectedUntil  atomic.Int64
}

// picker chooses an endpoint index among n. Implementations are safe for concurrent use.
type picker interface {
	pick(eps []*rendpoint) *rendpoint
}

// roundRobin visits endpoints in turn, each as often as its weight.
type roundRobin struct {
	next *atomic.Uint64 // shared by the builds of one cluster
	// wheel holds endpoint indexes repeated by weight.
	wheel []int
}

func newRoundRobin(eps []*rendpoint, pos *atomic.Uint64) *roundRobin {
	rr := &roundRobin{next: pos}
	for i, e := range eps {
		w := e.weight
		if w == 0 {
			w = 1
		}
		for range min(w, 128) {
			rr.wheel = append(rr.wheel, i)
		}
	}
	return rr
}

func (r *roundRobin) pick(eps []*rendpoint) *rendpoint {
	if len(r.wheel) == 0 {
		return nil
	}
	return eps[r.wheel[(r.next.Add(1)-1)%uint64(len(r.wheel))]]
}

// leastRequest picks the less busy of two random endpoints (power of two choices).
type leastRequest struct{}

func (leastRequest) pick(eps []*rendpoint) *rendpoint {
	switch len(eps) {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	a, b := eps[rand.IntN(len(eps))], eps[rand.IntN(len(eps))]
	if b.stats.active.Load() < a.stats.active.Load() {
		return b
	}
	return a
}

// random picks uniformly.
type random struct{}

func (random) pick(eps []*rendpoint) *rendpoint {
	if len(eps) == 0 {
		return nil
	}
	return eps[rand.IntN(len(eps))]
}

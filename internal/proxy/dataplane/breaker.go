package dataplane

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// breaker enforces a cluster's circuit breaker thresholds (Envoy's default
// priority): connections in use, requests waiting for one, requests in
// flight and retries in flight. Its counters outlive config updates; the
// limits are swapped in by each compile.
type breaker struct {
	limits atomic.Pointer[breakerLimits]

	mu      sync.Mutex
	inUse   int64 // HTTP/1.1 requests holding an upstream connection
	waiting []chan struct{}

	active  atomic.Int64 // requests in flight
	retries atomic.Int64 // retries in flight
	// overflows counts requests refused (503 UO) and retries not made.
	overflows, retryOverflows atomic.Int64
}

type breakerLimits struct {
	maxConnections, maxPending, maxRequests, maxRetries int64
}

// unlimited is what Istio sets when a DestinationRule says nothing.
const unlimited = math.MaxUint32

// envoyDefaultLimit is Envoy's default for thresholds a config leaves unset.
const envoyDefaultLimit = 1024

func compileBreaker(c *cluster.Cluster) (*breakerLimits, error) {
	ths := c.GetCircuitBreakers().GetThresholds()
	l := &breakerLimits{maxConnections: envoyDefaultLimit, maxPending: envoyDefaultLimit, maxRequests: envoyDefaultLimit, maxRetries: 3}
	if len(ths) == 0 {
		return l, nil
	}
	if len(ths) > 1 || ths[0].GetPriority() != 0 {
		return nil, fmt.Errorf("circuit_breakers: only one threshold for the DEFAULT priority is supported")
	}
	th := ths[0]
	if th.GetRetryBudget() != nil {
		return nil, fmt.Errorf("circuit_breakers.retry_budget is not supported by weft proxy")
	}
	set := func(dst *int64, v interface{ GetValue() uint32 }, present bool) {
		if present {
			*dst = int64(v.GetValue())
		}
	}
	set(&l.maxConnections, th.GetMaxConnections(), th.GetMaxConnections() != nil)
	set(&l.maxPending, th.GetMaxPendingRequests(), th.GetMaxPendingRequests() != nil)
	set(&l.maxRequests, th.GetMaxRequests(), th.GetMaxRequests() != nil)
	set(&l.maxRetries, th.GetMaxRetries(), th.GetMaxRetries() != nil)
	return l, nil
}

// admit reserves room for one request. HTTP/1.1 requests (h1) each hold a
// connection: beyond maxConnections they wait, at most maxPending of them,
// until one frees. Every request counts against maxRequests. It returns
// false when the request overflows (503, flag UO); otherwise release must
// be called when the exchange ends.
func (b *breaker) admit(ctx context.Context, h1 bool) (ok bool) {
	l := b.limits.Load()
	if b.active.Add(1) > l.maxRequests {
		b.active.Add(-1)
		b.overflows.Add(1)
		return false
	}
	if !h1 || l.maxConnections >= unlimited {
		return true
	}
	b.mu.Lock()
	if b.inUse < l.maxConnections {
		b.inUse++
		b.mu.Unlock()
		return true
	}
	if int64(len(b.waiting)) >= l.maxPending {
		b.mu.Unlock()
		b.active.Add(-1)
		b.overflows.Add(1)
		return false
	}
	ch := make(chan struct{})
	b.waiting = append(b.waiting, ch)
	b.mu.Unlock()
	select {
	case <-ch: // the releaser handed its connection slot over
		return true
	case <-ctx.Done():
		b.mu.Lock()
		for i, w := range b.waiting {
			if w == ch {
				b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
				b.mu.Unlock()
				b.active.Add(-1)
				return false
			}
		}
		b.mu.Unlock()
		b.release(true) // handed over just now: pass it on
		return false
	}
}

// release ends an admitted request.
func (b *breaker) release(h1 bool) {
	b.active.Add(-1)
	l := b.limits.Load()
	if !h1 || l.maxConnections >= unlimited {
		return
	}
	b.mu.Lock()
	if len(b.waiting) > 0 {
		ch := b.waiting[0]
		b.waiting = b.waiting[1:]
		b.mu.Unlock()
		close(ch) // the waiter takes over this connection slot
		return
	}
	if b.inUse > 0 {
		b.inUse--
	}
	b.mu.Unlock()
}

// retry reserves a retry; false when max_retries are already in flight.
func (b *breaker) retry() bool {
	if b.retries.Add(1) > b.limits.Load().maxRetries {
		b.retries.Add(-1)
		b.retryOverflows.Add(1)
		return false
	}
	return true
}

// retryDone ends a retry reserved by retry.
func (b *breaker) retryDone() { b.retries.Add(-1) }

// Outlier detection.

// routlier is a compiled OutlierDetection.
type routlier struct {
	consecutive5xx, consecutiveGateway int64
	baseEjection                       time.Duration
	maxEjectionPct                     float64
	// panicPct: below this share of healthy endpoints, ejection is ignored.
	panicPct float64
}

func compileOutlier(c *cluster.Cluster) (*routlier, error) {
	od := c.GetOutlierDetection()
	if od == nil {
		return nil, nil
	}
	out := &routlier{baseEjection: 30 * time.Second, maxEjectionPct: 10, panicPct: 50}
	if od.GetEnforcingConsecutive_5Xx() == nil || od.GetEnforcingConsecutive_5Xx().GetValue() > 0 {
		out.consecutive5xx = 5
		if v := od.GetConsecutive_5Xx(); v != nil {
			out.consecutive5xx = int64(v.GetValue())
		}
	}
	if od.GetEnforcingConsecutiveGatewayFailure().GetValue() > 0 {
		out.consecutiveGateway = 5
		if v := od.GetConsecutiveGatewayFailure(); v != nil {
			out.consecutiveGateway = int64(v.GetValue())
		}
	}
	if t := od.GetBaseEjectionTime(); t != nil {
		out.baseEjection = t.AsDuration()
	}
	if p := od.GetMaxEjectionPercent(); p != nil {
		out.maxEjectionPct = float64(p.GetValue())
	}
	if p := c.GetCommonLbConfig().GetHealthyPanicThreshold(); p != nil {
		out.panicPct = p.GetValue()
	}
	switch {
	case od.GetEnforcingSuccessRate() == nil || od.GetEnforcingSuccessRate().GetValue() > 0:
		if od.GetSuccessRateMinimumHosts() != nil || od.GetSuccessRateStdevFactor() != nil {
			return nil, fmt.Errorf("outlier_detection: success-rate ejection is not supported by weft proxy")
		}
	case od.GetSplitExternalLocalOriginErrors():
		return nil, fmt.Errorf("outlier_detection.split_external_local_origin_errors is not supported by weft proxy")
	}
	return out, nil
}

// outcome records how an exchange with ep ended and ejects ep when it
// reached the cluster's consecutive error limits. status is the response
// status, 0 for a local failure (connect failure, reset, timeout).
func (cl *rcluster) outcome(ep *rendpoint, status int) {
	od := cl.outlier
	if od == nil || ep.stats == nil {
		return
	}
	st := ep.stats
	var n5xx, ngw int64
	switch {
	case status == 0 || status == 502 || status == 503 || status == 504:
		n5xx, ngw = st.consec5xx.Add(1), st.consecGateway.Add(1)
	case status >= 500:
		n5xx = st.consec5xx.Add(1)
		st.consecGateway.Store(0)
	default:
		if st.consec5xx.Load() != 0 {
			st.consec5xx.Store(0)
		}
		if st.consecGateway.Load() != 0 {
			st.consecGateway.Store(0)
		}
		return
	}
	if (od.consecutive5xx > 0 && n5xx >= od.consecutive5xx) || (od.consecutiveGateway > 0 && ngw >= od.consecutiveGateway) {
		cl.eject(ep)
	}
}

// eject takes ep out of rotation for baseEjectionTime times its number of
// ejections, unless maxEjectionPercent is reached (one host may always go).
func (cl *rcluster) eject(ep *rendpoint) {
	now := time.Now()
	if ep.ejected(now) {
		return
	}
	ejected := 0
	for _, e := range cl.endpoints {
		if e.ejected(now) {
			ejected++
		}
	}
	if ejected > 0 && float64(ejected+1)*100 > cl.outlier.maxEjectionPct*float64(len(cl.endpoints)) {
		return
	}
	n := ep.stats.ejections.Add(1)
	ep.stats.ejectedUntil.Store(now.Add(cl.outlier.baseEjection * time.Duration(min(n, 10))).UnixNano())
	ep.stats.consec5xx.Store(0)
	ep.stats.consecGateway.Store(0)
}

// ejected reports whether outlier detection has ep out of rotation.
func (e *rendpoint) ejected(now time.Time) bool {
	if e.stats == nil {
		return false
	}
	u := e.stats.ejectedUntil.Load()
	return u != 0 && now.UnixNano() < u
}

// pick chooses an endpoint with the cluster's balancer, skipping ejected
// ones unless too few are healthy (Envoy's panic mode).
func (cl *rcluster) pick() *rendpoint {
	if len(cl.levels) > 1 {
		return cl.pickLevel()
	}
	return pickIn(cl.lb, cl.endpoints, cl.outlier)
}

// pickIn picks among eps with lb, skipping ejected endpoints unless too
// few are healthy (Envoy's panic mode).
func pickIn(lb picker, eps []*rendpoint, od *routlier) *rendpoint {
	ep := lb.pick(eps)
	if od == nil || ep == nil || ep.stats.ejectedUntil.Load() == 0 {
		return ep
	}
	now := time.Now()
	if !ep.ejected(now) {
		return ep
	}
	healthy := 0
	for _, e := range eps {
		if !e.ejected(now) {
			healthy++
		}
	}
	if healthy == 0 || float64(healthy)*100 < od.panicPct*float64(len(eps)) {
		return ep // panic: balance across all
	}
	for range len(eps) {
		if e := lb.pick(eps); !e.ejected(now) {
			return e
		}
	}
	for _, e := range eps {
		if !e.ejected(now) {
			return e
		}
	}
	return ep
}

// overflowBody is Envoy's answer when a circuit breaker trips (flag UO).
const overflowBody = "upstream connect error or disconnect/reset before headers. reset reason: overflow"

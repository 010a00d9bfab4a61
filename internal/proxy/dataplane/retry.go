package dataplane

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// Retry conditions (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on values).
const (
	retry5xx uint32 = 1 << iota
	retryGatewayError
	retryReset
	retryConnectFailure
	retryRetriable4xx
	retryRefusedStream
	retryStatusCodes
	retryCancelled
	retryDeadlineExceeded
	retryInternal
	retryResourceExhausted
	retryUnavailable
)

var retryConditions = map[string]uint32{
	"5xx": retry5xx, "gateway-error": retryGatewayError, "reset": retryReset, "connect-failure": retryConnectFailure,
	"retriable-4xx": retryRetriable4xx, "refused-stream": retryRefusedStream, "retriable-status-codes": retryStatusCodes,
	"cancelled": retryCancelled, "deadline-exceeded": retryDeadlineExceeded, "internal": retryInternal,
	"resource-exhausted": retryResourceExhausted, "unavailable": retryUnavailable,
}

// Envoy's default retry back-off: 25 ms base, at most 10 times that.
const (
	retryBackoffBase = 25 * time.Millisecond
	retryBackoffMax  = 250 * time.Millisecond
	// maxRetryBody is the largest request body buffered so it can be sent again.
	maxRetryBody = 64 << 10
)

// rretry is a compiled RetryPolicy.
type rretry struct {
	retries       int
	perTry        time.Duration
	on            uint32
	codes         []int
	previousHosts bool
	hostAttempts  int
}

func compileRetry(p *route.RetryPolicy) (*rretry, error) {
	if p == nil {
		return nil, nil
	}
	out := &rretry{retries: 1, hostAttempts: 1}
	if n := p.GetNumRetries(); n != nil {
		out.retries = int(n.GetValue())
	}
	for _, c := range strings.Split(p.GetRetryOn(), ",") {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		bit, ok := retryConditions[c]
		if !ok {
			return nil, fmt.Errorf("retry_policy.retry_on %q is not supported by weft proxy", c)
		}
		out.on |= bit
	}
	for _, c := range p.GetRetriableStatusCodes() {
		out.codes = append(out.codes, int(c))
	}
	if t := p.GetPerTryTimeout(); t != nil {
		if err := t.CheckValid(); err != nil || t.AsDuration() < 0 {
			return nil, fmt.Errorf("retry_policy.per_try_timeout: invalid duration")
		}
		out.perTry = t.AsDuration()
	}
	for _, h := range p.GetRetryHostPredicate() {
		if h.GetName() != "envoy.retry_host_predicates.previous_hosts" {
			return nil, fmt.Errorf("retry_policy.retry_host_predicate %q is not supported by weft proxy", h.GetName())
		}
		out.previousHosts = true
	}
	if n := p.GetHostSelectionRetryMaxAttempts(); n > 0 {
		out.hostAttempts = int(n)
	}
	switch {
	case p.GetRetryPriority() != nil:
		return nil, fmt.Errorf("retry_policy.retry_priority is not supported by weft proxy")
	case len(p.GetRetriableHeaders()) > 0 || len(p.GetRetriableRequestHeaders()) > 0:
		return nil, fmt.Errorf("retry_policy.retriable_headers are not supported by weft proxy")
	case p.GetRateLimitedRetryBackOff() != nil:
		return nil, fmt.Errorf("retry_policy.rate_limited_retry_back_off is not supported by weft proxy")
	}
	if b := p.GetRetryBackOff(); b != nil {
		return nil, fmt.Errorf("retry_policy.retry_back_off is not supported by weft proxy (Envoy's default 25 ms is used)")
	}
	if out.retries == 0 || out.on == 0 {
		return nil, nil
	}
	return out, nil
}

// retriable reports whether the policy retries an attempt that ended in f.
func (p *rretry) retriable(f http1.Failure) bool {
	on := p.on
	switch {
	case f.Connect:
		return on&(retryConnectFailure|retry5xx|retryGatewayError|retryReset) != 0
	case f.Reset:
		return on&(retryReset|retry5xx|retryGatewayError) != 0
	case f.Timeout:
		return on&(retry5xx|retryGatewayError) != 0
	}
	if f.GRPCStatus != "" {
		switch f.GRPCStatus {
		case "1":
			return on&retryCancelled != 0
		case "4":
			return on&retryDeadlineExceeded != 0
		case "8":
			return on&retryResourceExhausted != 0
		case "13":
			return on&retryInternal != 0
		case "14":
			return on&retryUnavailable != 0
		}
	}
	s := f.Status
	switch {
	case s >= 500 && on&retry5xx != 0:
		return true
	case (s == 502 || s == 503 || s == 504) && on&retryGatewayError != 0:
		return true
	case s == 409 && on&retryRetriable4xx != 0:
		return true
	}
	if on&retryStatusCodes != 0 {
		for _, c := range p.codes {
			if c == s {
				return true
			}
		}
	}
	return false
}

// backoff is Envoy's fully jittered exponential back-off before retry n (1-based).
func backoff(n int) time.Duration {
	ceiling := retryBackoffBase << min(n-1, 4)
	ceiling = min(ceiling, retryBackoffMax)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// pickRetry picks the endpoint for a retry: with previous_hosts, one not
// tried yet when the policy's host selection attempts find one.
func (p *rretry) pickRetry(cl *rcluster, tried []*rendpoint) *rendpoint {
	var ep *rendpoint
	for range max(p.hostAttempts, 1) {
		ep = cl.pick()
		if ep == nil || !p.previousHosts || !triedBefore(tried, ep) {
			return ep
		}
	}
	return ep
}

func triedBefore(tried []*rendpoint, ep *rendpoint) bool {
	for _, t := range tried {
		if t == ep {
			return true
		}
	}
	return false
}

// attemptCount is the x-envoy-attempt-count value of attempt n.
func attemptCount(n int) string { return strconv.Itoa(n) }

// verdict decides about attempt n that ended in f: retry (with the next
// endpoint), stop, or stop because the limit was reached.
func (p *rretry) verdict(n int, f http1.Failure, cl *rcluster, tried []*rendpoint) (*rendpoint, http1.Verdict) {
	if !p.retriable(f) {
		return nil, http1.Stop
	}
	if n > p.retries {
		return nil, http1.Exhausted
	}
	ep := p.pickRetry(cl, tried)
	if ep == nil {
		return nil, http1.Stop
	}
	return ep, http1.Again
}

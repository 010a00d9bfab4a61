package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	localrl "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	"google.golang.org/protobuf/proto"
)

// localRateLimitFilter is Envoy's local rate limit HTTP filter.
const localRateLimitFilter = "envoy.filters.http.local_ratelimit"

// rateLimitedBody is Envoy's answer to a locally rate-limited request (429, flag RL).
const rateLimitedBody = "local_rate_limited"

// rlimit is a compiled LocalRateLimit: a token bucket, optional
// descriptors with their own buckets, and the response to limited requests.
type rlimit struct {
	bucket      *bucketSpec // nil: no filter-wide limit
	enabled     uint32      // share of requests checked, per million
	enforced    uint32      // share of limited requests refused, per million
	status      int
	headers     *headerEdits
	descriptors []rdescriptor
}

// bucketSpec is a token bucket's configuration and where its live state is kept.
type bucketSpec struct {
	key          string // identifies the bucket across config updates
	max, perFill int64
	interval     time.Duration
	live         atomic.Pointer[tokenBucket]
	// owner is the state the bucket lives in.
	owner *state
}

type rdescriptor struct {
	entries [][2]string
	bucket  *bucketSpec
}

// tokenBucket is the live state of a bucket: refilled by perFill tokens
// every interval, up to max.
type tokenBucket struct {
	mu     sync.Mutex
	tokens int64
	last   time.Time
}

func (s *bucketSpec) take(now time.Time) bool {
	b := s.live.Load()
	if b == nil {
		v, _ := s.owner.buckets.LoadOrStore(s.key, &tokenBucket{tokens: s.max, last: now})
		b = v.(*tokenBucket)
		s.live.Store(b)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := int64(now.Sub(b.last) / s.interval); n > 0 {
		b.tokens = min(s.max, b.tokens+n*s.perFill)
		b.last = b.last.Add(time.Duration(n) * s.interval)
	}
	if b.tokens <= 0 {
		return false
	}
	b.tokens--
	return true
}

func compileLocalRateLimit(cfg *localrl.LocalRateLimit, where string, st *state) (*rlimit, error) {
	out := &rlimit{status: http.StatusTooManyRequests, enabled: 0, enforced: 0}
	// Envoy checks and enforces nothing unless filter_enabled / filter_enforced say so.
	if fe := cfg.GetFilterEnabled(); fe != nil {
		out.enabled = perMillion(fe.GetDefaultValue())
	}
	if fe := cfg.GetFilterEnforced(); fe != nil {
		out.enforced = perMillion(fe.GetDefaultValue())
	}
	if s := cfg.GetStatus(); s != nil && s.GetCode() != 0 {
		out.status = int(s.GetCode())
	}
	raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	key := where + "|" + string(raw)
	if tb := cfg.GetTokenBucket(); tb != nil {
		per := int64(1)
		if tb.GetTokensPerFill() != nil {
			per = int64(tb.GetTokensPerFill().GetValue())
		}
		if tb.GetFillInterval().AsDuration() <= 0 {
			return nil, fmt.Errorf("token_bucket.fill_interval must be positive")
		}
		out.bucket = &bucketSpec{key: key, max: int64(tb.GetMaxTokens()), perFill: per, interval: tb.GetFillInterval().AsDuration(), owner: st}
	}
	for i, d := range cfg.GetDescriptors() {
		tb := d.GetTokenBucket()
		if tb == nil || tb.GetFillInterval().AsDuration() <= 0 {
			return nil, fmt.Errorf("descriptors[%d]: a token bucket with a positive fill_interval is required", i)
		}
		per := int64(1)
		if tb.GetTokensPerFill() != nil {
			per = int64(tb.GetTokensPerFill().GetValue())
		}
		rd := rdescriptor{bucket: &bucketSpec{key: fmt.Sprintf("%s|d%d", key, i), max: int64(tb.GetMaxTokens()), perFill: per,
			interval: tb.GetFillInterval().AsDuration(), owner: st}}
		for _, e := range d.GetEntries() {
			rd.entries = append(rd.entries, [2]string{e.GetKey(), e.GetValue()})
		}
		out.descriptors = append(out.descriptors, rd)
	}
	switch {
	case cfg.GetStage() != 0:
		return nil, fmt.Errorf("stage %d is not supported (only 0)", cfg.GetStage())
	case cfg.GetLocalRateLimitPerDownstreamConnection():
		return nil, fmt.Errorf("local_rate_limit_per_downstream_connection is not supported")
	case len(cfg.GetRequestHeadersToAddWhenNotEnforced()) > 0:
		return nil, fmt.Errorf("request_headers_to_add_when_not_enforced is not supported")
	}
	var err error
	if out.headers, err = compileHeaders("response_headers_to_add", cfg.GetResponseHeadersToAdd(), nil); err != nil {
		return nil, err
	}
	return out, nil
}

// rateAction is a compiled RateLimit action producing one descriptor entry.
type rateAction struct {
	kind          byte // 'h' request header, 'g' generic key, 'm' header value match, 'r' remote address
	header, canon string
	key, value    string
	expect        bool
	headers       []headerMatch
	skipIfAbsent  bool
}

func compileRateLimits(rls []*route.RateLimit) ([][]rateAction, error) {
	var out [][]rateAction
	for i, rl := range rls {
		if rl.GetStage() != nil && rl.GetStage().GetValue() != 0 {
			return nil, fmt.Errorf("rate_limits[%d].stage: only 0 is supported", i)
		}
		var acts []rateAction
		for j, a := range rl.GetActions() {
			switch s := a.GetActionSpecifier().(type) {
			case *route.RateLimit_Action_RequestHeaders_:
				acts = append(acts, rateAction{kind: 'h', header: strings.ToLower(s.RequestHeaders.GetHeaderName()),
					canon: http.CanonicalHeaderKey(s.RequestHeaders.GetHeaderName()), key: s.RequestHeaders.GetDescriptorKey(),
					skipIfAbsent: s.RequestHeaders.GetSkipIfAbsent()})
			case *route.RateLimit_Action_GenericKey_:
				key := s.GenericKey.GetDescriptorKey()
				if key == "" {
					key = "generic_key"
				}
				acts = append(acts, rateAction{kind: 'g', key: key, value: s.GenericKey.GetDescriptorValue()})
			case *route.RateLimit_Action_HeaderValueMatch_:
				ra := rateAction{kind: 'm', key: s.HeaderValueMatch.GetDescriptorKey(), value: s.HeaderValueMatch.GetDescriptorValue(),
					expect: s.HeaderValueMatch.GetExpectMatch() == nil || s.HeaderValueMatch.GetExpectMatch().GetValue()}
				if ra.key == "" {
					ra.key = "header_match"
				}
				hm, err := compileHeaderMatchers(s.HeaderValueMatch.GetHeaders())
				if err != nil {
					return nil, fmt.Errorf("rate_limits[%d].actions[%d]: %w", i, j, err)
				}
				ra.headers = hm
				acts = append(acts, ra)
			case *route.RateLimit_Action_RemoteAddress_:
				acts = append(acts, rateAction{kind: 'r', key: "remote_address"})
			default:
				return nil, fmt.Errorf("rate_limits[%d].actions[%d]: %T is not supported", i, j, s)
			}
		}
		out = append(out, acts)
	}
	return out, nil
}

// descriptor computes one rate_limits entry's descriptor; ok is false when
// an action produced nothing (the descriptor is then skipped, as in Envoy).
func descriptor(acts []rateAction, r request, remote string) (entries [][2]string, ok bool) {
	for _, a := range acts {
		switch a.kind {
		case 'h':
			v, found := r.header(a.header, a.canon)
			if !found {
				if a.skipIfAbsent {
					continue
				}
				return nil, false
			}
			entries = append(entries, [2]string{a.key, v})
		case 'g':
			entries = append(entries, [2]string{a.key, a.value})
		case 'm':
			all := true
			for i := range a.headers {
				if a.headers[i].matches(r, r.pathQuery()) == a.headers[i].invert {
					all = false
				}
			}
			if all != a.expect {
				return nil, false
			}
			entries = append(entries, [2]string{a.key, a.value})
		case 'r':
			host, _, err := net.SplitHostPort(remote)
			if err != nil {
				return nil, false
			}
			entries = append(entries, [2]string{a.key, host})
		}
	}
	return entries, len(entries) > 0
}

func sameEntries(a, b [][2]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// limited reports whether a request is refused by the route's local rate
// limit (the route's own config, else the filter's), and with what.
func (c *rchain) limited(r *rroute, req request, remote string) (*rlimit, bool) {
	if !c.ratelimit {
		return nil, false
	}
	l := r.ratelimit
	if l == nil {
		l = c.ratelimitCfg
	}
	if l == nil || l.enabled == 0 || (l.enabled < 1_000_000 && rand.Uint32N(1_000_000) >= l.enabled) {
		return nil, false
	}
	spec := l.bucket
	if len(l.descriptors) > 0 && len(r.rateLimits) > 0 {
	search:
		for _, acts := range r.rateLimits {
			entries, ok := descriptor(acts, req, remote)
			if !ok {
				continue
			}
			for i := range l.descriptors {
				if sameEntries(l.descriptors[i].entries, entries) {
					spec = l.descriptors[i].bucket
					break search
				}
			}
		}
	}
	if spec == nil || spec.take(time.Now()) {
		return nil, false
	}
	if l.enforced == 0 || (l.enforced < 1_000_000 && rand.Uint32N(1_000_000) >= l.enforced) {
		return nil, false
	}
	return l, true
}

// compileRouteRateLimit reads a route's (else its virtual host's) local
// rate limit config and the route's descriptor actions.
func compileRouteRateLimit(out *rroute, table string, vh *route.VirtualHost, r *route.Route, st *state) error {
	cfgAny := r.GetTypedPerFilterConfig()[localRateLimitFilter]
	where := table + "|" + vh.GetName() + "|" + r.GetName()
	if cfgAny == nil {
		cfgAny = vh.GetTypedPerFilterConfig()[localRateLimitFilter]
		where = table + "|" + vh.GetName()
	}
	if cfgAny != nil {
		cfg := &localrl.LocalRateLimit{}
		if err := cfgAny.UnmarshalTo(cfg); err != nil {
			return fmt.Errorf("typed_per_filter_config %q: %w", localRateLimitFilter, err)
		}
		l, err := compileLocalRateLimit(cfg, where, st)
		if err != nil {
			return fmt.Errorf("typed_per_filter_config %q: %w", localRateLimitFilter, err)
		}
		out.ratelimit = l
	}
	var err error
	if ra := r.GetRoute(); ra != nil {
		if out.rateLimits, err = compileRateLimits(ra.GetRateLimits()); err != nil {
			return err
		}
	}
	if len(vh.GetRateLimits()) > 0 {
		return fmt.Errorf("virtual host rate_limits are not supported (put them on routes)")
	}
	return nil
}

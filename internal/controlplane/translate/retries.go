package translate

import (
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushosts "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
)

// Istio's default retry policy, applied to every route of a service that
// sets no retries: two retries on connect failure, refused stream, gRPC
// unavailable/cancelled and 503, each on another host when one exists.
const (
	defaultRetryOn       = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
	defaultRetryAttempts = 2
	// hostSelectionAttempts is how often a retry may pick again to avoid a host already tried.
	hostSelectionAttempts = 5
)

// previousHostsPredicate is Envoy's envoy.retry_host_predicates.previous_hosts.
var previousHostsPredicate = func() *route.RetryPolicy_RetryHostPredicate {
	a, err := anypb.New(&previoushosts.PreviousHostsPredicate{})
	if err != nil {
		panic(err)
	}
	return &route.RetryPolicy_RetryHostPredicate{
		Name:       "envoy.retry_host_predicates.previous_hosts",
		ConfigType: &route.RetryPolicy_RetryHostPredicate_TypedConfig{TypedConfig: a},
	}
}()

// retryPolicy translates a route's retries as Istio does: nil retries get
// the default policy, attempts 0 disables retrying, retryOn's numbers
// become retriable status codes.
func retryPolicy(r *networking.HTTPRetry) *route.RetryPolicy {
	if r != nil && r.GetAttempts() <= 0 {
		return nil
	}
	p := &route.RetryPolicy{
		RetryOn:                       defaultRetryOn,
		NumRetries:                    wrapperspb.UInt32(defaultRetryAttempts),
		RetriableStatusCodes:          []uint32{503},
		RetryHostPredicate:            []*route.RetryPolicy_RetryHostPredicate{previousHostsPredicate},
		HostSelectionRetryMaxAttempts: hostSelectionAttempts,
	}
	if r == nil {
		return p
	}
	p.NumRetries = wrapperspb.UInt32(uint32(r.GetAttempts()))
	if t := r.GetPerTryTimeout(); t != nil {
		p.PerTryTimeout = durationpb.New(t.AsDuration())
	}
	if r.GetRetryOn() != "" {
		p.RetryOn, p.RetriableStatusCodes = parseRetryOn(r.GetRetryOn())
	}
	return p
}

// parseRetryOn splits Istio's retryOn into Envoy's retry_on conditions and
// retriable status codes (numbers, which add retriable-status-codes).
func parseRetryOn(s string) (string, []uint32) {
	var on []string
	var codes []uint32
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n, err := strconv.ParseUint(part, 10, 32); err == nil {
			codes = append(codes, uint32(n))
			part = "retriable-status-codes"
		}
		if !seen[part] {
			seen[part] = true
			on = append(on, part)
		}
	}
	return strings.Join(on, ","), codes
}

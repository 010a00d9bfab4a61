package dataplane

import (
	"fmt"
	"math/rand/v2"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// faultFilter is the name under which routes carry fault injection config.
const faultFilter = "envoy.filters.http.fault"

// rfault is a route's compiled fault injection: a delay and/or an abort,
// each applied to a share of requests (per million).
type rfault struct {
	delay      time.Duration
	delayShare uint32
	status     int // HTTP status of an abort, 0 for none
	grpcStatus int // gRPC status of an abort, -1 for none
	abortShare uint32
}

// compileFault reads a route's typed_per_filter_config; only the fault filter's is understood.
func compileFault(r *route.Route) (*rfault, error) {
	cfgs := r.GetTypedPerFilterConfig()
	for name := range cfgs {
		if name != faultFilter && name != corsFilter && name != localRateLimitFilter {
			return nil, fmt.Errorf("typed_per_filter_config %q is not supported by weft proxy", name)
		}
	}
	if cfgs[faultFilter] == nil {
		return nil, nil
	}
	hf := &faultfilter.HTTPFault{}
	if err := cfgs[faultFilter].UnmarshalTo(hf); err != nil {
		return nil, fmt.Errorf("typed_per_filter_config %q: %w", faultFilter, err)
	}
	if hf.GetUpstreamCluster() != "" || len(hf.GetHeaders()) > 0 || len(hf.GetDownstreamNodes()) > 0 || hf.GetMaxActiveFaults() != nil {
		return nil, fmt.Errorf("fault: only delay and abort are supported")
	}
	f := &rfault{grpcStatus: -1}
	if d := hf.GetDelay(); d != nil {
		if d.GetFixedDelay() == nil {
			return nil, fmt.Errorf("fault.delay: only fixed_delay is supported")
		}
		f.delay, f.delayShare = d.GetFixedDelay().AsDuration(), perMillion(d.GetPercentage())
	}
	if a := hf.GetAbort(); a != nil {
		switch e := a.GetErrorType().(type) {
		case *faultfilter.FaultAbort_HttpStatus:
			if e.HttpStatus < 200 || e.HttpStatus >= 600 {
				return nil, fmt.Errorf("fault.abort.http_status %d: want 200-599", e.HttpStatus)
			}
			f.status = int(e.HttpStatus)
		case *faultfilter.FaultAbort_GrpcStatus:
			f.grpcStatus = int(e.GrpcStatus)
		default:
			return nil, fmt.Errorf("fault.abort: only http_status and grpc_status are supported")
		}
		f.abortShare = perMillion(a.GetPercentage())
	}
	return f, nil
}

func perMillion(p *typev3.FractionalPercent) uint32 {
	if p == nil {
		return 0
	}
	n := uint64(p.GetNumerator())
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		n *= 10000
	case typev3.FractionalPercent_TEN_THOUSAND:
		n *= 100
	}
	return uint32(min(n, 1_000_000))
}

func hit(share uint32) bool {
	return share > 0 && (share >= 1_000_000 || rand.Uint32N(1_000_000) < share)
}

// faultAction is what a fault does to one request: a delay before going
// upstream and, when it aborts, the response to send instead.
type faultAction struct {
	delay      time.Duration
	abort      bool
	status     int
	grpcStatus int
}

// roll decides the fault for one request.
func (f *rfault) roll() faultAction {
	var a faultAction
	if f == nil {
		return a
	}
	if hit(f.delayShare) {
		a.delay = f.delay
	}
	if hit(f.abortShare) {
		a.abort, a.status, a.grpcStatus = true, f.status, f.grpcStatus
	}
	return a
}

// faultAbortBody is Envoy's body for an injected abort.
const faultAbortBody = "fault filter abort"

package translate

import (
	"strings"

	faultcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

// FaultFilter is the name of Envoy's fault injection filter.
const FaultFilter = "envoy.filters.http.fault"

// faultConfig turns a VirtualService fault into the fault filter's per-route config.
func faultConfig(f *networking.HTTPFaultInjection) map[string]*anypb.Any {
	if f == nil {
		return nil
	}
	out := &faultfilter.HTTPFault{}
	if d := f.GetDelay(); d != nil && d.GetFixedDelay() != nil {
		out.Delay = &faultcommon.FaultDelay{
			FaultDelaySecifier: &faultcommon.FaultDelay_FixedDelay{FixedDelay: durationpb.New(d.GetFixedDelay().AsDuration())},
			Percentage:         percent(d.GetPercentage(), d.GetPercent()),
		}
	}
	if a := f.GetAbort(); a != nil {
		abort := &faultfilter.FaultAbort{Percentage: percent(a.GetPercentage(), 0)}
		switch {
		case a.GetGrpcStatus() != "":
			abort.ErrorType = &faultfilter.FaultAbort_GrpcStatus{GrpcStatus: uint32(code.Code_value[strings.ToUpper(a.GetGrpcStatus())])}
		default:
			abort.ErrorType = &faultfilter.FaultAbort_HttpStatus{HttpStatus: uint32(a.GetHttpStatus())}
		}
		out.Abort = abort
	}
	return map[string]*anypb.Any{FaultFilter: mustAny(out)}
}

// percent is Istio's percentage (100% when unset) as Envoy's per-million fraction.
func percent(p *networking.Percent, legacy int32) *typev3.FractionalPercent {
	v := 100.0
	switch {
	case p != nil:
		v = p.GetValue()
	case legacy > 0:
		v = float64(legacy)
	}
	return &typev3.FractionalPercent{Numerator: uint32(v * 10000), Denominator: typev3.FractionalPercent_MILLION}
}

package translate

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// mirrorPolicies translates mirror + mirrorPercentage and mirrors[] into
// Envoy's request_mirror_policies (100% when no percentage is given).
func (b *builder) mirrorPolicies(o *config.Object, hr *networking.HTTPRoute, port uint32) []*route.RouteAction_RequestMirrorPolicy {
	var out []*route.RouteAction_RequestMirrorPolicy
	add := func(d *networking.Destination, p *networking.Percent) {
		out = append(out, &route.RouteAction_RequestMirrorPolicy{
			Cluster:         b.destinationCluster(o, d, port),
			RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: percent(p, 0)},
		})
	}
	if m := hr.GetMirror(); m != nil {
		p := hr.GetMirrorPercentage()
		if p == nil && hr.GetMirrorPercent() != nil { //nolint:staticcheck // Istio's deprecated field
			p = &networking.Percent{Value: float64(hr.GetMirrorPercent().GetValue())} //nolint:staticcheck
		}
		add(m, p)
	}
	for _, m := range hr.GetMirrors() {
		add(m.GetDestination(), m.GetPercentage())
	}
	return out
}

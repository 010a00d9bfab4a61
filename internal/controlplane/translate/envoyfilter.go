package translate

import (
	"sort"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// envoyFilters returns the EnvoyFilters that apply to the proxy, in Istio's
// order: root namespace first, then the proxy's namespace, each by priority.
func (b *builder) envoyFilters() []*config.Object {
	var out []*config.Object
	for _, o := range b.in.Config {
		if o.Kind != config.KindEnvoyFilter {
			continue
		}
		ef := o.Spec.(*networking.EnvoyFilter)
		if o.Namespace != RootNamespace && o.Namespace != b.in.Proxy.Namespace {
			continue
		}
		if sel := ef.GetWorkloadSelector().GetLabels(); len(sel) > 0 && !registry.Matches(sel, b.in.Proxy.Labels) {
			continue
		}
		out = append(out, o)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, c := out[i], out[j]
		if (a.Namespace == RootNamespace) != (c.Namespace == RootNamespace) {
			return a.Namespace == RootNamespace
		}
		pa, pc := a.Spec.(*networking.EnvoyFilter).GetPriority(), c.Spec.(*networking.EnvoyFilter).GetPriority()
		if pa != pc {
			return pa < pc
		}
		return older(a, c)
	})
	return out
}

// applyEnvoyFilters applies the proxy's EnvoyFilters: Istio's local rate
// limiting (config.RateLimitPatches refuses every other patch at apply).
func (b *builder) applyEnvoyFilters() {
	for _, o := range b.envoyFilters() {
		patches, err := config.RateLimitPatches(o.Spec.(*networking.EnvoyFilter))
		if err != nil {
			b.warn(o, "spec.configPatches", err.Error())
			continue
		}
		for _, p := range patches {
			if !b.contextMatches(p.Context) {
				continue
			}
			if p.Route {
				b.patchRoutes(p)
			} else {
				b.insertRateLimitFilter(p)
			}
		}
	}
}

func (b *builder) contextMatches(c networking.EnvoyFilter_PatchContext) bool {
	gateway := b.in.Proxy.Type == ProxyRouter
	switch c {
	case networking.EnvoyFilter_ANY:
		return true
	case networking.EnvoyFilter_GATEWAY:
		return gateway
	case networking.EnvoyFilter_SIDECAR_INBOUND, networking.EnvoyFilter_SIDECAR_OUTBOUND:
		return !gateway
	}
	return false
}

// chainContext says whether a listener's chains are inbound (virtualInbound)
// or outbound/gateway ones, and the port of a chain.
func chainMatches(p config.RateLimitPatch, l *listener.Listener, fc *listener.FilterChain) bool {
	inbound := l.GetName() == VirtualInbound
	switch p.Context {
	case networking.EnvoyFilter_SIDECAR_INBOUND:
		if !inbound {
			return false
		}
	case networking.EnvoyFilter_SIDECAR_OUTBOUND, networking.EnvoyFilter_GATEWAY:
		if inbound {
			return false
		}
	}
	if p.Port == 0 {
		return true
	}
	if inbound {
		return fc.GetFilterChainMatch().GetDestinationPort().GetValue() == p.Port
	}
	return l.GetAddress().GetSocketAddress().GetPortValue() == p.Port
}

// eachHCM edits every HTTP connection manager of the matching chains.
func (b *builder) eachHCM(p config.RateLimitPatch, edit func(*hcm.HttpConnectionManager)) {
	for _, r := range b.out.Listeners {
		l := r.(*listener.Listener)
		for _, fc := range l.GetFilterChains() {
			if !chainMatches(p, l, fc) {
				continue
			}
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig().MessageIs(m) && f.GetTypedConfig().UnmarshalTo(m) == nil {
					edit(m)
					f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
				}
			}
		}
	}
}

// insertRateLimitFilter puts the local rate limit filter before the router.
func (b *builder) insertRateLimitFilter(p config.RateLimitPatch) {
	filter := &hcm.HttpFilter{Name: config.LocalRateLimitFilter, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(p.Config)}}
	b.eachHCM(p, func(m *hcm.HttpConnectionManager) {
		n := len(m.HttpFilters)
		out := make([]*hcm.HttpFilter, 0, n+1)
		out = append(out, m.HttpFilters[:n-1]...)
		out = append(out, filter, m.HttpFilters[n-1]) // the router stays last
		m.HttpFilters = out
	})
}

// patchRoutes merges per-route rate limit config and descriptors into the
// routes (or virtual hosts) the patch names, in RDS and inline route configs.
func (b *builder) patchRoutes(p config.RateLimitPatch) {
	apply := func(rc *route.RouteConfiguration) {
		for _, vh := range rc.GetVirtualHosts() {
			if p.VHostName != "" && vh.GetName() != p.VHostName {
				continue
			}
			var cfg *anypb.Any
			if p.Config != nil {
				cfg = mustAny(p.Config)
			}
			if p.RouteName == "" && p.RateLimits == nil && cfg != nil && p.VHostName != "" {
				if vh.TypedPerFilterConfig == nil {
					vh.TypedPerFilterConfig = map[string]*anypb.Any{}
				}
				vh.TypedPerFilterConfig[config.LocalRateLimitFilter] = cfg
				continue
			}
			for _, r := range vh.GetRoutes() {
				if p.RouteName != "" && r.GetName() != p.RouteName {
					continue
				}
				if cfg != nil {
					if r.TypedPerFilterConfig == nil {
						r.TypedPerFilterConfig = map[string]*anypb.Any{}
					}
					r.TypedPerFilterConfig[config.LocalRateLimitFilter] = cfg
				}
				if ra := r.GetRoute(); ra != nil {
					for _, rl := range p.RateLimits {
						ra.RateLimits = append(ra.RateLimits, proto.Clone(rl).(*route.RateLimit))
					}
				}
			}
		}
	}
	if p.Context != networking.EnvoyFilter_SIDECAR_INBOUND {
		for _, r := range b.out.Routes {
			rc := r.(*route.RouteConfiguration)
			if p.Port != 0 && rc.GetName() != RouteName(p.Port) && rc.GetName() != "http."+itoa(int(p.Port)) {
				continue
			}
			apply(rc)
		}
	}
	if p.Context == networking.EnvoyFilter_SIDECAR_INBOUND || p.Context == networking.EnvoyFilter_ANY {
		b.eachHCM(config.RateLimitPatch{Context: networking.EnvoyFilter_SIDECAR_INBOUND, Port: p.Port}, func(m *hcm.HttpConnectionManager) {
			if rc := m.GetRouteConfig(); rc != nil {
				apply(rc)
			}
		})
	}
}

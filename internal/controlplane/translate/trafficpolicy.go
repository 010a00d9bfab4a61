package translate

import (
	"math"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// Istio's outlier detection defaults.
const (
	defaultOutlierInterval  = 10e9 // 10 s
	defaultBaseEjectionTime = 30e9 // 30 s
	defaultMaxEjectionPct   = 10
)

// effectivePolicy merges a DestinationRule's traffic policy as Istio does:
// the subset's top-level fields replace the rule's, then the settings of
// the port replace those.
func effectivePolicy(dr *config.Object, ss *networking.Subset, port uint32) *networking.TrafficPolicy {
	out := &networking.TrafficPolicy{}
	if dr != nil {
		if tp := dr.Spec.(*networking.DestinationRule).GetTrafficPolicy(); tp != nil {
			out = proto.Clone(tp).(*networking.TrafficPolicy)
		}
	}
	if sp := ss.GetTrafficPolicy(); sp != nil {
		if sp.LoadBalancer != nil {
			out.LoadBalancer = sp.LoadBalancer
		}
		if sp.ConnectionPool != nil {
			out.ConnectionPool = sp.ConnectionPool
		}
		if sp.OutlierDetection != nil {
			out.OutlierDetection = sp.OutlierDetection
		}
		if sp.Tls != nil {
			out.Tls = sp.Tls
		}
		if len(sp.PortLevelSettings) > 0 {
			out.PortLevelSettings = sp.PortLevelSettings
		}
	}
	for _, pl := range out.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() != port {
			continue
		}
		if pl.LoadBalancer != nil {
			out.LoadBalancer = pl.LoadBalancer
		}
		if pl.ConnectionPool != nil {
			out.ConnectionPool = pl.ConnectionPool
		}
		if pl.OutlierDetection != nil {
			out.OutlierDetection = pl.OutlierDetection
		}
		if pl.Tls != nil {
			out.Tls = pl.Tls
		}
	}
	return out
}

// lbPolicyOf maps Istio's simple load balancer to Envoy's lb_policy.
func lbPolicyOf(tp *networking.TrafficPolicy) cluster.Cluster_LbPolicy {
	switch tp.GetLoadBalancer().GetSimple() {
	case networking.LoadBalancerSettings_LEAST_REQUEST, networking.LoadBalancerSettings_LEAST_CONN:
		return cluster.Cluster_LEAST_REQUEST
	case networking.LoadBalancerSettings_RANDOM:
		return cluster.Cluster_RANDOM
	}
	return cluster.Cluster_ROUND_ROBIN
}

// applyConnectionPool sets the cluster's circuit breakers, connect timeout,
// keepalive and per-connection HTTP limits. Without settings every
// threshold is unlimited, as Istio sets them.
func applyConnectionPool(c *cluster.Cluster, cp *networking.ConnectionPoolSettings, h2 bool) {
	unlimited := wrapperspb.UInt32(math.MaxUint32)
	th := &cluster.CircuitBreakers_Thresholds{
		MaxConnections: unlimited, MaxPendingRequests: unlimited, MaxRequests: unlimited, MaxRetries: unlimited,
		TrackRemaining: true,
	}
	limit := func(n int32) *wrapperspb.UInt32Value {
		if n <= 0 {
			return unlimited
		}
		return wrapperspb.UInt32(uint32(n))
	}
	if tcp := cp.GetTcp(); tcp != nil {
		th.MaxConnections = limit(tcp.GetMaxConnections())
		if t := tcp.GetConnectTimeout(); t != nil {
			c.ConnectTimeout = durationpb.New(t.AsDuration())
		}
		if ka := tcp.GetTcpKeepalive(); ka != nil {
			k := &core.TcpKeepalive{}
			if ka.GetProbes() > 0 {
				k.KeepaliveProbes = wrapperspb.UInt32(ka.GetProbes())
			}
			if t := ka.GetTime(); t != nil {
				k.KeepaliveTime = wrapperspb.UInt32(uint32(t.AsDuration().Seconds()))
			}
			if t := ka.GetInterval(); t != nil {
				k.KeepaliveInterval = wrapperspb.UInt32(uint32(t.AsDuration().Seconds()))
			}
			c.UpstreamConnectionOptions = &cluster.UpstreamConnectionOptions{TcpKeepalive: k}
		}
	}
	var common *core.HttpProtocolOptions
	if d := cp.GetTcp().GetMaxConnectionDuration(); d != nil {
		common = &core.HttpProtocolOptions{MaxConnectionDuration: durationpb.New(d.AsDuration())}
	}
	if http := cp.GetHttp(); http != nil {
		th.MaxPendingRequests = limit(http.GetHttp1MaxPendingRequests())
		th.MaxRequests = limit(http.GetHttp2MaxRequests())
		th.MaxRetries = limit(http.GetMaxRetries())
		if n := http.GetMaxRequestsPerConnection(); n > 0 {
			if common == nil {
				common = &core.HttpProtocolOptions{}
			}
			common.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(n))
		}
		if t := http.GetIdleTimeout(); t != nil {
			if common == nil {
				common = &core.HttpProtocolOptions{}
			}
			common.IdleTimeout = durationpb.New(t.AsDuration())
		}
		if http.GetH2UpgradePolicy() == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE {
			h2 = true
		}
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{th}}
	if h2 || common != nil {
		opts := &upstreamhttp.HttpProtocolOptions{CommonHttpProtocolOptions: common}
		if h2 {
			opts.UpstreamProtocolOptions = h2Options().UpstreamProtocolOptions
		} else {
			opts.UpstreamProtocolOptions = &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &core.Http1ProtocolOptions{}},
				},
			}
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: mustAny(opts)}
	}
}

// outlierDetection translates Istio's outlierDetection as Istio does:
// consecutive errors are enforced at 100 %, success-rate ejection is off,
// and minHealthPercent becomes the panic threshold (0 when unset).
func applyOutlierDetection(c *cluster.Cluster, od *networking.OutlierDetection) {
	if od == nil {
		return
	}
	out := &cluster.OutlierDetection{
		Interval:                 durationpb.New(defaultOutlierInterval),
		BaseEjectionTime:         durationpb.New(defaultBaseEjectionTime),
		MaxEjectionPercent:       wrapperspb.UInt32(defaultMaxEjectionPct),
		EnforcingSuccessRate:     wrapperspb.UInt32(0),
		EnforcingConsecutive_5Xx: wrapperspb.UInt32(0),
	}
	n5xx := od.GetConsecutive_5XxErrors().GetValue()
	if od.GetConsecutive_5XxErrors() == nil && od.GetConsecutiveErrors() > 0 { //nolint:staticcheck // Istio's deprecated alias
		n5xx = uint32(od.GetConsecutiveErrors()) //nolint:staticcheck
	}
	if n5xx > 0 {
		out.Consecutive_5Xx = wrapperspb.UInt32(n5xx)
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(100)
	}
	if n := od.GetConsecutiveGatewayErrors().GetValue(); n > 0 {
		out.ConsecutiveGatewayFailure = wrapperspb.UInt32(n)
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
	}
	if t := od.GetInterval(); t != nil {
		out.Interval = durationpb.New(t.AsDuration())
	}
	if t := od.GetBaseEjectionTime(); t != nil {
		out.BaseEjectionTime = durationpb.New(t.AsDuration())
	}
	if p := od.GetMaxEjectionPercent(); p > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(p))
	}
	c.OutlierDetection = out
	c.CommonLbConfig = &cluster.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: float64(od.GetMinHealthPercent())}}
}

// warnTrafficPolicy reports the traffic policy fields weft does not
// implement (config.UnimplementedTrafficPolicy, shared with weft analyze).
func (b *builder) warnTrafficPolicy(o *config.Object, path string, tp *networking.TrafficPolicy) {
	for _, u := range config.UnimplementedTrafficPolicy(path, tp) {
		b.warn(o, u.Path, u.Reason)
	}
}

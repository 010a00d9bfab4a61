package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// applyConsistentHash sets a ring hash (or Maglev) balancer for a
// consistentHash load balancer, as Istio does.
func applyConsistentHash(c *cluster.Cluster, tp *networking.TrafficPolicy) {
	ch := tp.GetLoadBalancer().GetConsistentHash()
	if ch == nil {
		return
	}
	if mg := ch.GetMaglev(); mg != nil {
		c.LbPolicy = cluster.Cluster_MAGLEV
		if mg.GetTableSize() > 0 {
			c.LbConfig = &cluster.Cluster_MaglevLbConfig_{MaglevLbConfig: &cluster.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(mg.GetTableSize())}}
		}
		return
	}
	c.LbPolicy = cluster.Cluster_RING_HASH
	min := ch.GetRingHash().GetMinimumRingSize()
	if min == 0 {
		min = ch.GetMinimumRingSize() //nolint:staticcheck // Istio's deprecated field
	}
	if min > 0 {
		c.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{MinimumRingSize: wrapperspb.UInt64(min)}}
	}
}

// hashPolicy is the route hash policy for a destination whose
// DestinationRule asks for consistent hashing (nil: none).
func (b *builder) hashPolicy(o *config.Object, d *networking.Destination, port uint32) []*route.RouteAction_HashPolicy {
	host := config.ResolveHost(d.GetHost(), o.Namespace)
	dr := b.drs[host]
	if dr == nil {
		return nil
	}
	var ss *networking.Subset
	for _, s := range dr.Spec.(*networking.DestinationRule).GetSubsets() {
		if s.GetName() == d.GetSubset() {
			ss = s
		}
	}
	return hashPolicyOf(effectivePolicy(dr, ss, port).GetLoadBalancer().GetConsistentHash())
}

func hashPolicyOf(ch *networking.LoadBalancerSettings_ConsistentHashLB) []*route.RouteAction_HashPolicy {
	if ch == nil {
		return nil
	}
	var hp *route.RouteAction_HashPolicy
	switch k := ch.GetHashKey().(type) {
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName:
		hp = &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{HeaderName: k.HttpHeaderName}}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpCookie:
		c := &route.RouteAction_HashPolicy_Cookie{Name: k.HttpCookie.GetName(), Path: k.HttpCookie.GetPath()}
		if t := k.HttpCookie.GetTtl(); t != nil {
			c.Ttl = durationpb.New(t.AsDuration())
		}
		hp = &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_Cookie_{Cookie: c}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_UseSourceIp:
		hp = &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &route.RouteAction_HashPolicy_ConnectionProperties{SourceIp: k.UseSourceIp}}}
	case *networking.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName:
		hp = &route.RouteAction_HashPolicy{PolicySpecifier: &route.RouteAction_HashPolicy_QueryParameter_{
			QueryParameter: &route.RouteAction_HashPolicy_QueryParameter{Name: k.HttpQueryParameterName}}}
	default:
		return nil
	}
	return []*route.RouteAction_HashPolicy{hp}
}

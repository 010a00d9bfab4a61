package translate

import (
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	networking "istio.io/api/networking/v1alpha3"
)

// localityOf parses "region/zone/subzone" (nil when empty).
func localityOf(s string) *core.Locality {
	if s == "" {
		return nil
	}
	parts := strings.SplitN(s, "/", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return &core.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
}

// localityPriorities gives each locality of la a priority by its distance
// from the proxy, as Istio's locality failover does when outlier detection
// is on: 0 the same subzone, 1 the same zone, 2 the same region, 3 other
// regions (a failover rule's "to" region before the rest, at 3 and 4).
// Endpoints of a lower priority get traffic only when the better ones are
// ejected or gone.
func (b *builder) localityPriorities(la *endpoint.ClusterLoadAssignment, tp *networking.TrafficPolicy) {
	lb := tp.GetLoadBalancer().GetLocalityLbSetting()
	if tp.GetOutlierDetection() == nil || (lb != nil && lb.GetEnabled() != nil && !lb.GetEnabled().GetValue()) {
		return
	}
	me := localityOf(b.in.Proxy.Locality)
	if me == nil || len(la.GetEndpoints()) < 2 {
		return
	}
	failTo := ""
	for _, f := range lb.GetFailover() {
		if f.GetFrom() == me.GetRegion() {
			failTo = f.GetTo()
		}
	}
	for _, g := range la.GetEndpoints() {
		l := g.GetLocality()
		switch {
		case l.GetRegion() == me.GetRegion() && l.GetZone() == me.GetZone() && l.GetSubZone() == me.GetSubZone():
			g.Priority = 0
		case l.GetRegion() == me.GetRegion() && l.GetZone() == me.GetZone():
			g.Priority = 1
		case l.GetRegion() == me.GetRegion():
			g.Priority = 2
		case failTo != "" && l.GetRegion() != failTo:
			g.Priority = 4
		default:
			g.Priority = 3
		}
	}
	// Envoy wants priorities without gaps: renumber the ones in use.
	used := map[uint32]bool{}
	for _, g := range la.GetEndpoints() {
		used[g.Priority] = true
	}
	next, remap := uint32(0), map[uint32]uint32{}
	for p := uint32(0); p <= 4; p++ {
		if used[p] {
			remap[p] = next
			next++
		}
	}
	for _, g := range la.GetEndpoints() {
		g.Priority = remap[g.Priority]
	}
}

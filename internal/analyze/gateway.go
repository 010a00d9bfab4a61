package analyze

import (
	"maps"
	"sort"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// conflictingGateways reports Gateways with the same workload selector and a
// server on the same port with an overlapping host (IST0145): a gateway
// workload cannot serve both. Each Gateway of a conflict gets a message.
func (a *analyzer) conflictingGateways() {
	for _, ao := range a.gwList {
		ag, ok := ao.Spec.(*networking.Gateway)
		if !ok {
			continue
		}
		for _, s := range ag.GetServers() {
			port := s.GetPort().GetNumber()
			var others []string
			for _, bo := range a.gwList {
				bg, ok := bo.Spec.(*networking.Gateway)
				if !ok || bo == ao || !maps.Equal(ag.GetSelector(), bg.GetSelector()) {
					continue
				}
				if serversConflict(s, bg.GetServers()) {
					others = append(others, bo.Namespace+"/"+bo.Name)
				}
			}
			if len(others) == 0 {
				continue
			}
			m := newMessage(ConflictingGateways, ao, "Conflict with gateways %s (workload selector %s, port %s, hosts %v).",
				strings.Join(others, ","), selectorString(ag.GetSelector()), strconv.FormatUint(uint64(port), 10),
				strings.Join(s.GetHosts(), ","))
			m.blocks = true
			a.report(m)
		}
	}
}

// serversConflict reports whether a server of servers listens on s's port
// with a host overlapping one of s's.
func serversConflict(s *networking.Server, servers []*networking.Server) bool {
	for _, t := range servers {
		if t.GetPort().GetNumber() != s.GetPort().GetNumber() {
			continue
		}
		for _, h := range s.GetHosts() {
			for _, th := range t.GetHosts() {
				if hostsOverlap(gatewayHost(h), gatewayHost(th)) {
					return true
				}
			}
		}
	}
	return false
}

// selectorString writes labels as Istio does: "k1=v1,k2=v2", sorted.
func selectorString(sel map[string]string) string {
	parts := make([]string, 0, len(sel))
	for k, v := range sel {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

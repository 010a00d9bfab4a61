package analyze

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// meshGateway is the reserved gateway name for the sidecars of the mesh.
const meshGateway = "mesh"

// virtualService runs the VirtualService checks on o.
func (a *analyzer) virtualService(o *config.Object) {
	vs, ok := o.Spec.(*networking.VirtualService)
	if !ok {
		return
	}
	a.destinations(o, vs)
	a.gatewayRefs(o, vs)
	a.unreachableRules(o, vs)
	a.proxylessIgnored(o, vs)
}

// proxylessIgnored tells, for a mesh VirtualService of a service with a
// gRPC port, which of its http route fields proxyless gRPC clients ignore:
// sidecars honour them, grpc-go's xDS client does not.
func (a *analyzer) proxylessIgnored(o *config.Object, vs *networking.VirtualService) {
	if len(vs.GetGateways()) > 0 && !slices.Contains(vs.GetGateways(), "mesh") {
		return
	}
	grpc := false
	for _, h := range vs.GetHosts() {
		if s, _ := a.hosts.lookup(h, o.Namespace); s != nil {
			for _, p := range s.Ports {
				grpc = grpc || p.Protocol == config.ProtocolGRPC
			}
		}
	}
	if !grpc {
		return
	}
	for i, hr := range vs.GetHttp() {
		for _, ig := range config.GRPCIgnoredFields(hr) {
			a.report(newMessage(ProxylessIgnored, o, "spec.http[%d].%s: %s.", i, ig.Field, ig.Reason))
		}
	}
}

// destinations reports destination hosts and subsets that do not exist (IST0101).
func (a *analyzer) destinations(o *config.Object, vs *networking.VirtualService) {
	live := a.servesKnownService(o, vs)
	check := func(d *networking.Destination, what string) {
		if d == nil || d.GetHost() == "" {
			return
		}
		if _, found := a.hosts.lookup(d.GetHost(), o.Namespace); !found {
			m := newMessage(ReferencedResourceNotFound, o, "Referenced %s not found: %q", what, d.GetHost())
			m.blocks = live && what == "host"
			a.report(m)
		}
		if d.GetSubset() != "" && !a.subsetDefined(d.GetHost(), o.Namespace, d.GetSubset()) {
			a.report(newMessage(ReferencedResourceNotFound, o, "Referenced %s+subset in destinationrule not found: %q",
				what, d.GetHost()+"+"+d.GetSubset()))
		}
	}
	for _, hr := range vs.GetHttp() {
		for _, rd := range hr.GetRoute() {
			check(rd.GetDestination(), "host")
		}
		check(hr.GetMirror(), "mirror")
		for _, mp := range hr.GetMirrors() {
			check(mp.GetDestination(), "mirror")
		}
	}
	for _, tr := range vs.GetTcp() {
		for _, rd := range tr.GetRoute() {
			check(rd.GetDestination(), "host")
		}
	}
	for _, tr := range vs.GetTls() {
		for _, rd := range tr.GetRoute() {
			check(rd.GetDestination(), "host")
		}
	}
}

// servesKnownService reports whether one of the VirtualService's hosts is a
// service of the registry: its rules then route traffic that flows now.
func (a *analyzer) servesKnownService(o *config.Object, vs *networking.VirtualService) bool {
	for _, h := range vs.GetHosts() {
		if strings.Contains(h, "*") {
			continue
		}
		if s, _ := a.hosts.lookup(h, o.Namespace); s != nil {
			return true
		}
	}
	return false
}

// subsetDefined reports whether a DestinationRule for host (written in
// namespace ns) defines the subset.
func (a *analyzer) subsetDefined(host, ns, subset string) bool {
	for _, dro := range a.drs {
		dr, ok := dro.Spec.(*networking.DestinationRule)
		if !ok || !sameHost(dr.GetHost(), dro.Namespace, host, ns) {
			continue
		}
		for _, ss := range dr.GetSubsets() {
			if ss.GetName() == subset {
				return true
			}
		}
	}
	return false
}

// gatewayRefs reports gateways that do not exist (IST0101) and hosts of the
// VirtualService that a gateway it binds to does not serve (IST0132).
func (a *analyzer) gatewayRefs(o *config.Object, vs *networking.VirtualService) {
	for _, g := range vs.GetGateways() {
		if g == meshGateway {
			continue
		}
		gwo := a.gateways[gatewayKey(g, o.Namespace)]
		if gwo == nil {
			a.report(newMessage(ReferencedResourceNotFound, o, "Referenced gateway not found: %q", g))
			continue
		}
		gw, ok := gwo.Spec.(*networking.Gateway)
		if !ok {
			continue
		}
		var missing []string
		for _, h := range vs.GetHosts() {
			if !gatewayServes(gw, h) {
				missing = append(missing, h)
			}
		}
		if len(missing) > 0 {
			a.report(newMessage(VirtualServiceHostNotFoundInGateway, o,
				"one or more host %v defined in VirtualService %s not found in Gateway %s.",
				missing, o.Namespace+"/"+o.Name, gwo.Namespace+"/"+gwo.Name))
		}
	}
}

// gatewayKey is "ns/name" for a VirtualService's gateway reference: "name"
// is in the VirtualService's namespace, "ns/name" is explicit.
func gatewayKey(ref, ns string) string {
	if strings.Contains(ref, "/") {
		return ref
	}
	return ns + "/" + ref
}

// gatewayServes reports whether one of gw's servers has a host overlapping host.
func gatewayServes(gw *networking.Gateway, host string) bool {
	for _, s := range gw.GetServers() {
		for _, sh := range s.GetHosts() {
			if hostsOverlap(gatewayHost(sh), host) {
				return true
			}
		}
	}
	return false
}

// unreachableRules reports http rules that can never match (IST0130) and
// matches that repeat an earlier one (IST0131), as Istio's analyzer does.
func (a *analyzer) unreachableRules(o *config.Object, vs *networking.VirtualService) {
	// seen maps each match already used, by its deterministic encoding
	// (equal matches encode alike), to the rule that used it first: one
	// lookup per match, so a VirtualService with thousands of rules is
	// analyzed in linear time.
	seen := map[string]int{}
	catchAll := -1
	routes := vs.GetHttp()
	for i, hr := range routes {
		if len(hr.GetMatch()) == 0 {
			if catchAll >= 0 {
				a.report(newMessage(VirtualServiceUnreachableRule, o, "VirtualService rule %s not used (%s).",
					ruleName(hr, i), "only the last rule can have no matches"))
			}
			catchAll = i
			continue
		}
		if catchAll >= 0 {
			a.report(newMessage(VirtualServiceUnreachableRule, o, "VirtualService rule %s not used (%s).",
				ruleName(hr, i), "route without matches defined before"))
			continue
		}
		dups := 0
		for j, m := range hr.GetMatch() {
			key := matchKey(m)
			if dup, ok := seen[key]; ok {
				a.report(newMessage(VirtualServiceIneffectiveMatch, o,
					"VirtualService rule %s match %s is not used (duplicate/overlapping match in rule %s).",
					ruleName(hr, i), matchName(m, j), ruleName(routes[dup], dup)))
				dups++
				continue
			}
			seen[key] = i
		}
		if dups == len(hr.GetMatch()) {
			a.report(newMessage(VirtualServiceUnreachableRule, o, "VirtualService rule %s not used (%s).",
				ruleName(hr, i), "all matches used by prior rules"))
		}
	}
}

// matchKey is m's identity for duplicate detection: its deterministic
// encoding, equal for matches that proto.Equal would call equal.
func matchKey(m *networking.HTTPMatchRequest) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil { // only for invalid UTF-8, which parsing refuses
		return fmt.Sprintf("%p", m)
	}
	return string(b)
}

// ruleName is how Istio names an http rule: its name quoted, else "#N".
func ruleName(hr *networking.HTTPRoute, i int) string {
	if hr.GetName() != "" {
		return fmt.Sprintf("%q", hr.GetName())
	}
	return fmt.Sprintf("#%d", i)
}

// matchName is how Istio names a match: its name quoted, else "#N".
func matchName(m *networking.HTTPMatchRequest, i int) string {
	if m.GetName() != "" {
		return fmt.Sprintf("%q", m.GetName())
	}
	return fmt.Sprintf("#%d", i)
}

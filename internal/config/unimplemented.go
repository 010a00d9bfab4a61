package config

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// Unimplemented is one field weft accepts (Istio's API has it) but does not
// act on yet. The control plane logs it when it translates the object and
// `weft analyze` reports it, so that no field is silently ignored. This is
// the one list of such fields: when a field gets implemented, remove it here.
type Unimplemented struct {
	// Path is the field's path, e.g. "spec.http[0].mirror".
	Path string
	// Reason says what weft does instead, e.g. "not implemented yet; ignored".
	Reason string
}

// String formats u as "PATH: REASON".
func (u Unimplemented) String() string { return u.Path + ": " + u.Reason }

const notImplemented = "not implemented yet; ignored"

// implementedRedirectCodes are the redirectCode values weft translates (0 is 301).
var implementedRedirectCodes = map[uint32]bool{0: true, 301: true, 302: true, 303: true, 307: true, 308: true}

// UnimplementedHTTPRoute lists the fields of a VirtualService's http route
// number i that weft does not implement.
func UnimplementedHTTPRoute(i int, hr *networking.HTTPRoute) []Unimplemented {
	var out []Unimplemented
	field := func(name string) string { return fmt.Sprintf("spec.http[%d].%s", i, name) }
	checks := []struct {
		set  bool
		name string
	}{
		{hr.GetRetries().GetRetryRemoteLocalities() != nil, "retries.retryRemoteLocalities"},
	}
	for _, c := range checks {
		if c.set {
			out = append(out, Unimplemented{field(c.name), notImplemented})
		}
	}
	if rd := hr.GetRedirect(); rd != nil {
		if !implementedRedirectCodes[rd.GetRedirectCode()] || rd.GetDerivePort() != 0 || rd.GetPrefixRewrite() != "" {
			out = append(out, Unimplemented{field("redirect"), "derivePort, prefixRewrite and codes other than 301/302/303/307/308 not implemented yet; ignored"})
		}
	}

	return out
}

// UnimplementedServer lists the fields of a Gateway server that weft does
// not implement. A server whose protocol is not HTTP is ignored as a whole
// (only its protocol is reported); skip it when ServerImplemented is false.
func UnimplementedServer(s *networking.Server) []Unimplemented {
	if !ServerImplemented(s) {
		return []Unimplemented{{"spec.servers.port.protocol", s.GetPort().GetProtocol() + " servers not implemented yet; ignored"}}
	}
	if s.GetTls() != nil && !passthrough(s) {
		return []Unimplemented{{"spec.servers.tls", "only mode PASSTHROUGH is implemented yet; ignored"}}
	}
	return nil
}

// passthrough reports a TLS server that routes by SNI without terminating.
func passthrough(s *networking.Server) bool {
	return s.GetTls() != nil && s.GetTls().GetMode() == networking.ServerTLSSettings_PASSTHROUGH
}

// ServerImplemented reports whether weft serves a Gateway server at all:
// HTTP protocols (HTTP, HTTP2, GRPC, GRPC-Web) and plain TCP ones are.
func ServerImplemented(s *networking.Server) bool {
	p := strings.ToUpper(s.GetPort().GetProtocol())
	if p == ProtocolTLS || (p == ProtocolHTTPS && passthrough(s)) {
		return passthrough(s)
	}
	return IsHTTPProtocol(p) || p == ProtocolTCP || p == "MONGO" || p == "MYSQL" || p == "REDIS"
}

// UnimplementedFields lists every field of obj that weft does not
// implement: those of UnimplementedHTTPRoute and UnimplementedServer, plus
// VirtualService tcp/tls routes, UnimplementedTrafficPolicy for every
// DestinationRule traffic policy (top, subsets, port-level settings), and
// the kinds weft accepts but does not enforce yet.
func UnimplementedFields(obj *Object) []Unimplemented {
	var out []Unimplemented
	switch spec := obj.Spec.(type) {
	case *networking.VirtualService:
		for i, hr := range spec.GetHttp() {
			out = append(out, UnimplementedHTTPRoute(i, hr)...)
		}
		for i, tr := range spec.GetTcp() {
			for j, m := range tr.GetMatch() {
				if len(m.GetDestinationSubnets()) > 0 || m.GetSourceNamespace() != "" {
					out = append(out, Unimplemented{fmt.Sprintf("spec.tcp[%d].match[%d]", i, j), "destinationSubnets and sourceNamespace are not implemented yet; ignored"})
				}
			}
		}
		for i, tr := range spec.GetTls() {
			for j, m := range tr.GetMatch() {
				if len(m.GetDestinationSubnets()) > 0 || m.GetSourceNamespace() != "" {
					out = append(out, Unimplemented{fmt.Sprintf("spec.tls[%d].match[%d]", i, j), "destinationSubnets and sourceNamespace are not implemented yet; ignored"})
				}
			}
		}
	case *networking.Gateway:
		for _, s := range spec.GetServers() {
			out = append(out, UnimplementedServer(s)...)
		}
	case *networking.DestinationRule:
		out = append(out, unimplementedPolicies("spec.trafficPolicy", spec.GetTrafficPolicy())...)
		for _, ss := range spec.GetSubsets() {
			out = append(out, unimplementedPolicies(fmt.Sprintf("spec.subsets[%s].trafficPolicy", ss.GetName()), ss.GetTrafficPolicy())...)
		}
	}
	if sc, ok := obj.Spec.(*networking.Sidecar); ok {
		for i, e := range sc.GetEgress() {
			if e.GetPort() != nil || e.GetBind() != "" || e.GetCaptureMode() != networking.CaptureMode_DEFAULT {
				out = append(out, Unimplemented{fmt.Sprintf("spec.egress[%d].port/bind/captureMode", i), notImplemented})
			}
		}
		if len(sc.GetIngress()) > 0 {
			out = append(out, Unimplemented{"spec.ingress", notImplemented})
		}
		if sc.GetInboundConnectionPool() != nil {
			out = append(out, Unimplemented{"spec.inboundConnectionPool", notImplemented})
		}
	}
	return out
}

// UnimplementedTrafficPolicy lists the fields of a DestinationRule traffic
// policy at path (e.g. "spec.trafficPolicy") that weft does not implement.
func UnimplementedTrafficPolicy(path string, tp *networking.TrafficPolicy) []Unimplemented {
	if tp == nil {
		return nil
	}
	lb, cp, od := tp.GetLoadBalancer(), tp.GetConnectionPool(), tp.GetOutlierDetection()
	checks := []struct {
		set  bool
		name string
	}{
		{len(lb.GetLocalityLbSetting().GetDistribute()) > 0, "loadBalancer.localityLbSetting.distribute"},
		{len(lb.GetLocalityLbSetting().GetFailoverPriority()) > 0, "loadBalancer.localityLbSetting.failoverPriority"},
		{lb.GetWarmupDurationSecs() != nil || lb.GetWarmup() != nil, "loadBalancer.warmup"},
		{cp.GetHttp().GetUseClientProtocol(), "connectionPool.http.useClientProtocol"},
		{od.GetSplitExternalLocalOriginErrors(), "outlierDetection.splitExternalLocalOriginErrors"},
		{od.GetConsecutiveLocalOriginFailures() != nil, "outlierDetection.consecutiveLocalOriginFailures"},
		{tp.GetTls().GetCredentialName() != "", "tls.credentialName"},
		{tp.GetTunnel() != nil, "tunnel"},
		{tp.GetProxyProtocol() != nil, "proxyProtocol"},
	}
	var out []Unimplemented
	for _, c := range checks {
		if c.set {
			out = append(out, Unimplemented{path + "." + c.name, notImplemented})
		}
	}
	return out
}

// unimplementedPolicies lists what weft ignores in a traffic policy at path
// and in each of its port-level settings.
func unimplementedPolicies(path string, tp *networking.TrafficPolicy) []Unimplemented {
	out := UnimplementedTrafficPolicy(path, tp)
	for i, pl := range tp.GetPortLevelSettings() {
		port := &networking.TrafficPolicy{LoadBalancer: pl.GetLoadBalancer(), ConnectionPool: pl.GetConnectionPool(),
			OutlierDetection: pl.GetOutlierDetection(), Tls: pl.GetTls()}
		out = append(out, UnimplementedTrafficPolicy(fmt.Sprintf("%s.portLevelSettings[%d]", path, i), port)...)
	}
	return out
}

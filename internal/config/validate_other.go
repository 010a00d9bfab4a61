package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// destinationRule checks a DestinationRule: a host, and uniquely named subsets.
func (v *validator) destinationRule(dr *networking.DestinationRule) {
	v.host("spec.host", dr.GetHost(), false)
	v.trafficPolicy("spec.trafficPolicy", dr.GetTrafficPolicy())
	seen := map[string]int{}
	for i, s := range dr.GetSubsets() {
		path := fmt.Sprintf("spec.subsets[%d]", i)
		switch name := s.GetName(); {
		case name == "":
			v.add(path+".name", "a subset needs a name")
		case len(name) > 63 || !dns1123Label.MatchString(name):
			v.add(path+".name", "%q is not a valid subset name (lower-case letters, digits and '-')", name)
		default:
			if prev, dup := seen[name]; dup {
				v.add(path+".name", "subset %q is already defined by spec.subsets[%d]", name, prev)
			}
			seen[name] = i
		}
		v.labels(path+".labels", s.GetLabels())
		v.trafficPolicy(path+".trafficPolicy", s.GetTrafficPolicy())
	}
	for i, ns := range dr.GetExportTo() {
		v.exportTo(fmt.Sprintf("spec.exportTo[%d]", i), ns)
	}
}

// trafficPolicy checks the numbers of a traffic policy.
func (v *validator) trafficPolicy(path string, tp *networking.TrafficPolicy) {
	if tp == nil {
		return
	}
	if od := tp.GetOutlierDetection(); od != nil {
		if p := od.GetMaxEjectionPercent(); p < 0 || p > 100 {
			v.add(path+".outlierDetection.maxEjectionPercent", "%d is not in 0-100", p)
		}
		v.durationAtLeast(path+".outlierDetection.interval", od.GetInterval())
		v.durationAtLeast(path+".outlierDetection.baseEjectionTime", od.GetBaseEjectionTime())
	}
	if cp := tp.GetConnectionPool(); cp != nil {
		if n := cp.GetTcp().GetMaxConnections(); n < 0 {
			v.add(path+".connectionPool.tcp.maxConnections", "%d must not be negative", n)
		}
		v.durationAtLeast(path+".connectionPool.tcp.connectTimeout", cp.GetTcp().GetConnectTimeout())
		for name, n := range map[string]int32{
			"http1MaxPendingRequests":  cp.GetHttp().GetHttp1MaxPendingRequests(),
			"http2MaxRequests":         cp.GetHttp().GetHttp2MaxRequests(),
			"maxRequestsPerConnection": cp.GetHttp().GetMaxRequestsPerConnection(),
			"maxRetries":               cp.GetHttp().GetMaxRetries(),
		} {
			if n < 0 {
				v.add(path+".connectionPool.http."+name, "%d must not be negative", n)
			}
		}
	}
	for i, pl := range tp.GetPortLevelSettings() {
		pp := fmt.Sprintf("%s.portLevelSettings[%d]", path, i)
		if pl.GetPort() == nil {
			v.add(pp+".port", "a port-level setting needs a port")
		} else {
			v.port(pp+".port.number", pl.GetPort().GetNumber())
		}
	}
}

// gateway checks a Gateway: every server has a port and hosts.
func (v *validator) gateway(gw *networking.Gateway) {
	if len(gw.GetServers()) == 0 {
		v.add("spec.servers", "at least one server is required")
	}
	v.labels("spec.selector", gw.GetSelector())
	for i, s := range gw.GetServers() {
		path := fmt.Sprintf("spec.servers[%d]", i)
		if s.GetPort() == nil {
			v.add(path+".port", "a server needs a port")
		} else {
			v.port(path+".port.number", s.GetPort().GetNumber())
			p, ok := ParseProtocol(s.GetPort().GetProtocol())
			if !ok {
				v.add(path+".port.protocol", "unknown protocol %q; want one of %s", s.GetPort().GetProtocol(), strings.Join(protocols, ", "))
			}
			if (p == ProtocolHTTPS || p == ProtocolTLS) && s.GetTls() == nil {
				v.add(path+".tls", "a server with protocol %s needs tls settings", p)
			}
		}
		if len(s.GetHosts()) == 0 {
			v.add(path+".hosts", "at least one host is required")
		}
		for j, h := range s.GetHosts() {
			hp := fmt.Sprintf("%s.hosts[%d]", path, j)
			if strings.Contains(h, "/") {
				v.host(hp, h, true)
			} else {
				v.host(hp, h, false)
			}
		}
	}
}

// serviceEntry checks a ServiceEntry: hosts, ports and endpoints.
func (v *validator) serviceEntry(se *networking.ServiceEntry) {
	if len(se.GetHosts()) == 0 {
		v.add("spec.hosts", "at least one host is required")
	}
	res := se.GetResolution()
	for i, h := range se.GetHosts() {
		path := fmt.Sprintf("spec.hosts[%d]", i)
		if h == "*" {
			v.add(path, "host \"*\" is not allowed in a ServiceEntry")
			continue
		}
		v.host(path, h, false)
		if strings.HasPrefix(h, "*") && res == networking.ServiceEntry_DNS {
			v.add(path, "wildcard host %q cannot use resolution DNS", h)
		}
	}
	for i, a := range se.GetAddresses() {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				v.add(fmt.Sprintf("spec.addresses[%d]", i), "%q is not an IP address or CIDR", a)
			}
		}
	}
	v.servicePorts(se.GetPorts())
	if se.GetWorkloadSelector() != nil && len(se.GetEndpoints()) > 0 {
		v.add("spec.workloadSelector", "workloadSelector and endpoints are mutually exclusive")
	}
	v.labels("spec.workloadSelector.labels", se.GetWorkloadSelector().GetLabels())
	if res == networking.ServiceEntry_STATIC && len(se.GetEndpoints()) == 0 && se.GetWorkloadSelector() == nil {
		v.add("spec.endpoints", "resolution STATIC needs endpoints or a workloadSelector")
	}
	for i, ep := range se.GetEndpoints() {
		path := fmt.Sprintf("spec.endpoints[%d]", i)
		v.workloadEntry(path, ep)
		if res == networking.ServiceEntry_STATIC && ep.GetAddress() != "" && !strings.HasPrefix(ep.GetAddress(), "unix://") {
			if _, err := netip.ParseAddr(ep.GetAddress()); err != nil {
				v.add(path+".address", "resolution STATIC needs an IP address, got %q", ep.GetAddress())
			}
		}
	}
	for i, ns := range se.GetExportTo() {
		v.exportTo(fmt.Sprintf("spec.exportTo[%d]", i), ns)
	}
}

// servicePorts checks ServiceEntry ports: numbers, protocols, unique names.
func (v *validator) servicePorts(ports []*networking.ServicePort) {
	names := map[string]int{}
	for i, p := range ports {
		path := fmt.Sprintf("spec.ports[%d]", i)
		v.port(path+".number", p.GetNumber())
		if p.GetTargetPort() != 0 {
			v.port(path+".targetPort", p.GetTargetPort())
		}
		if p.GetProtocol() != "" {
			if _, ok := ParseProtocol(p.GetProtocol()); !ok {
				v.add(path+".protocol", "unknown protocol %q; want one of %s", p.GetProtocol(), strings.Join(protocols, ", "))
			}
		}
		if n := p.GetName(); n != "" {
			if prev, dup := names[n]; dup {
				v.add(path+".name", "port name %q is already used by spec.ports[%d]", n, prev)
			}
			names[n] = i
		}
	}
}

// workloadEntry checks a WorkloadEntry (also a ServiceEntry endpoint) at path.
func (v *validator) workloadEntry(path string, we *networking.WorkloadEntry) {
	addr := we.GetAddress()
	switch {
	case addr == "" && we.GetNetwork() == "":
		v.add(path+".address", "an address is required")
	case addr == "":
	case strings.HasPrefix(addr, "unix://"):
		if len(addr) == len("unix://") {
			v.add(path+".address", "a unix address needs a path")
		}
	default:
		if _, err := netip.ParseAddr(addr); err != nil {
			if reason := checkHostName(addr); reason != "" || strings.Contains(addr, "*") {
				v.add(path+".address", "%q is neither an IP address nor a DNS name", addr)
			}
		}
	}
	for _, k := range sortedPortKeys(we.GetPorts()) {
		v.port(path+".ports["+k+"]", we.GetPorts()[k])
	}
	v.labels(path+".labels", we.GetLabels())
}

// sidecar checks a Sidecar's egress hosts ("namespace/host").
func (v *validator) sidecar(sc *networking.Sidecar) {
	v.labels("spec.workloadSelector.labels", sc.GetWorkloadSelector().GetLabels())
	for i, eg := range sc.GetEgress() {
		path := fmt.Sprintf("spec.egress[%d]", i)
		if len(eg.GetHosts()) == 0 {
			v.add(path+".hosts", "at least one host is required")
		}
		for j, h := range eg.GetHosts() {
			v.host(fmt.Sprintf("%s.hosts[%d]", path, j), h, true)
		}
		if p := eg.GetPort(); p != nil {
			v.port(path+".port.number", p.GetNumber())
		}
	}
	for i, in := range sc.GetIngress() {
		path := fmt.Sprintf("spec.ingress[%d]", i)
		if in.GetPort() == nil {
			v.add(path+".port", "an ingress listener needs a port")
		} else {
			v.port(path+".port.number", in.GetPort().GetNumber())
		}
	}
}

// exportTo checks one exportTo entry: ".", "*", "~" or a namespace.
func (v *validator) exportTo(path, ns string) {
	if ns != "." && ns != "*" && ns != "~" && !dns1123Label.MatchString(ns) {
		v.add(path, "%q is not \".\", \"*\", \"~\" or a namespace", ns)
	}
}

func sortedPortKeys(m map[string]uint32) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

package translate

import (
	"path"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// Outbound traffic policies (MeshConfig.outboundTrafficPolicy.mode).
const (
	AllowAny     = "ALLOW_ANY"
	RegistryOnly = "REGISTRY_ONLY"
)

// RootNamespace is where mesh-wide Sidecar resources live, as in Istio.
const RootNamespace = "istio-system"

// Mesh is the mesh-wide configuration translate honours (Istio's MeshConfig).
type Mesh struct {
	// OutboundTrafficPolicy is AllowAny (default) or RegistryOnly.
	OutboundTrafficPolicy string
	// PathNormalization is meshConfig.pathNormalization.normalization
	// (DEFAULT: BASE).
	PathNormalization meshconfig.MeshConfig_ProxyPathNormalization_NormalizationType
}

// sidecarScope finds the Sidecar resource for the proxy, as Istio picks it:
// one in its namespace whose workloadSelector matches, else one in its
// namespace without a selector, else one in the root namespace without one.
func (b *builder) sidecarScope() *config.Object {
	var ns, root *config.Object
	for _, o := range b.in.Config {
		if o.Kind != config.KindSidecar {
			continue
		}
		sc := o.Spec.(*networking.Sidecar)
		sel := sc.GetWorkloadSelector().GetLabels()
		switch {
		case o.Namespace == b.in.Proxy.Namespace && len(sel) > 0 && registry.Matches(sel, b.in.Proxy.Labels):
			return o
		case o.Namespace == b.in.Proxy.Namespace && len(sel) == 0 && (ns == nil || older(o, ns)):
			ns = o
		case o.Namespace == RootNamespace && len(sel) == 0 && (root == nil || older(o, root)):
			root = o
		}
	}
	if ns != nil {
		return ns
	}
	return root
}

// applySidecarScope keeps only the services the proxy's Sidecar egress
// hosts name, and reads its outbound traffic policy.
func (b *builder) applySidecarScope() {
	b.outboundPolicy = b.in.Mesh.OutboundTrafficPolicy
	if b.outboundPolicy == "" {
		b.outboundPolicy = AllowAny
	}
	if b.in.Proxy.Type == ProxyRouter {
		return
	}
	o := b.sidecarScope()
	if o == nil {
		return
	}
	sc := o.Spec.(*networking.Sidecar)
	if m := sc.GetOutboundTrafficPolicy().GetMode(); sc.GetOutboundTrafficPolicy() != nil {
		b.outboundPolicy = m.String()
	}
	if len(sc.GetEgress()) == 0 {
		return
	}
	var hosts []string
	for i, e := range sc.GetEgress() {
		hosts = append(hosts, e.GetHosts()...)
		if e.GetPort() != nil || e.GetBind() != "" || e.GetCaptureMode() != networking.CaptureMode_DEFAULT {
			b.warn(o, "spec.egress["+itoa(i)+"]", "port, bind and captureMode are not implemented yet; only hosts scope the proxy")
		}
	}
	if len(sc.GetIngress()) > 0 {
		b.warn(o, "spec.ingress", "not implemented yet; ignored")
	}
	reg := &registry.Registry{}
	for _, s := range b.in.Registry.Services {
		if egressAllows(hosts, o.Namespace, s) {
			reg.Services = append(reg.Services, s)
		}
	}
	b.in.Registry = reg
}

// egressAllows matches a service against Sidecar egress hosts
// ("NAMESPACE/DNSNAME": namespace "*", "." for the Sidecar's own, "~" for none;
// dnsName "*", "*.suffix" or exact).
func egressAllows(hosts []string, sidecarNS string, s *registry.Service) bool {
	for _, h := range hosts {
		ns, name, ok := strings.Cut(h, "/")
		if !ok {
			ns, name = "*", h
		}
		switch ns {
		case "~":
			continue
		case ".":
			ns = sidecarNS
		}
		if ns != "*" && ns != s.Namespace {
			continue
		}
		if name == "*" || name == s.Hostname {
			return true
		}
		if strings.HasPrefix(name, "*") {
			if ok, _ := path.Match("*"+strings.ReplaceAll(name[1:], "*", ""), s.Hostname); ok || strings.HasSuffix(s.Hostname, name[1:]) {
				return true
			}
		}
		if !strings.Contains(name, ".") && s.Name == name && s.Namespace == ns {
			return true
		}
	}
	return false
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// blockAllRoute answers requests to unknown hosts when the outbound policy
// is REGISTRY_ONLY, as Istio's block_all virtual host does.
func blockAllRoute() *route.Route {
	return &route.Route{
		Name:   "block_all",
		Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 502}},
	}
}

// dnsCluster makes c a DNS cluster for a ServiceEntry with resolution DNS
// (STRICT_DNS) or DNS_ROUND_ROBIN (LOGICAL_DNS): its endpoints' addresses,
// or the host itself, resolved by the proxy.
func dnsCluster(c *cluster.Cluster, s *registry.Service, p registry.Port, la *endpoint.ClusterLoadAssignment) {
	c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
	if s.Resolution == networking.ServiceEntry_DNS_ROUND_ROBIN.String() {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_LOGICAL_DNS}
	}
	c.EdsClusterConfig = nil
	if len(la.GetEndpoints()) == 0 && !strings.HasPrefix(s.Hostname, "*") {
		la.Endpoints = []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(s.Hostname, p.Number)}},
		}}}}
	}
	if c.GetType() == cluster.Cluster_LOGICAL_DNS && len(la.GetEndpoints()) > 0 && len(la.GetEndpoints()[0].GetLbEndpoints()) > 1 {
		la.Endpoints[0].LbEndpoints = la.Endpoints[0].LbEndpoints[:1] // LOGICAL_DNS takes one
	}
	c.LoadAssignment = la
}

// originalDstCluster makes c reach the request's original destination, for
// a ServiceEntry with resolution NONE.
func originalDstCluster(c *cluster.Cluster) {
	c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}
	c.EdsClusterConfig = nil
	c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
	c.TransportSocketMatches = nil
	c.LbConfig = nil
}

// unknownDestinationChain is virtualOutbound's chain for destinations no
// listener knows: PassthroughCluster, or BlackHoleCluster under REGISTRY_ONLY.
func (b *builder) unknownDestinationChain() *listener.FilterChain {
	if b.outboundPolicy == RegistryOnly {
		return tcpChain(BlackHoleCluster, BlackHoleCluster)
	}
	return tcpChain(PassthroughCluster, PassthroughCluster)
}

package translate

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// A proxyless gRPC client (grpc-go, grpc-java… with an xds:/// target and
// node metadata GENERATOR=grpc) is no Envoy: it asks for one listener per
// target it dials, named "host:port", and it rejects much of what a sidecar
// gets (filter chains, transport socket matches, filters it does not
// implement, localities without a weight). BuildGRPC gives it what Istio's
// grpcgen gives: per service port,
//
//   - listener "host:port": an api_listener whose HTTP connection manager
//     takes route config "host:port" over ADS and runs the fault filter,
//     then the router;
//   - route config "host:port": the sidecar's virtual host of that service
//     (the same VirtualService translation), its routes' timeouts also as
//     max_stream_duration (what gRPC honours) and per-route config for the
//     fault filter only;
//   - the sidecar's outbound EDS clusters, stripped to what gRPC reads, and
//     their endpoints with every locality weighted.
//
// The control plane answers each request with just the names it lists.

// GRPCListenerName names the listener (and route config) a proxyless gRPC
// client asks for to dial xds:///host:port.
func GRPCListenerName(host string, port uint32) string {
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// BuildGRPC returns the resources of a proxyless gRPC client.
func BuildGRPC(in Input) (*Output, error) {
	b := &builder{in: in, part: partAll, out: &Output{Versions: map[string]string{}}}
	b.index()
	b.applySidecarScope()
	b.out.Services = make(map[string]bool, len(b.in.Registry.Services))
	for _, s := range b.in.Registry.Services {
		b.out.Services[s.Hostname] = true
		for _, p := range s.Ports {
			b.grpcListener(s, p)
		}
	}
	b.clusters()
	b.out.Clusters, b.out.Endpoints = grpcClusters(b.out.Clusters, b.out.Endpoints, b.grpcMutual())
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.out, nil
}

// grpcListener builds listener and route config "host:port" for one
// service port.
func (b *builder) grpcListener(s *registry.Service, p registry.Port) {
	name := GRPCListenerName(s.Hostname, p.Number)
	b.out.Listeners = append(b.out.Listeners, grpcAPIListener(name))
	// The sidecar's route config of this port, for this service alone:
	// its first virtual host is the service's.
	vh := b.outboundRoutes(p.Number, []*registry.Service{s}).GetVirtualHosts()[0]
	vh.Name = name
	for _, r := range vh.GetRoutes() {
		grpcRoute(r)
	}
	if p == s.Ports[0] {
		b.warnGRPCIgnored(s.Hostname)
	}
	b.out.Routes = append(b.out.Routes, &route.RouteConfiguration{
		Name:         name,
		VirtualHosts: []*route.VirtualHost{vh},
	})
}

// warnGRPCIgnored reports what of host's VirtualService a proxyless
// client does not honour (principle: nothing is silently ignored).
func (b *builder) warnGRPCIgnored(host string) {
	o := b.meshVirtualService(host)
	if o == nil {
		return
	}
	for i, hr := range o.Spec.(*networking.VirtualService).GetHttp() {
		for _, ig := range config.GRPCIgnoredFields(hr) {
			b.warn(o, fmt.Sprintf("spec.http[%d].%s", i, ig.Field), ig.Reason)
		}
	}
}

// GRPCUnknownListener is what a proxyless client gets when it asks for a
// listener "host:port" that no service has: a listener whose route config
// (GRPCUnknownRoute) has no virtual host, so that gRPC fails the calls at
// once with its own error ("could not find VirtualHost for …") instead of
// waiting out its resource timeout. It is nil when name is not host:port.
func GRPCUnknownListener(name string) *listener.Listener {
	if !isHostPort(name) {
		return nil
	}
	return grpcAPIListener(name)
}

// GRPCUnknownRoute is the route config of a GRPCUnknownListener: no
// virtual host. It is nil when name is not host:port.
func GRPCUnknownRoute(name string) *route.RouteConfiguration {
	if !isHostPort(name) {
		return nil
	}
	return &route.RouteConfiguration{Name: name}
}

func isHostPort(name string) bool {
	host, port, err := net.SplitHostPort(name)
	if err != nil || host == "" || strings.Contains(host, "/") {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n > 0
}

// grpcAPIListener is listener name: an HTTP connection manager taking
// route config name over ADS, with the fault filter and the router.
func grpcAPIListener(name string) *listener.Listener {
	m := &hcm.HttpConnectionManager{
		StatPrefix:     name,
		RouteSpecifier: rdsManager(name),
		HttpFilters: []*hcm.HttpFilter{{
			Name:       FaultFilter,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultfilter.HTTPFault{})},
		}, {
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerfilter.Router{})},
		}},
	}
	return &listener.Listener{
		Name:        name,
		ApiListener: &listener.ApiListener{ApiListener: mustAny(m)},
	}
}

// grpcRoute keeps of a sidecar route what gRPC honours: a timeout becomes
// max_stream_duration too, and per-filter config is kept for the fault
// filter only (gRPC rejects config for a filter it does not implement).
func grpcRoute(r *route.Route) {
	var pf map[string]*anypb.Any
	if f, ok := r.GetTypedPerFilterConfig()[FaultFilter]; ok {
		pf = map[string]*anypb.Any{FaultFilter: f}
	}
	r.TypedPerFilterConfig = pf
	ra := r.GetRoute()
	if ra == nil {
		return
	}
	if t := ra.GetTimeout(); t != nil && t.AsDuration() > 0 {
		ra.MaxStreamDuration = &route.RouteAction_MaxStreamDuration{
			MaxStreamDuration:    durationpb.New(t.AsDuration()),
			GrpcTimeoutHeaderMax: durationpb.New(t.AsDuration()),
		}
	}
	// Envoy-only: mirroring and retry host predicates are ignored by gRPC.
	ra.RequestMirrorPolicies = nil
	if rp := ra.GetRetryPolicy(); rp != nil {
		rp.RetryHostPredicate, rp.HostSelectionRetryMaxAttempts = nil, 0
	}
}

// grpcClusters keeps the EDS clusters (gRPC has no original-destination,
// static or DNS-list clusters) without what gRPC rejects, and their
// endpoints fit for gRPC.
func grpcClusters(clusters, endpoints []types.Resource, mutual map[string][]string) (outClusters, outEndpoints []types.Resource) {
	eds := map[string]bool{}
	for _, r := range clusters {
		c := r.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		gc := grpcCluster(c)
		if sans, ok := mutual[c.GetName()]; ok {
			gc.TransportSocket = grpcUpstreamTLS(sans)
		}
		outClusters = append(outClusters, gc)
		eds[c.GetEdsClusterConfig().GetServiceName()] = true
	}
	for _, r := range endpoints {
		la := r.(*endpoint.ClusterLoadAssignment)
		if eds[la.GetClusterName()] {
			outEndpoints = append(outEndpoints, grpcLoadAssignment(la))
		}
	}
	return outClusters, outEndpoints
}

// Certificate provider names of a proxyless node's bootstrap, as Istio's
// grpc-agent writes them: instance "default" (plugin file_watcher) gives
// the workload certificate ("default") and the mesh roots ("ROOTCA").
const (
	GRPCCertProvider = "default"
)

// grpcMutual lists, for a proxyless client that holds a mesh certificate
// (node metadata WEFT_MTLS), the clusters whose DestinationRule asks for
// ISTIO_MUTUAL (Istio's proxyless gRPC has no auto mTLS), each with the
// SPIFFE IDs its endpoints may present (none known: any of the mesh).
func (b *builder) grpcMutual() map[string][]string {
	if !b.in.Proxy.MTLS {
		return nil
	}
	out := map[string][]string{}
	for _, s := range b.in.Registry.Services {
		dr := b.drs[s.Hostname]
		if dr == nil {
			continue
		}
		subsets := append([]*networking.Subset{nil}, dr.Spec.(*networking.DestinationRule).GetSubsets()...)
		for _, p := range s.Ports {
			for _, ss := range subsets {
				if effectivePolicy(dr, ss, p.Number).GetTls().GetMode() != networking.ClientTLSSettings_ISTIO_MUTUAL {
					continue
				}
				out[OutboundCluster(p.Number, ss.GetName(), s.Hostname)] = serviceAccounts(s, ss.GetLabels())
			}
		}
	}
	return out
}

// grpcUpstreamTLS is mutual TLS as gRPC's xDS credentials do it: the
// certificate and roots from the bootstrap's certificate provider, the
// peer checked against sans (empty: any certificate of the mesh roots).
func grpcUpstreamTLS(sans []string) *core.TransportSocket {
	vc := &tlsv3.CertificateValidationContext{CaCertificateProviderInstance: grpcProvider(SecretRootCA)}
	for _, san := range sans {
		vc.MatchSubjectAltNames = append(vc.MatchSubjectAltNames, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}})
	}
	ctx := &tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateProviderInstance: grpcProvider(SecretCertificate),
		ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc},
	}}
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// grpcDownstreamTLS is a proxyless server's STRICT mutual TLS: its
// certificate, and a client certificate of the mesh roots required.
func grpcDownstreamTLS() *core.TransportSocket {
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateProviderInstance: grpcProvider(SecretCertificate),
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				CaCertificateProviderInstance: grpcProvider(SecretRootCA)}},
		},
	}
	return &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

func grpcProvider(cert string) *tlsv3.CertificateProviderPluginInstance {
	return &tlsv3.CertificateProviderPluginInstance{InstanceName: GRPCCertProvider, CertificateName: cert}
}

// grpcCluster is c with the fields gRPC reads: its balancer (round robin,
// least request or ring hash; Maglev becomes a ring hash, random round
// robin), circuit breakers and outlier detection; no transport socket
// (plaintext) and no transport socket matches, which gRPC rejects.
func grpcCluster(c *cluster.Cluster) *cluster.Cluster {
	out := &cluster.Cluster{
		Name:                 c.GetName(),
		AltStatName:          c.GetAltStatName(),
		ClusterDiscoveryType: c.GetClusterDiscoveryType(),
		EdsClusterConfig:     c.GetEdsClusterConfig(),
		ConnectTimeout:       c.GetConnectTimeout(),
		CircuitBreakers:      c.GetCircuitBreakers(),
		OutlierDetection:     c.GetOutlierDetection(),
		Metadata:             c.GetMetadata(),
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
	}
	switch c.GetLbPolicy() {
	case cluster.Cluster_LEAST_REQUEST:
		out.LbPolicy = cluster.Cluster_LEAST_REQUEST
	case cluster.Cluster_RING_HASH, cluster.Cluster_MAGLEV:
		out.LbPolicy = cluster.Cluster_RING_HASH
		rh := &cluster.Cluster_RingHashLbConfig{HashFunction: cluster.Cluster_RingHashLbConfig_XX_HASH}
		if min := c.GetRingHashLbConfig().GetMinimumRingSize(); min != nil {
			rh.MinimumRingSize = wrapperspb.UInt64(min.GetValue())
		}
		out.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: rh}
	}
	return out
}

// grpcLoadAssignment copies la for gRPC: every locality has an ID and a
// weight (the sum of its endpoints' weights; gRPC drops a locality of
// weight 0), every endpoint a weight of at least 1, and no address twice
// (gRPC rejects the assignment otherwise).
func grpcLoadAssignment(la *endpoint.ClusterLoadAssignment) *endpoint.ClusterLoadAssignment {
	out := &endpoint.ClusterLoadAssignment{ClusterName: la.GetClusterName(), Policy: la.GetPolicy()}
	seen := map[string]bool{}
	for _, g := range la.GetEndpoints() {
		ng := &endpoint.LocalityLbEndpoints{Locality: g.GetLocality(), Priority: g.GetPriority()}
		if ng.Locality == nil {
			ng.Locality = &core.Locality{}
		}
		var sum uint32
		for _, ep := range g.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			key := GRPCListenerName(sa.GetAddress(), sa.GetPortValue())
			if seen[key] {
				continue
			}
			seen[key] = true
			ne := proto.Clone(ep).(*endpoint.LbEndpoint)
			w := max(ep.GetLoadBalancingWeight().GetValue(), 1)
			ne.LoadBalancingWeight = wrapperspb.UInt32(w)
			sum += w
			ng.LbEndpoints = append(ng.LbEndpoints, ne)
		}
		if len(ng.LbEndpoints) == 0 {
			continue
		}
		ng.LoadBalancingWeight = wrapperspb.UInt32(sum)
		out.Endpoints = append(out.Endpoints, ng)
	}
	sort.SliceStable(out.Endpoints, func(i, j int) bool { return out.Endpoints[i].GetPriority() < out.Endpoints[j].GetPriority() })
	renumberPriorities(out)
	return out
}

// renumberPriorities makes the priorities in use 0, 1, 2… (gRPC rejects
// gaps, which dropping empty localities may leave).
func renumberPriorities(la *endpoint.ClusterLoadAssignment) {
	next, remap := uint32(0), map[uint32]uint32{}
	for _, g := range la.GetEndpoints() {
		if _, ok := remap[g.GetPriority()]; !ok {
			remap[g.GetPriority()] = next
			next++
		}
	}
	for _, g := range la.GetEndpoints() {
		g.Priority = remap[g.GetPriority()]
	}
}

// GRPCInboundPrefix starts the names of the listeners a proxyless gRPC
// server asks for (grpc-go's xds.NewGRPCServer with bootstrap
// server_listener_resource_name_template "xds.istio.io/grpc/lds/inbound/%s"):
// GRPCInboundPrefix + "IP:PORT", the address it serves on.
const GRPCInboundPrefix = "xds.istio.io/grpc/lds/inbound/"

// BuildGRPCInbound returns a proxyless gRPC server's own resources, the
// part of a proxyless node's config that depends on its IP: listener
// GRPCInboundPrefix + "IP:PORT" for every port of the services with an
// endpoint at its IP. Each has one filter chain whose connection manager
// runs the RBAC filters of the AuthorizationPolicies that select the
// workload, then the router, and routes every call to the server itself
// (non_forwarding_action, as gRPC servers want).
func BuildGRPCInbound(in Input) (*Output, error) {
	b := &builder{in: in, part: partOwn, out: &Output{Versions: map[string]string{}}}
	b.index()
	seen := map[uint32]bool{}
	for _, s := range in.Registry.Services {
		for _, ep := range s.Endpoints {
			if ep.Address != in.Proxy.IP {
				continue
			}
			for _, p := range s.Ports {
				if target := ep.EndpointPort(p); !seen[target] {
					seen[target] = true
					b.out.Listeners = append(b.out.Listeners, b.grpcInboundListener(in.Proxy.IP, target))
				}
			}
		}
	}
	sort.Slice(b.out.Listeners, func(i, j int) bool { return resourceName(b.out.Listeners[i]) < resourceName(b.out.Listeners[j]) })
	b.grpcAuthorization()
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.out, nil
}

// GRPCInbound is the listener for inbound name GRPCInboundPrefix +
// "IP:PORT" when BuildGRPCInbound has none (a server on an address no
// service lists), built as BuildGRPCInbound's. It is nil when name is not
// of that form.
func GRPCInbound(in Input, name string) *listener.Listener {
	hp, ok := strings.CutPrefix(name, GRPCInboundPrefix)
	if !ok || !isHostPort(hp) {
		return nil
	}
	host, port, _ := net.SplitHostPort(hp)
	n, _ := strconv.ParseUint(port, 10, 16)
	b := &builder{in: in, part: partOwn, out: &Output{Versions: map[string]string{}}}
	b.index()
	b.out.Listeners = []types.Resource{b.grpcInboundListener(host, uint32(n))}
	b.grpcAuthorization()
	l := b.out.Listeners[0].(*listener.Listener)
	if l.Validate() != nil {
		return nil
	}
	return l
}

// grpcInboundListener is a proxyless server's listener on ip:port: mutual
// TLS when the server holds a mesh certificate (WEFT_MTLS) and its
// PeerAuthentication for the port is STRICT, else plaintext (gRPC has no
// PERMISSIVE: one port speaks one of them).
func (b *builder) grpcInboundListener(ip string, port uint32) *listener.Listener {
	name := GRPCInboundPrefix + GRPCListenerName(ip, port)
	rc := &route.RouteConfiguration{
		Name: InboundCluster(port),
		VirtualHosts: []*route.VirtualHost{{
			Name:    "inbound|http|" + RouteName(port),
			Domains: []string{"*"},
			Routes: []*route.Route{{
				Name:   "default",
				Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_NonForwardingAction{NonForwardingAction: &route.NonForwardingAction{}},
			}},
		}},
	}
	m := &hcm.HttpConnectionManager{
		StatPrefix:     InboundCluster(port),
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: rc},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerfilter.Router{})},
		}},
	}
	fc := &listener.FilterChain{
		Name: InboundCluster(port),
		Filters: []*listener.Filter{{
			Name:       wellknown.HTTPConnectionManager,
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)},
		}},
	}
	if b.in.Proxy.MTLS && b.peerAuthentication(port) == security.PeerAuthentication_MutualTLS_STRICT {
		fc.TransportSocket = grpcDownstreamTLS()
	}
	return &listener.Listener{Name: name, Address: socketAddress(ip, port), FilterChains: []*listener.FilterChain{fc}}
}

// grpcAuthorization adds the RBAC filters of the AuthorizationPolicies
// (applyAuthorization) to the inbound listeners, each RBAC filter under
// its own name: gRPC rejects two filters of one name.
func (b *builder) grpcAuthorization() {
	b.applyAuthorization()
	b.eachInboundChain(func(fc *listener.FilterChain) {
		for _, f := range fc.GetFilters() {
			m := &hcm.HttpConnectionManager{}
			if f.GetTypedConfig().UnmarshalTo(m) != nil {
				continue
			}
			n := 0
			for _, hf := range m.GetHttpFilters() {
				if hf.GetTypedConfig().MessageIs(&rbacfilter.RBAC{}) {
					if n > 0 {
						hf.Name = fmt.Sprintf("%s.%d", RBACFilter, n)
					}
					n++
				}
			}
			if n > 1 {
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
			}
		}
	})
}

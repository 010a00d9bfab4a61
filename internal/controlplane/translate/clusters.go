package translate

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	ppts "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	rawbuf "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const (
	connectTimeout   = 10 * time.Second
	httpOptionsKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	transportMatchNS = "envoy.transport_socket_match"
)

// clusters builds the outbound clusters (per service port and subset) and their EDS.
func (b *builder) clusters() {
	for _, s := range b.in.Registry.Services {
		dr, _ := b.drs[s.Hostname]
		for _, p := range s.Ports {
			b.outboundCluster(s, p, "", nil, dr)
			if dr == nil {
				continue
			}
			for _, ss := range dr.Spec.(*networking.DestinationRule).GetSubsets() {
				b.outboundCluster(s, p, ss.GetName(), ss, dr)
			}
		}
	}
	b.out.Clusters = append(b.out.Clusters,
		&cluster.Cluster{
			Name:                 PassthroughCluster,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
			LbPolicy:             cluster.Cluster_CLUSTER_PROVIDED,
			ConnectTimeout:       durationpb.New(connectTimeout),
		},
		&cluster.Cluster{
			Name:                 BlackHoleCluster,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			ConnectTimeout:       durationpb.New(connectTimeout),
		})
	sort.SliceStable(b.out.Clusters, func(i, j int) bool { return resourceName(b.out.Clusters[i]) < resourceName(b.out.Clusters[j]) })
}

func (b *builder) outboundCluster(s *registry.Service, p registry.Port, subset string, ss *networking.Subset, dr *config.Object) {
	name := OutboundCluster(p.Number, subset, s.Hostname)
	tp := effectivePolicy(dr, ss, p.Number)
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			ServiceName: name,
			EdsConfig: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		},
		ConnectTimeout:         durationpb.New(connectTimeout),
		LbPolicy:               lbPolicyOf(tp),
		TransportSocketMatches: transportMatches(),
	}
	applyConnectionPool(c, tp.GetConnectionPool(), http2(p.Protocol))
	if p.Protocol == config.ProtocolAuto {
		useDownstreamProtocol(c)
	}
	if t := tp.GetConnectionPool().GetTcp().GetIdleTimeout(); t != nil {
		if b.tcpIdle == nil {
			b.tcpIdle = map[string]*durationpb.Duration{}
		}
		b.tcpIdle[name] = durationpb.New(t.AsDuration())
	}
	applyOutlierDetection(c, tp.GetOutlierDetection())
	applyConsistentHash(c, tp)
	applyTLS(c, tp.GetTls(), s)
	var subsetLabels map[string]string
	if ss != nil {
		subsetLabels = ss.GetLabels()
	}
	b.autoMTLS(c, s, p, subset, subsetLabels, tp.GetTls())
	if dr != nil {
		c.Metadata = configMetadata(dr, "destination-rule")
		path := "spec.trafficPolicy"
		if ss != nil {
			path = fmt.Sprintf("spec.subsets[%s].trafficPolicy", ss.GetName())
		}
		if p == s.Ports[0] {
			b.warnTrafficPolicy(dr, path, tp)
		}
	}
	if subset == "" {
		addServiceAddresses(c, s)
	}
	var labels map[string]string
	if ss != nil {
		labels = ss.GetLabels()
	}
	if tp.GetLoadBalancer().GetSimple() == networking.LoadBalancerSettings_PASSTHROUGH {
		// Istio's PASSTHROUGH: to the address the caller dialled (its
		// original destination), no balancing and no endpoints.
		originalDstCluster(c)
		b.out.Clusters = append(b.out.Clusters, c)
		return
	}
	la := b.loadAssignment(name, s, p, labels)
	b.localityPriorities(la, tp)
	switch s.Resolution {
	case networking.ServiceEntry_DNS.String(), networking.ServiceEntry_DNS_ROUND_ROBIN.String():
		dnsCluster(c, s, p, la)
		b.out.Clusters = append(b.out.Clusters, c)
		return
	case networking.ServiceEntry_NONE.String():
		if len(la.GetEndpoints()) == 0 {
			originalDstCluster(c)
			b.out.Clusters = append(b.out.Clusters, c)
			return
		}
	}
	b.out.Clusters = append(b.out.Clusters, c)
	b.out.Endpoints = append(b.out.Endpoints, la)
}

// transportMatches: endpoints with a sidecar are reached through its inbound
// port with a PROXY v2 header naming the original destination (see docs/architecture.md).
func transportMatches() []*cluster.Cluster_TransportSocketMatch {
	raw := &core.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbuf.RawBuffer{})}}
	tunnel := &core.TransportSocket{
		Name: "envoy.transport_sockets.upstream_proxy_protocol",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&ppts.ProxyProtocolUpstreamTransport{
			Config:          &core.ProxyProtocolConfig{Version: core.ProxyProtocolConfig_V2},
			TransportSocket: raw,
		})},
	}
	istio, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio"})
	return []*cluster.Cluster_TransportSocketMatch{
		{Name: "tlsMode-istio", Match: istio, TransportSocket: tunnel},
		{Name: "tlsMode-disabled", Match: &structpb.Struct{}, TransportSocket: raw},
	}
}

func h2Options() *upstreamhttp.HttpProtocolOptions {
	return &upstreamhttp.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{},
				},
			},
		},
	}
}

func http2(protocol string) bool {
	return protocol == config.ProtocolHTTP2 || protocol == config.ProtocolGRPC
}

// loadAssignment lists the service's endpoints for port p that carry labels.
// An endpoint whose sidecar speaks mutual TLS gets it unless its
// PeerAuthentication for that port is DISABLE (Istio's auto mTLS then
// sends plaintext); one whose PeerAuthentication is STRICT always gets
// it, and a proxy without mTLS does not get it at all.
func (b *builder) loadAssignment(name string, s *registry.Service, p registry.Port, labels map[string]string) *endpoint.ClusterLoadAssignment {
	la := &endpoint.ClusterLoadAssignment{ClusterName: name}
	groups := map[string]*endpoint.LocalityLbEndpoints{}
	var order []string
	for _, ep := range s.Endpoints {
		if !registry.Matches(labels, ep.Labels) {
			continue
		}
		meta := map[string]any{
			"istio": map[string]any{"workload": ep.WorkloadName() + ";" + ep.Namespace + ";" + ep.Labels["app"] + ";" + ep.Labels["version"] + ";"},
		}
		if ep.Sidecar {
			meta[transportMatchNS] = map[string]any{"tlsMode": "istio"}
			switch mode := b.peerAuthenticationFor(ep.Namespace, ep.Labels, ep.EndpointPort(p)); {
			case mode == security.PeerAuthentication_MutualTLS_STRICT && !b.in.Proxy.MTLS:
				// It takes only mTLS, which this proxy cannot speak: the
				// one endpoint that would answer plaintext is an impostor.
				continue
			case mode == security.PeerAuthentication_MutualTLS_STRICT, ep.MTLS && mode != security.PeerAuthentication_MutualTLS_DISABLE:
				// STRICT: mTLS whatever registered the endpoint and whatever
				// it claims, so a STRICT mesh never sends it plaintext.
				meta[transportMatchNS] = map[string]any{"tlsMode": "istio", "mtls": "true"}
			}
		}
		md := &core.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
		for k, v := range meta {
			st, _ := structpb.NewStruct(v.(map[string]any))
			md.FilterMetadata[k] = st
		}
		loc := groups[ep.Locality]
		if loc == nil {
			loc = &endpoint.LocalityLbEndpoints{Locality: localityOf(ep.Locality)}
			groups[ep.Locality] = loc
			order = append(order, ep.Locality)
		}
		loc.LbEndpoints = append(loc.LbEndpoints, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(ep.Address, ep.EndpointPort(p)),
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			Metadata:            md,
			LoadBalancingWeight: wrapperspb.UInt32(ep.Weight),
		})
	}
	sort.Strings(order)
	for _, l := range order {
		la.Endpoints = append(la.Endpoints, groups[l])
	}
	return la
}

// staticCluster reaches the local app at ip:port, speaking protocol.
func staticCluster(name, ip string, port uint32, protocol string) *cluster.Cluster {
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(ip, port)}},
			}}}},
		},
	}
	switch {
	case http2(protocol):
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpOptionsKey: mustAny(h2Options())}
	case protocol == config.ProtocolAuto:
		useDownstreamProtocol(c)
	}
	return c
}

// useDownstreamProtocol makes a cluster of a sniffed port speak upstream
// what its downstream spoke (HTTP/2 for h2c, gRPC), as Istio's clusters of
// such ports do, unless its DestinationRule asked for HTTP/2 (h2UpgradePolicy).
func useDownstreamProtocol(c *cluster.Cluster) {
	opts := &upstreamhttp.HttpProtocolOptions{}
	if a := c.TypedExtensionProtocolOptions[httpOptionsKey]; a != nil {
		if err := a.UnmarshalTo(opts); err != nil {
			panic(err) // we wrote it
		}
		if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil {
			return
		}
	}
	opts.UpstreamProtocolOptions = &upstreamhttp.HttpProtocolOptions_UseDownstreamProtocolConfig{
		UseDownstreamProtocolConfig: &upstreamhttp.HttpProtocolOptions_UseDownstreamHttpConfig{
			HttpProtocolOptions:  &core.Http1ProtocolOptions{},
			Http2ProtocolOptions: &core.Http2ProtocolOptions{},
		},
	}
	if c.TypedExtensionProtocolOptions == nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{}
	}
	c.TypedExtensionProtocolOptions[httpOptionsKey] = mustAny(opts)
}

// addServiceAddresses records the service's VIPs (those that are
// addresses, not CIDRs) in the cluster's metadata
// (config.MetadataServiceAddresses).
func addServiceAddresses(c *cluster.Cluster, s *registry.Service) {
	var vips []any
	for _, a := range s.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			vips = append(vips, ip.String())
		}
	}
	if len(vips) == 0 {
		return
	}
	st, _ := structpb.NewStruct(map[string]any{"host": s.Hostname, "addresses": vips})
	if c.Metadata == nil {
		c.Metadata = &core.Metadata{FilterMetadata: map[string]*structpb.Struct{}}
	}
	c.Metadata.FilterMetadata[config.MetadataServiceAddresses] = st
}

// configMetadata names the Istio object a resource came from, as Istio does
// (filter_metadata istio.config), so proxy-config can show it.
func configMetadata(o *config.Object, kind string) *core.Metadata {
	path := "/apis/" + o.APIVersion + "/namespaces/" + o.Namespace + "/" + kind + "/" + o.Name
	st, _ := structpb.NewStruct(map[string]any{"config": path})
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": st}}
}

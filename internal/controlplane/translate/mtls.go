package translate

import (
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	ppts "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// SDS secret names of a proxy's own certificate and the mesh's roots, as
// Istio names them; weft proxy serves them from its certificate client.
const (
	SecretCertificate = "default"
	SecretRootCA      = "ROOTCA"
	// TrustDomain of weft's SPIFFE identities.
	TrustDomain = "cluster.local"
)

// Istio's mTLS ALPN values on the sidecar-to-sidecar hop.
var mtlsALPN = []string{"istio-peer-exchange", "istio"}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}}
}

// mtlsCommon presents the proxy's certificate and validates the peer
// against the mesh roots (and, when given, the SPIFFE IDs allowed).
func mtlsCommon(sans []string) *tlsv3.CommonTlsContext {
	vc := &tlsv3.CertificateValidationContext{}
	for _, san := range sans {
		vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_URI,
			Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}},
		})
	}
	return &tlsv3.CommonTlsContext{
		AlpnProtocols:                  mtlsALPN,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretCertificate)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         vc,
			ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
		}},
	}
}

// spiffeID is the SPIFFE ID of a service account.
func spiffeID(ns, sa string) string { return "spiffe://" + TrustDomain + "/ns/" + ns + "/sa/" + sa }

// serviceAccounts are the SPIFFE IDs of the endpoints a cluster reaches.
func serviceAccounts(s *registry.Service, labels map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, ep := range s.Endpoints {
		if ep.ServiceAccount == "" || !registry.Matches(labels, ep.Labels) {
			continue
		}
		id := spiffeID(ep.Namespace, ep.ServiceAccount)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// autoMTLS adds, for a proxy that speaks mTLS, the transport socket match
// of endpoints whose sidecar does too (Istio's auto mTLS): the PROXY v2
// tunnel header, then TLS with Istio's SNI and ALPN, the peer checked
// against the destination's service accounts. A DestinationRule tls of
// DISABLE keeps the plaintext tunnel; SIMPLE/MUTUAL replace it all.
func (b *builder) autoMTLS(c *cluster.Cluster, s *registry.Service, p registry.Port, subset string, labels map[string]string, t *networking.ClientTLSSettings) {
	if !b.in.Proxy.MTLS || t != nil && t.GetMode() != networking.ClientTLSSettings_ISTIO_MUTUAL || len(c.GetTransportSocketMatches()) == 0 {
		return
	}
	tlsCtx := &tlsv3.UpstreamTlsContext{Sni: "outbound_." + itoa(int(p.Number)) + "_." + subset + "_." + s.Hostname,
		CommonTlsContext: mtlsCommon(serviceAccounts(s, labels))}
	tunnel := &core.TransportSocket{
		Name: "envoy.transport_sockets.upstream_proxy_protocol",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&ppts.ProxyProtocolUpstreamTransport{
			Config: &core.ProxyProtocolConfig{Version: core.ProxyProtocolConfig_V2},
			TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.tls",
				ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(tlsCtx)}},
		})},
	}
	match, _ := structpb.NewStruct(map[string]any{"tlsMode": "istio", "mtls": "true"})
	c.TransportSocketMatches = append([]*cluster.Cluster_TransportSocketMatch{{Name: "tlsMode-istio-mtls", Match: match, TransportSocket: tunnel}},
		c.TransportSocketMatches...)
}

// peerAuthentication is the mTLS mode of the proxy's port, as Istio picks
// it: the workload's PeerAuthentication (its port-level setting first),
// else the namespace's, else the mesh's (istio-system), else PERMISSIVE.
func (b *builder) peerAuthentication(port uint32) security.PeerAuthentication_MutualTLS_Mode {
	return b.peerAuthenticationFor(b.in.Proxy.Namespace, b.in.Proxy.Labels, port)
}

// peerAuthenticationFor is the mTLS mode of any workload's port.
func (b *builder) peerAuthenticationFor(namespace string, labels map[string]string, port uint32) security.PeerAuthentication_MutualTLS_Mode {
	mesh, ns, wl := b.policyScopesFor(config.KindPeerAuthentication, namespace, labels, func(o *config.Object) map[string]string {
		return o.Spec.(*security.PeerAuthentication).GetSelector().GetMatchLabels()
	})
	mode := security.PeerAuthentication_MutualTLS_PERMISSIVE
	for _, o := range []*config.Object{mesh, ns, wl} {
		if o == nil {
			continue
		}
		pa := o.Spec.(*security.PeerAuthentication)
		if m := pa.GetMtls().GetMode(); pa.GetMtls() != nil && m != security.PeerAuthentication_MutualTLS_UNSET {
			mode = m
		}
		if pm, ok := pa.GetPortLevelMtls()[port]; ok && pm.GetMode() != security.PeerAuthentication_MutualTLS_UNSET {
			mode = pm.GetMode()
		}
	}
	return mode
}

// inboundMTLS turns an inbound chain into the chains of its port's mTLS
// mode: STRICT a TLS chain only, PERMISSIVE a TLS and a plaintext chain,
// DISABLE the plaintext one (the proxy tells them apart by the first bytes).
func (b *builder) inboundMTLS(fc *listener.FilterChain, port uint32) []*listener.FilterChain {
	if !b.in.Proxy.MTLS {
		return []*listener.FilterChain{fc}
	}
	mode := b.peerAuthentication(port)
	tlsChain := cloneChain(fc)
	tlsChain.FilterChainMatch.TransportProtocol = "tls"
	tlsChain.TransportSocket = &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{
		TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{RequireClientCertificate: wrapperspb.Bool(true), CommonTlsContext: mtlsCommon(nil)})}}
	plain := cloneChain(fc)
	plain.FilterChainMatch.TransportProtocol = "raw_buffer"
	switch mode {
	case security.PeerAuthentication_MutualTLS_STRICT:
		return []*listener.FilterChain{tlsChain}
	case security.PeerAuthentication_MutualTLS_DISABLE:
		return []*listener.FilterChain{plain}
	}
	return []*listener.FilterChain{tlsChain, plain}
}

func cloneChain(fc *listener.FilterChain) *listener.FilterChain {
	c := &listener.FilterChain{Filters: fc.GetFilters(), FilterChainMatch: &listener.FilterChainMatch{}}
	if m := fc.GetFilterChainMatch(); m != nil {
		c.FilterChainMatch.DestinationPort = m.GetDestinationPort()
		c.FilterChainMatch.ApplicationProtocols = m.GetApplicationProtocols()
	}
	return c
}

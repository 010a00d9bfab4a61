package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// SystemCABundle is where Debian keeps the system's trusted roots; an
// originated TLS connection without caCertificates is verified against it,
// as Istio verifies by default.
const SystemCABundle = "/etc/ssl/certs/ca-certificates.crt"

// applyTLS originates TLS to the upstream for a DestinationRule tls of
// mode SIMPLE or MUTUAL (Istio's TLS origination): an explicit transport
// socket replaces auto mTLS's matches. DISABLE keeps plaintext without the
// sidecar tunnel; ISTIO_MUTUAL keeps the mesh's own transport.
func applyTLS(c *cluster.Cluster, t *networking.ClientTLSSettings, s *registry.Service) {
	switch t.GetMode() {
	case networking.ClientTLSSettings_SIMPLE, networking.ClientTLSSettings_MUTUAL:
	case networking.ClientTLSSettings_DISABLE:
		return // the plaintext tunnel to the peer sidecar stays (autoMTLS adds no TLS)
	default:
		return
	}
	sni := t.GetSni()
	if sni == "" {
		sni = s.Hostname
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{}}
	if !t.GetInsecureSkipVerify().GetValue() {
		ca := t.GetCaCertificates()
		if ca == "" {
			ca = SystemCABundle
		}
		vc := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(ca)}
		for _, san := range t.GetSubjectAltNames() {
			vc.MatchTypedSubjectAltNames = append(vc.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: san}},
			})
		}
		ctx.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	if t.GetMode() == networking.ClientTLSSettings_MUTUAL {
		ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.GetClientCertificate()),
			PrivateKey:       fileSource(t.GetPrivateKey()),
		}}
	}
	c.TransportSocketMatches = nil
	c.TransportSocket = &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

func fileSource(path string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: path}}
}

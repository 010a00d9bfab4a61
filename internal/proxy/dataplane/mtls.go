package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// Certs is the proxy's mesh certificate (a *certs.Client): the TLS
// configurations of the sidecar-to-sidecar hop.
type Certs interface {
	ClientTLSConfig(sni string, allowedPeers []spiffe.ID) *tls.Config
	ServerTLSConfig(verifyPeer func(spiffe.ID) error) *tls.Config
}

// Istio's SDS secret names, served from the proxy's certificate client.
const (
	secretCertificate = "default"
	secretRootCA      = "ROOTCA"
)

// rmtls is the mutual TLS of a tunnel: SNI and the peer identities allowed.
type rmtls struct {
	sni     string
	allowed []spiffe.ID
}

// compileMeshTLS reads an UpstreamTlsContext that uses the mesh's SDS
// secrets (Istio's ISTIO_MUTUAL): the SNI and the SPIFFE IDs to accept.
func compileMeshTLS(u *tlsv3.UpstreamTlsContext) (*rmtls, error) {
	ctx := u.GetCommonTlsContext()
	sds := ctx.GetTlsCertificateSdsSecretConfigs()
	if len(sds) != 1 || sds[0].GetName() != secretCertificate {
		return nil, fmt.Errorf("the mesh TLS of a tunnel must use the SDS secret %q", secretCertificate)
	}
	out := &rmtls{sni: u.GetSni()}
	cvc := ctx.GetCombinedValidationContext()
	if cvc.GetValidationContextSdsSecretConfig().GetName() != secretRootCA {
		return nil, fmt.Errorf("the mesh TLS of a tunnel must validate with the SDS secret %q", secretRootCA)
	}
	for _, m := range cvc.GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
		id, err := spiffe.Parse(m.GetMatcher().GetExact())
		if err != nil || m.GetSanType() != tlsv3.SubjectAltNameMatcher_URI {
			return nil, fmt.Errorf("match_typed_subject_alt_names: want exact SPIFFE URIs: %v", err)
		}
		out.allowed = append(out.allowed, id)
	}
	return out, nil
}

// compileDownstreamMTLS accepts an inbound chain's DownstreamTlsContext of
// the mesh: client certificates required, the mesh's secrets.
func compileDownstreamMTLS(ts *core.TransportSocket) error {
	msg, err := anyOf(ts.GetTypedConfig())
	if err != nil {
		return err
	}
	d, ok := msg.(*tlsv3.DownstreamTlsContext)
	if !ok {
		return fmt.Errorf("transport_socket %q: only the mesh's DownstreamTlsContext is supported", ts.GetName())
	}
	if !d.GetRequireClientCertificate().GetValue() {
		return fmt.Errorf("transport_socket: mesh TLS must require client certificates")
	}
	sds := d.GetCommonTlsContext().GetTlsCertificateSdsSecretConfigs()
	if len(sds) != 1 || sds[0].GetName() != secretCertificate {
		return fmt.Errorf("transport_socket: the mesh TLS must use the SDS secret %q", secretCertificate)
	}
	return nil
}

// dialMTLS wraps a tunnel connection (PROXY header already written) in
// mutual TLS to the peer sidecar.
func (d *Dataplane) dialMTLS(ctx context.Context, c net.Conn, m *rmtls) (net.Conn, error) {
	cfg := d.opts.Certs.ClientTLSConfig(m.sni, m.allowed)
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &connectError{fmt.Errorf("mTLS handshake with %s: %w", c.RemoteAddr(), err)}
	}
	return &meshConn{Conn: tc, tls: tc}, nil
}

// meshConn is a mutual TLS connection to a peer sidecar. It is not a
// *tls.Conn on purpose: HTTP clients and servers must speak h2c or
// HTTP/1.1 over it as over the plaintext tunnel, not pick by ALPN.
type meshConn struct {
	net.Conn
	tls *tls.Conn
}

// acceptMTLS completes an inbound mTLS handshake and returns the decrypted
// connection, a reader over it and the peer's SPIFFE ID.
func (d *Dataplane) acceptMTLS(conn net.Conn, br *bufio.Reader) (net.Conn, *bufio.Reader, spiffe.ID, error) {
	tc := tls.Server(&originConn{Conn: conn, br: br}, d.opts.Certs.ServerTLSConfig(nil))
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, nil, spiffe.ID{}, err
	}
	_ = conn.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	var id spiffe.ID
	if len(st.PeerCertificates) > 0 {
		id, _ = spiffe.FromCert(st.PeerCertificates[0])
	}
	mc := &meshConn{Conn: tc, tls: tc}
	return mc, bufio.NewReaderSize(mc, 4096), id, nil
}

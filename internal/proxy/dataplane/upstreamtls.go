package dataplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// compileUpstreamTLS turns Envoy's UpstreamTlsContext into a client
// tls.Config: SNI, trusted CAs (none: the peer is not verified, as Envoy),
// subject alt names to match, and a client certificate for mutual TLS.
func compileUpstreamTLS(u *tlsv3.UpstreamTlsContext) (*tls.Config, error) {
	ctx := u.GetCommonTlsContext()
	switch {
	case len(ctx.GetTlsCertificateSdsSecretConfigs()) > 0 || ctx.GetValidationContextSdsSecretConfig() != nil:
		return nil, fmt.Errorf("SDS secrets are not supported in this transport socket")
	case ctx.GetCombinedValidationContext() != nil:
		return nil, fmt.Errorf("combined_validation_context is not supported")
	}
	cfg := &tls.Config{ServerName: u.GetSni(), MinVersion: tls.VersionTLS12, NextProtos: ctx.GetAlpnProtocols()}
	vc := ctx.GetValidationContext()
	if vc == nil {
		cfg.InsecureSkipVerify = true // Envoy verifies nothing without a validation context
	} else {
		pem, err := readSource(vc.GetTrustedCa())
		if err != nil {
			return nil, fmt.Errorf("validation_context.trusted_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("validation_context.trusted_ca: no PEM certificates")
		}
		var sans []string
		for _, m := range vc.GetMatchTypedSubjectAltNames() {
			if m.GetSanType() != tlsv3.SubjectAltNameMatcher_DNS || m.GetMatcher().GetExact() == "" {
				return nil, fmt.Errorf("match_typed_subject_alt_names: only exact DNS names are supported")
			}
			sans = append(sans, m.GetMatcher().GetExact())
		}
		// Verify against the pool ourselves: the name checked is the SANs
		// given, else the SNI (Envoy checks only the SANs it is given).
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("upstream sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(opts); err != nil {
				return fmt.Errorf("upstream certificate: %w", err)
			}
			if len(sans) == 0 {
				return nil
			}
			for _, san := range sans {
				if leaf.VerifyHostname(san) == nil {
					return nil
				}
			}
			return fmt.Errorf("upstream certificate does not match %v", sans)
		}
	}
	if certs := ctx.GetTlsCertificates(); len(certs) > 0 {
		chain, err := readSource(certs[0].GetCertificateChain())
		if err != nil {
			return nil, fmt.Errorf("tls_certificates.certificate_chain: %w", err)
		}
		key, err := readSource(certs[0].GetPrivateKey())
		if err != nil {
			return nil, fmt.Errorf("tls_certificates.private_key: %w", err)
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("tls_certificates: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// readSource reads a DataSource: a file or inline bytes.
func readSource(ds *core.DataSource) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *core.DataSource_Filename:
		return os.ReadFile(s.Filename)
	case *core.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *core.DataSource_InlineString:
		return []byte(s.InlineString), nil
	}
	return nil, fmt.Errorf("a file or inline data is required")
}

// originate wraps an upstream connection in TLS.
func originate(ctx context.Context, c net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &connectError{fmt.Errorf("TLS handshake: %w", err)}
	}
	return tc, nil
}

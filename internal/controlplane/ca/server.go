package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// ControlPlaneIdentity is the identity of the control plane's own
// certificate on :15012.
var ControlPlaneIdentity = spiffe.New("weft-system", "weft-control-plane")

// ServingDNSNames are the DNS SANs of the :15012 certificate: proxies may
// dial it as localhost, weft-control-plane, istiod (Istio's name) or, in
// Kubernetes, by the weftd Service's names.
var ServingDNSNames = []string{"localhost", "weft-control-plane", "istiod",
	// In Kubernetes, the weftd Service (the names injected proxies dial).
	"weftd", "weftd.weft-system", "weftd.weft-system.svc", "weftd.weft-system.svc.cluster.local"}

// servingTTL is the validity of the :15012 certificate; it is renewed at half-life.
const servingTTL = DefaultTTL

// TokenVerifier verifies join tokens (token.Issuer): it returns the
// namespace and service account a token binds. It must be safe for
// concurrent use.
type TokenVerifier interface {
	Verify(token string) (ns, sa string, err error)
}

// ServerOptions configures the authenticated :15012 server.
type ServerOptions struct {
	// CA signs the workloads' CSRs and the server's own certificate. Required.
	CA *CA
	// Tokens verifies the join tokens of first certificates. Required.
	Tokens TokenVerifier
	// RegisterXDS, if set, registers the ADS service (xdsserver.Server.Register);
	// every ADS stream then needs a client certificate whose identity matches
	// the node's NAMESPACE and SERVICE_ACCOUNT.
	RegisterXDS func(*grpc.Server)
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Reserved are identities CreateCertificate never issues, whatever the
	// credential (the API's admin identity: only an admin gets it, from
	// the API).
	Reserved []spiffe.ID
}

// Server is the control plane's authenticated gRPC server (:15012): Istio's
// IstioCertificateService and, when registered, ADS, over TLS.
type Server struct {
	pb.UnimplementedIstioCertificateServiceServer
	opts       ServerOptions
	log        *slog.Logger
	authFailed atomic.Int64

	serving *ServingCert
}

// NewServer returns a server for opts.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.CA == nil || opts.Tokens == nil {
		return nil, errors.New("ca: ServerOptions.CA and Tokens are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{opts: opts, log: opts.Logger.With("component", "ca-server")}, nil
}

// AuthenticationFailures returns how many calls were refused for want of a
// valid token or certificate (Istio's citadel_server_authentication_failure_count).
func (s *Server) AuthenticationFailures() int64 { return s.authFailed.Load() }

// Serve serves on lis until ctx ends, then stops (closing every stream) and
// returns nil; it returns an error if serving fails.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	if ta, ok := lis.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !ta.IP.Equal(ips[0]) {
		ips = append(ips, ta.IP)
	}
	s.serving = s.opts.CA.NewServingCert(ControlPlaneIdentity, ServingDNSNames, ips, servingTTL, s.log)
	if _, err := s.serving.GetCertificate(nil); err != nil {
		return fmt.Errorf("issuing the :15012 certificate: %w", err)
	}
	g := s.grpcServer()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	s.log.Info("serving CA and authenticated xDS", "address", lis.Addr().String(), "identity", ControlPlaneIdentity.String())
	select {
	case <-ctx.Done():
		g.Stop()
		<-errc
		return nil
	case err := <-errc:
		g.Stop()
		return fmt.Errorf("serving CA and xDS on %s: %w", lis.Addr(), err)
	}
}

func (s *Server) grpcServer() *grpc.Server {
	tlsConfig := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.serving.GetCertificate,
		// Optional: a first CreateCertificate authenticates with a token.
		// Verified against the current bundle (several roots during a rotation).
		ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs:  s.opts.CA.Roots(),
	}
	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsConfig)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.StreamInterceptor(s.authorizeXDS),
	)
	pb.RegisterIstioCertificateServiceServer(g, s)
	if s.opts.RegisterXDS != nil {
		s.opts.RegisterXDS(g)
	}
	return g
}

// peerIdentity returns the SPIFFE ID of the caller's verified client
// certificate; ok is false when it presented none.
func peerIdentity(ctx context.Context) (id spiffe.ID, ok bool, err error) {
	p, found := peer.FromContext(ctx)
	if !found {
		return spiffe.ID{}, false, nil
	}
	info, found := p.AuthInfo.(credentials.TLSInfo)
	if !found || len(info.State.VerifiedChains) == 0 {
		return spiffe.ID{}, false, nil
	}
	id, err = spiffe.FromCert(info.State.VerifiedChains[0][0])
	return id, true, err
}

// PeerCertificate returns the caller's verified client certificate, if any.
func PeerCertificate(ctx context.Context) *x509.Certificate {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if info, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(info.State.VerifiedChains) > 0 {
		return info.State.VerifiedChains[0][0]
	}
	return nil
}

func (s *Server) unauthenticated(format string, args ...any) error {
	s.authFailed.Add(1)
	msg := fmt.Sprintf(format, args...)
	s.log.Warn("refused a caller", "reason", msg)
	return status.Error(codes.Unauthenticated, msg)
}

package controlplane

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/controlplane/casecret"
	"github.com/weft-mesh/weft/internal/controlplane/rootcert"
	"github.com/weft-mesh/weft/internal/controlplane/token"
	"github.com/weft-mesh/weft/internal/controlplane/tokenreview"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// DefaultSecureXDSAddress is where the CA and authenticated xDS listen.
const DefaultSecureXDSAddress = "127.0.0.1:15012"

// off disables a listener.
const off = "off"

// secure is the control plane's CA, join tokens and :15012 server.
type secure struct {
	ca     *ca.CA
	tokens *token.Issuer
	srv    *ca.Server
	lis    net.Listener // nil: :15012 is off
	// roots publishes the trust bundle to every namespace (Kubernetes only).
	roots *rootcert.Publisher
}

// newSecure loads or creates the CA and the join token key and binds :15012.
// With a Kubernetes client, the generated root lives in the Secret weft-ca
// and proxies may authenticate with service-account tokens (TokenReview).
func newSecure(opts Options, xds *xdsserver.Server) (*secure, error) {
	caOpts := ca.Options{DataDir: opts.DataDir, CertFile: opts.CACert, KeyFile: opts.CAKey,
		ChainFile: opts.CAChain, ExtraRootsFile: opts.CAExtraRoots, Logger: opts.Logger}
	var secret *casecret.Store
	if opts.KubeClient != nil {
		secret = casecret.New(opts.KubeClient, opts.KubeNamespace, casecret.DefaultName)
		caOpts.RootStore = secret
	}
	authority, err := ca.New(caOpts)
	if err != nil {
		return nil, err
	}
	var tokens *token.Issuer
	if secret != nil && opts.DataDir == "" && opts.CACert == "" {
		// Replicas share the join-token key through the CA's Secret.
		key, err := secret.TokenKey()
		if err != nil {
			return nil, err
		}
		tokens = token.NewWithKey(key, nil)
	} else if tokens, err = token.New(opts.DataDir); err != nil {
		return nil, err
	}
	tokens.PinCA(authority.Pins())
	s := &secure{ca: authority, tokens: tokens}
	if opts.KubeClient != nil {
		s.roots = rootcert.New(rootcert.Options{Client: opts.KubeClient, Bundle: authority.TrustBundle, Logger: opts.Logger})
	}
	if opts.SecureXDSAddress == off {
		return s, nil
	}
	var verifier ca.TokenVerifier = tokens
	if opts.KubeClient != nil {
		verifier = bearerTokens{join: tokens, serviceAccount: tokenreview.New(tokenreview.Options{Client: opts.KubeClient})}
	}
	s.srv, err = ca.NewServer(ca.ServerOptions{CA: authority, Tokens: verifier, RegisterXDS: xds.Register, Logger: opts.Logger,
		Reserved: []spiffe.ID{authz.AdminIdentity}})
	if err != nil {
		return nil, err
	}
	if s.lis, err = net.Listen("tcp", opts.SecureXDSAddress); err != nil {
		return nil, fmt.Errorf("secure xDS address: %w", err)
	}
	return s, nil
}

// bearerTokens verifies weft's join tokens with the issuer and any other
// bearer token, a Kubernetes service-account token, with TokenReview.
type bearerTokens struct {
	join, serviceAccount ca.TokenVerifier
}

func (b bearerTokens) Verify(tok string) (ns, sa string, err error) {
	if token.IsJoinToken(tok) {
		return b.join.Verify(tok)
	}
	ns, sa, err = b.serviceAccount.Verify(tok)
	if err != nil {
		return "", "", fmt.Errorf("service-account token: %w", err)
	}
	return ns, sa, nil
}

// addr returns the :15012 address, nil when off.
func (s *secure) addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// start serves :15012 (and publishes the trust bundle on Kubernetes)
// until the returned stop is called or ctx ends; stop waits for the server
// and returns its error.
func (s *secure) start(ctx context.Context) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var err error
	if s.roots != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.roots.Run(ctx)
		}()
	}
	if s.lis != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err = s.srv.Serve(ctx, s.lis)
		}()
	}
	return func() error {
		cancel()
		wg.Wait()
		return err
	}
}

// close releases the listener of a server that never started.
func (s *secure) close() {
	if s.lis != nil {
		s.lis.Close()
	}
}

// addrOf returns lis's address, nil for a nil listener (an address "off").
func addrOf(lis net.Listener) net.Addr {
	if lis == nil {
		return nil
	}
	return lis.Addr()
}

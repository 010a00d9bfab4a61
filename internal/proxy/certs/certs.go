// Package certs is the proxy's certificate client: it keeps an ECDSA key in
// memory, gets a SPIFFE certificate for the proxy's identity from the
// control plane's CA (Istio's IstioCertificateService on :15012) — the first
// time with a join token, then with its current certificate — renews it at
// half-life, and gives the data plane and the xDS client TLS configurations
// that always use the current certificate and trust bundle.
package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	pb "istio.io/api/security/v1alpha1"

	"github.com/weft-mesh/weft/internal/spiffe"
)

// Defaults for Options.
const (
	DefaultMinRetry = time.Second
	DefaultMaxRetry = 30 * time.Second
	// callTimeout bounds one CreateCertificate call.
	callTimeout = 15 * time.Second
)

// Options configures a Client.
type Options struct {
	// Address is the control plane's authenticated port, host:15012. Required.
	Address string
	// Identity is the proxy's SPIFFE ID. Required.
	Identity spiffe.ID
	// Token is the join token for the first certificate (`weft token create`);
	// it also carries the pins that authenticate the control plane.
	Token string
	// TokenFile, if set, holds the token instead of Token: a Kubernetes
	// service-account token, re-read at each use because the kubelet
	// rotates it.
	TokenFile string
	// RootCAs, if set, is a PEM bundle that authenticates the control plane
	// before the first certificate (instead of, or besides, the token's pins).
	RootCAs []byte
	// TTL is the validity to ask for (0: the CA's default, 24h).
	TTL time.Duration
	// ControlPlane is the identity the control plane's certificate must have
	// (default spiffe://TRUST_DOMAIN/ns/weft-system/sa/weft-control-plane).
	ControlPlane spiffe.ID
	// MinRetry and MaxRetry bound the back-off between failed renewals.
	MinRetry, MaxRetry time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// state is one certificate with the bundle it came with; never modified.
type state struct {
	cert      *tls.Certificate // with Leaf
	chainPEM  []byte           // leaf and intermediates
	keyPEM    []byte           // PKCS #8
	bundlePEM []byte
	bundle    *x509.CertPool
	received  time.Time
}

// renewAt is half-way between when the certificate arrived and its expiry
// (not its NotBefore, which the CA back-dates).
func (s *state) renewAt() time.Time {
	return s.received.Add(s.cert.Leaf.NotAfter.Sub(s.received) / 2)
}

// Client gets and renews the proxy's certificate. Its methods are safe for
// concurrent use; the TLS configurations it returns read the current
// certificate at each handshake, so a renewal needs no restart and leaves
// established connections alone.
type Client struct {
	opts Options
	log  *slog.Logger
	cur  atomic.Pointer[state]

	stop context.CancelFunc
	wg   sync.WaitGroup
	// renewed is signalled after each successful renewal (tests, admin).
	renewed chan struct{}
}

// New returns a client; Start gets its first certificate.
func New(opts Options) (*Client, error) {
	if opts.Address == "" {
		return nil, errors.New("certs: Options.Address is required")
	}
	if err := opts.Identity.Validate(); err != nil {
		return nil, fmt.Errorf("certs: identity: %w", err)
	}
	if opts.ControlPlane.IsZero() {
		opts.ControlPlane = spiffe.ID{TrustDomain: opts.Identity.TrustDomain, Namespace: "weft-system", ServiceAccount: "weft-control-plane"}
	}
	if opts.MinRetry <= 0 {
		opts.MinRetry = DefaultMinRetry
	}
	if opts.MaxRetry < opts.MinRetry {
		opts.MaxRetry = max(DefaultMaxRetry, opts.MinRetry)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts, log: opts.Logger.With("component", "certs", "identity", opts.Identity.String()),
		renewed: make(chan struct{}, 1)}, nil
}

// Start gets the first certificate, retrying with back-off until ctx ends,
// then renews it in the background until Close.
func (c *Client) Start(ctx context.Context) error {
	if err := c.fetchRetrying(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.rotate(lctx)
	}()
	return nil
}

// Close stops renewing. The TLS configurations keep the last certificate.
func (c *Client) Close() {
	if c.stop != nil {
		c.stop()
		c.wg.Wait()
	}
}

// Current returns the current certificate and the PEM of it and its
// intermediates (nil before the first one).
func (c *Client) Current() (leaf *x509.Certificate, chainPEM []byte) {
	st := c.cur.Load()
	if st == nil {
		return nil, nil
	}
	return st.cert.Leaf, st.chainPEM
}

// PEM returns the current certificate chain (leaf first), its private key
// (PKCS #8) and the trust bundle, PEM-encoded, for a workload that does its
// own TLS (a proxyless gRPC app's certificate provider reads them from
// files); ErrNoCertificate before the first certificate.
func (c *Client) PEM() (chain, key, bundle []byte, err error) {
	st := c.cur.Load()
	if st == nil {
		return nil, nil, nil, ErrNoCertificate
	}
	return st.chainPEM, st.keyPEM, st.bundlePEM, nil
}

// Renewed is signalled (capacity one) after each certificate the client gets.
func (c *Client) Renewed() <-chan struct{} { return c.renewed }

// rotate renews the certificate at half-life; after a failure it retries
// with back-off, keeping the current certificate meanwhile.
func (c *Client) rotate(ctx context.Context) {
	for {
		var wait time.Duration // no certificate: get one now
		if st := c.cur.Load(); st != nil {
			wait = time.Until(st.renewAt())
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.fetchRetrying(ctx); err != nil {
			return // ctx ended
		}
	}
}

// fetchRetrying calls fetch until it succeeds or ctx ends.
func (c *Client) fetchRetrying(ctx context.Context) error {
	backoff := c.opts.MinRetry
	var reason error // the last failure not caused by ctx ending
	for {
		err := c.fetch(ctx)
		if err == nil {
			return nil
		}
		if reason == nil || ctx.Err() == nil {
			reason = err
		}
		leaf, _ := c.Current()
		if leaf != nil {
			c.log.Warn("renewing the certificate failed; keeping the current one", "error", err,
				"expires", leaf.NotAfter, "retry_in", backoff)
		} else {
			c.log.Warn("getting the first certificate failed", "error", err, "retry_in", backoff)
		}
		t := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("getting a certificate for %s from %s: %w (last error: %v)", c.opts.Identity, c.opts.Address, ctx.Err(), reason)
		case <-t.C:
		}
		backoff = min(2*backoff, c.opts.MaxRetry)
	}
}

func jitter(d time.Duration) time.Duration {
	var b [1]byte
	rand.Read(b[:])
	return d - d*time.Duration(b[0])/1024 // up to 25% less
}

// fetch gets one certificate with a new key: with the current certificate
// while it is valid, else with the join token.
func (c *Client) fetch(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{c.opts.Identity.URL()}}, key)
	if err != nil {
		return fmt.Errorf("building the CSR: %w", err)
	}
	old := c.cur.Load()
	useCert := old != nil && time.Now().Before(old.cert.Leaf.NotAfter)
	var token string
	if !useCert {
		if token, err = c.token(); err != nil {
			return err
		}
	}
	tlsConfig, err := c.controlPlaneTLS(useCert, token)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(c.opts.Address, grpc.WithTransportCredentials(credentials.NewTLS(tlsConfig)))
	if err != nil {
		return fmt.Errorf("dialing %s: %w", c.opts.Address, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if !useCert {
		cctx = metadata.AppendToOutgoingContext(cctx, "authorization", "Bearer "+token)
	}
	resp, err := pb.NewIstioCertificateServiceClient(conn).CreateCertificate(cctx, &pb.IstioCertificateRequest{
		Csr:              string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		ValidityDuration: int64(c.opts.TTL / time.Second),
	})
	if err != nil {
		return fmt.Errorf("CreateCertificate: %w", err)
	}
	st, err := c.newState(resp.GetCertChain(), key)
	if err != nil {
		return err
	}
	c.cur.Store(st)
	c.log.Info("got a certificate", "serial", st.cert.Leaf.SerialNumber.String(), "expires", st.cert.Leaf.NotAfter,
		"renew_at", st.renewAt(), "with", map[bool]string{true: "certificate", false: "join token"}[useCert])
	select {
	case c.renewed <- struct{}{}:
	default:
	}
	return nil
}

// token returns the join token, or the current content of the token file.
func (c *Client) token() (string, error) {
	if c.opts.TokenFile == "" {
		if c.opts.Token == "" {
			return "", errors.New("no valid certificate and no join token: create one with `weft token create`")
		}
		return c.opts.Token, nil
	}
	data, err := os.ReadFile(c.opts.TokenFile)
	if err != nil {
		return "", fmt.Errorf("service-account token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("service-account token file %s is empty", c.opts.TokenFile)
	}
	return tok, nil
}

// newState checks a CreateCertificate answer: [leaf, intermediates...,
// bundle]; the leaf must be for key and identity, and chain to the bundle.
func (c *Client) newState(chain []string, key *ecdsa.PrivateKey) (*state, error) {
	if len(chain) < 2 {
		return nil, fmt.Errorf("CreateCertificate answered %d PEM elements, want the leaf, intermediates and the trust bundle", len(chain))
	}
	certPEM := []byte(strings.Join(chain[:len(chain)-1], ""))
	bundle, err := parseCerts([]byte(chain[len(chain)-1]))
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pool := x509.NewCertPool()
	for _, b := range bundle {
		pool.AddCert(b)
	}
	st := &state{cert: &cert, chainPEM: certPEM, keyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		bundlePEM: []byte(chain[len(chain)-1]), bundle: pool, received: time.Now()}
	if _, err := verifyChain(cert.Certificate, pool, x509.ExtKeyUsageClientAuth, st.received); err != nil {
		return nil, fmt.Errorf("the certificate the CA issued does not chain to its bundle: %w", err)
	}
	if id, err := spiffe.FromCert(cert.Leaf); err != nil || id != c.opts.Identity {
		return nil, fmt.Errorf("the CA issued a certificate for %v (%v), want %s", id, err, c.opts.Identity)
	}
	return st, nil
}

package proxy

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/certs"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// meshRoots returns the mesh's roots from the CA's current trust bundle
// (nil: no certificate yet), which check tap tokens.
func (p *Proxy) meshRoots() *x509.CertPool {
	_, _, bundle, err := p.certs.PEM()
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return nil
	}
	return pool
}

// DefaultRootCertFile is where a pod mounts the ConfigMap
// istio-ca-root-cert the control plane publishes (Istio's path): the roots
// used with TokenFile when RootCertFile is empty.
const DefaultRootCertFile = "/var/run/secrets/istio/root-cert.pem"

// joinsMesh reports whether the proxy gets a mesh certificate: it has a
// join token or a service-account token file.
func (o Options) joinsMesh() bool { return o.Token != "" || o.TokenFile != "" }

// joinMesh gets the proxy's first mesh certificate with its join token or
// service-account token.
func (p *Proxy) joinMesh() (*certs.Client, error) { return joinMesh(p.opts, p.log) }

// joinMesh gets a workload's first mesh certificate (see Proxy.joinMesh).
func joinMesh(o Options, log *slog.Logger) (*certs.Client, error) {
	if o.ServiceAccount == "" {
		return nil, fmt.Errorf("a join token or token file needs the workload's service account (--service-account)")
	}
	var roots []byte
	rootFile := o.RootCertFile
	if rootFile == "" && o.TokenFile != "" {
		if _, err := os.Stat(DefaultRootCertFile); err == nil {
			rootFile = DefaultRootCertFile
		}
	}
	if rootFile != "" {
		var err error
		if roots, err = os.ReadFile(rootFile); err != nil {
			return nil, fmt.Errorf("mesh root certificates: %w", err)
		}
	}
	c, err := certs.New(certs.Options{Address: o.SecureAddress, Identity: spiffe.New(o.Namespace, o.ServiceAccount), Token: o.Token,
		TokenFile: o.TokenFile, RootCAs: roots, TTL: o.CertTTL, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("mesh certificate: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("getting a mesh certificate from %s: %w", o.SecureAddress, err)
	}
	log.Info("joined the mesh", "identity", spiffe.New(o.Namespace, o.ServiceAccount).String(), "ca", o.SecureAddress)
	return c, nil
}

package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// runCredentials runs `weft credentials create`: it asks the control plane
// (as the admin) for an admin client certificate from the mesh CA and
// writes a credentials file with which `weft --credentials FILE` reaches
// the API over mTLS from another host.
func runCredentials(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 || env.Args[0] != "create" {
		fmt.Fprintln(env.Stderr, "usage: weft credentials create --out FILE --server https://HOST:15014 [--ttl 720h]")
		return errUsage
	}
	fs := newFlags(env, "credentials create")
	out := fs.String("out", "", "write the credentials file here (0600; required)")
	server := fs.String("server", "", "the API's URL as the other host reaches it, https://HOST:15014 (default: --control-plane's, as https)")
	ttl := fs.Duration("ttl", api.DefaultAdminCertTTL, "how long the certificate is valid")
	client := controlPlaneFlag(fs, env)
	if err := parseFlagsNoArgs(fs, env.Args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("--out is required")
	}
	c, err := client()
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{authz.AdminIdentity.URL()}}, key)
	if err != nil {
		return fmt.Errorf("creating the CSR: %w", err)
	}
	resp, err := c.CreateAdminCert(ctx, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), *ttl)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	base := *server
	if base == "" {
		base = "https://" + strings.TrimPrefix(strings.TrimPrefix(c.BaseURL(), "http://"), "https://")
	}
	creds := &authz.Credentials{Server: base, CertificateAuthority: resp.CertificateAuthority,
		ClientCertificate: resp.Certificate, ClientKey: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))}
	if err := authz.WriteCredentials(*out, creds); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "admin credentials for %s (%s, valid %s) written to %s; on that host: weft apply --credentials %s -f FILE\n",
		base, authz.AdminIdentity, *ttl, *out, *out)
	return nil
}

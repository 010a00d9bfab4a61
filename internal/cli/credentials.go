package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// Environment variables of the API's credentials.
const (
	envCredentials = "WEFT_CREDENTIALS"
	envToken       = "WEFT_TOKEN"
)

// apiFlags are --control-plane and the credential flags every command that
// talks to the API has.
type apiFlags struct {
	env                       *Env
	server                    *string
	serverSet                 bool // --control-plane or $WEFT_CONTROL_PLANE given
	credentials, token        *string
	certFile, keyFile, cafile *string
}

// controlPlaneFlag adds --control-plane (default: $WEFT_CONTROL_PLANE, else
// the default API address) and the credential flags, and returns a function
// that makes the client. The credential is, in order: --credentials (or
// $WEFT_CREDENTIALS), --token (or $WEFT_TOKEN), --cert and --key, else the
// admin credentials the control plane left for this user on this host
// (WEFT_HOME/credentials/IP_PORT.json, ~/.weft by default), as kubectl
// finds its kubeconfig.
func controlPlaneFlag(fs *flag.FlagSet, env *Env) func() (*api.Client, error) {
	f := &apiFlags{env: env}
	def := api.DefaultAddress
	if v := f.getenv(envControlPlane); v != "" {
		def, f.serverSet = v, true
	}
	f.server = fs.String("control-plane", def, "the control plane's API URL (env "+envControlPlane+")")
	f.credentials = fs.String("credentials", f.getenv(envCredentials), "the API's credentials: a file `weft credentials create` wrote, or the control plane's data dir (env "+envCredentials+")")
	f.token = fs.String("token", f.getenv(envToken), "a bearer token for the API: the admin token or a Kubernetes token (env "+envToken+")")
	f.certFile = fs.String("cert", "", "an admin client certificate (PEM) for an https API")
	f.keyFile = fs.String("key", "", "the key of --cert (PEM)")
	f.cafile = fs.String("ca-cert", "", "the roots (PEM) that verify an https API (default: the credentials file's)")
	return func() (*api.Client, error) {
		fs.Visit(func(fl *flag.Flag) {
			if fl.Name == "control-plane" {
				f.serverSet = true
			}
		})
		return f.client()
	}
}

func (f *apiFlags) getenv(k string) string {
	if f.env.Getenv == nil {
		return ""
	}
	return f.env.Getenv(k)
}

func (f *apiFlags) client() (*api.Client, error) {
	creds, err := f.load()
	if err != nil {
		return nil, err
	}
	base := *f.server
	if !f.serverSet && creds.Server != "" {
		base = creds.Server
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	if creds.Token == "" && creds.ClientCertificate == "" {
		// The admin credentials the control plane left for its user.
		if home, err := authz.Home(f.env.Getenv); err == nil {
			if name := authz.LocalPath(home, base); name != "" {
				if c, err := authz.ReadCredentials(name); err == nil {
					creds.Token = c.Token
				} else if !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
			}
		}
	}
	opts := api.ClientOptions{Token: creds.Token}
	if strings.HasPrefix(base, "https://") {
		if opts.TLS, err = tlsConfig(creds); err != nil {
			return nil, err
		}
	}
	return api.NewClientWith(base, opts), nil
}

// load reads the explicit credentials: the file, then the flags over it.
func (f *apiFlags) load() (*authz.Credentials, error) {
	creds := &authz.Credentials{}
	if *f.credentials != "" {
		c, err := authz.ReadCredentials(*f.credentials)
		if err != nil {
			return nil, fmt.Errorf("--credentials: %w", err)
		}
		creds = c
	}
	if *f.token != "" {
		creds.Token = *f.token
	}
	if (*f.certFile == "") != (*f.keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	for _, p := range []struct {
		flag, file string
		dst        *string
	}{{"--cert", *f.certFile, &creds.ClientCertificate}, {"--key", *f.keyFile, &creds.ClientKey}, {"--ca-cert", *f.cafile, &creds.CertificateAuthority}} {
		if p.file == "" {
			continue
		}
		data, err := os.ReadFile(p.file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.flag, err)
		}
		*p.dst = string(data)
	}
	return creds, nil
}

// tlsConfig verifies the API with the credentials' roots and presents
// their client certificate, if any.
func tlsConfig(c *authz.Credentials) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CertificateAuthority != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CertificateAuthority)) {
			return nil, errors.New("the API's roots (--ca-cert or the credentials' certificateAuthority): no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if c.ClientCertificate != "" {
		cert, err := tls.X509KeyPair([]byte(c.ClientCertificate), []byte(c.ClientKey))
		if err != nil {
			return nil, fmt.Errorf("the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

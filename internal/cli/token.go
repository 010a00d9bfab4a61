package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/controlplane/token"
)

// runToken runs `weft token create`: it prints a join token with which a
// new proxy gets its first certificate from the control plane's CA.
func runToken(ctx context.Context, env *Env) error {
	if len(env.Args) == 0 || env.Args[0] != "create" {
		fmt.Fprintln(env.Stderr, "usage: weft token create --namespace NS --service-account SA [--ttl 1h] [--control-plane URL | --data-dir DIR]")
		return errUsage
	}
	fs := newFlags(env, "token create")
	ns := fs.String("namespace", "default", "the namespace the token is for")
	sa := fs.String("service-account", "", "the service account the token is for (required)")
	ttl := fs.Duration("ttl", api.DefaultTokenTTL, "how long the token is valid")
	dataDir := fs.String("data-dir", "", "sign with the key in the control plane's data dir instead of asking its API")
	client := controlPlaneFlag(fs, env)
	if err := parseFlagsNoArgs(fs, env.Args[1:]); err != nil {
		return err
	}
	if *sa == "" {
		return errors.New("--service-account is required")
	}
	var tok string
	expires := time.Now().Add(*ttl).UTC().Truncate(time.Second)
	if *dataDir != "" {
		// Never create a key here: a token signed with a new key would be
		// refused by the control plane.
		if _, err := os.Stat(filepath.Join(*dataDir, "ca", token.KeyFile)); err != nil {
			return fmt.Errorf("--data-dir %s: no join token key (%w); has the control plane run with this data dir?", *dataDir, err)
		}
		iss, err := token.New(*dataDir)
		if err != nil {
			return err
		}
		// The generated root's pin; a CA brought with --ca-cert is not in
		// the data dir: ask the API for tokens that pin it.
		if certs, err := readRootPins(filepath.Join(*dataDir, "ca", ca.RootCertFile)); err == nil {
			iss.PinCA(certs)
		}
		if tok, err = iss.Issue(*ns, *sa, *ttl); err != nil {
			return err
		}
	} else {
		c, err := client()
		if err != nil {
			return err
		}
		resp, err := c.CreateToken(ctx, *ns, *sa, *ttl)
		if err != nil {
			return err
		}
		tok, expires = resp.Token, resp.ExpiresAt
	}
	fmt.Fprintln(env.Stdout, tok)
	fmt.Fprintf(env.Stderr, "join token for %s/%s, valid until %s\n", *ns, *sa, expires.Format(time.RFC3339))
	return nil
}

// readRootPins returns the pins of the certificates in a PEM file.
func readRootPins(name string) ([]string, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	certs, err := ca.ParseCerts(data)
	if err != nil {
		return nil, err
	}
	pins := make([]string, len(certs))
	for i, c := range certs {
		pins[i] = ca.Pin(c)
	}
	return pins, nil
}

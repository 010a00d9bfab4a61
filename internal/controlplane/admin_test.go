package controlplane

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// TestAdminCredentials runs the control plane: it leaves its admin token
// (0600) in the data dir and in the per-user home for the API's address;
// writes and join tokens need it; a restart keeps it; the home's copy goes
// when the control plane stops.
func TestAdminCredentials(t *testing.T) {
	dataDir, home := t.TempDir(), t.TempDir()
	ctx := context.Background()
	var token string
	for run := range 2 {
		runCtx, cancel := context.WithCancel(ctx)
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- Run(runCtx, Options{DataDir: dataDir, CredentialsHome: home, XDSAddress: "off", SecureXDSAddress: "off",
				HTTPAddress: "127.0.0.1:0", ConsoleAddress: "off", OTLPGRPCAddress: "off", OTLPHTTPAddress: "off",
				Ready: func(_, h net.Addr) { ready <- h.String() }})
		}()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		local := authz.LocalPath(home, addr)
		for _, name := range []string{filepath.Join(dataDir, authz.CredentialsFile), local} {
			fi, err := os.Stat(name)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("run %d: %s: %v, %v; want mode 0600", run, name, fi, err)
			}
		}
		creds, err := authz.ReadCredentials(local)
		if err != nil || creds.Server != "http://"+addr {
			t.Fatalf("run %d: %+v, %v", run, creds, err)
		}
		if run == 1 && creds.Token != token {
			t.Errorf("the restart changed the admin token")
		}
		token = creds.Token
		base := "http://" + addr
		vs := []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], http: [{route: [{destination: {host: r}}]}]}\n")
		for _, tok := range []string{"", "weft-admin.wrong"} {
			c := api.NewClientWith(base, api.ClientOptions{Token: tok})
			var apiErr *api.Error
			if _, err := c.Apply(ctx, "x", vs); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
				t.Errorf("run %d: apply with token %q: %v, want 401", run, tok, err)
			}
		}
		admin := api.NewClientWith(base, api.ClientOptions{Token: token})
		if _, err := admin.Apply(ctx, "x", vs); err != nil {
			t.Errorf("run %d: apply as admin: %v", run, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if _, err := os.Stat(local); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("run %d: %s left after the control plane stopped: %v", run, local, err)
		}
	}
}

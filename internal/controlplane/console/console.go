// Package console serves weft's web console: the embedded front-end (package
// web) and, under /api/v1, the control plane's JSON API, so that the page
// talks only to the documented API on its own origin.
package console

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/web"
)

// DefaultPort is the console's port (Kiali's).
const DefaultPort = "20001"

// DefaultAddress is where the console listens by default.
const DefaultAddress = "127.0.0.1:" + DefaultPort

// Off disables the console.
const Off = "off"

// apiPrefix is the part of the URL space forwarded to the control plane's API.
const apiPrefix = "/api/"

// shutdownTimeout bounds how long the console waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// Handler returns the console: the UI from assets and the API under /api/
// for the users auth lets in (others get 401 and the page's login form),
// with their rights: the API checks each write with the same authorizer.
// The token endpoint is not offered on the console, and a request that
// changes something (any method but GET and HEAD) must come from the
// console's own page: a browser visiting another site cannot POST config to
// it (its Origin would differ).
func Handler(api http.Handler, assets fs.FS, auth Auth) http.Handler {
	files := http.FileServerFS(assets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, apiPrefix):
			serveAPI(w, r, api, auth)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		default:
			if strings.HasPrefix(r.URL.Path, "/assets/") {
				// Names carry a content hash.
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			} else {
				w.Header().Set("Cache-Control", "no-cache")
			}
			name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
			if name == "" {
				name = "."
			}
			if _, err := fs.Stat(assets, name); err != nil {
				// Unknown paths are the page's own routes: serve the page.
				r2 := r.Clone(r.Context())
				r2.URL.Path = "/"
				files.ServeHTTP(w, r2)
				return
			}
			files.ServeHTTP(w, r)
		}
	})
}

func serveAPI(w http.ResponseWriter, r *http.Request, api http.Handler, auth Auth) {
	switch r.URL.Path {
	case "/api/v1/tokens":
		writeError(w, http.StatusForbidden, "join tokens are not issued through the console; use `weft token create`")
		return
	case "/api/v1/admin-certificates":
		writeError(w, http.StatusForbidden, "admin certificates are not issued through the console; use `weft credentials create`")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: changes are accepted from the console's own page only")
		return
	}
	if r.URL.Path == AuthPath || strings.HasPrefix(r.URL.Path, AuthPath+"/") {
		auth.serveAuth(w, r)
		return
	}
	u, err := auth.user(r)
	if err != nil {
		authz.WriteError(w, fmt.Errorf("%w; log in again", err))
		return
	}
	if u == nil {
		authz.WriteError(w, fmt.Errorf("%w: log in to the console with a token (the weft admin token or a Kubernetes token)", authz.ErrUnauthenticated))
		return
	}
	api.ServeHTTP(w, r.WithContext(authz.WithUser(r.Context(), u)))
}

// sameOrigin reports whether r's Origin (if the browser sent one) is the
// host it was sent to. Non-browser clients send no Origin.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\": %q}\n", msg)
}

// Address returns the console's address for the flag value addr: addr
// itself, or, when empty, the host of the control plane's HTTP address with
// DefaultPort (port 0 when the HTTP address asks for a free port, as tests do).
func Address(addr, httpAddress string) string {
	if addr != "" {
		return addr
	}
	host, port, err := net.SplitHostPort(httpAddress)
	if err != nil {
		return DefaultAddress
	}
	if port == "0" {
		return net.JoinHostPort(host, "0")
	}
	return net.JoinHostPort(host, DefaultPort)
}

// Start listens on addr (Off: does nothing) and serves the console with
// api to the users auth lets in, in the background until ctx ends or stop
// is called. addr is the bound address (nil when off).
func Start(ctx context.Context, addr string, api http.Handler, auth Auth, log *slog.Logger) (bound net.Addr, stop func(), err error) {
	if addr == Off {
		return nil, func() {}, nil
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("console address: %w (--console-address off disables the console)", err)
	}
	srv := &http.Server{Handler: Handler(api, web.Assets(), auth), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving the console", "component", "console", "address", lis.Addr().String(), "error", err)
		}
	}()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}()
	log.Info("console started", "component", "console", "url", "http://"+lis.Addr().String(), "auth", auth.Strategy)
	var once bool
	return lis.Addr(), func() {
		if !once {
			once = true
			close(stopped)
			<-done
		}
	}, nil
}

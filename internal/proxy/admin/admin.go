// Package admin serves a proxy's Envoy-like admin interface (config dump,
// clusters, readiness, server info; port 15000) and its health endpoint
// (GET /healthz/ready; port 15021).
package admin

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/dataplane"
	"github.com/weft-mesh/weft/internal/proxy/stats"
	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
	"github.com/weft-mesh/weft/internal/tap"
)

// ConfigSource gives the last ACKed xDS resources (an *xdsclient.Client).
// It must be safe for concurrent use.
type ConfigSource interface {
	Snapshots() []xdsclient.Snapshot
}

// DataPlane is what the admin pages read of the data plane (a
// *dataplane.Dataplane). It must be safe for concurrent use.
type DataPlane interface {
	Ready() bool
	Clusters() []dataplane.ClusterStatus
}

// Server states, as Envoy's /ready and /server_info name them.
const (
	StateInitializing = "INITIALIZING"
	StateLive         = "LIVE"
	StateDraining     = "DRAINING"
)

// Options configure a Server.
type Options struct {
	Node     *core.Node
	Config   ConfigSource
	Data     DataPlane
	Version  string // weft's version, shown by /server_info
	Logger   *slog.Logger
	Now      func() time.Time // default time.Now
	Hostname string           // shown by /server_info (default: the node ID)
	// Stats are the proxy's Istio metrics (nil: none), served on /stats/prometheus.
	Stats *stats.Registry
	// AccessLog is the proxy's access log (nil: off), served on /logs.
	AccessLog *accesslog.Logger
	// Connected reports whether the xDS stream is up.
	Connected func() bool
	// AppMetricsURL is the app's own metrics, merged into :15020's /stats/prometheus.
	AppMetricsURL string
	// AppDial, if set, connects to the app for AppMetricsURL (in the app's
	// network namespace, weft run --netns); default a plain dial.
	AppDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Certs returns the proxy's current mesh certificate (nil: none), for /certs.
	Certs func() (leaf *x509.Certificate, chainPEM []byte)
	// Tap, if set, is served on /tap to callers with a tap token.
	Tap *tap.Hub
	// TapRoots returns the mesh roots that check tap tokens (nil: tap
	// refused, as on a proxy without mesh certificates).
	TapRoots func() *x509.CertPool
}

// Server serves the admin and health endpoints. Its zero value is not
// usable; call New.
type Server struct {
	opts     Options
	log      *slog.Logger
	started  time.Time
	draining atomic.Bool
	servers  []*http.Server
	addrs    []string
	// appClient scrapes AppMetricsURL.
	appClient *http.Client
}

// New returns a Server; Listen starts serving.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger.With("component", "admin"), started: opts.Now(), appClient: appMetricsClient}
	if opts.AppDial != nil {
		// A connection per scrape: nothing idles in the app's namespace.
		s.appClient = &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: opts.AppDial, DisableKeepAlives: true}}
	}
	return s
}

// State is the server's state: INITIALIZING until the data plane is ready,
// then LIVE, and DRAINING once SetDraining was called.
func (s *Server) State() string {
	switch {
	case s.draining.Load():
		return StateDraining
	case s.opts.Data.Ready():
		return StateLive
	}
	return StateInitializing
}

// SetDraining makes health checks fail so traffic moves away before the
// data plane shuts down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// AdminHandler serves the admin pages.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config_dump", s.configDump)
	mux.HandleFunc("GET /clusters", s.clusters)
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /server_info", s.serverInfo)
	mux.HandleFunc("GET /stats/prometheus", s.statsPrometheus)
	mux.HandleFunc("GET /logs", s.logs)
	mux.HandleFunc("GET /certs", s.certs)
	mux.HandleFunc("GET /tap", s.tapHandler)
	mux.HandleFunc("GET /{$}", s.index)
	registerPprof(mux)
	return mux
}

// StatsHandler serves :15090's GET /stats/prometheus.
func (s *Server) StatsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats/prometheus", s.statsPrometheus)
	return mux
}

// MergedHandler serves :15020: GET /stats/prometheus with the app's
// metrics merged in, and the health endpoint, as Istio's agent does.
func (s *Server) MergedHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats/prometheus", s.mergedMetrics)
	mux.Handle("GET /healthz/ready", s.HealthHandler())
	return mux
}

// HealthHandler serves GET /healthz/ready: 200 when LIVE, 503 otherwise.
func (s *Server) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/ready", func(w http.ResponseWriter, _ *http.Request) {
		if st := s.State(); st != StateLive {
			http.Error(w, st, http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// Listen binds the admin and health addresses (host:port; port 0 picks
// one), and the stats and merged-metrics ones when not empty, and serves
// them until Close.
func (s *Server) Listen(adminAddr, healthAddr, statsAddr, mergedAddr string) error {
	type bind struct {
		addr string
		h    http.Handler
	}
	binds := []bind{{adminAddr, s.AdminHandler()}, {healthAddr, s.HealthHandler()}}
	if statsAddr != "" {
		binds = append(binds, bind{statsAddr, s.StatsHandler()})
	}
	if mergedAddr != "" {
		binds = append(binds, bind{mergedAddr, s.MergedHandler()})
	}
	for _, l := range binds {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			_ = s.Close(context.Background())
			return fmt.Errorf("admin: listening on %s: %w", l.addr, err)
		}
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		s.addrs = append(s.addrs, ln.Addr().String())
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("serving", "address", ln.Addr(), "err", err)
			}
		}()
	}
	return nil
}

// Addrs returns the bound admin and health addresses once Listen succeeded.
func (s *Server) Addrs() (admin, health string) {
	if len(s.addrs) < 2 {
		return "", ""
	}
	return s.addrs[0], s.addrs[1]
}

// Close stops serving, letting requests in flight finish until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	st := s.State()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if st != StateLive {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, st)
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, `weft proxy admin commands:
  /clusters           upstream clusters and endpoints (?format=json)
  /config_dump        the xDS config in use (Envoy's ConfigDump JSON)
  /ready              LIVE when ready to serve
  /server_info        node, state and uptime
  /tap                live requests (weft tap; the control plane's token only)
  /debug/pprof/       Go profiles: CPU, heap, goroutines (loopback clients only)
`)
}

// CertInfo is /certs: the proxy's mesh certificate, as Envoy's /certs lists it.
type CertInfo struct {
	Identity     string    `json:"identity"`
	SerialNumber string    `json:"serial_number"`
	NotBefore    time.Time `json:"valid_from"`
	NotAfter     time.Time `json:"expiration_time"`
}

func (s *Server) certs(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var out []CertInfo
	if s.opts.Certs != nil {
		if leaf, _ := s.opts.Certs(); leaf != nil {
			id := ""
			if len(leaf.URIs) > 0 {
				id = leaf.URIs[0].String()
			}
			out = append(out, CertInfo{Identity: id, SerialNumber: leaf.SerialNumber.Text(16), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter})
		}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"certificates": out})
}

// Package controlplane wires the control plane process: the config store
// (data dir, config dir watch), registry, translate, the xDS server and the
// HTTP API.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/console"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/telemetry/cpmetrics"
	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// Default addresses of the control plane. Plaintext xDS is off unless
// asked for (PlaintextXDSAddress is its conventional address, the demo's).
const (
	PlaintextXDSAddress = "127.0.0.1:15010"
	DefaultXDSAddress   = off
	DefaultHTTPAddress  = "127.0.0.1:15014"
)

// shutdownTimeout bounds how long the HTTP API waits for requests in flight.
const shutdownTimeout = 5 * time.Second

// Options configures the control plane (the flags of `weft control-plane`).
type Options struct {
	// ConfigDir, if set, is watched for Istio YAML files.
	ConfigDir string
	// DataDir, if set, persists config applied through the API and auto-registrations.
	DataDir string
	// XDSAddress is where plaintext ADS listens ("off", the default when
	// empty: nowhere). Plaintext streams prove no identity: each is served
	// at most the config of the node it names, never a node an
	// authenticated proxy or a WorkloadEntry holds, with no identity, and
	// never registers anything (registration is on SecureXDSAddress).
	// HTTPAddress is where the HTTP API listens (DefaultHTTPAddress when
	// empty). Port 0 picks one.
	XDSAddress  string
	HTTPAddress string
	// RegistrationGrace is how long an auto-registered workload outlives its proxy.
	RegistrationGrace time.Duration
	// Debounce is how long config must be quiet before proxies' snapshots are rebuilt.
	Debounce time.Duration
	// OutboundTrafficPolicy is the mesh's outboundTrafficPolicy.mode:
	// ALLOW_ANY (default) or REGISTRY_ONLY.
	OutboundTrafficPolicy string
	// PathNormalization is the mesh's pathNormalization.normalization
	// (DEFAULT: BASE).
	PathNormalization meshconfig.MeshConfig_ProxyPathNormalization_NormalizationType
	// Logger receives every log; nil discards them.
	Logger *slog.Logger
	// OTLPGRPCAddress and OTLPHTTPAddress are where the embedded OTLP trace
	// receiver listens (traces.DefaultGRPCAddress, traces.DefaultHTTPAddress
	// when empty; "off" disables one; port 0 picks one).
	OTLPGRPCAddress string
	OTLPHTTPAddress string
	// OTLPForward, when set, is another OTLP collector (Jaeger, an
	// OpenTelemetry Collector…) that every span received is forwarded to:
	// host:port for OTLP/gRPC, http://host:port[/v1/traces] for OTLP/HTTP.
	OTLPForward string
	// TraceStoreMaxSpans and TraceStoreMaxBytes bound the embedded trace store.
	TraceStoreMaxSpans int
	TraceStoreMaxBytes int64
	// Ready, if set, is called once both listeners are bound, with their
	// addresses (xds is nil when XDSAddress is "off").
	Ready func(xds, http net.Addr)
	// SecureXDSAddress is where the CA and the authenticated xDS listen over
	// TLS (DefaultSecureXDSAddress when empty; "off" disables; port 0 picks one).
	SecureXDSAddress string
	// SecureReady, if set, is called with the bound SecureXDSAddress (nil when off).
	SecureReady func(net.Addr)
	// CACert, CAKey and CAChain are the user's CA (an intermediate), its key
	// and the chain above it; empty: a root generated under DATA_DIR/ca.
	// CAExtraRoots is a PEM file of more roots to trust (root rotation).
	CACert, CAKey, CAChain, CAExtraRoots string
	// PrometheusURL, if set, is the Prometheus the metrics API queries
	// (it scrapes the proxies itself); else the control plane scrapes them
	// into an embedded store bounded by MetricsRetention and MetricsMaxSeries.
	PrometheusURL    string
	MetricsRetention time.Duration
	MetricsMaxSeries int
	// Webhook, if set, serves the sidecar injector webhook.
	Webhook *WebhookOptions
	// ConsoleAddress is where the web console (UI + this API) listens;
	// "off" disables it; empty: the HTTPAddress's host, port 20001 (port 0
	// when HTTPAddress's is 0).
	ConsoleAddress string
	// ConsoleAuth is the console's login strategy: console.StrategyAnonymous
	// (loopback callers need no login) or console.StrategyToken; empty:
	// token on Kubernetes (KubeClient set), else anonymous.
	ConsoleAuth string
	// KubeClient, if set, is the cluster the control plane runs in: the CA
	// keeps its generated root in the Secret weft-ca of KubeNamespace
	// (weft-system when empty), shared by every replica, and accepts
	// service-account tokens (audience istio-ca) checked with TokenReview.
	KubeClient    kubernetes.Interface
	KubeNamespace string
	// Discovery, if set (with KubeClient), feeds the registry and the config
	// from the cluster.
	Discovery *DiscoveryOptions
	// CredentialsHome, if set, is weft's per-user directory (authz.Home):
	// the admin credentials are left there for the CLI, keyed by the API's
	// address, besides DATA_DIR/admin-credentials.json.
	CredentialsHome string
}

// Run runs the control plane until ctx ends, then stops it gracefully and
// returns nil; it returns an error if a part cannot start or fails.
func Run(ctx context.Context, opts Options) error {
	opts.defaults()
	log := opts.Logger.With("component", "controlplane")
	st, err := store.New(store.Options{DataDir: opts.DataDir, Logger: opts.Logger})
	if err != nil {
		return fmt.Errorf("opening the config store: %w", err)
	}
	defer st.Close()
	if opts.ConfigDir != "" {
		if err := st.WatchDir(ctx, opts.ConfigDir); err != nil {
			return fmt.Errorf("watching config dir %s: %w", opts.ConfigDir, err)
		}
	}
	var xds *xdsserver.Server
	registryOf := registry.Build
	var k8s *kubeDiscovery
	if opts.Discovery != nil {
		if k8s, err = newKubeDiscovery(opts.Discovery, opts.KubeClient, opts.KubeNamespace, st, opts.Logger, func() { xds.Changed() }); err != nil {
			return err
		}
		registryOf = k8s.registry
	}
	cpm := cpmetrics.New(func() []xdsserver.ProxyStatus { return xds.Proxies() })
	cpm.WatchStore(st)
	xds, err = xdsserver.New(xdsserver.Options{
		Store: st, Registry: registryOf, Translate: translate.Build,
		ViewKey: translate.ViewKey, BuildShared: translate.BuildShared, BuildOwn: translate.BuildOwn,
		Debounce: opts.Debounce, RegistrationGrace: opts.RegistrationGrace, Logger: opts.Logger,
		Mesh:  translate.Mesh{OutboundTrafficPolicy: opts.OutboundTrafficPolicy, PathNormalization: opts.PathNormalization},
		Hooks: cpm.Hooks(),
	})
	if err != nil {
		return err
	}
	if k8s != nil {
		stopKube, err := k8s.start(ctx)
		if err != nil {
			return err
		}
		defer stopKube()
	}
	sec, err := newSecure(opts, xds)
	if err != nil {
		return err
	}
	defer sec.close()
	if opts.Webhook != nil {
		stopWebhook, err := startWebhook(ctx, opts.Webhook, sec.ca, opts.Logger)
		if err != nil {
			return err
		}
		defer stopWebhook()
	}
	var xlis net.Listener
	if opts.XDSAddress != off {
		if xlis, err = net.Listen("tcp", opts.XDSAddress); err != nil {
			return fmt.Errorf("xDS address: %w", err)
		}
	}
	hlis, err := net.Listen("tcp", opts.HTTPAddress)
	if err != nil {
		if xlis != nil {
			xlis.Close()
		}
		return fmt.Errorf("HTTP API address: %w", err)
	}
	// HTTPS too, for admins on other hosts (client certificates).
	hlis = newBothListener(hlis, apiTLS(sec.ca, hlis))
	adminToken, err := loadAdminToken(opts.DataDir)
	if err != nil {
		return err
	}
	az := authz.New(authz.Options{AdminToken: adminToken, Kube: kubeReviewer(opts.KubeClient)})
	handler := api.NewHandler(api.Options{Store: st, Proxies: xds.Proxies, Logger: opts.Logger, Services: k8s.services(), Authorizer: az})
	spans := traces.NewStore(traces.StoreOptions{MaxSpans: opts.TraceStoreMaxSpans, MaxBytes: opts.TraceStoreMaxBytes})
	cpm.WatchTraceStore(spans.Stats)
	otlp := traces.NewReceiver(spans, opts.Logger)
	if opts.OTLPForward != "" {
		fwd, err := traces.NewForwarder(opts.OTLPForward, opts.Logger)
		if err != nil {
			if xlis != nil {
				xlis.Close()
			}
			hlis.Close()
			return err
		}
		defer fwd.Close(2 * time.Second) // after the receiver's Close: what it accepted goes on
		otlp.ForwardTo(fwd)
	}
	handler = api.MountTokens(handler, sec.tokens, az)
	handler = api.MountAdminCerts(handler, sec.ca, az)
	handler = api.MountTap(handler, api.TapOptions{Proxies: xds.Proxies, Signer: sec.ca, Authorizer: az, Logger: opts.Logger})
	ogrpc, ohttp, err := otlp.Start(opts.OTLPGRPCAddress, opts.OTLPHTTPAddress)
	if err != nil {
		if xlis != nil {
			xlis.Close()
		}
		hlis.Close()
		return err
	}
	defer otlp.Close()
	handler = traces.Mount(handler, spans)
	handler = mountPprof(handler)
	handler, stopMetrics, err := startMetrics(ctx, opts, xds, cpm, handler, log)
	if err != nil {
		if xlis != nil {
			xlis.Close()
		}
		hlis.Close()
		return err
	}
	defer stopMetrics()
	consoleAddr, stopConsole, err := console.Start(ctx, console.Address(opts.ConsoleAddress, opts.HTTPAddress), handler,
		console.Auth{Strategy: opts.ConsoleAuth, Authorizer: az}, opts.Logger)
	if err != nil {
		if xlis != nil {
			xlis.Close()
		}
		hlis.Close()
		return err
	}
	defer stopConsole()
	creds, err := writeAdminCredentials(adminToken, opts.DataDir, opts.CredentialsHome, hlis.Addr(), log)
	if err != nil {
		if xlis != nil {
			xlis.Close()
		}
		hlis.Close()
		return err
	}
	defer creds.remove()
	log.Info("OTLP trace receiver", "grpc", ogrpc, "http", ohttp)
	log.Info("control plane started", "xds", addrOf(xlis), "secure_xds", sec.addr(), "http", hlis.Addr().String(),
		"console", consoleAddr, "config_dir", opts.ConfigDir, "data_dir", opts.DataDir)
	stopSecure := sec.start(ctx)
	if opts.SecureReady != nil {
		opts.SecureReady(sec.addr())
	}
	if opts.Ready != nil {
		opts.Ready(addrOf(xlis), hlis.Addr())
	}
	err = serve(ctx, xds, xlis, handler, hlis)
	if serr := stopSecure(); err == nil {
		err = serr
	}
	log.Info("control plane stopped")
	return err
}

func (o *Options) defaults() {
	if o.XDSAddress == "" {
		o.XDSAddress = DefaultXDSAddress
	}
	if o.HTTPAddress == "" {
		o.HTTPAddress = DefaultHTTPAddress
	}
	if o.SecureXDSAddress == "" {
		o.SecureXDSAddress = DefaultSecureXDSAddress
	}
	if o.OTLPGRPCAddress == "" {
		o.OTLPGRPCAddress = traces.DefaultGRPCAddress
	}
	if o.OTLPHTTPAddress == "" {
		o.OTLPHTTPAddress = traces.DefaultHTTPAddress
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ConsoleAuth == "" {
		o.ConsoleAuth = console.StrategyAnonymous
		if o.KubeClient != nil {
			o.ConsoleAuth = console.StrategyToken
		}
	}
}

// serve runs the xDS server and the HTTP API until ctx ends or one fails.
func serve(ctx context.Context, xds *xdsserver.Server, xlis net.Listener, handler http.Handler, hlis net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- xds.Serve(ctx, xlis)
	}()
	go func() {
		defer wg.Done()
		err := hs.Serve(hlis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		} else if err != nil {
			err = fmt.Errorf("serving the HTTP API on %s: %w", hlis.Addr(), err)
		}
		errs <- err
	}()
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if first == nil {
			first = err
		}
	}
	return first
}

// kubeReviewer asks client about bearer tokens and permissions; nil without a cluster.
func kubeReviewer(client kubernetes.Interface) authz.Reviewer {
	if client == nil {
		return nil
	}
	return authz.NewKubeReviewer(client)
}

package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/console"
	"github.com/weft-mesh/weft/internal/controlplane/telemetry/metrics"
	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

// envControlPlane names the environment variable with the control plane's API URL.
const envControlPlane = "WEFT_CONTROL_PLANE"

func runControlPlane(ctx context.Context, env *Env) error {
	fs := newFlags(env, "control-plane")
	var opts controlplane.Options
	fs.StringVar(&opts.ConfigDir, "config-dir", "", "watch this directory for Istio YAML files")
	fs.StringVar(&opts.DataDir, "data-dir", "", "persist applied config and auto-registrations here")
	fs.StringVar(&opts.XDSAddress, "xds-address", controlplane.DefaultXDSAddress, "also serve plaintext xDS (ADS over gRPC, no identity: read-only config of unregistered nodes, never registration) on this address, e.g. "+controlplane.PlaintextXDSAddress+" (\"off\": don't)")
	fs.StringVar(&opts.HTTPAddress, "http-address", controlplane.DefaultHTTPAddress, "serve the HTTP API on this address")
	fs.StringVar(&opts.ConsoleAddress, "console-address", "", `serve the web console on this address ("off": don't; default: the --http-address host, port 20001: 127.0.0.1:20001)`)
	fs.StringVar(&opts.ConsoleAuth, "console-auth", "", `who may use the console: "anonymous" (callers from loopback need no login; others log in with a token) or "token" (everyone logs in with the admin token or a Kubernetes token); default: token with --kubernetes, else anonymous`)
	fs.StringVar(&opts.SecureXDSAddress, "secure-xds-address", controlplane.DefaultSecureXDSAddress,
		`serve the CA and authenticated xDS over TLS on this address ("off": don't)`)
	fs.StringVar(&opts.CACert, "ca-cert", "", "sign with this CA certificate (your intermediate) instead of a root generated under DATA_DIR/ca")
	fs.StringVar(&opts.CAKey, "ca-key", "", "the key of --ca-cert")
	fs.StringVar(&opts.CAChain, "ca-chain", "", "the certificates above --ca-cert, up to the root (PEM)")
	fs.StringVar(&opts.CAExtraRoots, "ca-extra-roots", "", "more roots for the trust bundle, PEM (root rotation)")
	fs.DurationVar(&opts.RegistrationGrace, "registration-grace", xdsserver.DefaultRegistrationGrace,
		"remove an auto-registered workload this long after its proxy disconnects")
	fs.DurationVar(&opts.Debounce, "debounce", xdsserver.DefaultDebounce, "wait for config to be quiet this long before pushing")
	fs.StringVar(&opts.OutboundTrafficPolicy, "outbound-traffic-policy", translate.AllowAny,
		"where sidecars may send traffic to unknown hosts: ALLOW_ANY (PassthroughCluster) or REGISTRY_ONLY (BlackHoleCluster, 502)")
	meshConfig := fs.String("mesh-config", "", "Istio's mesh config (the YAML of the istio ConfigMap's mesh key): outboundTrafficPolicy and pathNormalization are honoured")
	fs.StringVar(&opts.OTLPGRPCAddress, "otlp-grpc-address", traces.DefaultGRPCAddress, `receive OTLP traces over gRPC on this address ("off": don't)`)
	fs.StringVar(&opts.OTLPHTTPAddress, "otlp-http-address", traces.DefaultHTTPAddress, `receive OTLP traces over HTTP on this address ("off": don't)`)
	fs.StringVar(&opts.OTLPForward, "otlp-forward", "", `also send every span received to this OTLP collector (Jaeger, an OpenTelemetry Collector): host:port (OTLP/gRPC) or http://host:port (OTLP/HTTP)`)
	fs.IntVar(&opts.TraceStoreMaxSpans, "trace-store-max-spans", traces.DefaultMaxSpans, "keep at most this many spans in the trace store")
	fs.Int64Var(&opts.TraceStoreMaxBytes, "trace-store-max-bytes", traces.DefaultMaxBytes, "keep about this many bytes of spans in the trace store")
	fs.StringVar(&opts.PrometheusURL, "prometheus-url", "", "answer the metrics API from this Prometheus (http://HOST:9090) instead of scraping proxies into the embedded store")
	fs.DurationVar(&opts.MetricsRetention, "metrics-retention", metrics.DefaultRetention, "keep scraped proxy metrics this long in the embedded store")
	fs.IntVar(&opts.MetricsMaxSeries, "metrics-max-series", metrics.DefaultMaxSeries, "keep at most this many series in the embedded metrics store")
	webhook := webhookFlags(fs)
	discovery := discoveryFlags(fs)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	onKubernetes := fs.Bool("kubernetes", false, "run on a Kubernetes cluster: discover Services, EndpointSlices, Pods and Istio's CRDs (writing their status), CA root in Secret weft-ca, service-account tokens checked with TokenReview")
	kubeconfig := kubeconfigFlag(fs)
	err := parseFlagsNoArgs(fs, env.Args)
	if err != nil {
		return err
	}
	if opts.Webhook, err = webhook(); err != nil {
		return err
	}
	// --kubeconfig alone is the control plane outside the cluster it
	// watches (Istio's external control plane).
	if *onKubernetes || *kubeconfig != "" {
		cfg, err := restConfig(*kubeconfig, env)
		if err != nil {
			return err
		}
		if opts.KubeClient, err = kubernetes.NewForConfig(cfg); err != nil {
			return fmt.Errorf("Kubernetes client: %w", err)
		}
		if env.Getenv != nil {
			opts.KubeNamespace = env.Getenv("POD_NAMESPACE")
		}
		if opts.Discovery, err = discovery(cfg, env, &opts.KubeNamespace); err != nil {
			return err
		}
		if opts.Webhook != nil && opts.Webhook.Client == nil {
			opts.Webhook.Client = opts.KubeClient // namespace labels, and the CA bundle of weft-sidecar-injector
		}
	}
	var meshUnimplemented []config.Unimplemented
	if *meshConfig != "" {
		mc, err := readMeshConfig(*meshConfig)
		if err != nil {
			return err
		}
		if mc.GetOutboundTrafficPolicy() != nil && !flagSet(fs, "outbound-traffic-policy") {
			opts.OutboundTrafficPolicy = mc.GetOutboundTrafficPolicy().GetMode().String()
		}
		opts.PathNormalization = mc.GetPathNormalization().GetNormalization()
		meshUnimplemented = config.UnimplementedMeshFields(mc)
	}
	if a := opts.ConsoleAuth; a != "" && a != console.StrategyAnonymous && a != console.StrategyToken {
		return fmt.Errorf("--console-auth %q: want %s or %s", a, console.StrategyAnonymous, console.StrategyToken)
	}
	if p := opts.OutboundTrafficPolicy; p != translate.AllowAny && p != translate.RegistryOnly {
		return fmt.Errorf("--outbound-traffic-policy %q: want %s or %s", p, translate.AllowAny, translate.RegistryOnly)
	}
	if opts.PrometheusURL != "" {
		if _, err := metrics.NewPrometheus(opts.PrometheusURL, nil); err != nil {
			return fmt.Errorf("--prometheus-url: %w", err)
		}
	}
	if opts.MetricsRetention < time.Minute || opts.MetricsMaxSeries <= 0 {
		return fmt.Errorf("--metrics-retention %s, --metrics-max-series %d: want at least 1m and 1", opts.MetricsRetention, opts.MetricsMaxSeries)
	}
	logger, err := newLogger(env.Stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	opts.Logger = logger
	for _, u := range meshUnimplemented {
		logger.Warn("mesh config field not honoured", "file", *meshConfig, "field", u.Path, "reason", u.Reason)
	}
	if home, err := authz.Home(env.Getenv); err == nil {
		opts.CredentialsHome = home
	} else {
		logger.Warn("the admin credentials are only in the data dir", "error", err)
	}
	return controlplane.Run(ctx, opts)
}

// readMeshConfig reads and parses Istio's mesh config from path.
func readMeshConfig(path string) (*meshconfig.MeshConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--mesh-config: %w", err)
	}
	mc, err := config.ParseMeshConfig(path, data)
	if err != nil {
		return nil, fmt.Errorf("--mesh-config: %w", err)
	}
	return mc, nil
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

package proxycli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/weft-mesh/weft/internal/cmdline"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/proxy"
	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
)

// envJoinToken is the environment variable with the proxy's join token: a
// secret, so better there (or in a file) than in --token, which every user
// of the machine sees in ps.
const envJoinToken = "WEFT_JOIN_TOKEN"

// proxyFlags are the flags of weft proxy, weft run and weft gateway.
type proxyFlags struct {
	opts      proxy.Options
	ip        string
	labels    string
	xdsDelta  bool
	logLevel  string
	logFormat string
	accessLog string
	// outboundAllow: --outbound-allow, pid:N,uid:N,any.
	outboundAllow string
	// kubernetes: identity from the downward API, iptables capture.
	kubernetes bool
}

// proxyDefaults are the flag defaults that differ between commands.
type proxyDefaults struct {
	mode, name, namespace, labels, ip string
}

var sidecarDefaults = proxyDefaults{mode: proxy.ModeSidecar, namespace: "default"}

func addProxyFlags(fs *flag.FlagSet, def proxyDefaults) *proxyFlags {
	f := &proxyFlags{opts: proxy.Options{Mode: def.mode}}
	o := &f.opts
	fs.StringVar(&o.Name, "name", def.name, "instance name, the proxy's name in proxy-status (default SERVICE-VERSION-xxxxx)")
	fs.StringVar(&o.Workload, "workload", "", "the workload this instance belongs to, as metrics and the console name it (default SERVICE-VERSION, else --name)")
	fs.StringVar(&o.Namespace, "namespace", def.namespace, "workload namespace")
	fs.StringVar(&f.labels, "labels", def.labels, "workload labels k=v,k2=v2")
	fs.StringVar(&f.ip, "ip", def.ip, "pod IP in 127.0.0.0/8 (default: a free random 127.X.Y.Z)")
	fs.StringVar(&o.XDSAddress, "xds-address", "127.0.0.1:15010", "the control plane's xDS address")
	fs.BoolVar(&f.xdsDelta, "xds-delta", false, "use incremental (delta) xDS instead of state of the world")
	fs.StringVar(&o.Token, "token", "", "join token (weft token create): get a mesh certificate, speak mTLS, take config from --secure-xds-address; prefer $WEFT_JOIN_TOKEN or --token-file: any user sees the command line in ps")
	fs.StringVar(&o.TokenFile, "token-file", "", "instead of --token, a file with the join token (mode 0600, read once) or a Kubernetes service-account token (audience istio-ca, e.g. /var/run/secrets/tokens/istio-token, re-read at each use)")
	fs.StringVar(&o.RootCertFile, "root-cert-file", "", "PEM roots of the mesh CA that authenticate the control plane before the first certificate (with --token-file, default "+proxy.DefaultRootCertFile+" if it exists: the ConfigMap istio-ca-root-cert)")
	fs.DurationVar(&o.CertTTL, "cert-ttl", 0, "validity of the mesh certificate to ask for (default the CA's, 24h); renewed at half-life")
	fs.StringVar(&o.SecureAddress, "secure-xds-address", "", "the control plane's authenticated xDS and CA address (default: the xDS host, port 15012)")
	uint32Var(fs, &o.AdminPort, "admin-port", 15000, "admin port (/config_dump, /clusters)")
	uint32Var(fs, &o.HealthPort, "health-port", 15021, "health port (GET /healthz/ready)")
	uint32Var(fs, &o.StatsPort, "stats-port", 15090, "Prometheus port (GET /stats/prometheus)")
	uint32Var(fs, &o.MergedMetricsPort, "merged-metrics-port", 15020, "merged proxy + app metrics port (GET /stats/prometheus)")
	fs.StringVar(&f.accessLog, "access-log", "", `also write the JSON access log to this file ("-": stderr; always kept for weft logs)`)
	fs.BoolVar(&o.DisableAccessLog, "disable-access-log", false, "turn the access log off")
	fs.BoolVar(&o.DisableMetrics, "disable-metrics", false, "turn Istio's request metrics off")
	fs.StringVar(&o.AppMetricsURL, "app-metrics-url", "", "the app's Prometheus endpoint, merged into the merged-metrics port")
	fs.StringVar(&o.OTLPEndpoint, "otlp-endpoint", "", `where spans go: host:port (OTLP/gRPC) or http://host:port (OTLP/HTTP); default the control plane's receiver (xDS host:4317); "off" disables tracing`)
	fs.Float64Var(&o.TraceSamplePercent, "trace-sampling", 1, "percent of new traces sampled (0-100); requests carrying a decision keep it")
	fs.DurationVar(&o.DrainTime, "drain-time", 5*time.Second, "how long requests in flight may take to finish on shutdown")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.ServiceAccount, "service-account", "", "the workload's service account (its SPIFFE identity with --token)")
	fs.StringVar(&o.Service, "service", "", "register this workload under this service (app label); a gateway's service is how the mesh reaches it (an egress gateway)")
	fs.StringVar(&o.Version, "version", "", "workload version (version label)")
	fs.StringVar(&o.Locality, "locality", "", "the workload's locality region/zone/subzone (locality-aware load balancing)")
	fs.Func("port", "service port NAME:NUMBER, repeatable (protocol from the name: http, http2, grpc, tcp...)", func(v string) error {
		p, err := proxy.ParsePort(v)
		if err == nil {
			o.Ports = append(o.Ports, p)
		}
		return err
	})
	if def.mode != proxy.ModeSidecar {
		return f
	}
	uint32Var(fs, &o.OutboundPort, "outbound-port", 15001, "outbound capture port (the apps' HTTP_PROXY)")
	uint32Var(fs, &o.InboundPort, "inbound-port", 15006, "inbound capture port")
	fs.BoolVar(&f.kubernetes, "kubernetes", false, "run as a Kubernetes sidecar: identity from POD_NAME, POD_NAMESPACE, INSTANCE_IP, SERVICE_ACCOUNT, "+
		"traffic captured by weft iptables (capture ports on every address, SO_ORIGINAL_DST), DNS proxy on --dns-port, no auto-registration")
	uint32Var(fs, &o.DNSPort, "dns-port", 15053, "DNS proxy port with --kubernetes (127.0.0.1 and ::1)")
	fs.StringVar(&f.outboundAllow, "outbound-allow", "", "without --kubernetes, local processes besides weft run's app that may send through the outbound port "+
		"with this workload's identity: pid:PID (and its descendants), uid:UID (sockets of that user), any (every local process), comma-separated "+
		"(default $WEFT_OUTBOUND_ALLOW; weft proxy alone serves no process without it)")
	return f
}

// kubernetesIdentity fills what --kubernetes takes from the downward-API
// environment; flags given on the command line win.
func (f *proxyFlags) kubernetesIdentity(fs *flag.FlagSet, env *Env) error {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	from := func(flagName, envName string, dst *string) {
		if v := env.Getenv(envName); v != "" && !set[flagName] {
			*dst = v
		}
	}
	o := &f.opts
	from("name", "POD_NAME", &o.Name)
	from("workload", "ISTIO_META_WORKLOAD_NAME", &o.Workload) // the injector's owner-derived name
	from("namespace", "POD_NAMESPACE", &o.Namespace)
	from("ip", "INSTANCE_IP", &f.ip)
	from("service-account", "SERVICE_ACCOUNT", &o.ServiceAccount)
	if f.ip == "" {
		return errors.New("--kubernetes: the pod IP is unknown: set INSTANCE_IP (status.podIP) or --ip")
	}
	if o.Service != "" {
		return errors.New("--kubernetes: --service would auto-register a WorkloadEntry; Kubernetes discovery registers pods")
	}
	o.Capture = true
	return nil
}

// uint32Var defines a port-like flag.
func uint32Var(fs *flag.FlagSet, p *uint32, name string, def uint32, usage string) {
	*p = def
	fs.Func(name, fmt.Sprintf("%s (default %d)", usage, def), func(v string) error {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return fmt.Errorf("want a port number: %w", err)
		}
		*p = uint32(n)
		return nil
	})
}

// options completes the proxy options after flag parsing.
func (f *proxyFlags) options(env *Env) (proxy.Options, error) {
	o := f.opts
	if f.ip != "" {
		ip, err := netip.ParseAddr(f.ip)
		if err != nil {
			return o, fmt.Errorf("--ip %q: %w", f.ip, err)
		}
		o.IP = ip
	}
	labels, err := parseLabels(f.labels)
	if err != nil {
		return o, err
	}
	o.Labels = labels
	if f.xdsDelta {
		o.XDSProtocol = xdsclient.Delta
	}
	o.ProxyVersion = cmdline.Version
	if o.Token == "" {
		o.Token = env.Getenv(envJoinToken)
	}
	allow := f.outboundAllow
	if allow == "" && o.Mode == proxy.ModeSidecar {
		allow = env.Getenv("WEFT_OUTBOUND_ALLOW")
	}
	if err := parseOutboundAllow(allow, &o); err != nil {
		return o, err
	}
	if o.Token != "" && o.TokenFile != "" {
		return o, fmt.Errorf("--token (or $%s) and --token-file: give one", envJoinToken)
	}
	if o.TokenFile != "" {
		tok, err := readJoinTokenFile(o.TokenFile)
		if err != nil {
			return o, err
		}
		if tok != "" { // a join token, read once; else a service-account token, re-read at each use
			o.Token, o.TokenFile = tok, ""
		}
	}
	if o.TraceSamplePercent < 0 || o.TraceSamplePercent > 100 {
		return o, fmt.Errorf("--trace-sampling %v: want a percent from 0 to 100", o.TraceSamplePercent)
	}
	switch f.accessLog {
	case "":
	case "-":
		o.AccessLogOut = env.Stderr
	default:
		// The file stays open for the life of the process.
		file, err := os.OpenFile(f.accessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return o, fmt.Errorf("--access-log: %w", err)
		}
		o.AccessLogOut = file
	}
	o.Logger, err = cmdline.NewLogger(env.Stderr, f.logLevel, f.logFormat)
	return o, err
}

// joinTokenPrefix starts every join token (weft token create).
const joinTokenPrefix = "weft.v1."

// readJoinTokenFile returns the join token in path, "" when the file holds
// another token (a Kubernetes service-account token). A join token file
// must be readable by its owner only: the token is a credential.
func readJoinTokenFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if !strings.HasPrefix(tok, joinTokenPrefix) {
		return "", nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("--token-file %s: a join token readable by others (mode %04o); chmod 600 it", path, perm)
	}
	return tok, nil
}

// parseOutboundAllow parses --outbound-allow: pid:N, uid:N and any, comma-separated.
func parseOutboundAllow(s string, o *proxy.Options) error {
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		kind, v, _ := strings.Cut(e, ":")
		var err error
		switch kind {
		case "":
			continue
		case "any":
			o.OutboundAllowAny = true
			continue
		case "pid":
			var n int
			if n, err = strconv.Atoi(v); err == nil && n > 0 {
				o.OutboundAllowPIDs = append(o.OutboundAllowPIDs, n)
				continue
			}
		case "uid":
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 32); err == nil {
				o.OutboundAllowUIDs = append(o.OutboundAllowUIDs, uint32(n))
				continue
			}
		}
		return fmt.Errorf("--outbound-allow %q: want pid:PID, uid:UID or any, comma-separated", e)
	}
	return nil
}

// parseLabels parses k=v,k2=v2.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels %q: want k=v,k2=v2", s)
		}
		out[k] = v
	}
	return out, nil
}

func runProxy(ctx context.Context, env *Env) error {
	return runProxyWith(ctx, env, "proxy", sidecarDefaults)
}

// runProxyWith runs a sidecar or gateway proxy with the given flag defaults.
func runProxyWith(ctx context.Context, env *Env, name string, defaults proxyDefaults) error {
	fs := newFlags(env, name)
	f := addProxyFlags(fs, defaults)
	var agentDir string
	if name == "proxy" {
		fs.StringVar(&agentDir, "proxyless-dir", "", "no proxy: as Istio's grpc-agent, write a proxyless gRPC app's xDS bootstrap ("+
			"DIR/"+proxy.ProxylessBootstrapFile+", the app's GRPC_XDS_BOOTSTRAP) and, with a token, its mesh certificate into DIR, "+
			"a directory shared with the app (the injector's grpc-agent template), keep the certificate renewed, and answer "+
			"GET /healthz/ready on --health-port, until stopped")
	}
	if err := cmdline.ParseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	if f.kubernetes {
		if err := f.kubernetesIdentity(fs, env); err != nil {
			return err
		}
		if agentDir != "" && f.labels == "" {
			f.labels = podLabels(podLabelsFile)
		}
	}
	opts, err := f.options(env)
	if err != nil {
		return err
	}
	if agentDir != "" {
		return runAgent(ctx, opts, agentDir, f.kubernetes)
	}
	opts.OnReady = func() { trim(env.Stderr) } // what start-up and the first config touched
	return proxy.Run(ctx, opts)
}

// Package proxy wires weft's proxy process: the data plane, the xDS client
// feeding it, the admin and health endpoints, and graceful draining. It
// runs as a sidecar (weft proxy, weft run) or as a gateway (weft gateway).
package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/admin"
	"github.com/weft-mesh/weft/internal/proxy/certs"
	"github.com/weft-mesh/weft/internal/proxy/dataplane"
	"github.com/weft-mesh/weft/internal/proxy/dnsproxy"
	"github.com/weft-mesh/weft/internal/proxy/localpeer"
	"github.com/weft-mesh/weft/internal/proxy/podnet"
	"github.com/weft-mesh/weft/internal/proxy/stats"
	"github.com/weft-mesh/weft/internal/proxy/tracing"
	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
	"github.com/weft-mesh/weft/internal/spiffe"
	"github.com/weft-mesh/weft/internal/tap"
)

// Modes of a proxy (the node ID's TYPE).
const (
	ModeSidecar = dataplane.ModeSidecar
	ModeRouter  = dataplane.ModeRouter
)

// Options configure a proxy. Zero fields get the defaults of
// docs/architecture.md (see Options.withDefaults).
type Options struct {
	Mode string // ModeSidecar (default) or ModeRouter
	Name string // instance name; default SERVICE-VERSION-xxxxx
	// Workload is the workload this instance belongs to (reviews-v2 for
	// reviews-v2-1), Istio's source_workload/destination_workload in
	// metrics; default SERVICE-VERSION (SERVICE without a version), else Name.
	Workload       string
	Namespace      string // default "default"
	Service        string // announced for auto-registration (WEFT_SERVICE) when set
	Version        string // the workload's version (label "version")
	ServiceAccount string
	// Locality is region/zone/subzone, for locality-aware load balancing.
	Locality string
	// Token is a join token (`weft token create`): with it the proxy gets a
	// mesh certificate from the control plane's CA, speaks mutual TLS with
	// peer sidecars and takes its config from the authenticated xDS port.
	Token string
	// TokenFile, instead of Token, is a file holding a Kubernetes
	// service-account token (audience istio-ca), read at each use since the
	// kubelet rotates it; the CA checks it with the TokenReview API.
	TokenFile string
	// RootCertFile, if set, is a PEM bundle of the mesh's roots that
	// authenticates the control plane before the first certificate (needed
	// with TokenFile: a service-account token pins no CA).
	RootCertFile string
	// SecureAddress is the control plane's authenticated xDS + CA port
	// (default: the xDS host, port 15012); used with Token.
	SecureAddress string
	// CertTTL is the validity asked for the mesh certificate (0: the CA's
	// default, 24 h); it is renewed at half-life.
	CertTTL time.Duration
	Ports   []Port
	Labels  map[string]string
	// IP is the pod IP. Zero: a sidecar picks a free random 127.X.Y.Z; a
	// gateway uses 127.0.0.1.
	IP netip.Addr

	XDSAddress     string // default 127.0.0.1:15010
	XDSProtocol    string // xdsclient.StateOfTheWorld (default) or xdsclient.Delta
	XDSDialOptions []grpc.DialOption

	AdminPort, OutboundPort, InboundPort, HealthPort uint32        // 15000, 15001, 15006, 15021
	StatsPort, MergedMetricsPort                     uint32        // 15090, 15020
	DrainTime                                        time.Duration // default 5s
	// OnReady, if set, is called once by Run, from its own goroutine, when
	// the proxy first has its config (weft-proxy trims start-up's pages then).
	OnReady func()

	// DisableMetrics and DisableAccessLog turn telemetry off (for benchmarks).
	DisableMetrics, DisableAccessLog bool
	// AccessLogOut, if set, receives every access log line too (the ring
	// behind `weft logs` always keeps the recent ones).
	AccessLogOut io.Writer
	// AppMetricsURL is the app's own Prometheus endpoint, merged into :15020.
	AppMetricsURL string
	// OTLPEndpoint receives the proxy's spans (OTLP: host:port for gRPC,
	// http://… for HTTP); empty: the control plane's receiver (the xDS host,
	// port 4317); "off": no tracing.
	OTLPEndpoint string
	// TraceSamplePercent is the share of new traces sampled (Istio's
	// default 1); requests that carry a sampling decision keep it.
	TraceSamplePercent float64

	// Capture: the pod's traffic reaches the proxy through iptables (weft
	// iptables, Kubernetes): the capture ports listen on every address,
	// connections keep their original destination, and the DNS proxy
	// serves on 127.0.0.1/::1 DNSPort.
	Capture bool
	// OutboundAllowUIDs, OutboundAllowPIDs and OutboundAllowAny say which
	// local processes may send through the outbound capture port without
	// Capture (which gives the pod a network namespace of its own). By
	// default none may: weft run names its app with AllowProcess. UIDs:
	// sockets these users own; PIDs: these processes and their
	// descendants; Any: every local process, as before there was a check
	// (for hosts where only the workload runs, or systems other than
	// Linux, where the peer process cannot be found).
	OutboundAllowUIDs []uint32
	OutboundAllowPIDs []int
	OutboundAllowAny  bool
	// PodNetns gives the app a network namespace of its own (weft run
	// --netns; needs root, Linux): its ports are reachable only through
	// the sidecar, which binds the outbound capture port in it and dials
	// the app there; start the app with StartInPod.
	PodNetns bool
	// DNSPort is the DNS proxy's port with Capture (default 15053).
	DNSPort uint32
	// ResolvConf is where the DNS proxy reads its upstream resolvers and
	// search domains (default /etc/resolv.conf).
	ResolvConf string

	ProxyVersion string // weft's version, announced as ISTIO_VERSION
	Logger       *slog.Logger
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() (Options, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defPort := func(p *uint32, v uint32) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Mode, ModeSidecar)
	if o.Mode != ModeSidecar && o.Mode != ModeRouter {
		return o, fmt.Errorf("mode %q: want %s or %s", o.Mode, ModeSidecar, ModeRouter)
	}
	def(&o.Namespace, "default")
	def(&o.XDSAddress, "127.0.0.1:15010")
	if o.SecureAddress == "" {
		host, _, err := net.SplitHostPort(o.XDSAddress)
		if err != nil {
			host = "127.0.0.1"
		}
		o.SecureAddress = net.JoinHostPort(host, "15012")
	}
	defPort(&o.AdminPort, 15000)
	defPort(&o.OutboundPort, 15001)
	defPort(&o.InboundPort, 15006)
	defPort(&o.HealthPort, 15021)
	defPort(&o.StatsPort, 15090)
	defPort(&o.MergedMetricsPort, 15020)
	defPort(&o.DNSPort, 15053)
	def(&o.ResolvConf, "/etc/resolv.conf")
	if o.DrainTime <= 0 {
		o.DrainTime = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Labels = withServiceLabels(o.Labels, o.Service, o.Version)
	if o.Name == "" {
		o.Name = defaultName(o)
	}
	if o.Workload == "" {
		o.Workload = defaultWorkload(o)
	}
	if o.PodNetns && (o.Capture || o.Mode != ModeSidecar) {
		return o, errors.New("a network namespace for the app is for a standalone sidecar (weft run --netns), not with iptables capture or a gateway")
	}
	if !o.IP.IsValid() && o.Capture {
		return o, errors.New("iptables capture needs the pod IP (--ip, or INSTANCE_IP with --kubernetes)")
	}
	if !o.IP.IsValid() {
		if o.Mode == ModeRouter {
			o.IP = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			ip, err := RandomLoopbackIP(o.AdminPort, o.OutboundPort, o.InboundPort, o.HealthPort, o.StatsPort, o.MergedMetricsPort)
			if err != nil {
				return o, err
			}
			o.IP = ip
		}
	}
	return o, nil
}

// withServiceLabels adds app=SERVICE and version=VERSION unless given.
func withServiceLabels(labels map[string]string, service, version string) map[string]string {
	out := make(map[string]string, len(labels)+2)
	for k, v := range labels {
		out[k] = v
	}
	if _, ok := out["app"]; !ok && service != "" {
		out["app"] = service
	}
	if _, ok := out["version"]; !ok && version != "" {
		out["version"] = version
	}
	return out
}

// defaultName is SERVICE-VERSION-xxxxx (like a pod name), or
// weft-proxy-xxxxx without a service.
// defaultWorkload is SERVICE-VERSION, SERVICE, or the instance's name.
func defaultWorkload(o Options) string {
	switch {
	case o.Service != "" && o.Version != "":
		return o.Service + "-" + o.Version
	case o.Service != "":
		return o.Service
	}
	return o.Name
}

func defaultName(o Options) string {
	base := o.Service
	if base == "" {
		base = "weft-proxy"
	}
	if o.Version != "" {
		base += "-" + o.Version
	}
	return base + "-" + randomSuffix(5)
}

// Proxy is a running proxy.
type Proxy struct {
	opts    Options
	log     *slog.Logger
	dp      *dataplane.Dataplane
	xds     *xdsclient.Client
	admin   *admin.Server
	stopXDS context.CancelFunc
	xdsDone chan error
	tracer  *tracing.Tracer
	certs   *certs.Client
	dns     *dnsproxy.Server
	guard   *localpeer.Guard // who may use the outbound capture port (sidecars)
	netns   *podnet.Netns    // the app's network namespace (PodNetns)
}

// Start starts the data plane, the admin and health servers and the xDS
// client. Stop it with Shutdown.
func Start(opts Options) (*Proxy, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("proxy options: %w", err)
	}
	p := &Proxy{opts: opts, log: opts.Logger.With("component", "proxy")}
	tel := opts.telemetry()
	var meshCerts dataplane.Certs
	if opts.joinsMesh() {
		if p.certs, err = p.joinMesh(); err != nil {
			return nil, err
		}
		meshCerts = p.certs
		tel.Self.Principal = spiffe.New(opts.Namespace, opts.ServiceAccount).String()
		opts.XDSAddress, opts.XDSDialOptions = opts.SecureAddress, append(opts.XDSDialOptions, p.certs.DialOption())
		p.opts = opts
	}
	if tel.Tracer, err = opts.tracer(); err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	p.tracer = tel.Tracer
	var guard dataplane.OutboundGuard
	if opts.Mode == ModeSidecar {
		p.guard = opts.outboundGuard()
		guard = p.guard
	}
	var podNet dataplane.PodNetwork
	if opts.PodNetns {
		if p.netns, err = podnet.New(); err != nil {
			return nil, fmt.Errorf("the app's network namespace: %w", err)
		}
		podNet = p.netns
	}
	p.dp, err = dataplane.New(dataplane.Options{
		Mode: opts.Mode, IP: opts.IP, OutboundPort: opts.OutboundPort, InboundPort: opts.InboundPort,
		Capture: opts.Capture, DrainTime: opts.DrainTime, Telemetry: tel, Certs: meshCerts, OutboundGuard: guard,
		PodNetwork: podNet, Logger: opts.Logger,
	})
	if err != nil {
		if p.netns != nil {
			p.netns.Close()
		}
		return nil, fmt.Errorf("starting data plane: %w", err)
	}
	if opts.Capture && opts.Mode == ModeSidecar {
		if p.dns, err = p.startDNS(); err != nil {
			return nil, p.abort(err)
		}
	}
	adminAddr := p.hostPort(opts.AdminPort)
	node, err := opts.node(adminAddr)
	if err != nil {
		return nil, p.abort(err)
	}
	p.xds, err = xdsclient.New(xdsclient.Options{
		Address: opts.XDSAddress, Node: node, Handler: p.dp, Protocol: opts.XDSProtocol,
		DialOptions: opts.XDSDialOptions, Logger: opts.Logger,
	})
	if err != nil {
		return nil, p.abort(err)
	}
	var certInfo func() (*x509.Certificate, []byte)
	var tapRoots func() *x509.CertPool
	if p.certs != nil {
		certInfo, tapRoots = p.certs.Current, p.meshRoots
	}
	p.admin = admin.New(admin.Options{Node: node, Config: p.xds, Data: p.dp, Version: opts.ProxyVersion, Logger: opts.Logger, Certs: certInfo,
		Stats: tel.Stats, AccessLog: tel.AccessLog, Connected: p.xds.Connected, AppMetricsURL: opts.AppMetricsURL, AppDial: p.appDial(),
		Tap: tel.Tap, TapRoots: tapRoots})
	if err := p.admin.Listen(adminAddr, p.podPort(opts.HealthPort), p.podPort(opts.StatsPort), p.podPort(opts.MergedMetricsPort)); err != nil {
		return nil, p.abort(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopXDS, p.xdsDone = cancel, make(chan error, 1)
	go func() { p.xdsDone <- p.xds.Run(ctx) }()
	p.log.Info("proxy started", "id", node.GetId(), "xds", opts.XDSAddress, "admin", adminAddr)
	return p, nil
}

// telemetry builds the data plane's metrics and access log from the options.
func (o Options) telemetry() dataplane.Telemetry {
	t := dataplane.Telemetry{Self: stats.Workload{Name: o.Workload, Namespace: o.Namespace, App: o.Labels["app"], Version: o.Labels["version"]}}
	if o.Service != "" {
		t.Service = o.Service + "." + o.Namespace + ".svc.cluster.local"
	}
	if !o.DisableMetrics {
		t.Stats = stats.New(0)
	}
	if !o.DisableAccessLog {
		t.AccessLog = accesslog.New(accesslog.Options{Out: o.AccessLogOut})
	}
	if !o.DisableMetrics || !o.DisableAccessLog {
		t.Tap = &tap.Hub{}
	}
	return t
}

// tracer builds the OTLP tracer, or nil when tracing is off.
func (o Options) tracer() (*tracing.Tracer, error) {
	endpoint := o.OTLPEndpoint
	switch endpoint {
	case "off":
		return nil, nil
	case "":
		host, _, err := net.SplitHostPort(o.XDSAddress)
		if err != nil {
			return nil, nil
		}
		endpoint = net.JoinHostPort(host, "4317")
	}
	svc := o.Labels["app"]
	if svc == "" {
		svc = o.Name
	}
	return tracing.New(tracing.Options{Endpoint: endpoint, ServiceName: svc, Namespace: o.Namespace,
		NodeID: NodeID(o.Mode, o.IP, o.Name, o.Namespace), Version: o.Labels["version"], SamplePercent: o.TraceSamplePercent, Logger: o.Logger})
}

// abort undoes a partial Start.
func (p *Proxy) abort(err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if p.admin != nil {
		_ = p.admin.Close(ctx)
	}
	if p.dns != nil {
		_ = p.dns.Close()
	}
	_ = p.dp.Shutdown(ctx)
	if p.netns != nil {
		_ = p.netns.Close()
	}
	return err
}

// startDNS starts the DNS proxy on loopback (where iptables' REDIRECT
// delivers the pod's DNS) with the upstream resolvers of resolv.conf.
func (p *Proxy) startDNS() (*dnsproxy.Server, error) {
	o := p.opts
	rc, err := dnsproxy.ReadResolvConf(o.ResolvConf)
	if err != nil {
		p.log.Warn("DNS proxy without upstream resolvers", "err", err)
	}
	var ups []netip.AddrPort
	for _, ns := range rc.Nameservers {
		ups = append(ups, netip.AddrPortFrom(ns, 53))
	}
	addrs := []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(int(o.DNSPort)))}
	if loopback6() {
		addrs = append(addrs, net.JoinHostPort("::1", strconv.Itoa(int(o.DNSPort))))
	}
	s, err := dnsproxy.Listen(addrs, dnsproxy.Options{
		Resolver:  &dnsproxy.Resolver{Hosts: p.dp.DNSHosts, Search: rc.Search},
		Upstreams: ups, Logger: o.Logger,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// loopback6 reports whether ::1 can be bound (IPv6 enabled).
func loopback6() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

func (p *Proxy) hostPort(port uint32) string {
	return netip.AddrPortFrom(p.opts.IP, uint16(port)).String()
}

// podPort is where a port the pod's neighbours use (health, metrics)
// listens: IP:PORT, or every address with Capture, as in a Kubernetes pod
// the kubelet probes the pod IP and hooks (weft proxy-ready) use localhost.
func (p *Proxy) podPort(port uint32) string {
	if p.opts.Capture {
		return ":" + strconv.FormatUint(uint64(port), 10)
	}
	return p.hostPort(port)
}

// IP returns the proxy's pod IP.
func (p *Proxy) IP() netip.Addr { return p.opts.IP }

// Name returns the workload name.
func (p *Proxy) Name() string { return p.opts.Name }

// Options returns the options in effect, defaults filled in.
func (p *Proxy) Options() Options { return p.opts }

// AdminAddress returns IP:ADMIN_PORT.
func (p *Proxy) AdminAddress() string { return p.hostPort(p.opts.AdminPort) }

// OutboundURL returns the HTTP proxy URL apps use: http://IP:OUTBOUND_PORT.
func (p *Proxy) OutboundURL() string {
	return "http://" + p.opts.IP.String() + ":" + strconv.FormatUint(uint64(p.opts.OutboundPort), 10)
}

// Ready reports whether the data plane has its config and serves.
func (p *Proxy) Ready() bool { return p.admin.State() == admin.StateLive }

// WaitReady polls Ready until it holds or ctx ends.
func (p *Proxy) WaitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !p.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the proxy to be ready (xDS from %s): %w", p.opts.XDSAddress, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// MarkDraining makes health checks fail (503) while the proxy keeps
// serving: weft run calls it when the app is asked to stop, so peers stop
// picking this workload before the sidecar shuts down.
func (p *Proxy) MarkDraining() { p.admin.SetDraining() }

// Shutdown drains: health turns 503 at once, the data plane stops
// accepting and finishes requests in flight within DrainTime, then the xDS
// client and the admin servers stop.
func (p *Proxy) Shutdown() error {
	start := time.Now()
	p.log.Info("draining", "drain_time", p.opts.DrainTime)
	p.admin.SetDraining()
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.DrainTime)
	defer cancel()
	var errs []error
	if err := p.dp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("data plane shutdown: %w", err))
	}
	p.stopXDS()
	if err := <-p.xdsDone; err != nil {
		errs = append(errs, err)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
	defer cancelClose()
	if p.tracer != nil {
		if err := p.tracer.Shutdown(closeCtx); err != nil {
			p.log.Debug("flushing spans", "err", err)
		}
	}
	if p.certs != nil {
		p.certs.Close()
	}
	if p.dns != nil {
		_ = p.dns.Close()
	}
	if p.netns != nil {
		_ = p.netns.Close()
	}
	if err := p.admin.Close(closeCtx); err != nil {
		errs = append(errs, fmt.Errorf("admin shutdown: %w", err))
	}
	p.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// Run starts a proxy and serves until ctx ends, then drains.
func Run(ctx context.Context, opts Options) error {
	p, err := Start(opts)
	if err != nil {
		return err
	}
	if p.guard != nil && p.guard.Empty() {
		p.log.Warn("the outbound capture port serves no process: no app is known (weft run names its own); "+
			"give the app's processes with --outbound-allow pid:PID or uid:UID", "port", p.opts.OutboundPort)
	}
	if opts.OnReady != nil {
		go func() {
			if p.WaitReady(ctx) == nil {
				opts.OnReady()
			}
		}()
	}
	select {
	case <-ctx.Done():
	case err := <-p.xdsDone:
		p.xdsDone <- err // Shutdown reads it
		if err != nil {
			_ = p.Shutdown()
			return fmt.Errorf("xds client: %w", err)
		}
	}
	return p.Shutdown()
}

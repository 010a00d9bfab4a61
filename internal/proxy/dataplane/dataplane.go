// Package dataplane is weft proxy's data plane: it compiles xDS resources
// into an immutable runtime config and serves traffic with it — outbound
// capture, inbound, gateway listeners, routing, load balancing and the
// sidecar-to-sidecar tunnel described in docs/architecture.md.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// Modes of a Dataplane.
const (
	ModeSidecar = "sidecar"
	ModeRouter  = "router"
)

// Type URLs of the resources Update takes.
const (
	listenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"
	routeType    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	clusterType  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	endpointType = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// Options configure a Dataplane.
type Options struct {
	Mode         string     // ModeSidecar or ModeRouter
	IP           netip.Addr // pod IP: listeners on 0.0.0.0 bind here
	OutboundPort uint32     // capture port (15001)
	InboundPort  uint32     // inbound port (15006), also the port the tunnel dials on peers
	// Capture: iptables redirects the pod's traffic to the capture ports
	// (Kubernetes); they listen on every address and read each
	// connection's original destination (capture.go). False: the outbound
	// port is an HTTP proxy on IP (standalone).
	Capture   bool
	DrainTime time.Duration
	// Telemetry says where metrics and access logs go (zero: off).
	Telemetry Telemetry
	// Certs is the proxy's mesh certificate for mutual TLS with peer
	// sidecars (nil: the proxy has none and speaks plaintext).
	Certs Certs
	// OutboundGuard, if set, is asked once per connection the outbound
	// capture port accepts whether it is the workload's own; refused
	// connections are closed unread (see outboundguard.go).
	OutboundGuard OutboundGuard
	// PodNetwork, if set, is the app's own network namespace (standalone,
	// weft run --netns): the outbound capture port listens in it and
	// connections to the pod IP (the app) are made in it.
	PodNetwork PodNetwork
	Logger     *slog.Logger
}

// PodNetwork is a network namespace the app has to itself (podnet.Netns).
// Its methods may be called from many goroutines.
type PodNetwork interface {
	Listen(network, address string) (net.Listener, error)
	Dial(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// Dataplane serves traffic with the config it is given. Update is called
// one at a time; the request path reads the config without locks.
type Dataplane struct {
	opts Options
	log  *slog.Logger
	rt   atomic.Pointer[runtime]

	mu      sync.Mutex // guards cfg, have, servers
	cfg     config
	have    map[string]bool
	servers map[string]*server // bound listeners by name
	state   state              // counters and lb positions across updates
	fwd     *forwarder
	pool    *http1.Pool // upstream HTTP/1.1 connections of every listener
	bridge  *bridge     // HTTP/1.1 downstream to h2c upstream
	tel     *telemetry
	closed  bool
	refused refusals // connections the outbound guard turned away
}

// New returns a Dataplane serving nothing until its first listeners arrive.
func New(opts Options) (*Dataplane, error) {
	if !opts.IP.IsValid() {
		return nil, errors.New("dataplane: the proxy's IP is required")
	}
	if opts.Mode == "" {
		opts.Mode = ModeSidecar
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DrainTime == 0 {
		opts.DrainTime = 5 * time.Second
	}
	d := &Dataplane{
		opts: opts, log: opts.Logger.With("component", "dataplane"),
		cfg: config{
			listeners: map[string]*listener.Listener{}, routes: map[string]*route.RouteConfiguration{},
			clusters: map[string]*cluster.Cluster{}, endpoints: map[string]*endpoint.ClusterLoadAssignment{},
		},
		have: map[string]bool{}, servers: map[string]*server{},
	}
	d.tel = newTelemetry(opts.Telemetry)
	d.fwd = newForwarder(d)
	d.pool = http1.NewPool(http1.PoolOptions{MaxIdlePerKey: 256})
	d.bridge = newBridge(d)
	empty, err := compile(&d.cfg, &d.state)
	if err != nil {
		return nil, fmt.Errorf("dataplane: compiling the empty config: %w", err)
	}
	d.rt.Store(empty)
	return d, nil
}

// Update applies the complete set of resources of one type. An error means
// the update was refused (NACK); the previous config keeps serving.
func (d *Dataplane) Update(typeURL, version string, resources map[string]proto.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("dataplane is shut down")
	}
	next := d.cfg
	var err error
	switch typeURL {
	case listenerType:
		next.listeners, err = typed[*listener.Listener](resources)
	case routeType:
		next.routes, err = typed[*route.RouteConfiguration](resources)
	case clusterType:
		next.clusters, err = typed[*cluster.Cluster](resources)
	case endpointType:
		next.endpoints, err = typed[*endpoint.ClusterLoadAssignment](resources)
	default:
		return fmt.Errorf("type %s is not supported by weft proxy", typeURL)
	}
	if err != nil {
		return err
	}
	rt, err := recompile(d.rt.Load(), &next, &d.state, typeURL)
	if err != nil {
		return fmt.Errorf("%s version %s: %w", typeURL[strings.LastIndex(typeURL, ".")+1:], version, err)
	}
	if typeURL == listenerType {
		if err := d.bindListeners(rt); err != nil {
			return err
		}
	}
	d.cfg = next
	d.have[typeURL] = true
	d.rt.Store(rt)
	if typeURL == listenerType && d.tel.Tracer != nil {
		// The Telemetry API's randomSamplingPercentage arrives in the connection managers.
		if rt.sampling != nil {
			d.tel.Tracer.SetSamplePercent(*rt.sampling)
		} else {
			d.tel.Tracer.SetSamplePercent(d.tel.defaultSample)
		}
	}
	d.log.Info("config applied", "type", typeURL[len("type.googleapis.com/"):], "version", version, "resources", len(resources))
	return nil
}

func typed[T proto.Message](in map[string]proto.Message) (map[string]T, error) {
	out := make(map[string]T, len(in))
	for name, m := range in {
		t, ok := m.(T)
		if !ok {
			return nil, fmt.Errorf("resource %q is a %T", name, m)
		}
		out[name] = t
	}
	return out, nil
}

// Ready reports whether listeners and clusters arrived, every route config
// they name and every EDS cluster's endpoints are here, and the listeners
// are bound.
func (d *Dataplane) Ready() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.have[listenerType] || !d.have[clusterType] || d.closed {
		return false
	}
	rt := d.rt.Load()
	for _, c := range rt.clusters {
		if c.awaitingEDS {
			return false
		}
	}
	for _, l := range rt.listeners {
		for _, c := range l.chains {
			if c.rdsName != "" && rt.routes[c.rdsName] == nil {
				return false
			}
		}
	}
	return true
}

// ClusterStatus is one cluster's state for the admin page.
type ClusterStatus struct {
	Name      string           `json:"name"`
	LbPolicy  string           `json:"lb_policy"`
	Endpoints []EndpointStatus `json:"endpoints"`
	// Overflows counts requests refused by the circuit breakers (503 UO),
	// RetryOverflows retries not made because max_retries were in flight.
	Overflows      int64 `json:"upstream_rq_pending_overflow"`
	RetryOverflows int64 `json:"upstream_rq_retry_overflow"`
}

// EndpointStatus is one endpoint's state.
type EndpointStatus struct {
	Address        string `json:"address"`
	Weight         int    `json:"weight"`
	Healthy        bool   `json:"healthy"`
	Tunnel         bool   `json:"tunnel"`
	ActiveRequests int64  `json:"rq_active"`
	TotalRequests  int64  `json:"rq_total"`
	FailedRequests int64  `json:"rq_error"`
	// Ejections counts outlier detection ejections of this endpoint.
	Ejections int64 `json:"ejections"`
}

// Clusters returns every cluster with its endpoints and counters, sorted by name.
func (d *Dataplane) Clusters() []ClusterStatus {
	rt := d.rt.Load()
	out := make([]ClusterStatus, 0, len(rt.clusters))
	for _, c := range rt.clusters {
		cs := ClusterStatus{Name: c.name, LbPolicy: c.lbName}
		if c.breaker != nil {
			cs.Overflows, cs.RetryOverflows = c.breaker.overflows.Load(), c.breaker.retryOverflows.Load()
		}
		now := time.Now()
		for _, e := range c.endpoints {
			cs.Endpoints = append(cs.Endpoints, EndpointStatus{
				Address: e.addr, Weight: max(e.weight, 1), Healthy: !e.ejected(now), Tunnel: e.tunnel, Ejections: e.stats.ejections.Load(),
				ActiveRequests: e.stats.active.Load(), TotalRequests: e.stats.total.Load(), FailedRequests: e.stats.failed.Load(),
			})
		}
		out = append(out, cs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Shutdown drains: listeners stop accepting, in-flight requests finish (up
// to ctx), then connections close.
func (d *Dataplane) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	d.closed = true
	servers := d.servers
	d.servers = map[string]*server{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(servers)+1)
	for _, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- s.shutdown(ctx) }()
	}
	wg.Wait()
	errs <- d.bridge.srv.Shutdown(ctx)
	close(errs)
	d.pool.Close()
	d.fwd.closeIdle()
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

package dataplane

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/accesslog"
	"github.com/weft-mesh/weft/internal/proxy/stats"
	"github.com/weft-mesh/weft/internal/proxy/tracing"
	"github.com/weft-mesh/weft/internal/tap"
)

// PeerHeader carries the calling workload's identity from the source
// sidecar to the destination sidecar ("NAME;NS;APP;VERSION;", the format of
// the endpoint metadata istio.workload), as Istio's metadata exchange does;
// the destination sidecar removes it before the app sees the request.
const PeerHeader = "x-weft-peer-workload"

// maxPeerEdges bounds the destination side's cache of peer identities.
const maxPeerEdges = 4096

// Telemetry is what a Dataplane reports about its traffic; nil fields are off.
type Telemetry struct {
	// Stats receives Istio's standard metrics.
	Stats *stats.Registry
	// AccessLog receives one entry per request and TCP connection.
	AccessLog *accesslog.Logger
	// Tracer continues or starts a trace for every HTTP request, a span per hop.
	Tracer *tracing.Tracer
	// Self is this proxy's workload (source of outbound, destination of inbound traffic).
	Self stats.Workload
	// Service is the FQDN of this workload's service, the destination_service of inbound traffic.
	Service string
	// Tap receives every HTTP exchange while a tap is attached (weft tap).
	Tap *tap.Hub
}

// telemetry is a Dataplane's reporting state.
type telemetry struct {
	Telemetry
	on      bool
	peer    string // our PeerHeader value
	svc     stats.Service
	mu      sync.Mutex
	inbound atomic.Pointer[map[string]*stats.Edge] // copy-on-write: peer header → edge
	unknown *stats.Edge                            // inbound from a peer without a sidecar
	// defaultSample is the tracer's sampling when no config sets one.
	defaultSample float64
	clusterE      sync.Map // cluster name → *stats.Edge with no destination workload
}

func newTelemetry(t Telemetry) *telemetry {
	tel := &telemetry{Telemetry: t, on: t.Stats != nil || t.AccessLog != nil || t.Tracer != nil || t.Tap != nil}
	w := t.Self
	tel.peer = w.Name + ";" + w.Namespace + ";" + w.App + ";" + w.Version + ";"
	tel.svc = stats.ServiceFromHost(t.Service)
	if t.Tracer != nil {
		tel.defaultSample = t.Tracer.SamplePercent()
	}
	m := map[string]*stats.Edge{}
	tel.inbound.Store(&m)
	if t.Stats != nil {
		tel.unknown = t.Stats.Edge(stats.Destination, stats.Workload{}, t.Self, tel.svc, stats.None)
	}
	return tel
}

// parseWorkload reads "NAME;NS;APP;VERSION;" (Istio's istio.workload metadata).
func parseWorkload(s string) (stats.Workload, bool) {
	parts := strings.Split(s, ";")
	if len(parts) < 4 || parts[0] == "" {
		return stats.Workload{}, false
	}
	return stats.Workload{Name: parts[0], Namespace: parts[1], App: parts[2], Version: parts[3]}, true
}

// inboundEdge returns the destination-side edge for a peer header value
// and, when mutual TLS authenticated the peer, its SPIFFE ID.
func (t *telemetry) inboundEdge(peer string, o origin) *stats.Edge {
	if t.Stats == nil {
		return nil
	}
	if peer == "" && !o.mtls {
		return t.unknown
	}
	key := peer
	if o.mtls {
		key = peer + "|" + o.principal
	}
	m := *t.inbound.Load()
	if e, ok := m[key]; ok {
		return e
	}
	src, _ := parseWorkload(peer)
	security := stats.None
	if o.mtls {
		src.Principal, security = o.principal, stats.MutualTLS
	}
	e := t.Stats.Edge(stats.Destination, src, t.Self, t.svc, security)
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.inbound.Load()
	if len(old) < maxPeerEdges {
		next := make(map[string]*stats.Edge, len(old)+1)
		for k, v := range old {
			next[k] = v
		}
		next[key] = e
		t.inbound.Store(&next)
	}
	return e
}

// endpointEdge returns the source-side edge to an endpoint of cluster cl.
func (t *telemetry) endpointEdge(cl *rcluster, ep *rendpoint) *stats.Edge {
	if t.Stats == nil {
		return nil
	}
	if e := ep.edge.Load(); e != nil {
		return e
	}
	e := t.Stats.Edge(stats.Source, t.Self, ep.workload, cl.svc, stats.UnknownPeer)
	ep.edge.Store(e)
	return e
}

// clusterEdge returns the source-side edge to a cluster when no endpoint was picked.
func (t *telemetry) clusterEdge(cl *rcluster) *stats.Edge {
	if t.Stats == nil {
		return nil
	}
	if e, ok := t.clusterE.Load(cl.name); ok {
		return e.(*stats.Edge)
	}
	e := t.Stats.Edge(stats.Source, t.Self, stats.Workload{}, cl.svc, stats.UnknownPeer)
	t.clusterE.Store(cl.name, e)
	return e
}

// hostEdge returns the source-side edge to a destination known only by
// its authority (no route, passthrough).
func (t *telemetry) hostEdge(authority, clusterName string) *stats.Edge {
	if t.Stats == nil {
		return nil
	}
	host := authority
	if i := strings.LastIndexByte(host, ':'); i > 0 && !strings.HasSuffix(host, "]") {
		host = host[:i]
	}
	svc := stats.Service{Host: host, Name: clusterName, Namespace: stats.Unknown}
	if clusterName == "" {
		svc = stats.ServiceFromHost(host)
	}
	return t.Stats.Edge(stats.Source, t.Self, stats.Workload{}, svc, stats.UnknownPeer)
}

// fallbackEdge names the edge of an exchange that reached no endpoint:
// the routed cluster's service, else the authority.
func (t *telemetry) fallbackEdge(o *observation) *stats.Edge {
	switch {
	case o.inbound:
		return t.unknown
	case o.cl != nil && o.cl.kind != "original_dst":
		return t.clusterEdge(o.cl)
	case o.cl != nil:
		return t.hostEdge(o.authority, o.cl.name)
	}
	return t.hostEdge(o.authority, "")
}

// serviceOf names a cluster's destination service for metrics.
func serviceOf(name string) stats.Service {
	parts := strings.Split(name, "|")
	if len(parts) == 4 && parts[0] == "outbound" {
		return stats.ServiceFromHost(parts[3])
	}
	return stats.Service{Host: name, Name: name, Namespace: stats.Unknown}
}

// observation is what one exchange reports, filled as it is routed.
type observation struct {
	ch        *rchain // the chain that served it (nil: the capture port's own passthrough)
	span      *tracing.Span
	start     time.Time
	edge      *stats.Edge
	cl        *rcluster // the routed cluster (nil: none)
	proto     string
	inbound   bool
	cluster   string
	upstream  string
	route     string
	method    string
	path      string
	authority string
	userAgent string
	requestID string
	xff       string
	protocol  string
	remote    string
	local     string
	sni       string // requested_server_name
	// org is an inbound TCP connection's origin: its peer's identity.
	org *origin
	// detail is the response code detail of a local answer that its
	// flags do not tell (RBAC, JWT); "" derives it (codeDetails).
	detail string
	// dims are the request's values of the chain's metric dimensions
	// (Telemetry tag overrides; nil: none).
	dims []string
}

// details: the request's details are kept (access log, traces).
// With no access log nor tracer, a request's details are kept only while
// a tap is attached.
func (t *telemetry) details() bool { return t.AccessLog != nil || t.Tracer != nil || t.Tap.Active() }

// trace starts the exchange's span once, continuing the request's trace,
// and writes its context into the headers sent on (upstream, or to the app).
func (t *telemetry) trace(o *observation, h tracing.Header, set func(k, v string), name string) {
	if t.Tracer == nil || o.span != nil || (o.ch != nil && o.ch.trace == nil) {
		return
	}
	kind := tracing.ClientKind
	if o.inbound {
		kind = tracing.ServerKind
	}
	if o.start.IsZero() {
		o.start = time.Now()
	}
	o.span = t.Tracer.Start(kind, h, name, o.start)
	if o.span != nil && o.ch != nil {
		if tags := o.ch.trace.tagAttributes(h); tags != nil {
			o.span.SetAttributes(tags...)
		}
	}
	if set != nil {
		o.span.Inject(set)
	}
}

// spanName is Istio's operation name: the route's decorator when it has
// one (the control plane names the destination, "HOST:PORT/*"), else the
// service (host:port) and "/*".
func (t *telemetry) spanName(o *observation, vhost, operation string, port uint16) string {
	if operation != "" {
		return operation
	}
	if o.inbound && t.Service != "" {
		return t.Service + ":" + strconv.Itoa(int(port)) + "/*"
	}
	if vhost == "" || strings.Contains(vhost, "|") || vhost == "allow_any" || vhost == "block_all" {
		return o.authority + "/*"
	}
	return vhost + "/*"
}

// record reports a finished exchange.
func (t *telemetry) record(o *observation, start time.Time, status int, grpcStatus, flags string, d, upstream time.Duration, received, sent int64) {
	if o.span != nil {
		o.span.SetAttributes(tracing.RequestAttributes(o.method, "http://"+o.authority+o.path, o.protocol, o.userAgent, o.requestID)...)
		o.span.SetAttributes(tracing.UpstreamAttributes(o.cluster, o.upstream)...)
		o.span.SetAttributes(tracing.SizeAttributes(received, sent)...)
		o.span.End(start.Add(d), status, flags)
	}
	if t.Stats != nil && o.edge != nil {
		var skip stats.Skip
		if o.ch != nil && o.ch.statsDrop != nil {
			skip = o.ch.statsDrop.skip()
		}
		if o.ch != nil && o.ch.statsOv != nil {
			t.Stats.RequestOverridden(o.edge, o.proto, status, grpcStatus, flags, d, received, sent, skip, o.ch.statsOv.ov, o.ch.statsOv.values(o.dims, status))
		} else {
			t.Stats.RequestSkipping(o.edge, o.proto, status, grpcStatus, flags, d, received, sent, skip)
		}
	}
	if t.Tap.Active() { // the only cost of tap when none is attached: an atomic load
		t.publish(o, start, status, flags, d)
	}
	format := accesslog.DefaultFormat
	if o.ch != nil {
		if o.ch.alog == nil || (o.ch.alog.filter != nil && !o.ch.alog.filter(status)) {
			return
		}
		format = o.ch.alog.format
	}
	if t.AccessLog != nil {
		t.AccessLog.LogFormat(&accesslog.Entry{
			StartTime: start, Method: o.method, Path: o.path, Protocol: o.protocol, ResponseCode: status,
			ResponseFlags: flags, BytesReceived: received, BytesSent: sent, Duration: d, UpstreamTime: upstream,
			UpstreamHost: o.upstream, UpstreamCluster: o.cluster, RouteName: o.route, RequestID: o.requestID,
			Authority: o.authority, UserAgent: o.userAgent, XForwardedFor: o.xff, TraceID: o.span.TraceID(),
			DownstreamRemote: o.remote, DownstreamLocal: o.local, RequestedServer: o.sni,
			ResponseCodeDetail: codeDetails(o, status, flags),
		}, format)
	}
}

// recorder captures what a net/http handler sent, for telemetry.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer (Flush, full duplex).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// grpcStatus reads the grpc-status a gRPC response carried (header or trailer).
func (r *recorder) grpcStatus() string {
	h := r.Header()
	if v := h["Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	if v := h[http.TrailerPrefix+"Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// upstreamTime reads x-envoy-upstream-service-time back (-1: none).
func upstreamTime(v string) time.Duration {
	if v == "" {
		return -1
	}
	ms, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// nopHeader is an empty header set, for spans of local answers.
type nopHeader struct{}

func (nopHeader) Get(string) string { return "" }

// codeDetails is Envoy's %RESPONSE_CODE_DETAILS% for an exchange: what
// answered it, from its response flags, or via_upstream when the upstream
// did. "" (null) when nothing was answered.
func codeDetails(o *observation, status int, flags string) string {
	if o.detail != "" {
		return o.detail
	}
	flag, _, _ := strings.Cut(flags, ",")
	switch flag {
	case "NR":
		return "route_not_found"
	case "NC":
		return "cluster_not_found"
	case "UH":
		return "no_healthy_upstream"
	case "UO":
		return "upstream_reset_before_response_started{overflow}"
	case "UF":
		return "upstream_reset_before_response_started{connection_failure}"
	case "UC":
		return "upstream_reset_before_response_started{connection_termination}"
	case "UT":
		return "response_timeout"
	case "FI":
		return "fault_filter_abort"
	case "RL":
		return "local_rate_limited"
	case "DC":
		return "downstream_remote_disconnect"
	}
	switch {
	case status == 0:
		return ""
	case o.upstream != "":
		return "via_upstream"
	}
	return "direct_response"
}

// The response code details of local answers their flags do not name.
const (
	detailRBACDenied = "rbac_access_denied_matched_policy[none]"
	detailJWTDenied  = "jwt_authn_access_denied{Jwt_verification_fails}"
	detailBadPath    = "path_normalization_failed"
)

// publish hands an exchange to the attached taps. It copies no header:
// credentials (authorization, cookie) never reach a tap.
func (t *telemetry) publish(o *observation, start time.Time, status int, flags string, d time.Duration) {
	e := tap.Event{Time: start, Direction: tap.Outbound, Source: t.Self.Name, Method: o.method, Authority: o.authority,
		Path: o.path, Status: status, ResponseFlags: flags, LatencyMillis: float64(d.Microseconds()) / 1000, Route: o.route,
		UpstreamHost: o.upstream, UpstreamCluster: o.cluster, TraceID: o.span.TraceID(), RequestID: o.requestID}
	var src, dst stats.Workload
	if o.edge != nil {
		src, dst = o.edge.Workloads()
	}
	if o.inbound {
		e.Direction, e.Source, e.Destination = tap.Inbound, src.Name, t.Self.Name
		if e.Source == "" {
			e.Source = o.remote
		}
	} else {
		e.Destination = dst.Name
		if e.Destination == "" {
			e.Destination = o.upstream
		}
		if e.Destination == "" {
			e.Destination = o.authority
		}
	}
	t.Tap.Publish(&e)
}

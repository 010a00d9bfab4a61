package dataplane

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
	"github.com/weft-mesh/weft/internal/proxy/stats"
)

// runtime is one immutable, compiled config; the hot path reads it without locks.
type runtime struct {
	listeners map[string]*rlistener
	byPort    map[uint32]*rlistener // 0.0.0.0_PORT listeners
	byAddr    map[netip.AddrPort]*rlistener
	routes    map[string]*rtable
	clusters  map[string]*rcluster
	// sampling is the tracing random_sampling of the connection managers (nil: none set).
	sampling *float64
	// registryOnly: the capture listener sends unknown destinations to
	// BlackHoleCluster (REGISTRY_ONLY), so they are refused, not passed through.
	registryOnly bool
	// dnsHosts are the service hosts with their VIPs (DNSHosts).
	dnsHosts map[string][]netip.Addr
}

// blackHoleCluster is Istio's cluster for traffic that may not leave.
const blackHoleCluster = "BlackHoleCluster"

// rlistener is a compiled Listener.
type rlistener struct {
	name    string
	addr    netip.AddrPort // as configured (may be 0.0.0.0)
	bind    bool
	origDst bool
	// proxyProto: connections start with a PROXY v2 header naming the original destination.
	proxyProto bool
	// tlsInspector: chains are chosen by the SNI of the ClientHello too.
	tlsInspector bool
	// httpInspector: chains are chosen by the application protocol sniffed
	// from the first bytes too ("http/1.1", "h2c"; Envoy's http_inspector).
	httpInspector bool
	chains        []*rchain
}

// chain returns the filter chain for a destination port (0 = any).
func (l *rlistener) chain(dstPort uint16) *rchain { return l.chainFor(dstPort, "", "") }

// inboundChain returns the inbound chain for a port, whether the
// connection starts with TLS (PeerAuthentication's chains) and its sniffed
// application protocol, nil when none accepts it (a plaintext connection
// to a STRICT port).
func (l *rlistener) inboundChain(dstPort uint16, isTLS bool, app string) *rchain {
	transport := "raw_buffer"
	if isTLS {
		transport = "tls"
	}
	return l.pick(dstPort, transport, "", app)
}

// chainFor returns the filter chain for a destination port, SNI and
// application protocol.
func (l *rlistener) chainFor(dstPort uint16, sni, app string) *rchain {
	return l.pick(dstPort, "", sni, app)
}

// pick matches the chains as Envoy does, criterion by criterion, the most
// specific match of each winning: the destination port, then the server
// name (exact, then the longest "*.suffix", then a chain naming none),
// then the transport protocol ("" takes any), then the application
// protocol. Among equals the first chain wins.
func (l *rlistener) pick(dstPort uint16, transport, sni, app string) *rchain {
	var best *rchain
	bestScore := -1
	for _, c := range l.chains {
		if s := c.score(dstPort, transport, sni, app); s > bestScore {
			best, bestScore = c, s
		}
	}
	return best
}

// score ranks c for a connection, -1 when it does not match.
func (c *rchain) score(dstPort uint16, transport, sni, app string) int {
	score := 0
	switch c.dstPort {
	case 0:
	case uint32(dstPort):
		score += 1 << 24
	default:
		return -1
	}
	if len(c.serverNames) > 0 {
		if sni == "" {
			return -1
		}
		names := 0
		for _, n := range c.serverNames {
			switch {
			case strings.EqualFold(n, sni):
				names = 1 << 12
			case strings.HasPrefix(n, "*.") && len(n) > names && len(sni) > len(n)-1 && strings.HasSuffix(strings.ToLower(sni), strings.ToLower(n[1:])):
				names = len(n)
			}
		}
		if names == 0 {
			return -1
		}
		score += names << 4
	}
	switch c.transportProtocol {
	case "":
	case transport:
		score += 2
	default:
		if transport != "" {
			return -1
		}
	}
	if len(c.appProtocols) > 0 {
		if !slices.Contains(c.appProtocols, app) {
			return -1
		}
		score++
	}
	return score
}

// rchain is a compiled filter chain: HTTP (routes) or TCP (a cluster).
type rchain struct {
	dstPort uint32
	// serverNames match the TLS SNI (empty: any).
	serverNames []string
	// appProtocols match the sniffed application protocol (empty: any).
	appProtocols []string
	// transportProtocol matches "tls" or "raw_buffer" connections ("": any);
	// mtls: the chain terminates the mesh's mutual TLS.
	transportProtocol string
	mtls              bool
	// rbac are the chain's RBAC filters, in order (AuthorizationPolicy);
	// jwt validates request JWTs (RequestAuthentication; nil: none).
	rbac []*rrbac
	jwt  *rjwt
	// netRBAC are the chain's network RBAC filters (AuthorizationPolicy on
	// TCP), run when a connection is accepted.
	netRBAC    []*rrbac
	rdsName    string  // HTTP with RDS
	inline     *rtable // HTTP with an inline route config
	tcpCluster string  // TCP proxy (the first of tcpWeighted when weighted)
	// tcpWeighted and tcpTotal: a tcp_proxy's weighted clusters.
	tcpWeighted []weighted
	// tcpIdle closes a TCP proxy connection idle this long both ways (0: never).
	tcpIdle  time.Duration
	tcpTotal uint32
	inbound  bool // a chain of the inbound listener: reports as the destination
	// Telemetry of the chain's connection manager: spans (nil: none), access
	// log (nil: none) and the Istio metrics it drops.
	trace     *rtrace
	alog      *ralog
	statsDrop *statsDrop
	// statsOv are the chain's metric tag overrides (nil: none).
	statsOv *rstatsOverrides
	fault   bool // the HTTP filters include the fault filter
	cors    bool // the HTTP filters include the cors filter
	// ratelimit: the HTTP filters include the local rate limit filter, with
	// ratelimitCfg its filter-wide config.
	ratelimit    bool
	ratelimitCfg *rlimit
	// norm is the connection manager's path normalization.
	norm pathNorm
}

func (c *rchain) isHTTP() bool { return c.rdsName != "" || c.inline != nil }

// table returns the chain's route table in rt (nil until RDS arrives).
func (c *rchain) table(rt *runtime) *rtable {
	if c.inline != nil {
		return c.inline
	}
	return rt.routes[c.rdsName]
}

// rtable is a compiled RouteConfiguration.
type rtable struct {
	name   string
	exact  map[string]*rvhost
	suffix []wildDomain // *.foo.com and *foo
	prefix []wildDomain // foo.*
	star   *rvhost
}

type wildDomain struct {
	part string
	vh   *rvhost
}

// vhost finds the virtual host for a Host header, as Envoy does: exact,
// then longest suffix wildcard, then prefix wildcard, then *.
func (t *rtable) vhost(host string) *rvhost {
	host = strings.ToLower(host)
	if vh, ok := t.exact[host]; ok {
		return vh
	}
	for _, w := range t.suffix {
		// The wildcard stands for at least one character.
		if len(host) > len(w.part) && strings.HasSuffix(host, w.part) {
			return w.vh
		}
	}
	for _, w := range t.prefix {
		if len(host) > len(w.part) && strings.HasPrefix(host, w.part) {
			return w.vh
		}
	}
	return t.star
}

// rvhost is a compiled VirtualHost.
type rvhost struct {
	name   string
	routes []*rroute
}

// rroute is a compiled Route.
type rroute struct {
	name string
	// operation is the route decorator's operation: the name of the spans
	// of the requests it serves ("": the proxy names them).
	operation     string
	path          string
	prefix        string
	regex         *regexp.Regexp
	caseSensitive bool
	headers       []headerMatch
	query         []queryMatch
	clusters      []weighted
	total         uint32
	// timeout bounds the whole upstream exchange; 0 disables it.
	timeout time.Duration
	// fault is the route's fault injection (nil: none).
	fault *rfault
	// retry is the route's retry policy (nil: no retries).
	retry *rretry
	// mirrors are the clusters requests are shadowed to.
	mirrors []rmirror
	// hash is the route's hash policy for consistent-hash clusters (nil: none).
	hash *rhash
	// ratelimit is the route's (or its virtual host's) local rate limit,
	// rateLimits its descriptor actions.
	ratelimit  *rlimit
	rateLimits [][]rateAction
	// attemptCount: send x-envoy-attempt-count upstream (the virtual host's include_request_attempt_count).
	attemptCount bool
	// reqHeaders and respHeaders are the route's header edits (nil: none).
	reqHeaders, respHeaders *headerEdits
	// modifyResp applies respHeaders in the HTTP/1.1 engine; built once per config.
	modifyResp func(*http1.Response)
	// direct, when set, answers without going upstream (direct_response).
	direct *directResponse
	// redirect, when set, answers with a redirect.
	redirect *redirect
	// rewrite edits the path and authority sent upstream (nil: none).
	rewrite *rewrite
	// cors is the route's CORS policy (nil: none).
	cors *rcors
}

// directResponse is a route's own answer.
type directResponse struct {
	status int
	body   string
}

type weighted struct {
	name   string
	weight uint32
	// Header edits of this destination (Istio's per-destination headers; nil: none).
	reqHeaders, respHeaders *headerEdits
}

type headerMatch struct {
	name    string // lower case, as in the config
	canon   string // canonical MIME form, the key in http.Header
	present bool
	str     *stringMatch
	invert  bool
}

type queryMatch struct {
	name string
	str  *stringMatch
}

type stringMatch struct {
	exact, prefix, suffix, contains string
	kind                            byte // 'e' exact, 'p' prefix, 's' suffix, 'c' contains, 'r' regex
	regex                           *regexp.Regexp
	ignoreCase                      bool
}

func (m *stringMatch) match(v string) bool {
	if m.ignoreCase {
		v = strings.ToLower(v)
	}
	switch m.kind {
	case 'e':
		return v == m.exact
	case 'p':
		return strings.HasPrefix(v, m.prefix)
	case 's':
		return strings.HasSuffix(v, m.suffix)
	case 'c':
		return strings.Contains(v, m.contains)
	case 'r':
		return m.regex.MatchString(v)
	}
	return false
}

// request is what route matching reads of a request; adapters exist for
// net/http (h2c) and http1 requests.
type request interface {
	method() string
	authority() string
	// pathQuery is the origin-form target: path and query as received.
	pathQuery() string
	// header returns a header's values joined by "," and whether it is
	// present; lower is its lower-case name, canon its canonical MIME form.
	header(lower, canon string) (string, bool)
}

// stdRequest adapts a net/http request.
type stdRequest http.Request

func (r *stdRequest) method() string    { return r.Method }
func (r *stdRequest) authority() string { return r.Host }
func (r *stdRequest) pathQuery() string {
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	if r.URL.RawQuery != "" {
		return p + "?" + r.URL.RawQuery
	}
	return p
}
func (r *stdRequest) header(_, canon string) (string, bool) {
	switch vals := r.Header[canon]; len(vals) {
	case 0:
		return "", false
	case 1:
		return vals[0], true
	default:
		return strings.Join(vals, ","), true
	}
}

// route returns the first route matching r.
func (vh *rvhost) route(r request) *rroute {
	if vh == nil {
		return nil
	}
	pq := r.pathQuery()
	path, query, _ := strings.Cut(pq, "?")
	if path == "" {
		path = "/"
	}
	for _, rt := range vh.routes {
		if rt.matches(r, pq, path, query) {
			return rt
		}
	}
	return nil
}

func (rt *rroute) matches(r request, pq, path, query string) bool {
	kind, _ := rt.miss(r, pq, path, query)
	return kind == missNone
}

// The parts of a route's match a request can miss (miss's kind).
const (
	missNone   = iota
	missPath   // the path, prefix or regex
	missHeader // headers[i]
	missQuery  // query[i]
)

// miss reports which part of the route's match r fails (missNone: it
// matches) and, for headers and query parameters, which one. It is the
// one matcher: matches and weft explain's trace both read it.
func (rt *rroute) miss(r request, pq, path, query string) (kind, index int) {
	switch {
	case rt.path != "":
		if !eq(path, rt.path, rt.caseSensitive) {
			return missPath, 0
		}
	case rt.regex != nil:
		if !rt.regex.MatchString(path) {
			return missPath, 0
		}
	default:
		if len(path) < len(rt.prefix) || !eq(path[:len(rt.prefix)], rt.prefix, rt.caseSensitive) {
			return missPath, 0
		}
	}
	for i := range rt.headers {
		h := &rt.headers[i]
		if h.matches(r, pq) == h.invert {
			return missHeader, i
		}
	}
	if len(rt.query) > 0 {
		q, _ := url.ParseQuery(query)
		for i, m := range rt.query {
			vals, ok := q[m.name]
			if !ok || (m.str != nil && !m.str.match(vals[0])) {
				return missQuery, i
			}
		}
	}
	return missNone, 0
}

func (h *headerMatch) matches(r request, pq string) bool {
	var v string
	var ok bool
	switch h.name {
	case ":method":
		v, ok = r.method(), true
	case ":authority", "host":
		v, ok = r.authority(), true
	case ":scheme":
		v, ok = "http", true // weft proxy serves plaintext HTTP downstream
	case ":path":
		v, ok = pq, true
	default:
		v, ok = r.header(h.name, h.canon)
	}
	if !ok {
		return false
	}
	if h.str == nil {
		return h.present
	}
	return h.str.match(v)
}

func eq(a, b string, caseSensitive bool) bool {
	if caseSensitive {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// cluster picks the route's cluster, by weight when there are several.
func (rt *rroute) cluster() string { return rt.pick().name }

// pick chooses the route's destination, by weight when there are several.
func (rt *rroute) pick() *weighted {
	if len(rt.clusters) == 1 || rt.total == 0 {
		return &rt.clusters[0]
	}
	n := rand.Uint32N(rt.total)
	for i := range rt.clusters {
		if n < rt.clusters[i].weight {
			return &rt.clusters[i]
		}
		n -= rt.clusters[i].weight
	}
	return &rt.clusters[len(rt.clusters)-1]
}

// rcluster is a compiled Cluster with its endpoints.
type rcluster struct {
	name string
	kind string // eds, static, original_dst, dns
	h2   bool
	// downstreamProto: speak upstream what the downstream spoke (HTTP/2
	// for HTTP/2, else HTTP/1.1), Envoy's use_downstream_protocol_config.
	downstreamProto bool
	lbName          string
	// awaitingEDS: an EDS cluster whose ClusterLoadAssignment has not arrived.
	awaitingEDS bool
	endpoints   []*rendpoint
	lb          picker
	// connectTimeout bounds dialling an endpoint (cluster connect_timeout).
	connectTimeout time.Duration
	// tls originates TLS to the endpoints (nil: plaintext).
	tls *tls.Config
	// svc is the destination service reported in metrics.
	svc stats.Service
	// breaker enforces the circuit breakers; outlier ejects failing endpoints (nil: off).
	breaker *breaker
	outlier *routlier
	// maxRequestsPerConn closes an upstream connection after this many requests (0: no limit).
	maxRequestsPerConn int
	// upstreamIdle and maxConnDuration: HTTP/1.1 upstream connections close
	// when idle this long / when older than this after an exchange (0: the
	// pool's default / no limit).
	upstreamIdle, maxConnDuration time.Duration
	// levels are the endpoints by priority (locality failover); nil: one level.
	levels []*rlevel
}

// defaultConnectTimeout is Envoy's connect_timeout default.
const defaultConnectTimeout = 5 * time.Second

// rendpoint is one endpoint of a cluster.
type rendpoint struct {
	addr   string // host:port
	key    string // upstream pool key: cluster|addr, with the tunnel marked
	ap     netip.AddrPort
	weight int
	tunnel bool // reached through the peer sidecar's inbound port with a PROXY header
	stats  *endpointStats
	// connectTimeout bounds dialling (the cluster's connect_timeout).
	connectTimeout time.Duration
	// tls originates TLS on connections to the endpoint (nil: plaintext).
	tls *tls.Config
	// mtls wraps the tunnel to the peer sidecar in the mesh's mutual TLS (nil: plaintext).
	mtls *rmtls
	// workload is the endpoint's workload (istio.workload metadata), for metrics.
	workload stats.Workload
	// priority is its locality's priority (0: the best).
	priority int
	// edge caches the metrics edge to this endpoint.
	edge atomic.Pointer[stats.Edge]
}

func (e *rendpoint) String() string { return fmt.Sprintf("%s (tunnel %v)", e.addr, e.tunnel) }

// tcpTarget picks the TCP proxy's cluster for a new connection, by weight.
func (c *rchain) tcpTarget() string {
	if len(c.tcpWeighted) == 0 {
		return c.tcpCluster
	}
	n := rand.Uint32N(c.tcpTotal)
	for _, w := range c.tcpWeighted {
		if n < w.weight {
			return w.name
		}
		n -= w.weight
	}
	return c.tcpWeighted[len(c.tcpWeighted)-1].name
}

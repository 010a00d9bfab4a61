// Package stats holds a proxy's Istio standard metrics (istio_requests_total
// and the rest of DESIGN.md's list) and writes them in Prometheus text
// format for /stats/prometheus.
//
// The hot path is a map lookup keyed by an interned *Edge (the request's
// fixed labels, built once per peer) plus the response code and flags,
// followed by atomic adds: no allocation once a series exists.
package stats

import (
	"bufio"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Reporter says which side of a request reports it.
type Reporter uint8

// Reporters, as Istio's reporter label.
const (
	Source Reporter = iota
	Destination
)

func (r Reporter) String() string {
	if r == Destination {
		return "destination"
	}
	return "source"
}

// Unknown is Istio's value for a label nobody knows.
const Unknown = "unknown"

// Workload identifies one end of a request.
type Workload struct {
	Name, Namespace, App, Version string
	// Principal is the SPIFFE ID proven by mutual TLS ("unknown" without).
	Principal string
}

// canonical returns the canonical service and revision, as Istio derives
// them: app/version labels, else the workload name and "latest".
func (w Workload) canonical() (string, string) {
	svc, rev := w.App, w.Version
	if svc == "" {
		svc = w.Name
	}
	if rev == "" {
		rev = "latest"
	}
	return or(svc), rev
}

// Service is the destination service of a request.
type Service struct {
	// Host is the FQDN (reviews.default.svc.cluster.local), or the
	// authority for unknown destinations.
	Host, Name, Namespace string
}

// ServiceFromHost derives a Service from a mesh FQDN
// (NAME.NS.svc.cluster.local); other hosts are named as they are.
func ServiceFromHost(host string) Service {
	if name, rest, ok := strings.Cut(host, "."); ok {
		if ns, _, ok := strings.Cut(rest, "."); ok && strings.HasSuffix(host, ".svc.cluster.local") {
			return Service{Host: host, Name: name, Namespace: ns}
		}
	}
	return Service{Host: host, Name: host, Namespace: Unknown}
}

// Edge is the interned set of labels fixed for a pair of peers: every
// label but protocol, response code, gRPC status and flags.
type Edge struct {
	key    edgeKey
	labels string // rendered `reporter="…",…,destination_cluster="…"`
	// pairs are the labels as name/value pairs (tag overrides re-render them).
	pairs [][2]string
}

// Workloads returns the edge's source and destination workloads (zero
// when unknown).
func (e *Edge) Workloads() (src, dst Workload) { return e.key.src, e.key.dst }

type edgeKey struct {
	reporter Reporter
	src, dst Workload
	svc      Service
	security string
}

// clone copies k's strings, so a stored key holds no part of a larger
// string (a request head) alive.
func (k edgeKey) clone() edgeKey {
	c := strings.Clone
	w := func(w Workload) Workload {
		return Workload{Name: c(w.Name), Namespace: c(w.Namespace), App: c(w.App), Version: c(w.Version), Principal: c(w.Principal)}
	}
	k.src, k.dst = w(k.src), w(k.dst)
	k.svc = Service{Host: c(k.svc.Host), Name: c(k.svc.Name), Namespace: c(k.svc.Namespace)}
	k.security = c(k.security)
	return k
}

// Protocols of request_protocol.
const (
	HTTP = "http"
	GRPC = "grpc"
	TCP  = "tcp"
)

// Security policies (connection_security_policy).
const (
	MutualTLS   = "mutual_tls"
	None        = "none"
	UnknownPeer = "unknown"
)

type httpKey struct {
	edge  *Edge
	proto string
	code  int
	grpc  string
	flags string
	// ov and dims: the chain's tag overrides (nil: none) and the request's
	// values of their dimensions.
	ov   *Overrides
	dims string
}

type httpSeries struct {
	requests            atomic.Uint64
	duration, req, resp histogram
	// present has a bit per family this series has recorded (Skip's bits
	// clear), so a dropped family is not written.
	present atomic.Uint32
}

// Skip lists metric families a request is not recorded in (the Telemetry
// API's disabled metrics).
type Skip uint32

// Families that can be skipped.
const (
	SkipRequests Skip = 1 << iota
	SkipDuration
	SkipRequestBytes
	SkipResponseBytes
	allFamilies = SkipRequests | SkipDuration | SkipRequestBytes | SkipResponseBytes
)

type tcpSeries struct {
	sent, received, opened, closed atomic.Uint64
}

// Registry holds a proxy's series. The zero value is not usable; call New.
type Registry struct {
	edges sync.Map // edgeKey → *Edge
	http  sync.Map // httpKey → *httpSeries
	tcp   sync.Map // *Edge → *tcpSeries
	// series counts series, so a flood of distinct labels is bounded.
	series atomic.Int64
	max    int64
	// dropped counts records refused because the registry is full.
	dropped atomic.Uint64
}

// DefaultMaxSeries bounds a registry's series.
const DefaultMaxSeries = 20000

// New returns an empty registry holding at most maxSeries series (0: DefaultMaxSeries).
func New(maxSeries int) *Registry {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	return &Registry{max: int64(maxSeries)}
}

// Edge returns the interned edge for these peers. Empty fields become "unknown".
func (r *Registry) Edge(rep Reporter, src, dst Workload, svc Service, security string) *Edge {
	k := edgeKey{rep, src, dst, svc, security}
	if e, ok := r.edges.Load(k); ok {
		return e.(*Edge)
	}
	k = k.clone() // the edge outlives the request its strings may come from
	pairs := edgePairs(k)
	e, _ := r.edges.LoadOrStore(k, &Edge{key: k, labels: renderPairs(pairs), pairs: pairs})
	return e.(*Edge)
}

func or(s string) string {
	if s == "" {
		return Unknown
	}
	return s
}

// renderPairs renders labels as name="value",… in order.
func renderPairs(pairs [][2]string) string {
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte(',')
		}
		writeLabel(&b, p[0], p[1])
	}
	return b.String()
}

// edgePairs are an edge's labels, in Istio's order.
func edgePairs(k edgeKey) [][2]string {
	sc, sr := k.src.canonical()
	dc, dr := k.dst.canonical()
	if k.src.Name == "" {
		sc, sr = Unknown, Unknown
	}
	if k.dst.Name == "" {
		dc, dr = Unknown, Unknown
	}
	return [][2]string{
		{"reporter", k.reporter.String()},
		{"source_workload", or(k.src.Name)},
		{"source_canonical_service", sc},
		{"source_canonical_revision", sr},
		{"source_workload_namespace", or(k.src.Namespace)},
		{"source_principal", or(k.src.Principal)},
		{"source_app", or(k.src.App)},
		{"source_version", or(k.src.Version)},
		{"source_cluster", "Kubernetes"},
		{"destination_workload", or(k.dst.Name)},
		{"destination_workload_namespace", or(k.dst.Namespace)},
		{"destination_principal", or(k.dst.Principal)},
		{"destination_app", or(k.dst.App)},
		{"destination_version", or(k.dst.Version)},
		{"destination_service", or(k.svc.Host)},
		{"destination_canonical_service", dc},
		{"destination_canonical_revision", dr},
		{"destination_service_name", or(k.svc.Name)},
		{"destination_service_namespace", or(k.svc.Namespace)},
		{"destination_cluster", "Kubernetes"},
		{"connection_security_policy", or(k.security)},
	}
}

func writeLabel(b *strings.Builder, name, value string) {
	b.WriteString(name)
	b.WriteString(`="`)
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// Request records one finished HTTP or gRPC request on edge e. code is the
// status sent downstream (0: none, as Envoy reports a reset), grpcStatus
// the grpc-status ("" for plain HTTP), flags Envoy's response flags ("" or
// "-": none).
func (r *Registry) Request(e *Edge, proto string, code int, grpcStatus, flags string, d time.Duration, reqBytes, respBytes int64) {
	r.RequestSkipping(e, proto, code, grpcStatus, flags, d, reqBytes, respBytes, 0)
}

// RequestSkipping is Request without the families in skip.
func (r *Registry) RequestSkipping(e *Edge, proto string, code int, grpcStatus, flags string, d time.Duration, reqBytes, respBytes int64, skip Skip) {
	r.RequestOverridden(e, proto, code, grpcStatus, flags, d, reqBytes, respBytes, skip, nil, "")
}

// RequestOverridden is RequestSkipping with the Telemetry API's tag
// overrides: ov (nil: none) and the request's values of ov.Dims, joined by
// DimSeparator in that order.
func (r *Registry) RequestOverridden(e *Edge, proto string, code int, grpcStatus, flags string, d time.Duration, reqBytes, respBytes int64, skip Skip, ov *Overrides, dims string) {
	if e == nil || skip&allFamilies == allFamilies {
		return
	}
	if flags == "" {
		flags = "-"
	}
	k := httpKey{e, proto, code, grpcStatus, flags, ov, dims}
	v, ok := r.http.Load(k)
	if !ok {
		if r.series.Load() >= r.max {
			r.dropped.Add(1)
			return
		}
		var loaded bool
		v, loaded = r.http.LoadOrStore(k, new(httpSeries))
		if !loaded {
			r.series.Add(1)
		}
	}
	s := v.(*httpSeries)
	if want := uint32(allFamilies &^ skip); s.present.Load()&want != want {
		s.present.Or(want)
	}
	if skip&SkipRequests == 0 {
		s.requests.Add(1)
	}
	if skip&SkipDuration == 0 {
		s.duration.observe(durationBuckets[:], float64(d)/float64(time.Millisecond))
	}
	if skip&SkipRequestBytes == 0 {
		s.req.observe(sizeBuckets[:], float64(reqBytes))
	}
	if skip&SkipResponseBytes == 0 {
		s.resp.observe(sizeBuckets[:], float64(respBytes))
	}
}

// TCP returns the TCP counters of edge e, for a connection to update as it goes.
func (r *Registry) TCP(e *Edge) *TCPCounters {
	if e == nil {
		return nil
	}
	v, ok := r.tcp.Load(e)
	if !ok {
		if r.series.Load() >= r.max {
			r.dropped.Add(1)
			return nil
		}
		var loaded bool
		v, loaded = r.tcp.LoadOrStore(e, new(tcpSeries))
		if !loaded {
			r.series.Add(1)
		}
	}
	return (*TCPCounters)(v.(*tcpSeries))
}

// TCPCounters are one TCP edge's counters; nil-safe.
type TCPCounters tcpSeries

// Opened counts a new connection.
func (c *TCPCounters) Opened() {
	if c != nil {
		c.opened.Add(1)
	}
}

// Bytes adds bytes carried by a connection, as Istio counts them:
// received is what came from downstream (the request direction), sent what
// went back to it (the response direction).
func (c *TCPCounters) Bytes(received, sent int64) {
	if c != nil {
		c.received.Add(uint64(max(received, 0)))
		c.sent.Add(uint64(max(sent, 0)))
	}
}

// Closed counts a connection's end.
func (c *TCPCounters) Closed() {
	if c != nil {
		c.closed.Add(1)
	}
}

// Envoy's default histogram buckets, used by istio_request_duration_milliseconds.
var durationBuckets = [...]float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// sizeBuckets are Istio's byte-size buckets (powers of ten to 100 MB).
var sizeBuckets = [...]float64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

const maxBuckets = len(durationBuckets)

// histogram counts observations per bucket (not cumulative; summed when written).
type histogram struct {
	counts [maxBuckets + 1]atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

func (h *histogram) observe(bounds []float64, v float64) {
	i := 0
	for i < len(bounds) && v > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Dropped reports how many records were refused because the registry was full.
func (r *Registry) Dropped() uint64 { return r.dropped.Load() }

type httpLine struct {
	labels string
	s      *httpSeries
}

type tcpLine struct {
	labels string
	s      *tcpSeries
}

// WritePrometheus writes every series in Prometheus text format (0.0.4),
// families in DESIGN.md's order, series sorted by labels.
func (r *Registry) WritePrometheus(w io.Writer) error {
	var hs []httpLine
	var overridden []overriddenLine
	r.http.Range(func(k, v any) bool {
		key := k.(httpKey)
		if key.ov != nil {
			overridden = append(overridden, overriddenLine{key, v.(*httpSeries)})
			return true
		}
		labels := key.edge.labels + `,request_protocol="` + key.proto + `",response_code="` + strconv.Itoa(key.code) +
			`",grpc_response_status="` + key.grpc + `",response_flags="` + key.flags + `"`
		hs = append(hs, httpLine{labels, v.(*httpSeries)})
		return true
	})
	slices.SortFunc(hs, func(a, b httpLine) int { return strings.Compare(a.labels, b.labels) })
	var ts []tcpLine
	r.tcp.Range(func(k, v any) bool {
		ts = append(ts, tcpLine{k.(*Edge).labels + `,request_protocol="tcp",response_flags="-"`, v.(*tcpSeries)})
		return true
	})
	slices.SortFunc(ts, func(a, b tcpLine) int { return strings.Compare(a.labels, b.labels) })

	bw := bufio.NewWriterSize(w, 32<<10)
	family(bw, "istio_requests_total", "counter", "Total number of requests handled by the proxy.")
	for _, l := range mergeOverridden(hs, overridden, SkipRequests) {
		if Skip(l.s.present.Load())&SkipRequests != 0 {
			counter(bw, "istio_requests_total", l.labels, l.s.requests.Load())
		}
	}
	hists := []struct {
		name, help string
		bit        Skip
		bounds     []float64
		get        func(*httpSeries) *histogram
	}{
		{"istio_request_duration_milliseconds", "Request duration in milliseconds.", SkipDuration, durationBuckets[:], func(s *httpSeries) *histogram { return &s.duration }},
		{"istio_request_bytes", "Request body sizes in bytes.", SkipRequestBytes, sizeBuckets[:], func(s *httpSeries) *histogram { return &s.req }},
		{"istio_response_bytes", "Response body sizes in bytes.", SkipResponseBytes, sizeBuckets[:], func(s *httpSeries) *histogram { return &s.resp }},
	}
	for _, h := range hists {
		family(bw, h.name, "histogram", h.help)
		for _, l := range mergeOverridden(hs, overridden, h.bit) {
			if Skip(l.s.present.Load())&h.bit != 0 {
				writeHistogram(bw, h.name, l.labels, h.bounds, h.get(l.s))
			}
		}
	}
	tcps := []struct {
		name, help string
		get        func(*tcpSeries) uint64
	}{
		{"istio_tcp_sent_bytes_total", "Bytes sent during responses on TCP connections.", func(s *tcpSeries) uint64 { return s.sent.Load() }},
		{"istio_tcp_received_bytes_total", "Bytes received during requests on TCP connections.", func(s *tcpSeries) uint64 { return s.received.Load() }},
		{"istio_tcp_connections_opened_total", "TCP connections opened.", func(s *tcpSeries) uint64 { return s.opened.Load() }},
		{"istio_tcp_connections_closed_total", "TCP connections closed.", func(s *tcpSeries) uint64 { return s.closed.Load() }},
	}
	for _, t := range tcps {
		family(bw, t.name, "counter", t.help)
		for _, l := range ts {
			counter(bw, t.name, l.labels, t.get(l.s))
		}
	}
	return bw.Flush()
}

func family(w *bufio.Writer, name, typ, help string) {
	w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

func counter(w *bufio.Writer, name, labels string, v uint64) {
	w.WriteString(name)
	w.WriteByte('{')
	w.WriteString(labels)
	w.WriteString("} ")
	w.Write(strconv.AppendUint(w.AvailableBuffer(), v, 10))
	w.WriteByte('\n')
}

func writeHistogram(w *bufio.Writer, name, labels string, bounds []float64, h *histogram) {
	var cum uint64
	series := func(suffix, le string) {
		w.WriteString(name)
		w.WriteString(suffix)
		w.WriteByte('{')
		w.WriteString(labels)
		if le != "" {
			w.WriteString(`,le="`)
			w.WriteString(le)
			w.WriteByte('"')
		}
		w.WriteString("} ")
	}
	for i, b := range bounds {
		cum += h.counts[i].Load()
		series("_bucket", leStrings[b])
		w.Write(strconv.AppendUint(w.AvailableBuffer(), cum, 10))
		w.WriteByte('\n')
	}
	cum += h.counts[len(bounds)].Load()
	series("_bucket", "+Inf")
	w.Write(strconv.AppendUint(w.AvailableBuffer(), cum, 10))
	w.WriteByte('\n')
	series("_sum", "")
	w.Write(strconv.AppendFloat(w.AvailableBuffer(), math.Float64frombits(h.sum.Load()), 'g', -1, 64))
	w.WriteByte('\n')
	series("_count", "")
	w.Write(strconv.AppendUint(w.AvailableBuffer(), cum, 10))
	w.WriteByte('\n')
}

// leStrings are the bucket bounds as Prometheus writes them.
var leStrings = func() map[float64]string {
	m := map[float64]string{}
	for _, b := range append(durationBuckets[:], sizeBuckets[:]...) {
		m[b] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	return m
}()

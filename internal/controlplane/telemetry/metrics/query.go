package metrics

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Istio's standard metric names, as the proxies export them.
const (
	RequestsTotal        = "istio_requests_total"
	RequestDuration      = "istio_request_duration_milliseconds"
	RequestBytes         = "istio_request_bytes"
	ResponseBytes        = "istio_response_bytes"
	TCPSentBytes         = "istio_tcp_sent_bytes_total"
	TCPReceivedBytes     = "istio_tcp_received_bytes_total"
	TCPConnectionsOpened = "istio_tcp_connections_opened_total"
	TCPConnectionsClosed = "istio_tcp_connections_closed_total"
)

// Reporter values.
const (
	ReporterDestination = "destination"
	ReporterSource      = "source"
)

// mutualTLS is connection_security_policy's value for mTLS traffic.
const mutualTLS = "mutual_tls"

// edgeLabels identify an edge: its source workload and its destination
// workload and service.
var edgeLabels = []string{
	"source_workload", "source_workload_namespace", "source_app", "source_version",
	"destination_workload", "destination_workload_namespace", "destination_app", "destination_version",
	"destination_service", "destination_service_name", "destination_service_namespace",
}

// Peer is one end of an edge. Service fields are set for destinations only.
type Peer struct {
	Namespace        string `json:"namespace"`
	Workload         string `json:"workload"`
	App              string `json:"app"`
	Version          string `json:"version"`
	Service          string `json:"service,omitempty"` // FQDN
	ServiceName      string `json:"serviceName,omitempty"`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
}

// Traffic is what was measured over the window. Rates are per second;
// latencies in milliseconds (null when no request was measured).
type Traffic struct {
	RequestRate  float64 `json:"requestRate"`
	ErrorRate4xx float64 `json:"errorRate4xx"`
	ErrorRate5xx float64 `json:"errorRate5xx"`
	// LatencyP50..P99 are histogram quantiles of istio_request_duration_milliseconds.
	LatencyP50 *float64 `json:"latencyP50"`
	LatencyP95 *float64 `json:"latencyP95"`
	LatencyP99 *float64 `json:"latencyP99"`
	// MTLSShare is the share (0..1) of requests (or, for TCP only, bytes)
	// with connection_security_policy="mutual_tls".
	MTLSShare float64 `json:"mtlsShare"`
	// TCPSentBytesRate and TCPReceivedBytesRate are TCP bytes per second.
	TCPSentBytesRate     float64 `json:"tcpSentBytesRate"`
	TCPReceivedBytesRate float64 `json:"tcpReceivedBytesRate"`
}

// Edge is the traffic from one workload to one destination workload and
// service. Reporter is the side whose metrics it was computed from:
// "destination" when the destination has a sidecar, else "source".
type Edge struct {
	Source      Peer   `json:"source"`
	Destination Peer   `json:"destination"`
	Reporter    string `json:"reporter"`
	Traffic
}

// Node is a workload or a service with its inbound and outbound totals
// (a service has inbound traffic only).
type Node struct {
	Kind      string  `json:"kind"` // "workload" or "service"
	Namespace string  `json:"namespace"`
	Name      string  `json:"name"`
	App       string  `json:"app,omitempty"`
	Version   string  `json:"version,omitempty"`
	Service   string  `json:"service,omitempty"` // FQDN, for services
	Inbound   Traffic `json:"inbound"`
	Outbound  Traffic `json:"outbound"`
}

// Filter narrows edges and nodes. Namespace keeps edges whose source or
// destination is in it ("": every namespace).
type Filter struct {
	Namespace string
}

// Querier computes the console's views from a Source.
type Querier struct {
	src Source
	now func() time.Time
}

// NewQuerier returns a Querier over src.
func NewQuerier(src Source) *Querier { return &Querier{src: src, now: time.Now} }

// agg accumulates one edge's (or node's) rates.
type agg struct {
	req, e4xx, e5xx, reqMTLS float64
	buckets                  map[float64]float64 // le -> rate
	tcpSent, tcpRecv         float64
	tcpMTLS                  float64
}

func (a *agg) merge(b *agg) {
	a.req += b.req
	a.e4xx += b.e4xx
	a.e5xx += b.e5xx
	a.reqMTLS += b.reqMTLS
	a.tcpSent += b.tcpSent
	a.tcpRecv += b.tcpRecv
	a.tcpMTLS += b.tcpMTLS
	for le, v := range b.buckets {
		a.addBucket(le, v)
	}
}

func (a *agg) addBucket(le, v float64) {
	if a.buckets == nil {
		a.buckets = map[float64]float64{}
	}
	a.buckets[le] += v
}

func (a *agg) traffic() Traffic {
	t := Traffic{RequestRate: a.req, ErrorRate4xx: a.e4xx, ErrorRate5xx: a.e5xx,
		TCPSentBytesRate: a.tcpSent, TCPReceivedBytesRate: a.tcpRecv}
	switch {
	case a.req > 0:
		t.MTLSShare = a.reqMTLS / a.req
	case a.tcpSent+a.tcpRecv > 0:
		t.MTLSShare = a.tcpMTLS / (a.tcpSent + a.tcpRecv)
	}
	t.LatencyP50, t.LatencyP95, t.LatencyP99 = quantiles(a.buckets)
	return t
}

// quantiles are the p50, p95 and p99 of buckets (nil when undefined).
func quantiles(m map[float64]float64) (p50, p95, p99 *float64) {
	if len(m) == 0 {
		return nil, nil, nil
	}
	b := make([]bucket, 0, len(m))
	for le, v := range m {
		b = append(b, bucket{le, v})
	}
	q := func(x float64) *float64 {
		v := histogramQuantile(x, b)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return q(0.5), q(0.95), q(0.99)
}

// edgeKey identifies an edge regardless of which side reported it.
type edgeKey struct {
	srcWorkload, srcNS, dstWorkload, dstNS, dstService string
}

type edgeAgg struct {
	src, dst Peer
	agg
}

// collect sums the reporter's rates per edge.
func (q *Querier) collect(ctx context.Context, reporter string, window time.Duration, at time.Time) (map[edgeKey]*edgeAgg, error) {
	edges := map[edgeKey]*edgeAgg{}
	get := func(l Labels) *edgeAgg {
		k := edgeKey{l["source_workload"], l["source_workload_namespace"], l["destination_workload"],
			l["destination_workload_namespace"], l["destination_service"]}
		e := edges[k]
		if e == nil {
			e = &edgeAgg{
				src: Peer{Namespace: l["source_workload_namespace"], Workload: l["source_workload"],
					App: l["source_app"], Version: l["source_version"]},
				dst: Peer{Namespace: l["destination_workload_namespace"], Workload: l["destination_workload"],
					App: l["destination_app"], Version: l["destination_version"], Service: l["destination_service"],
					ServiceName: l["destination_service_name"], ServiceNamespace: l["destination_service_namespace"]},
			}
			edges[k] = e
		}
		return e
	}
	type part struct {
		metric string
		extra  []string
		add    func(e *edgeAgg, l Labels, v float64)
	}
	parts := []part{
		{RequestsTotal, []string{"response_code", "connection_security_policy"}, func(e *edgeAgg, l Labels, v float64) {
			e.req += v
			switch {
			case strings.HasPrefix(l["response_code"], "4"):
				e.e4xx += v
			case strings.HasPrefix(l["response_code"], "5"):
				e.e5xx += v
			}
			if l["connection_security_policy"] == mutualTLS {
				e.reqMTLS += v
			}
		}},
		{RequestDuration + "_bucket", []string{"le"}, func(e *edgeAgg, l Labels, v float64) {
			if le, ok := parseLe(l["le"]); ok {
				e.addBucket(le, v)
			}
		}},
		{TCPSentBytes, []string{"connection_security_policy"}, func(e *edgeAgg, l Labels, v float64) {
			e.tcpSent += v
			if l["connection_security_policy"] == mutualTLS {
				e.tcpMTLS += v
			}
		}},
		{TCPReceivedBytes, []string{"connection_security_policy"}, func(e *edgeAgg, l Labels, v float64) {
			e.tcpRecv += v
			if l["connection_security_policy"] == mutualTLS {
				e.tcpMTLS += v
			}
		}},
	}
	for _, p := range parts {
		vecs, err := q.src.Rates(ctx, RateQuery{
			Metric: p.metric, Matchers: map[string]string{"reporter": reporter},
			By: append(slices.Clone(edgeLabels), p.extra...), Range: window, End: at,
		})
		if err != nil {
			return nil, fmt.Errorf("%s (reporter %s): %w", p.metric, reporter, err)
		}
		for _, v := range vecs {
			if len(v.Values) > 0 && (len(v.Present) == 0 || v.Present[0]) {
				p.add(get(v.Labels), v.Labels, v.Values[0])
			}
		}
	}
	return edges, nil
}

// Edges returns the traffic between workloads over the window ending now,
// from the destination's metrics when it reported them, else the source's
// (a destination without a sidecar, PassthroughCluster, unknown hosts).
func (q *Querier) Edges(ctx context.Context, window time.Duration, f Filter) ([]Edge, error) {
	at := q.now()
	dst, err := q.collect(ctx, ReporterDestination, window, at)
	if err != nil {
		return nil, err
	}
	src, err := q.collect(ctx, ReporterSource, window, at)
	if err != nil {
		return nil, err
	}
	out := []Edge{}
	add := func(e *edgeAgg, reporter string) {
		if f.Namespace != "" && e.src.Namespace != f.Namespace && e.dst.Namespace != f.Namespace &&
			e.dst.ServiceNamespace != f.Namespace {
			return
		}
		out = append(out, Edge{Source: e.src, Destination: e.dst, Reporter: reporter, Traffic: e.traffic()})
	}
	for _, e := range dst {
		add(e, ReporterDestination)
	}
	for k, e := range src {
		if _, ok := dst[k]; !ok {
			add(e, ReporterSource)
		}
	}
	slices.SortFunc(out, func(a, b Edge) int {
		return strings.Compare(edgeSortKey(a), edgeSortKey(b))
	})
	return out, nil
}

func edgeSortKey(e Edge) string {
	return strings.Join([]string{e.Source.Namespace, e.Source.Workload, e.Destination.Service,
		e.Destination.Namespace, e.Destination.Workload}, "\x00")
}

// Nodes returns every workload and service seen in the window's edges
// with their inbound and outbound totals.
func (q *Querier) Nodes(ctx context.Context, window time.Duration, f Filter) ([]Node, error) {
	at := q.now()
	dst, err := q.collect(ctx, ReporterDestination, window, at)
	if err != nil {
		return nil, err
	}
	src, err := q.collect(ctx, ReporterSource, window, at)
	if err != nil {
		return nil, err
	}
	type nodeAgg struct {
		Node
		in, out agg
	}
	nodes := map[string]*nodeAgg{}
	get := func(kind, ns, name string) *nodeAgg {
		k := kind + "\x00" + ns + "\x00" + name
		n := nodes[k]
		if n == nil {
			n = &nodeAgg{Node: Node{Kind: kind, Namespace: ns, Name: name}}
			nodes[k] = n
		}
		return n
	}
	edges := make([]*edgeAgg, 0, len(dst)+len(src))
	for _, e := range dst {
		edges = append(edges, e)
	}
	for k, e := range src {
		if _, ok := dst[k]; !ok {
			edges = append(edges, e)
		}
	}
	for _, e := range edges {
		s := get("workload", e.src.Namespace, e.src.Workload)
		s.App, s.Version = e.src.App, e.src.Version
		s.out.merge(&e.agg)
		d := get("workload", e.dst.Namespace, e.dst.Workload)
		d.App, d.Version = e.dst.App, e.dst.Version
		d.in.merge(&e.agg)
		svcNS, svcName := e.dst.ServiceNamespace, e.dst.ServiceName
		if svcName == "" {
			svcName = e.dst.Service
		}
		if svcName != "" {
			sv := get("service", svcNS, svcName)
			sv.Service = e.dst.Service
			sv.in.merge(&e.agg)
		}
	}
	out := []Node{}
	for _, n := range nodes {
		if f.Namespace != "" && n.Namespace != f.Namespace {
			continue
		}
		n.Inbound, n.Outbound = n.in.traffic(), n.out.traffic()
		out = append(out, n.Node)
	}
	slices.SortFunc(out, func(a, b Node) int {
		return strings.Compare(a.Kind+"\x00"+a.Namespace+"\x00"+a.Name, b.Kind+"\x00"+b.Namespace+"\x00"+b.Name)
	})
	return out, nil
}

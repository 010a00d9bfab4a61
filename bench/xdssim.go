package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Type URLs, in the order weft's xdsclient subscribes to them.
const (
	typeCluster  = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	typeListener = "type.googleapis.com/envoy.config.listener.v3.Listener"
	typeRoute    = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	typeEndpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
)

// simProxy is one simulated sidecar. It speaks ADS as weft's xdsclient does
// (internal/proxy/xdsclient, state of the world): one stream, CDS and LDS
// first, then RDS and EDS for the names the listeners and clusters
// reference, each response ACKed with its version and nonce (NACKed if it
// does not decode), resubscribing with the last ACKed versions after a
// reconnect. Unlike xdsclient it keeps no resources, only their names and
// what the bench measures: xdsclient holds every resource raw and decoded
// (megabytes per proxy at 1000 services), which 2000 of them in one
// process cannot afford.
type simProxy struct {
	node *core.Node

	mu       sync.Mutex
	versions map[string]string   // last ACKed version by type
	names    map[string][]string // subscription of RDS and EDS
	counts   map[string]int      // resources in the last response by type
	// configured is when all four types were first received complete.
	configured time.Time
	// marker is looked for in route configurations; seen is when a
	// response carrying it arrived.
	marker []byte
	seen   time.Time

	bytes     atomic.Int64 // size of every response received
	nacks     atomic.Int64
	responses atomic.Int64
}

func newSimProxy(ip, name, namespace string, labels map[string]string) (*simProxy, error) {
	lb := map[string]any{}
	for k, v := range labels {
		lb[k] = v
	}
	// The metadata weft proxy sends (internal/proxy/node.go), without
	// WEFT_SERVICE: the bench's workloads are static WorkloadEntries.
	md, err := structpb.NewStruct(map[string]any{
		"NAMESPACE": namespace, "WORKLOAD_NAME": name, "LABELS": lb, "INSTANCE_IPS": ip,
		"ADMIN_ADDRESS": ip + ":15000", "ISTIO_VERSION": "bench", "SERVICE_ACCOUNT": "default",
	})
	if err != nil {
		return nil, err
	}
	return &simProxy{
		node: &core.Node{
			Id:       fmt.Sprintf("sidecar~%s~%s.%s~%s.svc.cluster.local", ip, name, namespace, namespace),
			Cluster:  labels["app"] + "." + namespace,
			Metadata: md, UserAgentName: "weft",
			UserAgentVersionType: &core.Node_UserAgentVersion{UserAgentVersion: "bench"},
		},
		versions: map[string]string{}, names: map[string][]string{}, counts: map[string]int{},
	}, nil
}

// watch makes the proxy note when a route configuration carrying marker arrives.
func (p *simProxy) watch(marker string) {
	p.mu.Lock()
	p.marker, p.seen = []byte(marker), time.Time{}
	p.mu.Unlock()
}

func (p *simProxy) state() (configured, seen time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.configured, p.seen
}

// run keeps a stream to the control plane until ctx ends, reconnecting
// after 100 ms to 1 s when it breaks (xdsclient's back-off starts at 100 ms).
func (p *simProxy) run(ctx context.Context, cc *grpc.ClientConn) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		_ = p.stream(ctx, cc)
		if time.Since(start) > 5*time.Second {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (p *simProxy) stream(ctx context.Context, cc *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	send := func(r *discovery.DiscoveryRequest) error {
		r.Node = p.node
		return s.Send(r)
	}
	p.mu.Lock()
	var first []*discovery.DiscoveryRequest
	for _, t := range []string{typeCluster, typeListener, typeRoute, typeEndpoint} {
		if (t == typeRoute || t == typeEndpoint) && len(p.names[t]) == 0 {
			continue
		}
		first = append(first, &discovery.DiscoveryRequest{TypeUrl: t, VersionInfo: p.versions[t], ResourceNames: p.names[t]})
	}
	p.mu.Unlock()
	for _, r := range first {
		if err := send(r); err != nil {
			return err
		}
	}
	nonces := map[string]string{}
	for {
		resp, err := s.Recv()
		if err != nil {
			return err
		}
		for _, r := range p.handle(resp, nonces) {
			if err := send(r); err != nil {
				return err
			}
		}
	}
}

// handle decodes one response and returns its ACK (or NACK) and, when the
// names it references changed, the dependent type's new subscription.
func (p *simProxy) handle(resp *discovery.DiscoveryResponse, nonces map[string]string) []*discovery.DiscoveryRequest {
	t := resp.GetTypeUrl()
	nonces[t] = resp.GetNonce()
	p.bytes.Add(int64(proto.Size(resp)))
	p.responses.Add(1)
	deps, dependent, err := p.decode(resp)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.nacks.Add(1)
		return []*discovery.DiscoveryRequest{{TypeUrl: t, VersionInfo: p.versions[t], ResponseNonce: nonces[t], ResourceNames: p.names[t],
			ErrorDetail: &status.Status{Code: 3, Message: err.Error()}}}
	}
	p.versions[t] = resp.GetVersionInfo()
	p.counts[t] = len(resp.GetResources())
	out := []*discovery.DiscoveryRequest{{TypeUrl: t, VersionInfo: p.versions[t], ResponseNonce: nonces[t], ResourceNames: p.names[t]}}
	if dependent != "" && !slices.Equal(deps, p.names[dependent]) {
		p.names[dependent] = deps
		out = append(out, &discovery.DiscoveryRequest{TypeUrl: dependent, VersionInfo: p.versions[dependent],
			ResponseNonce: nonces[dependent], ResourceNames: deps})
	}
	if t == typeRoute && len(p.marker) > 0 && p.seen.IsZero() {
		for _, a := range resp.GetResources() {
			if bytes.Contains(a.GetValue(), p.marker) {
				p.seen = time.Now()
				break
			}
		}
	}
	if p.configured.IsZero() && p.completeLocked() {
		p.configured = time.Now()
	}
	return out
}

// completeLocked: every type received, RDS and EDS with every name subscribed.
func (p *simProxy) completeLocked() bool {
	for _, t := range []string{typeCluster, typeListener, typeRoute, typeEndpoint} {
		if p.versions[t] == "" {
			return false
		}
	}
	return p.counts[typeRoute] == len(p.names[typeRoute]) && p.counts[typeEndpoint] == len(p.names[typeEndpoint])
}

// decode unmarshals every resource (as xdsclient does) and returns the
// names of the dependent type they reference.
func (p *simProxy) decode(resp *discovery.DiscoveryResponse) (names []string, dependent string, err error) {
	for _, a := range resp.GetResources() {
		switch resp.GetTypeUrl() {
		case typeCluster:
			dependent = typeEndpoint
			n, eds, err := edsName(a.GetValue())
			if err != nil {
				return nil, "", fmt.Errorf("cluster: %w", err)
			}
			if eds {
				names = append(names, n)
			}
		case typeListener:
			dependent = typeRoute
			l := &listener.Listener{}
			if err := a.UnmarshalTo(l); err != nil {
				return nil, "", fmt.Errorf("listener: %w", err)
			}
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					m := &hcm.HttpConnectionManager{}
					if f.GetTypedConfig().MessageIs(m) && f.GetTypedConfig().UnmarshalTo(m) == nil && m.GetRds() != nil {
						names = append(names, m.GetRds().GetRouteConfigName())
					}
				}
			}
		default:
			if len(a.GetValue()) == 0 {
				return nil, "", fmt.Errorf("empty %s", resp.GetTypeUrl())
			}
		}
	}
	sort.Strings(names)
	return compact(names), dependent, nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Field numbers of envoy.config.cluster.v3.Cluster the bench reads.
const (
	clusterName      = 1
	clusterType      = 2
	clusterEDSConfig = 3 // EdsClusterConfig; its service_name is field 2
)

// edsName reads a Cluster's name, type and EDS service name straight from
// its wire form: 2000 simulated proxies decoding 3000 clusters each in
// full would make the bench, not the control plane, the bottleneck.
func edsName(b []byte) (name string, eds bool, err error) {
	var service string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == clusterName && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false, protowire.ParseError(n)
			}
			name, b = string(v), b[n:]
			continue
		case num == clusterType && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return "", false, protowire.ParseError(n)
			}
			eds, b = v == uint64(cluster.Cluster_EDS), b[n:]
			continue
		case num == clusterEDSConfig && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", false, protowire.ParseError(n)
			}
			c := &cluster.Cluster_EdsClusterConfig{}
			if err := proto.Unmarshal(v, c); err != nil {
				return "", false, err
			}
			service, b = c.GetServiceName(), b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", false, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if name == "" {
		return "", false, fmt.Errorf("a cluster has no name")
	}
	if service == "" {
		service = name
	}
	return service, eds, nil
}

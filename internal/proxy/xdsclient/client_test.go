package xdsclient

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const nodeID = "sidecar~127.0.0.1~test-1.default~default.svc.cluster.local"

// fakeServer is a go-control-plane management server on loopback.
type fakeServer struct {
	addr  string
	cache cache.SnapshotCache
	grpc  *grpc.Server
	mu    sync.Mutex
	nacks []string            // error details received
	subs  map[string][]string // RDS/EDS names subscribed, sorted
}

func startServer(t *testing.T, addr string, sc cache.SnapshotCache) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: lis.Addr().String(), cache: sc, grpc: grpc.NewServer(), subs: map[string][]string{}}
	cb := server.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discovery.DiscoveryRequest) error {
			f.noteNACK(r.GetErrorDetail().GetMessage())
			if isDependent(r.GetTypeUrl()) {
				f.mu.Lock()
				f.subs[r.GetTypeUrl()] = r.GetResourceNames()
				f.mu.Unlock()
			}
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discovery.DeltaDiscoveryRequest) error {
			f.noteNACK(r.GetErrorDetail().GetMessage())
			if isDependent(r.GetTypeUrl()) {
				f.mu.Lock()
				f.subs[r.GetTypeUrl()] = applyDelta(f.subs[r.GetTypeUrl()], r.GetResourceNamesSubscribe(), r.GetResourceNamesUnsubscribe())
				f.mu.Unlock()
			}
			return nil
		},
	}
	srv := server.NewServer(context.Background(), sc, cb)
	discovery.RegisterAggregatedDiscoveryServiceServer(f.grpc, srv)
	go func() { _ = f.grpc.Serve(lis) }()
	t.Cleanup(f.grpc.Stop)
	return f
}

func (f *fakeServer) noteNACK(msg string) {
	if msg == "" {
		return
	}
	f.mu.Lock()
	f.nacks = append(f.nacks, msg)
	f.mu.Unlock()
}

// applyDelta applies a delta subscription change to a sorted name list.
func applyDelta(names, sub, unsub []string) []string {
	set := map[string]bool{}
	for _, n := range append(names, sub...) {
		set[n] = true
	}
	for _, n := range unsub {
		delete(set, n)
	}
	return sortedSet(set)
}

// subscribed returns the names the client subscribed to for t.
func (f *fakeServer) subscribed(t string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.subs[t]...)
}

func (f *fakeServer) nackCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.nacks)
}

func (f *fakeServer) set(t *testing.T, version string, res map[string][]types.Resource) {
	t.Helper()
	snap, err := cache.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cache.SetSnapshot(context.Background(), nodeID, snap); err != nil {
		t.Fatal(err)
	}
}

// recorder is a Handler remembering the last set of every type.
type recorder struct {
	mu     sync.Mutex
	last   map[string]map[string]proto.Message
	vers   map[string]string
	reject map[string]string // type URL -> version to reject
}

func newRecorder() *recorder {
	return &recorder{last: map[string]map[string]proto.Message{}, vers: map[string]string{}, reject: map[string]string{}}
}

func (r *recorder) Update(typeURL, version string, res map[string]proto.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reject[typeURL] == version {
		return fmt.Errorf("refusing %s version %s", shortType(typeURL), version)
	}
	r.last[typeURL], r.vers[typeURL] = res, version
	return nil
}

func (r *recorder) names(typeURL string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for n := range r.last[typeURL] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (r *recorder) version(typeURL string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.vers[typeURL]
}

// mesh builds resources: listeners each using RDS route "r-LISTENER",
// EDS clusters and one STATIC cluster, and the routes and endpoints they
// reference (an ADS snapshot cache answers only consistent requests).
func mesh(listeners, clusters []string) map[string][]types.Resource {
	res := map[string][]types.Resource{}
	for _, l := range listeners {
		h, _ := anypb.New(&hcm.HttpConnectionManager{StatPrefix: l, RouteSpecifier: &hcm.HttpConnectionManager_Rds{
			Rds: &hcm.Rds{RouteConfigName: "r-" + l, ConfigSource: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{}}},
		}})
		res[resource.ListenerType] = append(res[resource.ListenerType], &listener.Listener{Name: l, FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: h}}},
		}}})
		res[resource.RouteType] = append(res[resource.RouteType], &route.RouteConfiguration{Name: "r-" + l})
	}
	for _, c := range clusters {
		res[resource.ClusterType] = append(res[resource.ClusterType], &cluster.Cluster{
			Name: c, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{ServiceName: "eds-" + c},
		})
		res[resource.EndpointType] = append(res[resource.EndpointType], &endpoint.ClusterLoadAssignment{ClusterName: "eds-" + c})
	}
	res[resource.ClusterType] = append(res[resource.ClusterType], &cluster.Cluster{Name: "static", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}})
	return res
}

func startClient(t *testing.T, addr, protocol string, h Handler) *Client {
	t.Helper()
	c, err := New(Options{Address: addr, Node: &core.Node{Id: nodeID}, Handler: h, Protocol: protocol, MaxBackoff: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ackedVersions(c *Client) map[string]string {
	out := map[string]string{}
	for _, s := range c.Snapshots() {
		out[shortType(s.TypeURL)] = s.Version
	}
	return out
}

// testLogger logs through t at warning level and above.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

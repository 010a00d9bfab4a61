package xdsserver

import (
	"context"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testCluster = "outbound|9080||reviews.default.svc.cluster.local"

// fakeTranslate stands in for translate.Build: one listener per
// VirtualService (plus "virtualOutbound"), one EDS cluster, and its
// endpoints from the WorkloadEntries in the config. A VirtualService named
// "broken" yields an invalid listener.
func fakeTranslate(in translate.Input) (*translate.Output, error) {
	out := &translate.Output{}
	listeners := []string{"virtualOutbound"}
	var addrs []string
	for _, o := range in.Config {
		switch o.Kind {
		case config.KindVirtualService:
			listeners = append(listeners, o.Name)
		case config.KindWorkloadEntry:
			addrs = append(addrs, o.Spec.(*networking.WorkloadEntry).GetAddress())
		}
	}
	sort.Strings(addrs)
	for _, name := range listeners {
		l := &listener.Listener{Name: name, Address: sockAddr(in.Proxy.IP, 15001)}
		if name == "broken" {
			l.Address = nil
			l.Name = ""
		}
		out.Listeners = append(out.Listeners, l)
	}
	out.Clusters = []types.Resource{&cluster.Cluster{
		Name:                 testCluster,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			ServiceName: testCluster,
			EdsConfig:   &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}},
		},
		ConnectTimeout: durationpb.New(10 * time.Second),
	}}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: testCluster}
	if len(addrs) > 0 {
		loc := &endpoint.LocalityLbEndpoints{}
		for _, a := range addrs {
			loc.LbEndpoints = append(loc.LbEndpoints, &endpoint.LbEndpoint{HostIdentifier: &endpoint.LbEndpoint_Endpoint{
				Endpoint: &endpoint.Endpoint{Address: sockAddr(a, 9080)}}})
		}
		cla.Endpoints = []*endpoint.LocalityLbEndpoints{loc}
	}
	out.Endpoints = []types.Resource{cla}
	return out, nil
}

func sockAddr(ip string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}}
}

func fakeRegistry([]*config.Object) *registry.Registry { return &registry.Registry{} }

// harness is a running server on a loopback port with its store.
type harness struct {
	srv   *Server
	store *store.Mem
	addr  string
}

func startServer(t *testing.T, st *store.Mem, grace time.Duration) *harness {
	t.Helper()
	if st == nil {
		st = newMem(t, "")
	}
	srv, err := New(Options{Store: st, Registry: fakeRegistry, Translate: fakeTranslate,
		Debounce: 5 * time.Millisecond, RegistrationGrace: grace, Authenticated: testAuthenticated})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{srv: srv, store: st, addr: lis.Addr().String()}
}

func newMem(t *testing.T, dataDir string) *store.Mem {
	t.Helper()
	st, err := store.New(store.Options{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// plaintextHeader marks a test stream as unauthenticated (testAuthenticated).
const plaintextHeader = "x-test-plaintext"

// testAuthenticated stands in for the :15012 server's client certificates:
// a stream is authenticated unless it carries plaintextHeader.
func testAuthenticated(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(plaintextHeader)) == 0
}

// plaintextCtx marks ctx's streams unauthenticated.
func plaintextCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, plaintextHeader, "1")
}

// adsClient opens an ADS client connection; closed at test end.
func adsClient(t *testing.T, addr string) discoverygrpc.AggregatedDiscoveryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)
}

// testNode is a sidecar node; with svc it announces WEFT_SERVICE.
func testNode(t *testing.T, ip, name string, svc bool) *core.Node {
	t.Helper()
	md := map[string]any{
		"NAMESPACE": "default", "WORKLOAD_NAME": name, "SERVICE_ACCOUNT": "bookinfo-reviews",
		"LABELS": map[string]any{"app": "reviews", "version": "v2"}, "INSTANCE_IPS": ip,
		"ADMIN_ADDRESS": ip + ":15000",
	}
	if svc {
		md["WEFT_SERVICE"] = map[string]any{"name": "reviews",
			"ports": []any{map[string]any{"name": "http", "number": 9080, "protocol": "HTTP"}}}
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: "sidecar~" + ip + "~" + name + ".default~default.svc.cluster.local", Metadata: st}
}

// applyYAML parses and applies YAML to the store.
func applyYAML(t *testing.T, st store.Store, yaml string) {
	t.Helper()
	objs, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}
}

func workloadYAML(name, ip string) string {
	return "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: " + name +
		"}\nspec: {address: " + ip + ", labels: {app: reviews}}\n"
}

func vsYAML(name string) string {
	return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " + name +
		"}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}\n"
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxyStatus returns the status of node id, if connected.
func proxyStatus(s *Server, id string) (ProxyStatus, bool) {
	for _, p := range s.Proxies() {
		if p.ID == id {
			return p, true
		}
	}
	return ProxyStatus{}, false
}

func shortType(typeURL string) string { return typeURL[strings.LastIndexByte(typeURL, '.')+1:] }

func testProxy(name, ip string) translate.Proxy {
	return translate.Proxy{ID: "sidecar~" + ip + "~" + name + ".default~default.svc.cluster.local", Type: "sidecar",
		Name: name, Namespace: "default", IP: ip, Labels: map[string]string{"app": "reviews"}}
}

// endpointCount is the number of LbEndpoints in an EDS response.
func endpointCount(t *testing.T, resp *discoverygrpc.DiscoveryResponse) int {
	t.Helper()
	n := 0
	for _, a := range resp.GetResources() {
		cla := &endpoint.ClusterLoadAssignment{}
		if err := a.UnmarshalTo(cla); err != nil {
			t.Fatal(err)
		}
		for _, l := range cla.GetEndpoints() {
			n += len(l.GetLbEndpoints())
		}
	}
	return n
}

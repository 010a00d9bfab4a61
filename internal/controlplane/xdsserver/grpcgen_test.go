package xdsserver

import (
	"context"
	"net"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

const grpcEchoYAML = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 50051, name: grpc, protocol: GRPC}]
  endpoints: [{address: 127.0.9.1, labels: {version: v1}}]
`

// startGRPCServer is startServer with the real registry and gRPC translation.
func startGRPCServer(t *testing.T) *harness {
	t.Helper()
	st := newMem(t, "")
	srv, err := New(Options{Store: st, Registry: func(objs []*config.Object) *registry.Registry { return registry.Build(objs) },
		Translate: fakeTranslate, Debounce: 5 * time.Millisecond, RegistrationGrace: time.Minute})
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

// TestProxylessClient drives an ADS stream as grpc-go does (one listener
// name at a time, then its route config, cluster and endpoints): every
// answer holds exactly the names asked for, an unknown target gets a
// listener whose route config has no virtual host, the client is
// "proxyless" in the status and registers nothing though it announces a
// service.
func TestProxylessClient(t *testing.T) {
	h := startGRPCServer(t)
	applyYAML(t, h.store, grpcEchoYAML)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := adsClient(t, h.addr).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := testNode(t, "127.0.9.8", "client-1", true) // announces WEFT_SERVICE
	node.Metadata.Fields["GENERATOR"] = structpb.NewStringValue(GeneratorGRPC)
	c := &sotwClient{t: t, stream: stream, node: node.GetId()}

	const echo = "echo.default.svc.cluster.local:50051"
	const unknown = "nope.default.svc.cluster.local:50051"
	const echoCluster = "outbound|50051||echo.default.svc.cluster.local"
	steps := []struct {
		typeURL string
		names   []string
		want    []string // names in the answer
	}{
		{ListenerType, []string{echo}, []string{echo}},
		{RouteType, []string{echo}, []string{echo}},
		{ClusterType, []string{echoCluster}, []string{echoCluster}},
		{EndpointType, []string{echoCluster}, []string{echoCluster}},
		{ListenerType, []string{echo, unknown}, []string{echo, unknown}},
		{RouteType, []string{echo, unknown}, []string{echo, unknown}},
	}
	versions := map[string]string{}
	for i, st := range steps {
		req := &discovery.DiscoveryRequest{TypeUrl: st.typeURL, ResourceNames: st.names, VersionInfo: versions[st.typeURL]}
		if i == 0 {
			req.Node = node
		}
		c.send(req)
		resp := c.recv()
		if resp.GetTypeUrl() != st.typeURL {
			t.Fatalf("step %d: got %s, want %s", i, shortType(resp.GetTypeUrl()), shortType(st.typeURL))
		}
		versions[st.typeURL] = resp.GetVersionInfo()
		var got []string
		for _, a := range resp.GetResources() {
			var m types.Resource
			switch st.typeURL {
			case ListenerType:
				m = &listener.Listener{}
			case RouteType:
				m = &route.RouteConfiguration{}
			case ClusterType:
				m = &cluster.Cluster{}
			default:
				m = &endpoint.ClusterLoadAssignment{}
			}
			if err := a.UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			got = append(got, cache.GetResourceName(m))
			if rc, ok := m.(*route.RouteConfiguration); ok && (len(rc.GetVirtualHosts()) == 0) != (rc.GetName() == unknown) {
				t.Errorf("route config %q: %d virtual hosts", rc.GetName(), len(rc.GetVirtualHosts()))
			}
		}
		if len(got) != len(st.want) {
			t.Fatalf("step %d %s %v: got %v", i, shortType(st.typeURL), st.names, got)
		}
		for j := range got {
			if got[j] != st.want[j] {
				t.Errorf("step %d %s %v: got %v", i, shortType(st.typeURL), st.names, got)
			}
		}
		c.ack(resp, st.names...)
	}
	ps := wantStatus(t, h, c.node, map[string]string{
		ClusterType: StatusSynced, ListenerType: StatusSynced, EndpointType: StatusSynced, RouteType: StatusSynced})
	if ps.Type != TypeProxyless || ps.Service != nil {
		t.Errorf("status: type %q, service %v; want proxyless, none", ps.Type, ps.Service)
	}
	if _, ok := h.store.Get(config.Key{Kind: config.KindWorkloadEntry, Namespace: "default", Name: "client-1"}); ok {
		t.Error("a proxyless client auto-registered a WorkloadEntry")
	}
}

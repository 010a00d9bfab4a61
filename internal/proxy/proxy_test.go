package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// oneNode hashes every node to one snapshot and remembers the last node.
type oneNode struct {
	mu   sync.Mutex
	node *core.Node
}

func (h *oneNode) ID(n *core.Node) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n != nil {
		h.node = n
	}
	return "proxy"
}

func (h *oneNode) last() *core.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.node
}

// startXDS serves a minimal sidecar config for ip: the capture listener and
// the passthrough cluster.
func startXDS(t *testing.T, ip netip.Addr) (string, *oneNode) {
	t.Helper()
	hash := &oneNode{}
	sc := cache.NewSnapshotCache(true, hash, nil)
	tp, err := anypb.New(&tcpproxy.TcpProxy{StatPrefix: "PassthroughCluster", ClusterSpecifier: &tcpproxy.TcpProxy_Cluster{Cluster: "PassthroughCluster"}})
	if err != nil {
		t.Fatal(err)
	}
	lis := &listener.Listener{
		Name: "virtualOutbound", UseOriginalDst: wrapperspb.Bool(true),
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: ip.String(), PortSpecifier: &core.SocketAddress_PortValue{PortValue: 15001},
		}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: "envoy.filters.network.tcp_proxy", ConfigType: &listener.Filter_TypedConfig{TypedConfig: tp},
		}}}},
	}
	pass := &cluster.Cluster{
		Name: "PassthroughCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
		LbPolicy: cluster.Cluster_CLUSTER_PROVIDED,
	}
	snap, err := cache.NewSnapshot("v1", map[string][]types.Resource{resource.ListenerType: {lis}, resource.ClusterType: {pass}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.SetSnapshot(context.Background(), "proxy", snap); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, server.NewServer(context.Background(), sc, nil))
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String(), hash
}

func TestSidecarLifecycle(t *testing.T) {
	ip, err := RandomLoopbackIP(15000, 15001, 15006, 15021)
	if err != nil {
		t.Fatal(err)
	}
	addr, hash := startXDS(t, ip)
	port, err := ParsePort("http:9080")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(Options{
		Service: "reviews", Version: "v2", Namespace: "default", ServiceAccount: "bookinfo-reviews", IP: ip,
		Ports: []Port{port}, XDSAddress: addr, DrainTime: time.Second, ProxyVersion: "test",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = p.Shutdown()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Name(), "reviews-v2-") || len(p.Name()) != len("reviews-v2-")+5 {
		t.Errorf("default name = %q, want reviews-v2-xxxxx", p.Name())
	}
	checkNode(t, hash.last(), p)
	health := "http://" + netip.AddrPortFrom(ip, 15021).String() + "/healthz/ready"
	if code := status(t, health); code != http.StatusOK {
		t.Errorf("health = %d, want 200", code)
	}
	if body := fetch(t, "http://"+p.AdminAddress()+"/config_dump"); !strings.Contains(body, `"name": "virtualOutbound"`) {
		t.Errorf("config_dump lacks the listener:\n%s", body)
	}
	stopped = true
	if err := p.Shutdown(); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := http.Get(health); err == nil {
		t.Error("health still answers after Shutdown")
	}
	http.DefaultClient.CloseIdleConnections()
}

func checkNode(t *testing.T, n *core.Node, p *Proxy) {
	t.Helper()
	wantID := "sidecar~" + p.IP().String() + "~" + p.Name() + ".default~default.svc.cluster.local"
	if n.GetId() != wantID {
		t.Errorf("node id = %q, want %q", n.GetId(), wantID)
	}
	md := n.GetMetadata().AsMap()
	want := map[string]any{
		"NAMESPACE": "default", "WORKLOAD_NAME": "reviews-v2", // the workload, not the instance p.Name()
		"SERVICE_ACCOUNT": "bookinfo-reviews",
		"LABELS":          map[string]any{"app": "reviews", "version": "v2"}, "INSTANCE_IPS": p.IP().String(),
		"ADMIN_ADDRESS": p.AdminAddress(), "ISTIO_VERSION": "test",
		"WEFT_SERVICE": map[string]any{"name": "reviews", "ports": []any{map[string]any{"name": "http", "number": 9080.0, "protocol": "HTTP"}}},
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("node metadata (-want +got):\n%s", diff)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    Port
		wantErr bool
	}{
		{"http:9080", Port{"http", 9080, "HTTP"}, false},
		{"grpc-api:7070", Port{"grpc-api", 7070, "GRPC"}, false},
		{"mongo:27017", Port{"mongo", 27017, "Mongo"}, false},
		{"9080", Port{"http", 9080, "HTTP"}, false},
		{"http:0", Port{}, true},
		{"http:70000", Port{}, true},
		{":80", Port{}, true},
		{"http:x", Port{}, true},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestNodeID(t *testing.T) {
	got := NodeID(ModeRouter, netip.MustParseAddr("127.0.0.1"), "istio-ingressgateway", "istio-system")
	if want := "router~127.0.0.1~istio-ingressgateway.istio-system~istio-system.svc.cluster.local"; got != want {
		t.Errorf("NodeID = %q, want %q", got, want)
	}
}

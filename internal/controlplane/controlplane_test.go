package controlplane

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

func TestMain(m *testing.M) {
	// Istio's generated informers cannot tell client-go that the fake
	// clientset does not stream watch lists: list then watch instead.
	os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	goleak.VerifyTestMain(m)
}

const reviewsVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`

// reviewsSE is the reviews service, as a registered proxy would create it.
const reviewsSE = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
`

// startControlPlane runs the control plane on loopback ports until test end.
func startControlPlane(t *testing.T, opts Options) (xdsAddr, httpURL string) {
	t.Helper()
	opts.XDSAddress, opts.HTTPAddress = "127.0.0.1:0", "127.0.0.1:0"
	opts.OTLPGRPCAddress, opts.OTLPHTTPAddress = "127.0.0.1:0", "127.0.0.1:0"
	if opts.SecureXDSAddress == "" {
		opts.SecureXDSAddress = "127.0.0.1:0"
	}
	ready := make(chan [2]net.Addr, 1)
	opts.Ready = func(x, h net.Addr) { ready <- [2]net.Addr{x, h} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case a := <-ready:
		return a[0].String(), "http://" + a[1].String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return "", ""
}

func reviewsNode(t *testing.T) *core.Node {
	t.Helper()
	md, err := structpb.NewStruct(map[string]any{
		"NAMESPACE": "default", "WORKLOAD_NAME": "reviews-v2-1", "INSTANCE_IPS": "127.0.77.7",
		"LABELS":       map[string]any{"app": "reviews", "version": "v2"},
		"WEFT_SERVICE": map[string]any{"name": "reviews", "ports": []any{map[string]any{"name": "http", "number": 9080}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &core.Node{Id: "sidecar~127.0.77.7~reviews-v2-1.default~default.svc.cluster.local", Metadata: md}
}

// TestProxyGetsTranslatedConfig runs the whole control plane with the real
// registry and translate: on plaintext xDS a proxy that asks to be
// registered is refused and nothing is stored; one that only reads gets
// valid LDS and CDS, ACKs them, and shows as SYNCED (and plaintext)
// through the HTTP API.
func TestProxyGetsTranslatedConfig(t *testing.T) {
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "vs.yaml"), []byte(reviewsVS+"---\n"+reviewsSE), 0o644); err != nil {
		t.Fatal(err)
	}
	xdsAddr, httpURL := startControlPlane(t, Options{ConfigDir: cfgDir, DataDir: t.TempDir(),
		Debounce: time.Millisecond, RegistrationGrace: time.Minute})

	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ads := discovery.NewAggregatedDiscoveryServiceClient(conn)
	register, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := register.Send(&discovery.DiscoveryRequest{Node: reviewsNode(t), TypeUrl: xdsserver.ClusterType}); err != nil {
		t.Fatal(err)
	}
	if _, err := register.Recv(); status.Code(err) != codes.PermissionDenied {
		t.Errorf("registration over plaintext xDS: %v, want PermissionDenied", err)
	}
	client := api.NewClient(httpURL)
	if objs, err := client.Get(ctx, api.Query{Kind: "we"}); err != nil || len(objs) != 0 {
		t.Errorf("WorkloadEntries after a plaintext registration = %v, %v; want none", objs, err)
	}

	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader := reviewsNode(t)
	delete(reader.Metadata.Fields, "WEFT_SERVICE")
	got := syncWildcard(t, stream, reader)
	names := map[string]bool{}
	for _, a := range got[xdsserver.ListenerType].GetResources() {
		l := &listener.Listener{}
		if err := a.UnmarshalTo(l); err != nil {
			t.Fatal(err)
		}
		names[l.GetName()] = true
	}
	if !names["virtualOutbound"] || !names["0.0.0.0_9080"] {
		t.Errorf("listeners = %v, want virtualOutbound and 0.0.0.0_9080", names)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := client.Proxies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 1 && ps[0].Plaintext && ps[0].Types[xdsserver.ClusterType].Status == xdsserver.StatusSynced &&
			ps[0].Types[xdsserver.ListenerType].Status == xdsserver.StatusSynced {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy status never SYNCED: %+v", ps)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunFailsOnBusyAddress(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	err = Run(context.Background(), Options{XDSAddress: lis.Addr().String(), HTTPAddress: "127.0.0.1:0",
		OTLPGRPCAddress: "off", OTLPHTTPAddress: "off", SecureXDSAddress: "off"})
	if err == nil {
		t.Fatal("Run on a busy xDS address succeeded")
	}
}

// syncWildcard subscribes CDS and LDS on stream and ACKs the first response of each.
func syncWildcard(t *testing.T, stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient, node *core.Node) map[string]*discovery.DiscoveryResponse {
	t.Helper()
	for i, typ := range []string{xdsserver.ClusterType, xdsserver.ListenerType} {
		req := &discovery.DiscoveryRequest{TypeUrl: typ}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]*discovery.DiscoveryResponse{}
	for len(got) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got[resp.GetTypeUrl()] = resp
		if err := stream.Send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

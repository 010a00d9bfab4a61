package xdsserver

import (
	"context"
	"fmt"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/weft-mesh/weft/internal/config"
)

// sotwClient is one state-of-the-world ADS stream driven by a test.
type sotwClient struct {
	t      *testing.T
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   string
}

func openSOTW(t *testing.T, h *harness, ctx context.Context, ip, name string, svc bool) *sotwClient {
	t.Helper()
	stream, err := adsClient(t, h.addr).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := testNode(t, ip, name, svc)
	c := &sotwClient{t: t, stream: stream, node: node.GetId()}
	c.send(&discovery.DiscoveryRequest{Node: node, TypeUrl: ClusterType})
	c.send(&discovery.DiscoveryRequest{TypeUrl: ListenerType})
	c.send(&discovery.DiscoveryRequest{TypeUrl: EndpointType, ResourceNames: []string{testCluster}})
	return c
}

func (c *sotwClient) send(req *discovery.DiscoveryRequest) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *sotwClient) recv() *discovery.DiscoveryResponse {
	c.t.Helper()
	resp, err := c.stream.Recv()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return resp
}

// ack ACKs resp, keeping the subscription's resource names.
func (c *sotwClient) ack(resp *discovery.DiscoveryResponse, names ...string) {
	c.send(&discovery.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), VersionInfo: resp.GetVersionInfo(),
		ResponseNonce: resp.GetNonce(), ResourceNames: names})
}

func namesFor(typeURL string) []string {
	if typeURL == EndpointType {
		return []string{testCluster}
	}
	return nil
}

// syncAll receives and ACKs the first response of CDS, LDS and EDS.
func (c *sotwClient) syncAll() map[string]*discovery.DiscoveryResponse {
	got := map[string]*discovery.DiscoveryResponse{}
	for len(got) < 3 {
		resp := c.recv()
		got[resp.GetTypeUrl()] = resp
		c.ack(resp, namesFor(resp.GetTypeUrl())...)
	}
	return got
}

func wantStatus(t *testing.T, h *harness, node string, want map[string]string) ProxyStatus {
	t.Helper()
	var last ProxyStatus
	waitFor(t, "proxy status "+node, func() bool {
		st, ok := proxyStatus(h.srv, node)
		if !ok {
			return false
		}
		last = st
		for typ, w := range want {
			if st.Types[typ].Status != w {
				return false
			}
		}
		return true
	})
	return last
}

func TestSOTWSyncNackAndEndpointOnlyUpdate(t *testing.T) {
	h := startServer(t, nil, time.Minute)
	applyYAML(t, h.store, workloadYAML("reviews-1", "127.0.9.1"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := openSOTW(t, h, ctx, "127.0.9.7", "reviews-v2-1", false)
	first := c.syncAll()
	st := wantStatus(t, h, c.node, map[string]string{
		ClusterType: StatusSynced, ListenerType: StatusSynced, EndpointType: StatusSynced, RouteType: StatusIgnored})
	if st.Name != "reviews-v2-1" || st.Namespace != "default" || st.Type != "sidecar" || st.IP != "127.0.9.7" || st.AdminAddress != "127.0.9.7:15000" {
		t.Errorf("proxy identity = %+v", st)
	}

	// An endpoint-only change sends EDS and nothing else: the next LDS
	// change must be the response right after it.
	applyYAML(t, h.store, workloadYAML("reviews-2", "127.0.9.2"))
	eds := c.recv()
	if eds.GetTypeUrl() != EndpointType {
		t.Fatalf("after an endpoint change got %s, want EDS only", shortType(eds.GetTypeUrl()))
	}
	if eds.GetVersionInfo() == first[EndpointType].GetVersionInfo() {
		t.Errorf("EDS version unchanged: %s", eds.GetVersionInfo())
	}
	c.ack(eds, testCluster)
	applyYAML(t, h.store, vsYAML("reviews"))
	lds := c.recv()
	if lds.GetTypeUrl() != ListenerType || len(lds.GetResources()) != 2 {
		t.Fatalf("after a listener change got %s with %d resources, want LDS with 2", shortType(lds.GetTypeUrl()), len(lds.GetResources()))
	}

	// NACK it: status shows STALE with the error; CDS stays SYNCED.
	c.send(&discovery.DiscoveryRequest{TypeUrl: ListenerType, VersionInfo: first[ListenerType].GetVersionInfo(),
		ResponseNonce: lds.GetNonce(), ErrorDetail: &status.Status{Code: 3, Message: "cannot bind 0.0.0.0:9080"}})
	waitFor(t, "the NACK in the status", func() bool {
		st, _ = proxyStatus(h.srv, c.node)
		return st.Types[ListenerType].Nacked != ""
	})
	st = wantStatus(t, h, c.node, map[string]string{ListenerType: StatusStale, ClusterType: StatusSynced, EndpointType: StatusSynced})
	if got := st.Types[ListenerType]; got.Nacked != "cannot bind 0.0.0.0:9080" || got.Acked != first[ListenerType].GetVersionInfo() {
		t.Errorf("LDS status after NACK = %+v", got)
	}
}

func TestInvalidSnapshotKeepsPrevious(t *testing.T) {
	h := startServer(t, nil, time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := openSOTW(t, h, ctx, "127.0.9.8", "ratings-1", false)
	first := c.syncAll()
	applyYAML(t, h.store, vsYAML("broken"))               // invalid listener: not sent
	applyYAML(t, h.store, workloadYAML("w", "127.0.9.3")) // then a valid EDS change
	// The broken config is rejected as a whole, so nothing changes until the
	// VirtualService goes away.
	if _, err := h.store.Delete([]config.Key{{Kind: config.KindVirtualService, Namespace: "default", Name: "broken"}}); err != nil {
		t.Fatal(err)
	}
	resp := c.recv()
	if resp.GetTypeUrl() != EndpointType {
		t.Fatalf("got %s v%s (first %s) %d res, want EDS (the broken listener must never be sent)", shortType(resp.GetTypeUrl()), resp.GetVersionInfo(), first[ListenerType].GetVersionInfo(), len(resp.GetResources()))
	}
	if lds := h.srv.Proxies()[0].Types[ListenerType]; lds.Sent != first[ListenerType].GetVersionInfo() {
		t.Errorf("LDS sent %q, want the first version %q", lds.Sent, first[ListenerType].GetVersionInfo())
	}
}

// TestDeltaSyncAndEndpointOnlyUpdate, authenticated and plaintext (whose
// node is served under a key of its own): delta streams sync and get
// endpoint-only updates.
func TestDeltaSyncAndEndpointOnlyUpdate(t *testing.T) {
	for _, plaintext := range []bool{false, true} {
		t.Run(fmt.Sprintf("plaintext=%t", plaintext), func(t *testing.T) {
			h := startServer(t, nil, time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if plaintext {
				ctx = plaintextCtx(ctx)
			}
			stream, err := adsClient(t, h.addr).DeltaAggregatedResources(ctx)
			if err != nil {
				t.Fatal(err)
			}
			node := testNode(t, "127.0.9.9", "details-1", false)
			send := func(req *discovery.DeltaDiscoveryRequest) {
				t.Helper()
				if err := stream.Send(req); err != nil {
					t.Fatal(err)
				}
			}
			send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: ClusterType})
			send(&discovery.DeltaDiscoveryRequest{TypeUrl: ListenerType})
			send(&discovery.DeltaDiscoveryRequest{TypeUrl: EndpointType, ResourceNamesSubscribe: []string{testCluster}})
			recv := func() *discovery.DeltaDiscoveryResponse {
				t.Helper()
				resp, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				send(&discovery.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()})
				return resp
			}
			for seen := map[string]bool{}; len(seen) < 3; {
				seen[recv().GetTypeUrl()] = true
			}
			wantStatus(t, h, node.GetId(), map[string]string{
				ClusterType: StatusSynced, ListenerType: StatusSynced, EndpointType: StatusSynced, RouteType: StatusIgnored})

			applyYAML(t, h.store, workloadYAML("reviews-3", "127.0.9.4"))
			if resp := recv(); resp.GetTypeUrl() != EndpointType || len(resp.GetResources()) != 1 {
				t.Fatalf("after an endpoint change got %s with %d resources, want EDS with 1", shortType(resp.GetTypeUrl()), len(resp.GetResources()))
			}
			applyYAML(t, h.store, vsYAML("details"))
			if resp := recv(); resp.GetTypeUrl() != ListenerType || len(resp.GetResources()) != 1 {
				t.Fatalf("after a listener change got %s with %d resources, want LDS with the new one", shortType(resp.GetTypeUrl()), len(resp.GetResources()))
			}
			wantStatus(t, h, node.GetId(), map[string]string{ListenerType: StatusSynced, EndpointType: StatusSynced})
		})
	}
}

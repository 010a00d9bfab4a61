package xdsserver

import (
	"context"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

func weKey(name string) config.Key {
	return config.Key{Kind: config.KindWorkloadEntry, Namespace: "default", Name: name}
}

func stored(st store.Store, key config.Key) bool {
	_, ok := st.Get(key)
	return ok
}

func TestAutoRegistration(t *testing.T) {
	h := startServer(t, nil, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c := openSOTW(t, h, ctx, "127.0.9.21", "reviews-v2-1", true)
	first := c.syncAll()

	we, ok := h.store.Get(weKey("reviews-v2-1"))
	if !ok {
		t.Fatal("no WorkloadEntry after the proxy connected")
	}
	spec := we.Spec.(*networking.WorkloadEntry)
	if spec.GetAddress() != "127.0.9.21" || spec.GetLabels()["version"] != "v2" || spec.GetServiceAccount() != "bookinfo-reviews" ||
		we.Annotations[config.AnnotationAutoRegistered] != "true" || we.Source != store.SourceAutoRegistration {
		t.Errorf("WorkloadEntry = %+v %v", we, spec)
	}
	se, ok := h.store.Get(config.Key{Kind: config.KindServiceEntry, Namespace: "default", Name: "reviews"})
	if !ok {
		t.Fatal("no ServiceEntry after the proxy connected")
	}
	ses := se.Spec.(*networking.ServiceEntry)
	if ses.GetHosts()[0] != "reviews.default.svc.cluster.local" || ses.GetPorts()[0].GetNumber() != 9080 ||
		ses.GetWorkloadSelector().GetLabels()["app"] != "reviews" || ses.GetResolution() != networking.ServiceEntry_STATIC {
		t.Errorf("ServiceEntry = %v", ses)
	}
	// The proxy is registered before its first snapshot is built.
	if n := endpointCount(t, first[EndpointType]); n != 1 {
		t.Errorf("first EDS has %d resources, want the proxy's own endpoint", n)
	}

	cancel()
	waitFor(t, "the WorkloadEntry removed after the grace period", func() bool { return !stored(h.store, weKey("reviews-v2-1")) })
	if !stored(h.store, config.Key{Kind: config.KindServiceEntry, Namespace: "default", Name: "reviews"}) {
		t.Error("the ServiceEntry was removed with the workload")
	}
	if _, ok := proxyStatus(h.srv, c.node); ok {
		t.Error("a disconnected proxy is still listed")
	}
}

func TestUserWorkloadEntryNotTaken(t *testing.T) {
	h := startServer(t, nil, 10*time.Millisecond)
	applyYAML(t, h.store, workloadYAML("reviews-v9", "127.0.9.50"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	c := openSOTW(t, h, ctx, "127.0.9.22", "reviews-v9", true)
	c.syncAll()
	cancel()
	waitFor(t, "the proxy gone", func() bool { return len(h.srv.Proxies()) == 0 })
	we, ok := h.store.Get(weKey("reviews-v9"))
	if !ok || we.Spec.(*networking.WorkloadEntry).GetAddress() != "127.0.9.50" {
		t.Errorf("user WorkloadEntry changed or removed: %v", we)
	}
}

func TestPersistedRegistrationsExpireAfterRestart(t *testing.T) {
	dir := t.TempDir()
	st := newMem(t, dir)
	gone := workloadEntry(&proxyInfo{proxy: testProxy("gone-1", "127.0.9.31"), service: &ServiceInfo{Name: "reviews"}})
	back := workloadEntry(&proxyInfo{proxy: testProxy("back-1", "127.0.9.32"), service: &ServiceInfo{Name: "reviews"}})
	if _, err := st.Apply([]*config.Object{gone, back}); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, st, workloadYAML("manual-1", "127.0.9.33"))
	h := startServer(t, st, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	openSOTW(t, h, ctx, "127.0.9.32", "back-1", true).syncAll()
	waitFor(t, "the stale registration removed", func() bool { return !stored(st, weKey("gone-1")) })
	if !stored(st, weKey("back-1")) {
		t.Error("the registration of a reconnected proxy was removed")
	}
	if !stored(st, weKey("manual-1")) {
		t.Error("a user WorkloadEntry was removed")
	}
}

func TestReconnectWithinGraceKeepsRegistration(t *testing.T) {
	h := startServer(t, nil, time.Hour)
	pending := func() int {
		h.srv.mu.Lock()
		defer h.srv.mu.Unlock()
		return len(h.srv.pending)
	}
	ctx1, cancel1 := context.WithTimeout(context.Background(), time.Minute)
	openSOTW(t, h, ctx1, "127.0.9.41", "reviews-v3-1", true).syncAll()
	cancel1()
	waitFor(t, "the removal scheduled", func() bool { return pending() == 1 })

	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	openSOTW(t, h, ctx2, "127.0.9.41", "reviews-v3-1", true).syncAll()
	if n := pending(); n != 0 {
		t.Errorf("%d removals still scheduled after the proxy came back", n)
	}
	if !stored(h.store, weKey("reviews-v3-1")) {
		t.Error("the WorkloadEntry is gone")
	}
}

// TestPlaintextStreams checks what a caller without an identity gets: no
// registration, no one else's config, never an authenticated proxy's snapshot.
func TestPlaintextStreams(t *testing.T) {
	h := startServer(t, nil, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := func(name, ip string, svc bool) error {
		t.Helper()
		stream, err := adsClient(t, h.addr).StreamAggregatedResources(plaintextCtx(ctx))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discovery.DiscoveryRequest{Node: testNode(t, ip, name, svc), TypeUrl: ListenerType}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		return err
	}
	// Authenticated: registered, as before.
	openSOTW(t, h, ctx, "127.0.9.61", "ratings-v1-1", true).syncAll()

	tests := []struct {
		name, node, ip string
		svc            bool
	}{
		{"registration", "ratings-evil", "127.0.9.62", true},
		{"an authenticated proxy's node", "ratings-v1-1", "127.0.9.61", false},
		{"a registered proxy's node, gone", "reviews-gone-1", "127.0.9.63", false},
	}
	gone := workloadEntry(&proxyInfo{proxy: testProxy("reviews-gone-1", "127.0.9.63"), service: &ServiceInfo{Name: "reviews"}})
	if _, err := h.store.Apply([]*config.Object{gone}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refused(tt.node, tt.ip, tt.svc)
			if status.Code(err) != codes.PermissionDenied {
				t.Errorf("plaintext stream for %s: %v, want PermissionDenied", tt.node, err)
			}
		})
	}
	if stored(h.store, weKey("ratings-evil")) {
		t.Error("a plaintext stream registered a WorkloadEntry")
	}

	// A node no one holds is served, under a key of its own, with no identity.
	pc := openSOTW(t, h, plaintextCtx(ctx), "127.0.9.64", "reader-1", false)
	pc.syncAll()
	var plain []ProxyStatus
	for _, p := range h.srv.Proxies() {
		if p.Plaintext {
			plain = append(plain, p)
		}
	}
	if len(plain) != 1 || plain[0].ID != pc.node || plain[0].ServiceAccount != "" {
		t.Errorf("plaintext proxies = %+v, want reader-1 with no service account", plain)
	}
	// The authenticated owner of that node then connects: it gets its own
	// snapshot, and the plaintext stream is refused at its next request.
	openSOTW(t, h, ctx, "127.0.9.64", "reader-1", false).syncAll()
	pc.send(&discovery.DiscoveryRequest{TypeUrl: ListenerType, ResponseNonce: "stale"})
	// A response already on its way may come first; the refusal follows.
	var err error
	for range 10 {
		if _, err = pc.stream.Recv(); err != nil {
			break
		}
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("plaintext stream after its node was authenticated: %v, want PermissionDenied", err)
	}
}

package metrics

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

func TestServiceDiscovery(t *testing.T) {
	proxies := func() []xdsserver.ProxyStatus {
		return []xdsserver.ProxyStatus{
			{Name: "reviews-v2-1", Namespace: "default", Type: "sidecar", IP: "127.0.1.7",
				Labels: map[string]string{"app": "reviews", "version": "v2"}},
			{Name: "istio-ingressgateway", Namespace: "istio-system", Type: "router", IP: "127.0.0.1",
				Labels: map[string]string{"istio": "ingressgateway"}},
			{Name: "no-ip", Namespace: "default", Type: "sidecar"},
		}
	}
	srv := httptest.NewServer(Mount(http.NotFoundHandler(), NewQuerier(NewStore(StoreOptions{})), TargetsFunc(proxies)))
	defer srv.Close()
	resp, err := http.Get(srv.URL + TargetsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []SDGroup
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := []SDGroup{
		{Targets: []string{"127.0.1.7:15090"}, Labels: map[string]string{"__metrics_path__": "/stats/prometheus",
			"namespace": "default", "pod": "reviews-v2-1", "app": "reviews", "version": "v2", "proxy_type": "sidecar"}},
		{Targets: []string{"127.0.0.1:15090"}, Labels: map[string]string{"__metrics_path__": "/stats/prometheus",
			"namespace": "istio-system", "pod": "istio-ingressgateway", "proxy_type": "router"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

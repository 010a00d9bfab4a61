package cpmetrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination:
        host: reviews
`

func TestMetrics(t *testing.T) {
	proxies := []xdsserver.ProxyStatus{{Name: "a", Version: "1.0"}, {Name: "b", Version: "1.0"}, {Name: "c", Version: "dev"}}
	m := New(func() []xdsserver.ProxyStatus { return proxies })
	h := m.Hooks()
	h.Pushed(xdsserver.ClusterType)
	h.Pushed(xdsserver.ClusterType)
	h.Pushed(xdsserver.RouteType)
	h.Rejected(xdsserver.ListenerType)
	h.SnapshotSet(20*time.Millisecond, 300*time.Millisecond)
	h.SnapshotSet(10*time.Millisecond, 0) // a new proxy's first snapshot: no convergence

	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m.WatchStore(st)
	objs, err := config.Parse("vs.yaml", []byte(vs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}
	changed, err := config.Parse("vs.yaml", []byte(strings.Replace(vs, "host: reviews\n", "host: reviews\n      weight: 100\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(changed); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Delete([]config.Key{objs[0].Key()}); err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(Mount(http.NotFoundHandler(), m))
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`pilot_xds_pushes{type="cds"} 2`,
		`pilot_xds_pushes{type="rds"} 1`,
		`pilot_total_xds_rejects{type="lds"} 1`,
		`pilot_xds{version="1.0"} 2`,
		`pilot_xds{version="dev"} 1`,
		`pilot_proxy_convergence_time_count 1`,
		`pilot_proxy_convergence_time_bucket{le="0.5"} 1`,
		`pilot_proxy_convergence_time_bucket{le="0.1"} 0`,
		`pilot_xds_push_time_count 2`,
		`pilot_config_events{event="add",kind="VirtualService"} 1`,
		`pilot_config_events{event="update",kind="VirtualService"} 1`,
		`pilot_config_events{event="delete",kind="VirtualService"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
	// The API behind keeps its paths.
	resp, err = http.Get(srv.URL + "/api/v1/proxies")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("other paths: HTTP %d, want the next handler's 404", resp.StatusCode)
	}
}

package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/internal/proxy/dataplane"
	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeConfig []xdsclient.Snapshot

func (f fakeConfig) Snapshots() []xdsclient.Snapshot { return f }

type fakeData struct {
	ready    atomic.Bool
	clusters []dataplane.ClusterStatus
}

func (f *fakeData) Ready() bool                         { return f.ready.Load() }
func (f *fakeData) Clusters() []dataplane.ClusterStatus { return f.clusters }

var updated = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func newTestServer(t *testing.T) (*Server, *fakeData) {
	t.Helper()
	l, err := anypb.New(&listener.Listener{Name: "virtualOutbound"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fakeConfig{
		{TypeURL: xdsclient.ListenerType, Version: "v1", Updated: updated, Resources: []*anypb.Any{l}},
		{TypeURL: xdsclient.RouteType}, {TypeURL: xdsclient.ClusterType}, {TypeURL: xdsclient.EndpointType},
	}
	data := &fakeData{clusters: []dataplane.ClusterStatus{{
		Name: "outbound|9080||reviews.default.svc.cluster.local",
		Endpoints: []dataplane.EndpointStatus{
			{Address: "127.0.1.7:9080", Weight: 1, Healthy: true, ActiveRequests: 2, TotalRequests: 10, FailedRequests: 1},
			{Address: "127.0.1.8:9080", Weight: 1},
		},
	}}}
	node := &core.Node{Id: "sidecar~127.0.1.7~reviews-v2-1.default~default.svc.cluster.local"}
	return New(Options{Node: node, Config: cfg, Data: data, Version: "test"}), data
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestConfigDump(t *testing.T) {
	s, _ := newTestServer(t)
	code, body := get(t, s.AdminHandler(), "/config_dump")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var dump struct {
		Configs []struct {
			Type             string `json:"@type"`
			VersionInfo      string `json:"version_info"`
			DynamicListeners []struct {
				Name        string `json:"name"`
				ActiveState struct {
					VersionInfo string         `json:"version_info"`
					LastUpdated string         `json:"last_updated"`
					Listener    map[string]any `json:"listener"`
				} `json:"active_state"`
			} `json:"dynamic_listeners"`
		} `json:"configs"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatalf("decoding: %v\n%s", err, body)
	}
	var types []string
	for _, c := range dump.Configs {
		types = append(types, c.Type[strings.LastIndexByte(c.Type, '.')+1:])
	}
	if got, want := strings.Join(types, ","), "ListenersConfigDump,RoutesConfigDump,ClustersConfigDump,EndpointsConfigDump"; got != want {
		t.Errorf("config types = %s, want %s", got, want)
	}
	l := dump.Configs[0].DynamicListeners[0]
	if l.Name != "virtualOutbound" || l.ActiveState.VersionInfo != "v1" || l.ActiveState.LastUpdated != "2026-11-22T12:00:00Z" ||
		l.ActiveState.Listener["name"] != "virtualOutbound" {
		t.Errorf("listener dump = %+v", l)
	}
}

func TestClusters(t *testing.T) {
	s, _ := newTestServer(t)
	tests := []struct {
		path string
		want []string
	}{
		{"/clusters", []string{
			"outbound|9080||reviews.default.svc.cluster.local::127.0.1.7:9080::rq_active::2\n",
			"outbound|9080||reviews.default.svc.cluster.local::127.0.1.7:9080::rq_total::10\n",
			"outbound|9080||reviews.default.svc.cluster.local::127.0.1.7:9080::health_flags::healthy\n",
			"outbound|9080||reviews.default.svc.cluster.local::127.0.1.8:9080::health_flags::/failed_outlier_check\n",
		}},
		{"/clusters?format=json", []string{
			`"name": "outbound|9080||reviews.default.svc.cluster.local"`, `"port_value": 9080`,
			`"eds_health_status": "HEALTHY"`, `"eds_health_status": "UNHEALTHY"`, `"name": "rq_total"`,
		}},
	}
	for _, tt := range tests {
		code, body := get(t, s.AdminHandler(), tt.path)
		if code != http.StatusOK {
			t.Errorf("%s: status %d", tt.path, code)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s lacks %q:\n%s", tt.path, w, body)
			}
		}
	}
	if code, _ := get(t, s.AdminHandler(), "/clusters?format=yaml"); code != http.StatusBadRequest {
		t.Errorf("bad format: status %d, want 400", code)
	}
}

func TestReadiness(t *testing.T) {
	s, data := newTestServer(t)
	check := func(stage string, wantCode int, wantState string) {
		t.Helper()
		if code, _ := get(t, s.HealthHandler(), "/healthz/ready"); code != wantCode {
			t.Errorf("%s: /healthz/ready = %d, want %d", stage, code, wantCode)
		}
		if code, body := get(t, s.AdminHandler(), "/ready"); code != wantCode || strings.TrimSpace(body) != wantState {
			t.Errorf("%s: /ready = %d %q, want %d %q", stage, code, body, wantCode, wantState)
		}
		if _, body := get(t, s.AdminHandler(), "/server_info"); !strings.Contains(body, `"state": "`+wantState+`"`) {
			t.Errorf("%s: /server_info lacks state %s:\n%s", stage, wantState, body)
		}
	}
	check("before config", http.StatusServiceUnavailable, StateInitializing)
	data.ready.Store(true)
	check("ready", http.StatusOK, StateLive)
	s.SetDraining()
	check("draining", http.StatusServiceUnavailable, StateDraining)
}

func TestListen(t *testing.T) {
	s, data := newTestServer(t)
	data.ready.Store(true)
	if err := s.Listen("127.0.0.1:0", "127.0.0.1:0", "", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	_, health := s.Addrs()
	resp, err := http.Get("http://" + health + "/healthz/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("health over TCP = %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestMergedMetricsDialsWithAppDial: the app's metrics are fetched over
// AppDial (the app's network namespace) whatever host the URL names.
func TestMergedMetricsDialsWithAppDial(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "app_requests_total 7")
	}))
	defer app.Close()
	dialed := 0
	s := New(Options{AppMetricsURL: "http://app.invalid:9/metrics",
		AppDial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			dialed++
			return (&net.Dialer{}).DialContext(ctx, network, app.Listener.Addr().String())
		}})
	rec := httptest.NewRecorder()
	s.MergedHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus", nil))
	if !strings.Contains(rec.Body.String(), "app_requests_total 7") || dialed != 1 {
		t.Errorf("merged metrics (%d dials): %q, want the app's over AppDial", dialed, rec.Body.String())
	}
}

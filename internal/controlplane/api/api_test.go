package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const vsReviews = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`

const drReviews = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: prod
spec:
  host: reviews
`

// testAdminToken is the admin token of the tests' API.
const testAdminToken = "weft-admin.test-token"

// newAPI serves the API over a store on a loopback port and returns a client for it.
func newAPI(t *testing.T, proxies func() []xdsserver.ProxyStatus) (*Client, *store.Mem) {
	t.Helper()
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(NewHandler(Options{Store: st, Proxies: proxies, Authorizer: authz.New(authz.Options{AdminToken: testAdminToken})}))
	t.Cleanup(srv.Close)
	c := NewClientWith(srv.URL, ClientOptions{Token: testAdminToken})
	t.Cleanup(c.http.CloseIdleConnections)
	return c, st
}

func resultLines(rs []Result) string {
	var lines []string
	for _, r := range rs {
		lines = append(lines, r.String())
	}
	return strings.Join(lines, "\n")
}

func TestApplyActions(t *testing.T) {
	c, st := newAPI(t, nil)
	ctx := context.Background()
	tests := []struct {
		name, yaml, want string
	}{
		{"create", vsReviews + "---\n" + drReviews,
			"virtualservice.networking.istio.io/reviews created\ndestinationrule.networking.istio.io/reviews created"},
		{"same again", vsReviews, "virtualservice.networking.istio.io/reviews unchanged"},
		{"change", strings.Replace(vsReviews, "subset: v1", "subset: v2", 1), "virtualservice.networking.istio.io/reviews configured"},
	}
	for _, tt := range tests {
		rs, err := c.Apply(ctx, "reviews.yaml", []byte(tt.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := resultLines(rs); got != tt.want {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
	o, ok := st.Get(config.Key{Kind: config.KindVirtualService, Namespace: "default", Name: "reviews"})
	if !ok || o.Source != store.SourceAPI {
		t.Errorf("stored object = %+v, want source %q", o, store.SourceAPI)
	}
}

func TestApplyErrorsAllOrNothing(t *testing.T) {
	c, st := newAPI(t, nil)
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"missing host", vsReviews + "---\n" + strings.Replace(drReviews, "host: reviews", "trafficPolicy: {}", 1),
			[]string{"bad.yaml", "DestinationRule prod/reviews", "host"}},
		{"unknown field", strings.Replace(vsReviews, "hosts:", "hostz:", 1), []string{"bad.yaml", "hostz"}},
		{"not yaml", "kind: [", []string{"bad.yaml"}},
		{"empty", "", []string{"no Istio config objects"}},
	}
	for _, tt := range tests {
		_, err := c.Apply(context.Background(), "bad.yaml", []byte(tt.yaml))
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: err = %v, want a 400", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tt.name, err, w)
			}
		}
	}
	if _, objs := st.Snapshot(); len(objs) != 0 {
		t.Errorf("failed applies stored %d objects", len(objs))
	}
}

func TestGetFilters(t *testing.T) {
	c, _ := newAPI(t, nil)
	ctx := context.Background()
	if _, err := c.Apply(ctx, "x.yaml", []byte(vsReviews+"---\n"+drReviews)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		q    Query
		want string
	}{
		{Query{}, "DestinationRule prod/reviews,VirtualService default/reviews"},
		{Query{Kind: "vs"}, "VirtualService default/reviews"},
		{Query{Kind: "destinationrules", Namespace: "default"}, ""},
		{Query{Namespace: "prod", Name: "reviews"}, "DestinationRule prod/reviews"},
	}
	for _, tt := range tests {
		objs, err := c.Get(ctx, tt.q)
		if err != nil {
			t.Fatalf("%+v: %v", tt.q, err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key().String())
		}
		if got := strings.Join(keys, ","); got != tt.want {
			t.Errorf("%+v: got %q, want %q", tt.q, got, tt.want)
		}
	}
	y, err := c.GetYAML(ctx, Query{Kind: "VirtualService", Name: "reviews"})
	if err != nil || !strings.Contains(string(y), "kind: VirtualService") || !strings.Contains(string(y), "subset: v1") {
		t.Errorf("GetYAML = %q, %v", y, err)
	}
	for _, q := range []Query{{Kind: "pods"}, {Kind: "vs", Name: "nope"}} {
		var apiErr *Error
		if _, err := c.Get(ctx, q); !errors.As(err, &apiErr) {
			t.Errorf("%+v: err = %v, want an API error", q, err)
		}
	}
}

func TestDelete(t *testing.T) {
	c, st := newAPI(t, nil)
	ctx := context.Background()
	if _, err := c.Apply(ctx, "x.yaml", []byte(vsReviews)); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Delete(ctx, "x.yaml", []byte(vsReviews+"---\n"+drReviews))
	if got := resultLines(rs); got != "virtualservice.networking.istio.io/reviews deleted" {
		t.Errorf("deleted %q", got)
	}
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(err.Error(), "prod/reviews") {
		t.Errorf("err = %v, want not found naming prod/reviews", err)
	}
	if _, objs := st.Snapshot(); len(objs) != 0 {
		t.Errorf("%d objects left", len(objs))
	}
}

func TestProxies(t *testing.T) {
	want := []xdsserver.ProxyStatus{{ID: "sidecar~127.0.0.9~a.default~default.svc.cluster.local", Name: "a", Namespace: "default",
		ConnectedSince: time.Unix(1700000000, 0).UTC(),
		Types:          map[string]xdsserver.TypeStatus{xdsserver.ClusterType: {Sent: "v1", Acked: "v1", Status: xdsserver.StatusSynced}}}}
	c, _ := newAPI(t, func() []xdsserver.ProxyStatus { return want })
	got, err := c.Proxies(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != want[0].ID || got[0].Types[xdsserver.ClusterType] != want[0].Types[xdsserver.ClusterType] ||
		!got[0].ConnectedSince.Equal(want[0].ConnectedSince) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestUnreachable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	_, err = NewClient("http://" + addr).Proxies(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach the control plane at http://"+addr) ||
		!strings.Contains(err.Error(), "weft control-plane") {
		t.Errorf("err = %v", err)
	}
}

package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

func TestAnalyzeLive(t *testing.T) {
	c, st := newAPI(t, nil)
	// Stored directly: apply would refuse nothing here, but the store is
	// what GET /api/v1/analyze reads.
	objs, err := config.Parse("t.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviewz}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: other}
spec:
  hosts: [ratings]
  http:
  - route:
    - destination: {host: ratingz}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}
	get := func(query string) []AnalyzeMessage {
		resp, err := c.http.Get(c.base + AnalyzePath + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: HTTP %d", AnalyzePath, resp.StatusCode)
		}
		var r AnalyzeResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r.Messages
	}
	type obj struct{ Kind, Namespace, Name, Code string }
	keys := func(ms []AnalyzeMessage) []obj {
		var out []obj
		for _, m := range ms {
			if m.Level == "" || m.Message == "" || m.Origin == "" {
				t.Errorf("incomplete message %+v", m)
			}
			out = append(out, obj{m.Kind, m.Namespace, m.ObjectName, m.Code})
		}
		return out
	}
	all := keys(get(""))
	if len(all) == 0 {
		t.Fatal("no messages for a VirtualService routing to an unknown host")
	}
	for _, k := range keys(get("?namespace=default")) {
		if k.Namespace != "default" {
			t.Errorf("namespace=default returned %+v", k)
		}
	}
	if got := keys(get("?namespace=none")); len(got) != 0 {
		t.Errorf("namespace=none: %v", cmp.Diff([]obj(nil), got))
	}
}

// TestAnalyzeLiveKnowsPlatformServices: a host that only the platform
// (Kubernetes) registry has is found, so no IST0101 is reported.
func TestAnalyzeLiveKnowsPlatformServices(t *testing.T) {
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := config.Parse("t.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: ratings}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(objs); err != nil {
		t.Fatal(err)
	}
	codes := func(services func() *registry.Registry) []string {
		rec := httptest.NewRecorder()
		NewHandler(Options{Store: st, Services: services}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, AnalyzePath, nil))
		var r AnalyzeResponse
		if err := json.NewDecoder(rec.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range r.Messages {
			out = append(out, m.Code)
		}
		return out
	}
	if got := codes(nil); !cmp.Equal(got, []string{"IST0101"}) {
		t.Errorf("without the platform's services: %v, want IST0101", got)
	}
	k8s := &registry.Registry{Services: []*registry.Service{{Hostname: "ratings.default.svc.cluster.local", Name: "ratings", Namespace: "default"}}}
	if got := codes(func() *registry.Registry { return k8s }); len(got) != 0 {
		t.Errorf("with ratings a platform service: %v, want none", got)
	}
}

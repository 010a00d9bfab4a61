package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/config"
)

const reviewsRegistry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 9080, protocol: HTTP}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1-1}
spec: {address: 127.0.1.3, labels: {app: reviews, version: v1}}
`

const vsReviewsPlain = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
`

func TestApplyRefusesAnalysisErrors(t *testing.T) {
	c, st := newAPI(t, nil)
	ctx := context.Background()
	if _, err := c.Apply(ctx, "registry.yaml", []byte(reviewsRegistry+"---\n"+vsReviewsPlain)); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Get(config.Key{Kind: config.KindVirtualService, Namespace: "default", Name: "reviews"})
	version := st.Version()

	_, err := c.Apply(ctx, "typo.yaml", []byte(strings.Replace(vsReviewsPlain, "{host: reviews}", "{host: reviewz}", 1)))
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("apply of a VirtualService routing to a missing host: got %v, want HTTP 422", err)
	}
	for _, want := range []string{"typo.yaml", `Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	after, _ := st.Get(config.Key{Kind: config.KindVirtualService, Namespace: "default", Name: "reviews"})
	if st.Version() != version || after != before {
		t.Errorf("the store changed after a refused apply (version %d -> %d)", version, st.Version())
	}
}

func TestApplyWarnings(t *testing.T) {
	c, _ := newAPI(t, nil)
	ctx := context.Background()
	if _, err := c.Apply(ctx, "registry.yaml", []byte(reviewsRegistry)); err != nil {
		t.Fatal(err)
	}
	// A subset defined later and a service that has not registered yet are
	// legitimate orders: reported, not refused.
	vs := strings.Replace(vsReviewsPlain, "{host: reviews}", "{host: reviews, subset: v1}", 1) + `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: ratings}}]
`
	resp, err := c.ApplyChange(ctx, "vs.yaml", []byte(vs))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	want := []string{
		`Error [IST0101] (VirtualService default/ratings) Referenced host not found: "ratings"`,
		`Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v1"`,
	}
	if strings.Join(resp.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(resp.Warnings, "\n"), strings.Join(want, "\n"))
	}
	// Errors in stored objects do not refuse, nor show in, an unrelated apply.
	resp, err = c.ApplyChange(ctx, "dr.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details}
spec:
  host: details
`))
	if err != nil || len(resp.Warnings) != 0 {
		t.Errorf("unrelated apply: err %v, warnings %q", err, resp.Warnings)
	}
}

package config

import (
	"os"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"
)

func TestRateLimitPatches(t *testing.T) {
	data, err := os.ReadFile("../../test/e2e/testdata/local-ratelimit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Parse("local-ratelimit.yaml", data)
	if err != nil {
		t.Fatalf("Istio's local rate limit EnvoyFilter must parse and validate: %v", err)
	}
	ps, err := RateLimitPatches(objs[0].Spec.(*networking.EnvoyFilter))
	if err != nil || len(ps) != 1 {
		t.Fatalf("patches %v, %v", ps, err)
	}
	p := ps[0]
	if p.Route || p.Context != networking.EnvoyFilter_SIDECAR_INBOUND || p.Config.GetTokenBucket().GetMaxTokens() != 4 ||
		p.Config.GetTokenBucket().GetFillInterval().AsDuration().Seconds() != 60 {
		t.Fatalf("decoded patch: %+v", p)
	}

	refused := []struct{ name, yaml, want string }{
		{"cluster patch", `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: x, namespace: default}
spec:
  configPatches:
  - applyTo: CLUSTER
    patch: {operation: MERGE, value: {connect_timeout: 1s}}
`, "spec.configPatches[0]: applyTo CLUSTER is not supported; weft applies only EnvoyFilters that add envoy.filters.http.local_ratelimit"},
		{"another http filter", `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: x, namespace: default}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch: {operation: INSERT_BEFORE, value: {name: envoy.filters.http.lua}}
`, `HTTP filter "envoy.filters.http.lua" is not supported`},
		{"no stat prefix", `apiVersion: networking.istio.io/v1alpha3
kind: EnvoyFilter
metadata: {name: x, namespace: default}
spec:
  configPatches:
  - applyTo: HTTP_FILTER
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          token_bucket: {max_tokens: 4, fill_interval: 1s}
`, "StatPrefix"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("ef.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

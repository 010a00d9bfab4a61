package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// marshals and parses back to the same objects.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(samplesDir, "*", "*.yaml"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], http: [{timeout: 1.5s, route: [{destination: {host: r}}]}]}\n"))
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.b.c], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 1.2.3.4}]}\n"))
	f.Add([]byte(`{"apiVersion":"networking.istio.io/v1beta1","kind":"DestinationRule","metadata":{"name":"d","namespace":"n"},"spec":{"host":"r","trafficPolicy":{"loadBalancer":{"simple":"LEAST_REQUEST"},"connectionPool":{"tcp":{"maxConnections":10,"connectTimeout":"1s"}},"outlierDetection":{"interval":"5m","maxEjectionPercent":50}},"subsets":[{"name":"v1","labels":{"version":"v1"}}]}}`))
	f.Add([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"Gateway","metadata":{"name":"g"},"spec":{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":443,"name":"https","protocol":"HTTPS"},"hosts":["ns/*.example.com"],"tls":{"mode":"SIMPLE","credentialName":"c"}}]}}`))
	f.Add([]byte(`{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"a"},"spec":{"selector":{"matchLabels":{"app":"r"}},"action":"DENY","rules":[{"from":[{"source":{"principals":["*"]}}],"to":[{"operation":{"methods":["GET"]}}]}]}}`))
	f.Add([]byte(`{"apiVersion":"telemetry.istio.io/v1alpha1","kind":"Telemetry","metadata":{"name":"t"},"spec":{"tracing":[{"randomSamplingPercentage":10}]}}`))
	f.Add([]byte(`{"apiVersion":"networking.istio.io/v1alpha3","kind":"Sidecar","metadata":{"name":"s"},"spec":{"egress":[{"hosts":["./*","istio-system/*"]}],"outboundTrafficPolicy":{"mode":"REGISTRY_ONLY"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		out, err := Marshal(objs)
		if err != nil {
			t.Fatalf("Marshal of parsed objects: %v", err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(objs, back, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed objects (-first +second):\n%s\nYAML:\n%s", diff, out)
		}
	})
}

package analyze

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

const samples = "../../../shared/istio-samples/bookinfo"

// bookinfo returns the Bookinfo registry (ServiceEntries and WorkloadEntries
// as weft demo registers them).
func bookinfo(t *testing.T) []*config.Object {
	t.Helper()
	return parseFile(t, "testdata/bookinfo-registry.yaml")
}

func parseFile(t *testing.T, path string) []*config.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := config.ParseWith(filepath.Base(path), data, config.ParseOptions{SkipForeign: true})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func parseYAML(t *testing.T, y string) []*config.Object {
	t.Helper()
	objs, err := config.Parse("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func lines(msgs []Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.String())
	}
	return out
}

const (
	drReviews = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`
	gwBookinfo = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: [bookinfo.example.com]
`
)

func TestMessages(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "clean",
			yaml: drReviews + "---\n" + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews.default.svc.cluster.local, subset: v1}}]
`,
		},
		{
			name: "WEFT0002 what proxyless gRPC clients ignore, for a gRPC service only",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo}
spec:
  hosts: [echo.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: grpc, number: 50051, protocol: GRPC}]
  endpoints: [{address: 127.0.0.9}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web}
spec:
  hosts: [web.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 80, protocol: HTTP}]
  endpoints: [{address: 127.0.0.8}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo}}]
    mirror: {host: echo}
    headers: {request: {set: {x-a: b}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [web]
  http:
  - route: [{destination: {host: web}}]
    mirror: {host: web}
`,
			want: []string{
				`Info [WEFT0002] (VirtualService default/echo) spec.http[0].mirror: proxyless gRPC clients do not mirror; ignored for them.`,
				`Info [WEFT0002] (VirtualService default/echo) spec.http[0].headers: proxyless gRPC clients do not add or remove headers; ignored for them.`,
			},
		},
		{
			name: "IST0101 host not found",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviewz}}]
`,
			want: []string{`Error [IST0101] (VirtualService default/reviews) Referenced host not found: "reviewz"`},
		},
		{
			name: "IST0101 short name resolves in the VirtualService's namespace",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: prod}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}, {destination: {host: reviews.default}}]
`,
			want: []string{`Error [IST0101] (VirtualService prod/reviews) Referenced host not found: "reviews"`},
		},
		{
			name: "IST0101 external and wildcard ServiceEntry hosts are found",
			yaml: `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com, "*.wild.example"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{name: http, number: 80, protocol: HTTP}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: external}
spec:
  hosts: [api.example.com]
  http:
  - route: [{destination: {host: api.example.com}, weight: 50}, {destination: {host: a.wild.example}, weight: 50}]
`,
		},
		{
			name: "IST0101 subset not found",
			yaml: drReviews + "---\n" + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v4}}]
`,
			want: []string{`Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v4"`},
		},
		{
			name: "IST0101 gateway not found, mesh is fine",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: [productpage]
  gateways: [mesh, bogus-gateway]
  http:
  - route: [{destination: {host: productpage}}]
`,
			want: []string{`Error [IST0101] (VirtualService default/bookinfo) Referenced gateway not found: "bogus-gateway"`},
		},
		{
			name: "IST0130 rule after a catch-all",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
  - route: [{destination: {host: reviews}}]
  - name: jason
    match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: reviews}}]
`,
			want: []string{
				`Warning [IST0130] (VirtualService default/reviews) VirtualService rule #1 not used (only the last rule can have no matches).`,
				`Warning [IST0130] (VirtualService default/reviews) VirtualService rule "jason" not used (route without matches defined before).`,
			},
		},
		{
			name: "IST0130 and IST0131 duplicate matches",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /a}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /a}}, {uri: {prefix: /b}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /b}}]
    route: [{destination: {host: reviews}}]
`,
			want: []string{
				`Warning [IST0130] (VirtualService default/reviews) VirtualService rule #2 not used (all matches used by prior rules).`,
				`Info [IST0131] (VirtualService default/reviews) VirtualService rule #1 match #0 is not used (duplicate/overlapping match in rule #0).`,
				`Info [IST0131] (VirtualService default/reviews) VirtualService rule #2 match #0 is not used (duplicate/overlapping match in rule #1).`,
			},
		},
		{
			name: "IST0132 host not in gateway",
			yaml: gwBookinfo + "---\n" + `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: [bookinfo.example.com, wrong.com]
  gateways: [default/bookinfo-gateway]
  http:
  - route: [{destination: {host: productpage}}]
`,
			want: []string{`Warning [IST0132] (VirtualService default/bookinfo) one or more host [wrong.com] defined in VirtualService default/bookinfo not found in Gateway default/bookinfo-gateway.`},
		},
		{
			name: "IST0145 conflicting gateways",
			yaml: gwBookinfo + "---\n" + `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 9090, name: http2, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: elsewhere}
spec:
  selector: {istio: egressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
`,
			want: []string{
				`Error [IST0145] (Gateway default/bookinfo-gateway) Conflict with gateways istio-system/other (workload selector istio=ingressgateway, port 8080, hosts bookinfo.example.com).`,
				`Error [IST0145] (Gateway istio-system/other) Conflict with gateways default/bookinfo-gateway (workload selector istio=ingressgateway, port 8080, hosts *).`,
			},
		},
		{
			name: "IST0173 subset selects no pods",
			yaml: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v4, labels: {version: v4}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: unknown}
spec:
  host: unknown
  subsets:
  - {name: v1, labels: {version: v1}}
`,
			want: []string{`Error [IST0173] (DestinationRule default/reviews) The Subset v4 defined in the DestinationRule does not select any pods. Which may lead to 503 UH (NoHealthyUpstream).`},
		},
		{
			name: "WEFT0001 unimplemented fields",
			yaml: `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 2, retryRemoteLocalities: true}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy:
    proxyProtocol: {version: V2}
`,
			want: []string{
				`Warning [WEFT0001] (DestinationRule default/reviews) spec.trafficPolicy.proxyProtocol: not implemented yet; ignored`,
				`Warning [WEFT0001] (VirtualService default/reviews) spec.http[0].retries.retryRemoteLocalities: not implemented yet; ignored`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := parseYAML(t, tt.yaml)
			got := lines(Analyze(append(bookinfo(t), objs...)))
			want := tt.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSchemaValidation(t *testing.T) {
	// Parse refuses invalid objects, so break a parsed one as a store or a
	// program could hand it over.
	objs := parseYAML(t, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
`)
	objs[0].Spec.(*networking.VirtualService).Http[0].Route[0].Destination.Host = ""
	err := config.Validate(objs[0])
	if err == nil {
		t.Fatal("config.Validate accepts a destination without host")
	}
	var want []string
	for _, e := range flatten(err) {
		ce := e.(*config.Error)
		want = append(want, "Error [IST0106] (VirtualService default/reviews) Schema validation error: "+ce.Path+": "+ce.Reason)
	}
	got := lines(Analyze(append(bookinfo(t), objs...)))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	for _, m := range Analyze(objs) {
		if m.Code == SchemaValidationError && !m.Blocks() {
			t.Errorf("%s does not block an apply", m)
		}
	}
}

func TestSchemaMessages(t *testing.T) {
	_, err := config.Parse("bad.yaml", []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {hosst: reviews}}]
---
kind: Nonsense
`))
	got := lines(SchemaMessages(err))
	if len(got) != 2 {
		t.Fatalf("want 2 messages, got %q", got)
	}
	for i, want := range []string{"Error [IST0106] (VirtualService default/reviews) Schema validation error: ", "Error [IST0106] (bad.yaml "} {
		if !strings.HasPrefix(got[i], want) {
			t.Errorf("message %d: got %q, want prefix %q", i, got[i], want)
		}
	}
	if !strings.Contains(got[0], "hosst") {
		t.Errorf("message does not name the field: %q", got[0])
	}
}

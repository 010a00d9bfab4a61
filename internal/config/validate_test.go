package config

import (
	"strings"
	"testing"
)

// TestValidate checks the semantic errors users hit, with their exact text.
func TestValidate(t *testing.T) {
	const (
		vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n"
		dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n"
		gw = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n"
		se = "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n"
		we = "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec:\n"
		sc = "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: c}\nspec:\n"
	)
	route := "  http: [{route: [{destination: {host: r}}]}]\n"
	tests := []struct {
		name, yaml string
		want       []string // "" = valid
	}{
		{"vs ok", vs + "  hosts: [r]\n" + route, nil},
		{"vs delegate ok", vs + route, nil},
		{"vs no hosts with gateways", vs + "  gateways: [g]\n" + route,
			[]string{"spec.hosts: at least one host is required"}},
		{"vs star on mesh", vs + "  hosts: ['*']\n" + route,
			[]string{`spec.hosts[0]: host "*" is only allowed for a VirtualService bound to gateways (not "mesh")`}},
		{"vs star on gateway", vs + "  hosts: ['*']\n  gateways: [g]\n" + route, nil},
		{"vs no routes", vs + "  hosts: [r]\n", []string{"spec: at least one of http, tcp or tls routes is required"}},
		{"vs route without action", vs + "  hosts: [r]\n  http: [{name: x}]\n",
			[]string{"spec.http[0]: needs a route (destination), redirect, directResponse or delegate"}},
		{"vs route and redirect", vs + "  hosts: [r]\n  http: [{route: [{destination: {host: r}}], redirect: {uri: /x}}]\n",
			[]string{"spec.http[0]: route, redirect, directResponse and delegate are mutually exclusive; set exactly one"}},
		{"vs empty destination host", vs + "  hosts: [r]\n  http: [{route: [{destination: {subset: v1}}]}]\n",
			[]string{"spec.http[0].route[0].destination.host: host must not be empty"}},
		{"vs bad subset", vs + "  hosts: [r]\n  http: [{route: [{destination: {host: r, subset: V_1}}]}]\n",
			[]string{`spec.http[0].route[0].destination.subset: "V_1" is not a valid subset name (lower-case letters, digits and '-')`}},
		{"vs bad regex", vs + "  hosts: [r]\n  http: [{match: [{uri: {regex: 'a(b'}, headers: {end-user: {regex: '(?<x>y)'}}}], route: [{destination: {host: r}}]}]\n",
			[]string{
				"spec.http[0].match[0].uri.regex: invalid regex \"a(b\": missing closing ): `a(b`",
			}},
		{"vs direct response", vs + "  hosts: [r]\n  http: [{directResponse: {status: 99}}]\n",
			[]string{"spec.http[0].directResponse.status: 99 is not in 200-599"}},
		{"vs fault", vs + "  hosts: [r]\n  http: [{fault: {abort: {httpStatus: 700, percentage: {value: 101}}}, route: [{destination: {host: r}}]}]\n",
			[]string{"spec.http[0].fault.abort.httpStatus: 700 is not in 200-599", "spec.http[0].fault.abort.percentage.value: 101 is not in 0-100"}},
		{"vs tcp weight", vs + "  hosts: [r]\n  tcp: [{route: [{destination: {host: r}, weight: -1}]}]\n",
			[]string{"spec.tcp[0].route[0].weight: weight -1 must not be negative"}},
		{"vs bad host", vs + "  hosts: ['a.*.com']\n" + route,
			[]string{`spec.hosts[0]: invalid host "a.*.com": a wildcard is only allowed as the first label ("*.example.com")`}},
		{"dr no host", dr + "  subsets: [{name: v1, labels: {version: v1}}]\n", []string{"spec.host: host must not be empty"}},
		{"dr subsets", dr + "  host: r\n  subsets: [{name: v1, labels: {version: v1}}, {name: v1}, {labels: {a: b}}]\n",
			[]string{`spec.subsets[1].name: subset "v1" is already defined by spec.subsets[0]`, "spec.subsets[2].name: a subset needs a name"}},
		{"dr bad label", dr + "  host: r\n  subsets: [{name: v1, labels: {version: 'v 1'}}]\n",
			[]string{`spec.subsets[0].labels[version]: invalid label value "v 1"`}},
		{"gw server", gw + "  servers: [{hosts: []}, {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*']}]\n",
			[]string{"spec.servers[0].port: a server needs a port", "spec.servers[0].hosts: at least one host is required",
				"spec.servers[1].tls: a server with protocol HTTPS needs tls settings"}},
		{"gw no servers", gw + "  selector: {istio: ingressgateway}\n", []string{"spec.servers: at least one server is required"}},
		{"se ok", se + "  hosts: [api.example.com]\n  ports: [{number: 443, name: https, protocol: TLS}]\n  resolution: DNS\n", nil},
		{"se static", se + "  hosts: [a.example.com]\n  ports: [{number: 80, name: http, protocol: HTTPX}]\n  resolution: STATIC\n",
			[]string{`spec.ports[0].protocol: unknown protocol "HTTPX"; want one of ` + strings.Join(protocols, ", "),
				"spec.endpoints: resolution STATIC needs endpoints or a workloadSelector"}},
		{"se static address", se + "  hosts: [a.example.com]\n  resolution: STATIC\n  endpoints: [{address: example.com}]\n",
			[]string{`spec.endpoints[0].address: resolution STATIC needs an IP address, got "example.com"`}},
		{"se no hosts", se + "  ports: [{number: 0, name: http}]\n",
			[]string{"spec.hosts: at least one host is required", "spec.ports[0].number: port number 0 is not in 1-65535"}},
		{"we address", we + "  labels: {app: r}\n", []string{"spec.address: an address is required"}},
		{"we ok", we + "  address: 127.0.1.7\n  ports: {http: 9080}\n", nil},
		{"sidecar hosts", sc + "  egress: [{hosts: [reviews]}]\n",
			[]string{`spec.egress[0].hosts[0]: host "reviews" must be NAMESPACE/HOST (e.g. "*/reviews.default.svc.cluster.local" or "./*")`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("v.yaml", []byte(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			var prefix string
			for _, k := range []string{"VirtualService default/r", "DestinationRule default/d", "Gateway default/g",
				"ServiceEntry default/s", "WorkloadEntry default/w", "Sidecar default/c"} {
				if strings.HasPrefix(strings.TrimPrefix(err.Error(), "v.yaml: "), k) {
					prefix = "v.yaml: " + k + ": "
				}
			}
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = prefix + w
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("error:\n got %s\nwant %s", got, strings.Join(want, "\n"))
			}
		})
	}
}

func TestValidateRejectsWrongSpec(t *testing.T) {
	objs, err := Parse("a.yaml", []byte("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: r}\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := *objs[0]
	o.Kind = KindGateway
	want := "a.yaml: Gateway default/d: spec: spec is *v1alpha3.DestinationRule, want the Gateway message"
	if err := Validate(&o); err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	o.Kind = "Nope"
	if err := Validate(&o); err == nil || !strings.Contains(err.Error(), `unsupported kind "Nope"`) {
		t.Errorf("got %v", err)
	}
}

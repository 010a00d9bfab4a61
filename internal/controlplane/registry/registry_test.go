package registry

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/config"
)

const entries = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{name: http, number: 9080}, {name: grpc-admin, number: 9090}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{name: https, number: 443, protocol: TLS}]
  endpoints: [{address: 127.9.9.9}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2-1, namespace: default}
spec: {address: 127.0.1.4, labels: {app: reviews, version: v2}, serviceAccount: bookinfo-reviews, ports: {http: 19080}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1-1, namespace: default}
spec: {address: 127.0.1.3, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1-1, namespace: prod}
spec: {address: 127.0.2.3, labels: {app: reviews, version: v1}}
`

func TestBuild(t *testing.T) {
	objs, err := config.Parse("entries.yaml", []byte(entries))
	if err != nil {
		t.Fatal(err)
	}
	r := Build(objs)
	var hosts []string
	for _, s := range r.Services {
		hosts = append(hosts, s.Hostname)
	}
	if d := cmp.Diff([]string{"api.example.com", "reviews.default.svc.cluster.local"}, hosts); d != "" {
		t.Fatalf("services (-want +got):\n%s", d)
	}
	ext := r.Service("api.example.com")
	if !ext.MeshExternal || len(ext.Endpoints) != 1 || ext.Endpoints[0].Sidecar || ext.Ports[0].Protocol != "TLS" {
		t.Errorf("external service: %+v", ext)
	}
	rv := r.Service("reviews.default.svc.cluster.local")
	if rv == nil {
		t.Fatal("reviews missing")
	}
	if got := []string{rv.Ports[0].Protocol, rv.Ports[1].Protocol}; got[0] != "HTTP" || got[1] != "GRPC" {
		t.Errorf("protocols from port names: %v", got)
	}
	var eps []string
	for _, e := range rv.Endpoints {
		eps = append(eps, e.Name+"@"+e.Address)
		if !e.Sidecar || e.Namespace != "default" {
			t.Errorf("endpoint %+v: want a default-namespace workload with a sidecar", e)
		}
	}
	// Sorted by address; the prod workload is not selected across namespaces.
	if d := cmp.Diff([]string{"reviews-v1-1@127.0.1.3", "reviews-v2-1@127.0.1.4"}, eps); d != "" {
		t.Errorf("endpoints (-want +got):\n%s", d)
	}
	if p := rv.Endpoints[1].EndpointPort(rv.Ports[0]); p != 19080 {
		t.Errorf("per-port override: got %d, want 19080", p)
	}
	if p := rv.Endpoints[0].EndpointPort(rv.Ports[0]); p != 9080 {
		t.Errorf("default endpoint port: got %d, want 9080", p)
	}
	if r.Service("nope") != nil {
		t.Error("unknown host found")
	}
}

func TestMerge(t *testing.T) {
	kube := &Registry{Services: []*Service{{Hostname: "reviews.default.svc.cluster.local", Resolution: "STATIC", Addresses: []string{"10.96.0.1"}}}}
	entries := &Registry{Services: []*Service{
		{Hostname: "api.example.com", Resolution: "DNS"},
		{Hostname: "reviews.default.svc.cluster.local", Resolution: "NONE"},
	}}
	m := Merge(kube, nil, entries)
	var hosts []string
	for _, s := range m.Services {
		hosts = append(hosts, s.Hostname+"/"+s.Resolution)
	}
	// Sorted for Service's lookup; the first registry wins a shared host.
	if d := cmp.Diff([]string{"api.example.com/DNS", "reviews.default.svc.cluster.local/STATIC"}, hosts); d != "" {
		t.Errorf("merged (-want +got):\n%s", d)
	}
	if m.Service("api.example.com") == nil || len(kube.Services) != 1 || len(entries.Services) != 2 {
		t.Error("lookup in the merged registry failed, or an input changed")
	}
}

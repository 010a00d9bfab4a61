package xdsserver

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// scopeConfig has services a, b and c with a workload each; proxies of c
// see only c (their Sidecar).
func scopeConfig() string {
	var b strings.Builder
	for i, svc := range []string{"a", "b", "c"} {
		fmt.Fprintf(&b, `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: %[1]s}
spec:
  hosts: [%[1]s.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: %[1]s}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: %[1]s-1}
spec: {address: 127.0.8.%[2]d, labels: {app: %[1]s}}
---
`, svc, i+1)
	}
	b.WriteString(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: c-only}
spec:
  workloadSelector: {labels: {app: c}}
  egress: [{hosts: [./c.default.svc.cluster.local]}]
`)
	return b.String()
}

func routeVS(host, header string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: %[1]s}
spec:
  hosts: [%[1]s]
  http:
  - match: [{headers: {end-user: {exact: %[2]s}}}]
    route: [{destination: {host: %[1]s}}]
  - route: [{destination: {host: %[1]s}}]
`, host, header)
}

// counting wraps translate's split build and records what it translated.
type counting struct {
	mu     sync.Mutex
	shared [][]string // the services of each shared part built
	own    []string   // the proxies whose own part was built
}

func (c *counting) reset() {
	c.mu.Lock()
	c.shared, c.own = nil, nil
	c.mu.Unlock()
}

func (c *counting) buildShared(in translate.Input) (*translate.Output, error) {
	out, err := translate.BuildShared(in)
	if err == nil {
		var svcs []string
		for h := range out.Services {
			svcs = append(svcs, strings.TrimSuffix(h, ".default.svc.cluster.local"))
		}
		sort.Strings(svcs)
		c.mu.Lock()
		c.shared = append(c.shared, svcs)
		c.mu.Unlock()
	}
	return out, err
}

func (c *counting) buildOwn(in translate.Input) (*translate.Output, error) {
	c.mu.Lock()
	c.own = append(c.own, in.Proxy.Name)
	c.mu.Unlock()
	return translate.BuildOwn(in)
}

// TestChangeScope: a change to one service's VirtualService or
// DestinationRule translates only the shared parts of the views that see
// that service, rebuilds no proxy's own part, and pushes only the proxies
// that see the service (and only their RDS/CDS/EDS as concerned); a
// registry change rebuilds everything.
func TestChangeScope(t *testing.T) {
	st := newMem(t, "")
	applyYAML(t, st, scopeConfig())
	c := &counting{}
	srv, err := New(Options{Store: st, Registry: registry.Build, Translate: translate.Build,
		ViewKey: translate.ViewKey, BuildShared: c.buildShared, BuildOwn: c.buildOwn})
	if err != nil {
		t.Fatal(err)
	}
	proxies := map[string]*proxyState{}
	for i, svc := range []string{"a", "b", "c"} {
		px := testProxy(svc+"-1", fmt.Sprintf("127.0.8.%d", i+1))
		px.Labels = map[string]string{"app": svc}
		p := &proxyState{info: &proxyInfo{proxy: px}, types: map[string]*TypeStatus{}, build: &proxyBuild{}}
		srv.mu.Lock()
		srv.proxies[px.ID] = p
		srv.mu.Unlock()
		srv.buildFirst(p)
		proxies[svc] = p
	}
	if d := cmp.Diff([][]string{{"a", "b", "c"}, {"c"}}, c.shared); d != "" {
		t.Errorf("first builds: shared parts built (-want +got):\n%s", d)
	}
	versions := func() map[string]map[string]string {
		out := map[string]map[string]string{}
		for svc, p := range proxies {
			out[svc] = map[string]string{}
			for typ, v := range p.build.versions {
				out[svc][shortType(typ)] = v
			}
		}
		return out
	}
	// changedTypes lists, per proxy, the types whose version changed.
	changedTypes := func(before map[string]map[string]string) map[string][]string {
		out := map[string][]string{}
		for svc, vs := range versions() {
			for typ, v := range vs {
				if before[svc][typ] != v {
					out[svc] = append(out[svc], typ)
				}
			}
			sort.Strings(out[svc])
		}
		return out
	}

	cases := []struct {
		name       string
		yaml       string
		wantShared [][]string
		wantOwn    int
		wantPushed map[string][]string
	}{
		{"VirtualService of a", routeVS("a", "jason"), [][]string{{"a", "b", "c"}}, 0,
			map[string][]string{"a": {"RouteConfiguration"}, "b": {"RouteConfiguration"}}},
		{"the same VirtualService changed", routeVS("a", "mary"), [][]string{{"a", "b", "c"}}, 0,
			map[string][]string{"a": {"RouteConfiguration"}, "b": {"RouteConfiguration"}}},
		{"VirtualService of c", routeVS("c", "jason"), [][]string{{"a", "b", "c"}, {"c"}}, 0,
			map[string][]string{"a": {"RouteConfiguration"}, "b": {"RouteConfiguration"}, "c": {"RouteConfiguration"}}},
		{"DestinationRule of b", `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: b}
spec:
  host: b
  subsets: [{name: v1, labels: {app: b}}]
`, [][]string{{"a", "b", "c"}}, 0,
			map[string][]string{"a": {"Cluster", "ClusterLoadAssignment"}, "b": {"Cluster", "ClusterLoadAssignment"}}},
		{"a new workload of b (the registry)", `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b-2}
spec: {address: 127.0.8.9, labels: {app: b}}
`, [][]string{{"a", "b", "c"}, {"c"}}, 3,
			map[string][]string{"a": {"ClusterLoadAssignment"}, "b": {"ClusterLoadAssignment"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := versions()
			c.reset()
			applyYAML(t, st, tc.yaml)
			srv.round()
			sort.Slice(c.shared, func(i, j int) bool { return len(c.shared[i]) > len(c.shared[j]) })
			if d := cmp.Diff(tc.wantShared, c.shared); d != "" {
				t.Errorf("shared parts built (-want +got):\n%s", d)
			}
			if len(c.own) != tc.wantOwn {
				t.Errorf("own parts built for %v, want %d", c.own, tc.wantOwn)
			}
			got := changedTypes(before)
			for svc := range got {
				if len(got[svc]) == 0 {
					delete(got, svc)
				}
			}
			if d := cmp.Diff(tc.wantPushed, got); d != "" {
				t.Errorf("types pushed per proxy (-want +got):\n%s", d)
			}
		})
	}
}

package xdsserver

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

func wireOf(t *testing.T, version string, clusters ...string) wireSnapshot {
	t.Helper()
	out := &translate.Output{}
	for _, c := range clusters {
		out.Clusters = append(out.Clusters, &cluster.Cluster{Name: c})
		out.Endpoints = append(out.Endpoints, &endpoint.ClusterLoadAssignment{ClusterName: c})
	}
	parts, err := wireParts(out)
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, typ := range TypeURLs {
		versions[typ] = version
	}
	return newWireSnapshot(versions, parts)
}

// names lists the resources of a response, or "none", and records it as
// sent to its node, as the server's OnStreamResponse does.
func names(t *testing.T, c *sotwCache, ch chan cache.Response) []string {
	t.Helper()
	select {
	case r := <-ch:
		resp, err := r.GetDiscoveryResponse()
		if err != nil {
			t.Fatal(err)
		}
		c.sent(r.GetRequest().GetNode().GetId(), resp.GetTypeUrl(), resp.GetVersionInfo(), r.GetRequest().GetResourceNames())
		var out []string
		for _, a := range resp.GetResources() {
			var m types.Resource = &cluster.Cluster{}
			if resp.GetTypeUrl() == EndpointType {
				m = &endpoint.ClusterLoadAssignment{}
			}
			if err := a.UnmarshalTo(m); err != nil {
				t.Fatal(err)
			}
			out = append(out, cache.GetResourceName(m)+"@"+resp.GetVersionInfo())
		}
		return out
	default:
		return []string{"none"}
	}
}

// TestSOTWCache: a wildcard request is answered when its version is not
// the snapshot's; a named one also for a name not answered yet; an open
// watch is answered by the snapshot that brings something new.
func TestSOTWCache(t *testing.T) {
	c := newSOTWCache()
	node := &core.Node{Id: "n1"}
	req := func(typ, version string, names ...string) *discovery.DiscoveryRequest {
		return &discovery.DiscoveryRequest{Node: node, TypeUrl: typ, VersionInfo: version, ResourceNames: names}
	}
	steps := []struct {
		name string
		set  wireSnapshot // set before the request (nil: none)
		req  *discovery.DiscoveryRequest
		want []string // answered at once
	}{
		{"before any snapshot: waits", nil, req(ClusterType, ""), []string{"none"}},
		{"first snapshot answers CDS", wireOf(t, "v1", "a", "b"), nil, []string{"a@v1", "b@v1"}},
		{"ACK of v1 waits", nil, req(ClusterType, "v1"), []string{"none"}},
		{"EDS for a", nil, req(EndpointType, "", "a"), []string{"a@v1"}},
		{"EDS ACK, same names: waits", nil, req(EndpointType, "v1", "a"), []string{"none"}},
		{"EDS with a new name at the same version", nil, req(EndpointType, "v1", "a", "b"), []string{"a@v1", "b@v1"}},
	}
	ch := make(chan cache.Response, 8)
	var pending []chan cache.Response
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.set != nil {
				c.set(node.GetId(), st.set)
				// The open watch of the first step gets it.
				if d := cmp.Diff(st.want, names(t, c, pending[0])); d != "" {
					t.Errorf("open watch answered (-want +got):\n%s", d)
				}
				return
			}
			wch := ch
			if len(pending) == 0 {
				wch = make(chan cache.Response, 1)
				pending = append(pending, wch)
			}
			c.createWatch(st.req, wch)
			if d := cmp.Diff(st.want, names(t, c, wch)); d != "" {
				t.Errorf("answered (-want +got):\n%s", d)
			}
		})
	}
	// The open ACK watches (CDS v1, EDS v1) get v2, CDS first.
	c.set(node.GetId(), wireOf(t, "v2", "a", "c"))
	if d := cmp.Diff([]string{"a@v2", "c@v2"}, names(t, c, ch)); d != "" {
		t.Errorf("CDS after v2 (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"a@v2"}, names(t, c, ch)); d != "" {
		t.Errorf("EDS after v2 (-want +got):\n%s", d)
	}
	// A node forgotten (its streams closed) that comes back with v2 gets
	// v2 again once a snapshot is set: a new stream starts from nothing.
	c.clear(node.GetId())
	c.createWatch(req(ClusterType, "v2"), ch)
	if d := cmp.Diff([]string{"none"}, names(t, c, ch)); d != "" {
		t.Errorf("after clear, before a snapshot (-want +got):\n%s", d)
	}
	c.set(node.GetId(), wireOf(t, "v2", "a", "c"))
	if d := cmp.Diff([]string{"a@v2", "c@v2"}, names(t, c, ch)); d != "" {
		t.Errorf("after clear, same version (-want +got):\n%s", d)
	}
}

// TestSOTWCacheNames: a request is answered with just the names it lists;
// a name dropped and asked for again is answered again (grpc-go drops a
// cluster no route uses and asks for it again when a route does); a name
// the snapshot lacks is left out, or answered by the type's missing.
func TestSOTWCacheNames(t *testing.T) {
	node := &core.Node{Id: "n1"}
	req := func(typ, version string, names ...string) *discovery.DiscoveryRequest {
		return &discovery.DiscoveryRequest{Node: node, TypeUrl: typ, VersionInfo: version, ResourceNames: names}
	}
	withMissing := wireOf(t, "v1", "a", "b")
	wt := withMissing[ClusterType]
	wt.missing = func(name string) *anypb.Any {
		if name == "nope" {
			return nil
		}
		a, err := anypb.New(&cluster.Cluster{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	withMissing[ClusterType] = wt
	tests := []struct {
		name  string
		snap  wireSnapshot
		steps []*discovery.DiscoveryRequest
		want  [][]string
	}{
		{"drop and ask again", wireOf(t, "v1", "a", "b"),
			[]*discovery.DiscoveryRequest{req(ClusterType, "", "a", "b"), req(ClusterType, "v1", "a"), req(ClusterType, "v1", "a", "b")},
			[][]string{{"a@v1", "b@v1"}, {"none"}, {"a@v1", "b@v1"}}},
		{"only the names asked for", wireOf(t, "v1", "a", "b"),
			[]*discovery.DiscoveryRequest{req(ClusterType, "", "b")},
			[][]string{{"b@v1"}}},
		{"unknown name left out", wireOf(t, "v1", "a", "b"),
			[]*discovery.DiscoveryRequest{req(ClusterType, "", "x", "a")},
			[][]string{{"a@v1"}}},
		{"answer dropped before it was sent", wireOf(t, "v1", "a", "b"),
			// go-control-plane drops a queued answer when a new request of
			// its type comes: the same request again must be answered.
			[]*discovery.DiscoveryRequest{req(ClusterType, "", "a"), req(ClusterType, "v1", "a"), req(ClusterType, "v1", "a", "b"), req(ClusterType, "v1", "a", "b")},
			[][]string{{"a@v1"}, {"none"}, {"a@v1", "b@v1", "dropped"}, {"a@v1", "b@v1"}}},
		{"unknown name answered by missing", withMissing,
			[]*discovery.DiscoveryRequest{req(ClusterType, "", "x", "a", "nope")},
			[][]string{{"x@v1", "a@v1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSOTWCache()
			c.set(node.GetId(), tt.snap)
			for i, r := range tt.steps {
				ch := make(chan cache.Response, 1)
				c.createWatch(r, ch)
				want := tt.want[i]
				if len(want) > 0 && want[len(want)-1] == "dropped" {
					// Received here but never recorded as sent.
					resp := <-ch
					dr, _ := resp.GetDiscoveryResponse()
					if len(dr.GetResources()) != len(want)-1 {
						t.Errorf("request %d: %d resources, want %d", i, len(dr.GetResources()), len(want)-1)
					}
					continue
				}
				if d := cmp.Diff(want, names(t, c, ch)); d != "" {
					t.Errorf("request %d %v (-want +got):\n%s", i, r.GetResourceNames(), d)
				}
			}
		})
	}
}

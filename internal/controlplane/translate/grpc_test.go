package translate

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

var grpcClient = Proxy{ID: "sidecar~127.0.1.9~client-1.default~default.svc.cluster.local", Type: ProxySidecar,
	Name: "client-1", Namespace: "default", IP: "127.0.1.9", Labels: map[string]string{"app": "client"}}

// TestBuildGRPCGolden pins what a proxyless gRPC client gets.
func TestBuildGRPCGolden(t *testing.T) {
	objs := append(load(t, "testdata/grpc/echo.yaml"), load(t, "testdata/grpc/echo-abort.yaml")...)
	out, err := BuildGRPC(Input{Config: objs, Registry: registry.Build(objs), Proxy: grpcClient})
	if err != nil {
		t.Fatal(err)
	}
	got := render(t, out)
	golden := filepath.Join("testdata", "grpc", "echo.golden.yaml")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got):\n%s", golden, d)
	}
}

// TestBuildGRPC checks, over several configs, what grpc-go requires of
// the resources (it NACKs or ignores them otherwise).
func TestBuildGRPC(t *testing.T) {
	cases := []struct {
		name  string
		files []string
	}{
		{"echo plain", []string{"testdata/grpc/echo.yaml"}},
		{"echo abort", []string{"testdata/grpc/echo.yaml", "testdata/grpc/echo-abort.yaml"}},
		{"bookinfo 50-v3", []string{"testdata/bookinfo-registry.yaml", samples + "destination-rule-all.yaml", samples + "virtual-service-reviews-50-v3.yaml"}},
		{"bookinfo ratings abort", []string{"testdata/bookinfo-registry.yaml", samples + "destination-rule-all.yaml", samples + "virtual-service-ratings-test-abort.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var objs []*config.Object
			for _, f := range tc.files {
				objs = append(objs, load(t, f)...)
			}
			reg := registry.Build(objs)
			out, err := BuildGRPC(Input{Config: objs, Registry: reg, Proxy: grpcClient})
			if err != nil {
				t.Fatal(err)
			}
			// go-control-plane's Consistent() does not follow api_listener
			// references: check that every name referenced is sent.
			clusters, eds := map[string]bool{}, map[string]bool{}
			for _, r := range out.Clusters {
				clusters[r.(*cluster.Cluster).GetName()] = true
			}
			for _, r := range out.Endpoints {
				eds[r.(*endpoint.ClusterLoadAssignment).GetClusterName()] = true
			}
			for _, r := range out.Clusters {
				if c := r.(*cluster.Cluster); !eds[c.GetEdsClusterConfig().GetServiceName()] {
					t.Errorf("cluster %q: no endpoints %q", c.GetName(), c.GetEdsClusterConfig().GetServiceName())
				}
			}
			for _, r := range out.Routes {
				for _, c := range routeClusters(r.(*route.RouteConfiguration)) {
					if !clusters[c] {
						t.Errorf("route config %q: cluster %q not sent", r.(*route.RouteConfiguration).GetName(), c)
					}
				}
			}
			want := map[string]bool{}
			for _, s := range reg.Services {
				for _, p := range s.Ports {
					want[GRPCListenerName(s.Hostname, p.Number)] = true
				}
			}
			routes := map[string]bool{}
			for _, r := range out.Routes {
				rc := r.(*route.RouteConfiguration)
				routes[rc.GetName()] = true
				checkGRPCRoutes(t, rc)
			}
			for _, r := range out.Listeners {
				l := r.(*listener.Listener)
				if !want[l.GetName()] {
					t.Errorf("listener %q: no such service port", l.GetName())
				}
				delete(want, l.GetName())
				checkGRPCListener(t, l, routes)
			}
			for name := range want {
				t.Errorf("no listener %q", name)
			}
			for _, r := range out.Clusters {
				checkGRPCCluster(t, r.(*cluster.Cluster))
			}
			for _, r := range out.Endpoints {
				checkGRPCEndpoints(t, r.(*endpoint.ClusterLoadAssignment))
			}
		})
	}
}

func checkGRPCListener(t *testing.T, l *listener.Listener, routes map[string]bool) {
	t.Helper()
	if len(l.GetFilterChains()) > 0 || l.GetApiListener() == nil {
		t.Errorf("listener %q: want an api_listener and no filter chains", l.GetName())
		return
	}
	m := &hcm.HttpConnectionManager{}
	if err := l.GetApiListener().GetApiListener().UnmarshalTo(m); err != nil {
		t.Fatalf("listener %q: %v", l.GetName(), err)
	}
	rds := m.GetRds()
	if rds.GetConfigSource().GetAds() == nil || !routes[rds.GetRouteConfigName()] {
		t.Errorf("listener %q: want RDS over ADS of a route config sent, got %v", l.GetName(), rds)
	}
	var filters []string
	for _, f := range m.GetHttpFilters() {
		filters = append(filters, f.GetName())
	}
	if d := cmp.Diff([]string{FaultFilter, wellknown.Router}, filters); d != "" {
		t.Errorf("listener %q: http filters (-want +got):\n%s", l.GetName(), d)
	}
}

func checkGRPCRoutes(t *testing.T, rc *route.RouteConfiguration) {
	t.Helper()
	if len(rc.GetVirtualHosts()) != 1 || !contains(rc.GetVirtualHosts()[0].GetDomains(), rc.GetName()) {
		t.Errorf("route config %q: want one virtual host for %q, got %v", rc.GetName(), rc.GetName(), rc.GetVirtualHosts())
		return
	}
	for _, r := range rc.GetVirtualHosts()[0].GetRoutes() {
		for name := range r.GetTypedPerFilterConfig() {
			if name != FaultFilter {
				t.Errorf("route config %q: per-filter config for %q, which gRPC rejects", rc.GetName(), name)
			}
		}
		ra := r.GetRoute()
		if ra == nil {
			continue
		}
		if t0 := ra.GetTimeout().AsDuration(); t0 > 0 && ra.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration() != t0 {
			t.Errorf("route config %q: timeout %v without the same max_stream_duration", rc.GetName(), t0)
		}
		if rp := ra.GetRetryPolicy(); rp != nil && rp.GetNumRetries() != nil && rp.GetNumRetries().GetValue() < 1 {
			t.Errorf("route config %q: num_retries %d, gRPC wants >= 1", rc.GetName(), rp.GetNumRetries().GetValue())
		}
	}
}

func checkGRPCCluster(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	if c.GetType() != cluster.Cluster_EDS || c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil {
		t.Errorf("cluster %q: want EDS over ADS", c.GetName())
	}
	if len(c.GetTransportSocketMatches()) > 0 || c.GetTransportSocket() != nil {
		t.Errorf("cluster %q: transport sockets, which plaintext gRPC rejects", c.GetName())
	}
	switch c.GetLbPolicy() {
	case cluster.Cluster_ROUND_ROBIN, cluster.Cluster_LEAST_REQUEST:
	case cluster.Cluster_RING_HASH:
		if c.GetRingHashLbConfig().GetHashFunction() != cluster.Cluster_RingHashLbConfig_XX_HASH {
			t.Errorf("cluster %q: ring hash not XX_HASH", c.GetName())
		}
	default:
		t.Errorf("cluster %q: lb_policy %v, which gRPC rejects", c.GetName(), c.GetLbPolicy())
	}
}

func checkGRPCEndpoints(t *testing.T, la *endpoint.ClusterLoadAssignment) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range la.GetEndpoints() {
		if g.GetLocality() == nil || g.GetLoadBalancingWeight().GetValue() == 0 {
			t.Errorf("%s: locality %v weight %d: gRPC wants an ID and a weight", la.GetClusterName(), g.GetLocality(), g.GetLoadBalancingWeight().GetValue())
		}
		for _, ep := range g.GetLbEndpoints() {
			sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
			key := GRPCListenerName(sa.GetAddress(), sa.GetPortValue())
			if seen[key] {
				t.Errorf("%s: %s twice", la.GetClusterName(), key)
			}
			seen[key] = true
			if ep.GetLoadBalancingWeight().GetValue() == 0 {
				t.Errorf("%s: %s has weight 0", la.GetClusterName(), key)
			}
		}
	}
}

// TestGRPCUnknown: a name no service has gets a listener and an empty
// route config (gRPC fails calls at once), a name that is no host:port none.
func TestGRPCUnknown(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"nope.default.svc.cluster.local:50051", true},
		{"[fd00::1]:80", true},
		{"nope.default.svc.cluster.local", false},
		{"nope:0", false},
		{":80", false},
		{"xdstp://authority/envoy.config.listener.v3.Listener/x", false},
		{GRPCInboundPrefix + "127.0.0.1:80", false},
	}
	for _, tt := range tests {
		l, rc := GRPCUnknownListener(tt.name), GRPCUnknownRoute(tt.name)
		if (l != nil) != tt.ok || (rc != nil) != tt.ok {
			t.Errorf("%q: listener %v, route %v, want them: %v", tt.name, l != nil, rc != nil, tt.ok)
			continue
		}
		if !tt.ok {
			continue
		}
		if err := l.Validate(); err != nil {
			t.Errorf("%q: %v", tt.name, err)
		}
		checkGRPCListener(t, l, map[string]bool{tt.name: true})
		if len(rc.GetVirtualHosts()) != 0 || rc.GetName() != tt.name {
			t.Errorf("%q: route config %v, want no virtual host", tt.name, rc)
		}
	}
}

// routeClusters lists the clusters rc's routes send to.
func routeClusters(rc *route.RouteConfiguration) []string {
	var out []string
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if c := r.GetRoute().GetCluster(); c != "" {
				out = append(out, c)
			}
			for _, wc := range r.GetRoute().GetWeightedClusters().GetClusters() {
				out = append(out, wc.GetName())
			}
		}
	}
	return out
}

// TestBuildGRPCInbound: a proxyless server gets a listener per port of
// the services with an endpoint at its IP, every call routed to itself
// (non_forwarding_action), and the RBAC filters of the policies that
// select it, each under its own name, before the router.
func TestBuildGRPCInbound(t *testing.T) {
	server := Proxy{ID: "sidecar~127.0.1.2~echo-v2.default~default.svc.cluster.local", Type: ProxySidecar,
		Name: "echo-v2", Namespace: "default", IP: "127.0.1.2", Labels: map[string]string{"app": "echo", "version": "v2"}}
	other := server
	other.IP, other.Labels = "127.0.1.7", map[string]string{"app": "other"}
	tests := []struct {
		name      string
		proxy     Proxy
		files     []string
		listeners []string
		filters   []string
	}{
		{"no policy", server, []string{"testdata/grpc/echo.yaml"},
			[]string{GRPCInboundPrefix + "127.0.1.2:50051"}, []string{wellknown.Router}},
		{"deny and allow", server, []string{"testdata/grpc/echo.yaml", "testdata/grpc/echo-deny.yaml"},
			[]string{GRPCInboundPrefix + "127.0.1.2:50051"}, []string{RBACFilter, RBACFilter + ".1", wellknown.Router}},
		{"no endpoint at its IP", other, []string{"testdata/grpc/echo.yaml", "testdata/grpc/echo-deny.yaml"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []*config.Object
			for _, f := range tt.files {
				objs = append(objs, load(t, f)...)
			}
			out, err := BuildGRPCInbound(Input{Config: objs, Registry: registry.Build(objs), Proxy: tt.proxy})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range out.Listeners {
				l := r.(*listener.Listener)
				names = append(names, l.GetName())
				if d := cmp.Diff(tt.filters, inboundFilters(t, l)); d != "" {
					t.Errorf("%s: http filters (-want +got):\n%s", l.GetName(), d)
				}
			}
			if d := cmp.Diff(tt.listeners, names); d != "" {
				t.Errorf("listeners (-want +got):\n%s", d)
			}
		})
	}
	// A server on an address no service lists gets its listener on demand,
	// with the same policies.
	objs := append(load(t, "testdata/grpc/echo.yaml"), load(t, "testdata/grpc/echo-deny.yaml")...)
	in := Input{Config: objs, Registry: registry.Build(objs), Proxy: server}
	l := GRPCInbound(in, GRPCInboundPrefix+"[::]:50052")
	if l == nil {
		t.Fatal("no listener for [::]:50052")
	}
	if sa := l.GetAddress().GetSocketAddress(); sa.GetAddress() != "::" || sa.GetPortValue() != 50052 {
		t.Errorf("listener address %v, want [::]:50052", sa)
	}
	if d := cmp.Diff([]string{RBACFilter, RBACFilter + ".1", wellknown.Router}, inboundFilters(t, l)); d != "" {
		t.Errorf("on-demand listener: http filters (-want +got):\n%s", d)
	}
	for _, name := range []string{"echo.default.svc.cluster.local:50051", GRPCInboundPrefix + "nope"} {
		if l := GRPCInbound(in, name); l != nil {
			t.Errorf("GRPCInbound(%q) = %v, want nil", name, l.GetName())
		}
	}
}

// inboundFilters checks that l is a proxyless server's listener and
// returns its http filters' names.
func inboundFilters(t *testing.T, l *listener.Listener) []string {
	t.Helper()
	if len(l.GetFilterChains()) != 1 || len(l.GetFilterChains()[0].GetFilters()) != 1 {
		t.Fatalf("%s: want one filter chain with one filter", l.GetName())
	}
	m := &hcm.HttpConnectionManager{}
	if err := l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
	for _, vh := range m.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetNonForwardingAction() == nil {
				t.Errorf("%s: route %q is not a non_forwarding_action", l.GetName(), r.GetName())
			}
		}
	}
	var names []string
	for _, f := range m.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	return names
}

// TestGRPCMutualTLS: a proxyless client with a mesh certificate speaks
// mTLS (certificate provider instances, the endpoints' SPIFFE IDs) to
// clusters whose DestinationRule says ISTIO_MUTUAL, plaintext to the rest
// and always without a certificate; a server requires client certificates
// where its PeerAuthentication is STRICT and it has a certificate.
func TestGRPCMutualTLS(t *testing.T) {
	objs := load(t, "testdata/grpc/echo-mtls.yaml")
	reg := registry.Build(objs)
	tlsOf := func(withCert bool) map[string]string {
		client := grpcClient
		client.MTLS = withCert
		out, err := BuildGRPC(Input{Config: objs, Registry: reg, Proxy: client})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range out.Clusters {
			c := r.(*cluster.Cluster)
			ts := c.GetTransportSocket()
			if ts == nil {
				got[c.GetName()] = "plaintext"
				continue
			}
			ctx := &tlsv3.UpstreamTlsContext{}
			if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
				t.Fatal(err)
			}
			common := ctx.GetCommonTlsContext()
			vc := common.GetValidationContext()
			if common.GetTlsCertificateProviderInstance().GetInstanceName() != GRPCCertProvider ||
				vc.GetCaCertificateProviderInstance().GetCertificateName() != SecretRootCA {
				t.Errorf("%s: TLS without the bootstrap's certificate provider: %v", c.GetName(), ctx)
			}
			var sans []string
			for _, m := range vc.GetMatchSubjectAltNames() {
				sans = append(sans, m.GetExact())
			}
			got[c.GetName()] = fmt.Sprint("mtls ", sans)
		}
		return got
	}
	want := map[string]string{
		"outbound|50051||echo.default.svc.cluster.local":   "mtls [spiffe://cluster.local/ns/default/sa/echo]",
		"outbound|50051|v1|echo.default.svc.cluster.local": "mtls [spiffe://cluster.local/ns/default/sa/echo]",
		"outbound|50051|v2|echo.default.svc.cluster.local": "plaintext",
	}
	if d := cmp.Diff(want, tlsOf(true)); d != "" {
		t.Errorf("client with a certificate (-want +got):\n%s", d)
	}
	for name, mode := range tlsOf(false) {
		if mode != "plaintext" {
			t.Errorf("client without a certificate: %s: %s", name, mode)
		}
	}

	servers := []struct {
		ip     string
		labels map[string]string
		mtls   bool
		want   bool // client certificate required
	}{
		{"127.0.1.1", map[string]string{"app": "echo", "version": "v1"}, true, true},
		{"127.0.1.1", map[string]string{"app": "echo", "version": "v1"}, false, false},
		{"127.0.1.2", map[string]string{"app": "echo", "version": "v2"}, true, false}, // PERMISSIVE
	}
	for _, sv := range servers {
		p := Proxy{ID: "sidecar~" + sv.ip + "~echo.default~default.svc.cluster.local", Type: ProxySidecar, Name: "echo",
			Namespace: "default", IP: sv.ip, Labels: sv.labels, MTLS: sv.mtls}
		out, err := BuildGRPCInbound(Input{Config: objs, Registry: reg, Proxy: p})
		if err != nil {
			t.Fatal(err)
		}
		l := out.Listeners[0].(*listener.Listener)
		ts := l.GetFilterChains()[0].GetTransportSocket()
		if (ts != nil) != sv.want {
			t.Errorf("server %s %v mtls=%v: transport socket %v, want TLS: %v", sv.ip, sv.labels, sv.mtls, ts, sv.want)
			continue
		}
		if ts == nil {
			continue
		}
		ctx := &tlsv3.DownstreamTlsContext{}
		if err := ts.GetTypedConfig().UnmarshalTo(ctx); err != nil {
			t.Fatal(err)
		}
		if !ctx.GetRequireClientCertificate().GetValue() || ctx.GetCommonTlsContext().GetTlsCertificateProviderInstance() == nil ||
			ctx.GetCommonTlsContext().GetValidationContext().GetCaCertificateProviderInstance() == nil {
			t.Errorf("server %s: %v", sv.ip, ctx)
		}
		if on := GRPCInbound(Input{Config: objs, Registry: reg, Proxy: p}, GRPCInboundPrefix+"127.0.1.1:50052"); on.GetFilterChains()[0].GetTransportSocket() == nil {
			t.Errorf("server %s: an on-demand listener lacks the STRICT mode", sv.ip)
		}
	}
}

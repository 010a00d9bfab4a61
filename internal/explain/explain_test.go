package explain

import (
	"errors"
	"strings"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestDiagnose(t *testing.T) {
	reviewsDR := &Object{Kind: "DestinationRule", Namespace: "default", Name: "reviews"}
	deny := Object{Kind: "AuthorizationPolicy", Namespace: "default", Name: "deny-post"}
	tests := []struct {
		name    string
		entry   Entry
		facts   Facts
		want    string
		wantFix string
	}{
		{
			name:  "subset without endpoints",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UH", UpstreamCluster: "outbound|9080|v4|reviews.default.svc.cluster.local"},
			facts: Facts{Cluster: &Cluster{Name: "outbound|9080|v4|reviews.default.svc.cluster.local", Subset: "v4",
				DestinationRule: reviewsDR, SubsetLabels: map[string]string{"version": "v4"}},
				VirtualService: &Object{Kind: "VirtualService", Namespace: "default", Name: "reviews"}, Rule: &Rule{Rule: 1}},
			want:    "503 UH no healthy upstream: subset v4 of DestinationRule reviews selects version=v4, which no endpoint has (VirtualService reviews http[1] routes to it)",
			wantFix: "DestinationRule default/reviews",
		},
		{
			name:  "service without endpoints",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UH"},
			facts: Facts{Cluster: &Cluster{Service: "ratings.default.svc.cluster.local", Port: 9080}},
			want:  "service ratings.default.svc.cluster.local has no endpoints on port 9080",
		},
		{
			name:  "all ejected",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UH"},
			facts: Facts{Cluster: &Cluster{DestinationRule: reviewsDR, OutlierDetection: true,
				Endpoints: []Endpoint{{Address: "127.0.1.4:9080"}, {Address: "127.0.1.5:9080"}}}},
			want:    "all 2 endpoints ejected by outlierDetection of DestinationRule reviews",
			wantFix: "DestinationRule default/reviews",
		},
		{
			name:  "cluster gone",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UH", UpstreamCluster: "outbound|1||x"},
			want:  "cluster outbound|1||x is not in the proxy's config",
		},
		{
			name:  "no route",
			entry: Entry{ResponseCode: 404, ResponseFlags: "NR", Authority: "reviews:9081"},
			facts: Facts{VirtualHosts: []string{"reviews:9080"}},
			want:  "NR: no route for host reviews:9081 (the proxy's routes serve reviews:9080)",
		},
		{
			name:  "no route in the wildcard host",
			entry: Entry{ResponseCode: 404, ResponseFlags: "NR", Authority: "a.example", Path: "/x"},
			facts: Facts{VirtualHosts: []string{"*"}},
			want:  "NR: no route for host a.example path /x: the virtual host * takes the host, but no route of it matches",
		},
		{
			name:    "denied at the destination",
			entry:   Entry{ResponseCode: 403, Details: "via_upstream"},
			facts:   Facts{Authz: &Authz{Proxy: "reviews-v1-1.default", Deny: []Object{deny}}},
			want:    "RBAC: denied by AuthorizationPolicy deny-post at reviews-v1-1.default",
			wantFix: "AuthorizationPolicy default/deny-post",
		},
		{
			name:  "allow nothing",
			entry: Entry{ResponseCode: 403, Details: "rbac_access_denied_matched_policy[none]"},
			facts: Facts{Authz: &Authz{AllowFilter: true}},
			want:  "ALLOW AuthorizationPolicy with no rules (allow-nothing)",
		},
		{
			name:    "not allowed",
			entry:   Entry{ResponseCode: 403, Details: "rbac_access_denied_matched_policy[none]"},
			facts:   Facts{Authz: &Authz{AllowFilter: true, Allow: []Object{{Kind: "AuthorizationPolicy", Namespace: "default", Name: "viewer"}}}},
			want:    "no rule of the ALLOW AuthorizationPolicies viewer allows it",
			wantFix: "AuthorizationPolicy default/viewer",
		},
		{
			name:  "refused",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UF,URX", UpstreamHost: "127.0.1.4:9080"},
			facts: Facts{Dial: "refused"},
			want:  "UF: connection refused by 127.0.1.4:9080",
		},
		{
			name:  "refused and ejected",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UF", UpstreamHost: "127.0.1.4:9080"},
			facts: Facts{Dial: "refused", Cluster: &Cluster{OutlierDetection: true, Endpoints: []Endpoint{{Address: "127.0.1.4:9080"}}}},
			want:  "UF: connection refused by 127.0.1.4:9080; all 1 endpoints ejected by outlierDetection",
		},
		{
			name:  "connect failed, unknown why",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UF", UpstreamHost: "127.0.1.4:9080"},
			want:  "UF: could not connect to 127.0.1.4:9080",
		},
		{
			name:  "overflow",
			entry: Entry{ResponseCode: 503, ResponseFlags: "UO"},
			facts: Facts{Cluster: &Cluster{Name: "outbound|9080||productpage.default.svc.cluster.local", DestinationRule: &Object{Kind: "DestinationRule", Namespace: "default", Name: "productpage"},
				Breakers: map[string]uint32{"maxPendingRequests": 1}, Overflows: 3}},
			want:    "UO: circuit breaker maxPendingRequests=1 on outbound|9080||productpage.default.svc.cluster.local (3 requests refused so far), set by DestinationRule productpage",
			wantFix: "DestinationRule default/productpage",
		},
		{
			name:  "the application's 500",
			entry: Entry{ResponseCode: 500, Details: "via_upstream", UpstreamHost: "127.0.1.4:9080"},
			want:  "500 from the application at 127.0.1.4:9080",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Diagnose(tt.entry, tt.facts, time.Unix(0, 0))
			if !strings.Contains(c.Text, tt.want) {
				t.Errorf("text %q, want it to contain %q", c.Text, tt.want)
			}
			got := ""
			if c.Fix != nil {
				got = c.Fix.Kind + " " + c.Fix.Namespace + "/" + c.Fix.Name
			}
			if got != tt.wantFix {
				t.Errorf("fix %q, want %q", got, tt.wantFix)
			}
		})
	}
}

func TestPick(t *testing.T) {
	log := ParseLog([]string{
		`{"request_id":"a","response_code":200,"response_flags":null}`,
		`{"request_id":"tcp","response_code":null,"response_flags":null}`,
		`not json`,
		`{"request_id":"b","response_code":503,"response_flags":"UH"}`,
		`{"request_id":"c","response_code":200,"response_flags":"-"}`,
		`{"request_id":"d","response_code":503,"response_flags":"UH"}`,
		`{"request_id":"d","response_code":200,"response_flags":"-","path":"/inbound"}`,
	})
	tests := []struct {
		id, want string
		err      error
	}{
		{"", "d", nil},
		{"a", "a", nil},
		{"d", "d", nil}, // the failed call, not the inbound request that made it
		{"zz", "", ErrNoFailure},
	}
	for _, tt := range tests {
		e, err := Pick(log, tt.id)
		if !errors.Is(err, tt.err) || e.RequestID != tt.want || tt.id == "d" && e.ResponseCode != 503 {
			t.Errorf("Pick(%q) = %q, %v; want %q, %v", tt.id, e.RequestID, err, tt.want, tt.err)
		}
	}
	if _, err := Pick(log[:2], ""); !errors.Is(err, ErrNoFailure) { // a 200 and a TCP connection
		t.Errorf("a log of successes: %v, want ErrNoFailure", err)
	}
}

func TestClusterOf(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"config": "/apis/networking.istio.io/v1/namespaces/default/destination-rule/reviews"})
	c := &cluster.Cluster{
		Name:             "outbound|9080|v2|reviews.default.svc.cluster.local",
		Metadata:         &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": md}},
		OutlierDetection: &cluster.OutlierDetection{},
		CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
			MaxPendingRequests: wrapperspb.UInt32(1), MaxRequests: wrapperspb.UInt32(^uint32(0)),
		}}},
	}
	addr := func(ip string) *core.Address {
		return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: ip, PortSpecifier: &core.SocketAddress_PortValue{PortValue: 9080}}}}
	}
	st := &adminv3.ClusterStatus{HostStatuses: []*adminv3.HostStatus{
		{Address: addr("127.0.1.4"), HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: core.HealthStatus_HEALTHY}},
		{Address: addr("127.0.1.5"), HealthStatus: &adminv3.HostHealthStatus{EdsHealthStatus: core.HealthStatus_UNHEALTHY}},
	}}
	got := ClusterOf(c, st)
	if got.Subset != "v2" || got.Port != 9080 || got.Service != "reviews.default.svc.cluster.local" {
		t.Errorf("name parts: %+v", got)
	}
	if got.DestinationRule == nil || got.DestinationRule.String() != "DestinationRule default/reviews" {
		t.Errorf("destination rule %v", got.DestinationRule)
	}
	if len(got.Breakers) != 1 || got.Breakers["maxPendingRequests"] != 1 {
		t.Errorf("breakers %v, want only maxPendingRequests=1 (unlimited ones left out)", got.Breakers)
	}
	if len(got.Endpoints) != 2 || !got.Endpoints[0].Healthy || got.Endpoints[1].Healthy || got.Endpoints[1].Address != "127.0.1.5:9080" {
		t.Errorf("endpoints %+v", got.Endpoints)
	}
	if !got.OutlierDetection {
		t.Error("outlier detection not seen")
	}
}

func TestAuthzOf(t *testing.T) {
	mustAny := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	filter := func(action rbacv3.RBAC_Action, names ...string) *hcm.HttpFilter {
		ps := map[string]*rbacv3.Policy{}
		for _, n := range names {
			ps[n] = &rbacv3.Policy{}
		}
		return &hcm.HttpFilter{Name: "envoy.filters.http.rbac", ConfigType: &hcm.HttpFilter_TypedConfig{
			TypedConfig: mustAny(&rbacfilter.RBAC{Rules: &rbacv3.RBAC{Action: action, Policies: ps}})}}
	}
	m := &hcm.HttpConnectionManager{HttpFilters: []*hcm.HttpFilter{
		filter(rbacv3.RBAC_DENY, "ns[default]-policy[deny-post]-rule[0]", "ns[default]-policy[deny-post]-rule[1]"),
		filter(rbacv3.RBAC_ALLOW),
	}}
	ls := []*listener.Listener{{FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
		Name: "envoy.filters.network.http_connection_manager", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)},
	}}}}}}
	a := AuthzOf("reviews-v1-1.default", ls)
	if len(a.Deny) != 1 || a.Deny[0].String() != "AuthorizationPolicy default/deny-post" {
		t.Errorf("deny %v, want deny-post once", a.Deny)
	}
	if !a.AllowFilter || len(a.Allow) != 0 {
		t.Errorf("allow filter %v policies %v, want an empty ALLOW", a.AllowFilter, a.Allow)
	}
}

func TestObjectOf(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/apis/networking.istio.io/v1/namespaces/prod/virtual-service/reviews", "VirtualService prod/reviews"},
		{"/apis/networking.istio.io/v1/namespaces/default/destination-rule/r", "DestinationRule default/r"},
		{"garbage", ""},
	}
	for _, tt := range tests {
		st, _ := structpb.NewStruct(map[string]any{"config": tt.path})
		o := ObjectOf(&core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": st}})
		got := ""
		if o != nil {
			got = o.String()
		}
		if got != tt.want {
			t.Errorf("ObjectOf(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

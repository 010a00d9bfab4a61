package config

import "testing"

func TestResolveHost(t *testing.T) {
	tests := []struct{ host, ns, want string }{
		{"reviews", "default", "reviews.default.svc.cluster.local"},
		{"reviews", "", "reviews.default.svc.cluster.local"},
		{"Reviews", "prod", "reviews.prod.svc.cluster.local"},
		{"reviews.prod", "default", "reviews.prod.svc.cluster.local"},
		{"reviews.prod.svc", "default", "reviews.prod.svc.cluster.local"},
		{"reviews.prod.svc.cluster.local", "default", "reviews.prod.svc.cluster.local"},
		{"reviews.prod.svc.cluster.local.", "default", "reviews.prod.svc.cluster.local"},
		{"www.googleapis.com", "default", "www.googleapis.com"},
		{"*", "default", "*"},
		{"*.example.com", "default", "*.example.com"},
		{"", "default", ""},
	}
	for _, tt := range tests {
		if got := ResolveHost(tt.host, tt.ns); got != tt.want {
			t.Errorf("ResolveHost(%q, %q) = %q, want %q", tt.host, tt.ns, got, tt.want)
		}
	}
}

func TestLookupKind(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"VirtualService", KindVirtualService, true}, {"virtualservice", KindVirtualService, true},
		{"virtualservices", KindVirtualService, true}, {"vs", KindVirtualService, true},
		{"virtualservices.networking.istio.io", KindVirtualService, true},
		{"dr", KindDestinationRule, true}, {"destinationrules", KindDestinationRule, true},
		{"gw", KindGateway, true}, {"gateways", KindGateway, true},
		{"se", KindServiceEntry, true}, {"serviceentry", KindServiceEntry, true}, {"serviceentries", KindServiceEntry, true},
		{"we", KindWorkloadEntry, true}, {"workloadentries", KindWorkloadEntry, true},
		{"sidecar", KindSidecar, true}, {"peerauthentication", KindPeerAuthentication, true},
		{"authorizationpolicies", KindAuthorizationPolicy, true}, {"telemetry", KindTelemetry, true},
		{"pods", "", false}, {"", "", false},
	}
	for _, tt := range tests {
		got, ok := LookupKind(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("LookupKind(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"golang.org/x/net/http2"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestPathNormalizationServed: a connection manager's normalization is
// what routing sees and what the app receives, on HTTP/1.1 and h2c
// downstreams, and REJECT_REQUEST answers 400 to an escaped slash.
func TestPathNormalizationServed(t *testing.T) {
	ip := randIP()
	app := startApp(t, ip, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.RequestURI) }))
	d := newTestDataplane(t, ModeSidecar, ip)
	port := app.Port()
	svc := fmt.Sprintf("outbound|%d||svc.default.svc.cluster.local", port)
	apply(t, d, clusterType, append(specialClusters(), edsCluster(t, svc, false))...)
	apply(t, d, endpointType, cla(svc, false, app))
	l := &listener.Listener{Name: fmt.Sprintf("0.0.0.0_%d", port), Address: sock("0.0.0.0", uint32(port)), BindToPort: wrapperspb.Bool(false),
		FilterChains: []*listener.FilterChain{hcmChain(t, &hcm.HttpConnectionManager{
			NormalizePath: wrapperspb.Bool(true), MergeSlashes: true, PathWithEscapedSlashesAction: hcm.HttpConnectionManager_REJECT_REQUEST,
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: "r",
				ConfigSource: &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}}},
		})}}
	apply(t, d, listenerType, outboundListener(t, ip), l)
	authority := fmt.Sprintf("svc:%d", port)
	apply(t, d, routeType, &route.RouteConfiguration{Name: "r", VirtualHosts: []*route.VirtualHost{{
		Name: "svc", Domains: []string{authority},
		Routes: []*route.Route{
			{Name: "admin", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: "/admin"}},
				Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{Status: 418}}},
			prefixRoute("rest", "/", svc),
		}}}})

	capture := netip.AddrPortFrom(ip, testOutbound)
	dial := connectDialer(capture)
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) { return dial(ctx, addr) }}}
	get := map[string]func(target string) (int, string, error){
		"http1": func(target string) (int, string, error) { return rawRequest(capture.String(), target, authority) },
		"h2c": func(target string) (int, string, error) {
			req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: authority, Opaque: target}, Host: authority, Header: http.Header{}}
			resp, err := h2c.Do(req)
			if err != nil {
				return 0, "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b), err
		},
	}
	tests := []struct {
		target string
		status int
		app    string
	}{
		{"/a/../b?q=/../", 200, "/b?q=/../"},
		{"/x/%2e%2E/admin", 418, ""}, // routed as /admin
		{"/a/.//b", 200, "/a/b"},
		{"/a%2Fb", 400, ""},
		{"/a%5c..", 400, ""},
		{"/ok?x=%2F", 200, "/ok?x=%2F"},
	}
	for name, do := range get {
		for _, tt := range tests {
			status, body, err := do(tt.target)
			if err != nil {
				t.Fatalf("%s GET %s: %v", name, tt.target, err)
			}
			if status != tt.status || tt.status == 200 && body != tt.app {
				t.Errorf("%s GET %s: %d %q, want %d %q", name, tt.target, status, body, tt.status, tt.app)
			}
		}
	}
}

// rawRequest sends "GET target" exactly as written to addr.
func rawRequest(addr, target, host string) (int, string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

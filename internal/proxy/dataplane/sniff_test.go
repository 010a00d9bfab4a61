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
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"golang.org/x/net/http2"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name, in string
		app      string
		done     bool
	}{
		{"HTTP/1.1 request line", "GET /x HTTP/1.1\r\nHost: a\r\n", appHTTP1, true},
		{"HTTP/1.0", "POST / HTTP/1.0\r\n", appHTTP1, true},
		{"bare LF", "GET / HTTP/1.1\n", appHTTP1, true},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", appH2C, true},
		{"h2c preface line", "PRI * HTTP/2.0\r\n", appH2C, true},
		{"start of the preface", "PRI * HT", "", false},
		{"start of a method", "GE", "", false},
		{"request line not ended", "GET /long/path", "", false},
		{"TLS ClientHello", "\x16\x03\x01\x02\x00\x01", "", true},
		{"lower-case: not HTTP", "get / HTTP/1.1\r\n", "", true},
		{"a text protocol", "HELLO world\r\n", "", true},
		{"HTTP/2 over an h1 line", "GET / HTTP/2\r\n", "", true},
		{"redis", "*1\r\n$4\r\nPING\r\n", "", true},
		{"long token", "ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, done := classify([]byte(tt.in))
			if app != tt.app || done != tt.done {
				t.Errorf("classify(%q) = %q, %v; want %q, %v", tt.in, app, done, tt.app, tt.done)
			}
		})
	}
}

// TestSniffedPort: a listener with the http_inspector serves HTTP/1.1 and
// h2c on its HTTP chain and everything else (plain bytes, TLS) on its TCP
// chain, as Istio does for a port whose protocol is not declared.
func TestSniffedPort(t *testing.T) {
	ip := randIP()
	app := startApp(t, randIP(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "http %s", r.Proto)
	}))
	ln, err := net.Listen("tcp", netip.AddrPortFrom(randIP(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // the TCP app: echoes what it gets
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	echo := netip.MustParseAddrPort(ln.Addr().String())
	d := newTestDataplane(t, ModeRouter, ip)
	apply(t, d, clusterType, append(specialClusters(), staticCluster(t, "web", app, false), staticCluster(t, "raw", echo, false))...)
	hc := hcmChain(t, &hcm.HttpConnectionManager{StatPrefix: "sniffed",
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{Name: "sniffed",
			VirtualHosts: []*route.VirtualHost{{Name: "web", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("web", "/", "web")}}}}}})
	hc.FilterChainMatch = &listener.FilterChainMatch{ApplicationProtocols: []string{"http/1.1", "h2c"}}
	apply(t, d, listenerType, &listener.Listener{Name: "sniffed", Address: sock(ip.String(), 9000),
		ListenerFilters: []*listener.ListenerFilter{{Name: "envoy.filters.listener.http_inspector"}},
		FilterChains:    []*listener.FilterChain{hc, tcpChain(t, "raw")}})
	addr := netip.AddrPortFrom(ip, 9000).String()

	if code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/"); code != 200 || body != "http HTTP/1.1" {
		t.Errorf("HTTP/1.1: %d %q, want the HTTP chain", code, body)
	}
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}}
	if code, body, _ := get(t, h2c, "http://"+addr+"/"); code != 200 || body != "http HTTP/1.1" {
		t.Errorf("h2c: %d %q, want the HTTP chain (upstream HTTP/1.1)", code, body)
	}
	for _, raw := range []string{"hello, raw bytes\n", "\x16\x03\x01\x00\x05hello"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, raw)
		got := make([]byte, len(raw))
		_, err = io.ReadFull(bufio.NewReader(c), got)
		c.Close()
		if err != nil || string(got) != raw {
			t.Errorf("%q: got %q, %v; want it echoed by the TCP chain", raw, got, err)
		}
	}
}

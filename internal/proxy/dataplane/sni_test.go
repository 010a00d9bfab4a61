package dataplane

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// clientHello records what crypto/tls sends as its first flight.
func clientHello(t testing.TB, serverName string) []byte {
	a, b := net.Pipe()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: serverName, InsecureSkipVerify: serverName == ""})
		c.SetDeadline(time.Now().Add(time.Second))
		c.Handshake()
		a.Close()
	}()
	buf := make([]byte, 64<<10)
	b.SetReadDeadline(time.Now().Add(time.Second))
	n, _ := b.Read(buf)
	b.Close()
	return buf[:n]
}

func TestPeekSNI(t *testing.T) {
	for _, name := range []string{"www.google.com", "reviews.default.svc.cluster.local", ""} {
		hello := clientHello(t, name)
		br := bufio.NewReader(bytes.NewReader(hello))
		got, err := peekSNI(br)
		if err != nil || got != name {
			t.Errorf("SNI %q: got %q, %v", name, got, err)
		}
		if br.Buffered() == 0 {
			t.Error("peekSNI must not consume the hello")
		}
	}
	if _, err := peekSNI(bufio.NewReader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")))); err != errNotTLS {
		t.Errorf("plain HTTP: %v, want errNotTLS", err)
	}
}

func FuzzPeekSNI(f *testing.F) {
	f.Add(clientHello(f, "example.com"))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		peekSNI(bufio.NewReader(bytes.NewReader(b)))
	})
}

// TestSNIRouting: a TLS port inspected for SNI sends each server name to
// its own cluster (exact, then wildcard), unknown names through the
// default chain, without terminating TLS.
func TestSNIRouting(t *testing.T) {
	server := func(name string) netip.AddrPort {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s saw %s", name, r.TLS.ServerName)
		}))
		s.StartTLS()
		t.Cleanup(s.Close)
		return netip.MustParseAddrPort(s.Listener.Addr().String())
	}
	a, wild, other := server("a"), server("wild"), server("other")
	ip := randIP()
	client := newTestDataplane(t, ModeSidecar, ip)
	apply(t, client, clusterType, append(specialClusters(), staticCluster(t, "a", a, false), staticCluster(t, "wild", wild, false))...)
	const port = 8443
	l := &listener.Listener{Name: "0.0.0.0_8443", Address: sock("0.0.0.0", port), BindToPort: wrapperspb.Bool(false),
		ListenerFilters: []*listener.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector"}}}
	ca, cw := tcpChain(t, "a"), tcpChain(t, "wild")
	ca.FilterChainMatch = &listener.FilterChainMatch{ServerNames: []string{"a.test"}}
	cw.FilterChainMatch = &listener.FilterChainMatch{ServerNames: []string{"*.wild.test"}}
	l.FilterChains = []*listener.FilterChain{ca, cw}
	l.DefaultFilterChain = tcpChain(t, "PassthroughCluster")
	apply(t, client, listenerType, outboundListener(t, ip), l)
	proxy := mustURL("http://" + netip.AddrPortFrom(ip, testOutbound).String())
	get := func(host string, dial string) string {
		t.Helper()
		tr := &http.Transport{Proxy: http.ProxyURL(proxy), TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + dial + "/")
		if err != nil {
			t.Fatalf("GET https://%s (SNI %s): %v", dial, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("a.test", "a.test:8443"); got != "a saw a.test" {
		t.Errorf("exact SNI: %q", got)
	}
	if got := get("x.wild.test", "x.wild.test:8443"); got != "wild saw x.wild.test" {
		t.Errorf("wildcard SNI: %q", got)
	}
	// An unknown name passes through to the original destination.
	if got := get("elsewhere.test", other.String()); got != "other saw elsewhere.test" {
		t.Errorf("unknown SNI through the default chain: %q", got)
	}
}

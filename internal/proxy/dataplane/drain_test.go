package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"
)

// gateway is a router-mode data plane with one HTTP listener in front of an app.
func gateway(t *testing.T, app http.Handler) (*Dataplane, netip.AddrPort) {
	ip := randIP()
	appAddr := startApp(t, randIP(), app)
	d := newTestDataplane(t, ModeRouter, ip)
	apply(t, d, clusterType, append(specialClusters(), staticCluster(t, "app", appAddr, false))...)
	apply(t, d, listenerType, httpListener(t, 8080, "http.8080", true))
	apply(t, d, routeType, &route.RouteConfiguration{Name: "http.8080", VirtualHosts: []*route.VirtualHost{
		{Name: "app", Domains: []string{"*"}, Routes: []*route.Route{prefixRoute("app", "/", "app")}}}})
	return d, netip.AddrPortFrom(ip, 8080)
}

func TestListenerRemovalDrainsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	d, addr := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done "+r.URL.Path)
	}))
	base := "http://" + addr.String()
	if code, body, _ := get(t, http.DefaultClient, base+"/fast"); code != 200 || body != "done /fast" {
		t.Fatalf("before: %d %q", code, body)
	}
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	<-started
	apply(t, d, listenerType) // the listener is gone
	waitFor(t, "the listener to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	r := <-done
	if r.err != nil || r.code != 200 || r.body != "done /slow" {
		t.Fatalf("in-flight request across the removal: %d %q %v", r.code, r.body, r.err)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	d, addr := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	done := make(chan string, 1)
	go func() {
		_, body, _ := get(t, http.DefaultClient, "http://"+addr.String()+"/")
		done <- body
	}()
	<-started
	shut := make(chan error, 1)
	go func() { shut <- d.Shutdown(context.Background()) }()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v before the in-flight request finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if body := <-done; body != "finished" {
		t.Fatalf("in-flight request: %q", body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d.Ready() {
		t.Fatal("Ready after Shutdown")
	}
}

func TestEndpointUpdateKeepsRoundRobinPosition(t *testing.T) {
	st := &state{}
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	cfg := &config{clusters: mustTyped[*cluster.Cluster](t, edsCluster(t, "c", false)),
		endpoints: mustTyped[*endpoint.ClusterLoadAssignment](t, cla("c", false, a, b))}
	pick := func(cfg *config) string {
		rt, err := compile(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		cl := rt.clusters["c"]
		return cl.lb.pick(cl.endpoints).addr
	}
	first := pick(cfg)
	second := pick(cfg) // a new build of the same endpoints continues the rotation
	if first == second {
		t.Fatalf("round robin restarted across builds: %s then %s", first, second)
	}
	cfg.endpoints = mustTyped[*endpoint.ClusterLoadAssignment](t, cla("c", false, a, b, c))
	seen := map[string]bool{}
	for range 3 {
		seen[pick(cfg)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("after adding an endpoint, 3 picks gave %v", seen)
	}
}

func mustTyped[T proto.Message](t *testing.T, res ...proto.Message) map[string]T {
	t.Helper()
	m, err := typed[T](named(res...))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReadyWaitsForEveryType(t *testing.T) {
	ip := randIP()
	d := newTestDataplane(t, ModeSidecar, ip)
	steps := []struct {
		typeURL string
		res     []proto.Message
		ready   bool
	}{
		{clusterType, append(specialClusters(), edsCluster(t, "outbound|80||a", false)), false},
		{listenerType, []proto.Message{outboundListener(t, ip), httpListener(t, 80, "80", false)}, false},
		{endpointType, []proto.Message{cla("outbound|80||a", false)}, false},
		{routeType, []proto.Message{&route.RouteConfiguration{Name: "80"}}, true},
	}
	for _, s := range steps {
		apply(t, d, s.typeURL, s.res...)
		if d.Ready() != s.ready {
			t.Fatalf("after %s: Ready() = %v, want %v", s.typeURL, !s.ready, s.ready)
		}
	}
}

// TestShutdownSendsGOAWAY: an HTTP/2 (h2c) connection gets GOAWAY when the
// proxy drains, and its stream in flight still finishes.
func TestShutdownSendsGOAWAY(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	d, addr := gateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, http2.ClientPreface)
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hdr bytes.Buffer
	enc := hpack.NewEncoder(&hdr)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/slow"}, {":authority", "app"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hdr.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	<-started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- d.Shutdown(ctx)
	}()
	var goaway, released bool
	var status string
	var body []byte
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status = f.Value
		}
	})
	for done := false; !done; {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frames (GOAWAY %v, status %q): %v", goaway, status, err)
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goaway = true
			if !released { // GOAWAY came while the stream was in flight
				close(release)
				released = true
			}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.HeadersFrame:
			dec.Write(f.HeaderBlockFragment())
			done = f.StreamEnded()
		case *http2.DataFrame:
			body = append(body, f.Data()...)
			done = f.StreamEnded()
		}
	}
	if !released {
		close(release)
	}
	if !goaway || status != "200" || string(body) != "finished" {
		t.Fatalf("drain: GOAWAY before the response %v, status %q, body %q; want GOAWAY, then 200 finished", goaway, status, body)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownDrainsTCP: a spliced TCP connection keeps working while the
// proxy drains, and is closed when the drain time is up.
func TestShutdownDrainsTCP(t *testing.T) {
	ip := randIP()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(randIP(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a line echo that never closes first
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	d := newTestDataplane(t, ModeRouter, ip)
	app := netip.MustParseAddrPort(ln.Addr().String())
	apply(t, d, clusterType, append(specialClusters(), staticCluster(t, "db", app, false))...)
	apply(t, d, listenerType, &listener.Listener{Name: "tcp.9000", Address: sock(ip.String(), 9000),
		FilterChains: []*listener.FilterChain{tcpChain(t, "db")}})
	conn, err := net.Dial("tcp", netip.AddrPortFrom(ip, 9000).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	echo := func(s string) error {
		if _, err := io.WriteString(conn, s+"\n"); err != nil {
			return err
		}
		got, err := br.ReadString('\n')
		if err == nil && got != s+"\n" {
			err = fmt.Errorf("echo %q", got)
		}
		return err
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}
	const drainTime = 2 * time.Second
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), drainTime)
		defer cancel()
		shut <- d.Shutdown(ctx)
	}()
	waitFor(t, "the listener to stop accepting", func() bool {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, 9000).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if err := echo("while draining"); err != nil {
		t.Fatalf("the TCP connection during the drain: %v", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v while a TCP connection was open and the drain time not up", err)
	default:
	}
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a TCP connection open past the drain time: %v, want the deadline", err)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("the TCP connection is still open after the drain time")
	}
}

package http1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a Serve loop on a loopback listener for tests.
type proxy struct {
	addr    string
	results chan Result
}

// startProxy serves connections with route until the test ends.
func startProxy(t *testing.T, route RouteFunc) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), results: make(chan Result, 1024)}
	pool := NewPool(PoolOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
		pool.Close()
	})
	wrapped := func(req *Request) Decision {
		d := route(req)
		d.Done = func(r Result) {
			select {
			case p.results <- r:
			default: // a test that does not read results
			}
		}
		return d
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				Serve(ctx, c, nil, wrapped, &ServeOptions{Pool: pool, IdleTimeout: time.Minute})
			}()
		}
	}()
	return p
}

// to routes every request to addr.
func to(addr string) RouteFunc {
	return func(*Request) Decision {
		return Decision{Key: addr, Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		}}
	}
}

// upstream is an httptest server counting its connections.
func upstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// client returns an HTTP client whose connections go to the proxy.
func client(t *testing.T, p *proxy) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", p.addr)
		},
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func echo(w http.ResponseWriter, r *http.Request) {
	for _, k := range []string{"X-Request-Id", "X-Forwarded-Proto", "X-Hop", "Keep-Alive"} {
		w.Header().Set("Got-"+k, r.Header.Get(k))
	}
	w.Header().Set("Got-Path", r.URL.RequestURI())
	w.Header().Set("Got-Host", r.Host)
	w.Header().Set("Got-Chunked", fmt.Sprint(len(r.TransferEncoding) > 0))
	io.Copy(w, r.Body)
}

func TestForwardKeepAlive(t *testing.T) {
	srv, conns := upstream(t, echo)
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	for i := 0; i < 10; i++ {
		req, _ := http.NewRequest("POST", "http://reviews:9080/p?i="+fmt.Sprint(i), strings.NewReader("hello"))
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		if string(body) != "hello" || h.Get("Got-Path") != fmt.Sprintf("/p?i=%d", i) || h.Get("Got-Host") != "reviews:9080" ||
			len(h.Get("Got-X-Request-Id")) != 36 || h.Get("Got-X-Forwarded-Proto") != "http" || h.Get("Got-X-Hop") != "" ||
			h.Get("X-Envoy-Upstream-Service-Time") == "" {
			t.Fatalf("request %d: body %q headers %v", i, body, h)
		}
		if r := <-p.results; r.Status != 200 || r.BytesReceived != 5 || r.BytesSent != 5 || r.Flags != "" {
			t.Errorf("result %+v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 (keep-alive)", n)
	}
}

func TestForwardChunkedAndLarge(t *testing.T) {
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		w.Header().Set("Got-Chunked", fmt.Sprint(len(r.TransferEncoding) > 0))
		w.Header().Set("Got-Sum", fmt.Sprintf("%x/%d", h.Sum(nil), n))
		w.(http.Flusher).Flush() // chunked response
		io.CopyN(w, zeros{}, n)
	})
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	for _, size := range []int64{1, 1024, 8 << 20} {
		data := bytes.Repeat([]byte{0}, int(size))
		body := io.MultiReader(bytes.NewReader(data)) // unknown length: sent chunked
		resp, err := c.Post("http://a/", "application/octet-stream", body)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%x/%d", sha256.Sum256(data), size)
		if err != nil || n != size || resp.Header.Get("Got-Sum") != want || resp.Header.Get("Got-Chunked") != "true" ||
			len(resp.TransferEncoding) == 0 {
			t.Errorf("size %d: got %d bytes, %v, headers %v", size, n, err, resp.Header)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestForwardNoBodyResponses(t *testing.T) {
	srv, conns := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/head":
			w.Header().Set("Content-Length", "100")
		case "/204":
			w.WriteHeader(204)
		}
	})
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	for _, tc := range []struct {
		method, path string
		status       int
		length       int64
	}{
		{"HEAD", "/head", 200, 100}, {"GET", "/204", 204, -1}, {"HEAD", "/head", 200, 100}, {"GET", "/204", 204, -1},
	} {
		req, _ := http.NewRequest(tc.method, "http://a"+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || len(b) != 0 || (tc.length > 0 && resp.ContentLength != tc.length) {
			t.Errorf("%s %s: status %d length %d body %q", tc.method, tc.path, resp.StatusCode, resp.ContentLength, b)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1", n)
	}
}

// rawExchange writes raw to the proxy and returns what it answers until
// it closes the connection or stop is seen.
func rawExchange(t *testing.T, p *proxy, steps ...string) string {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var out strings.Builder
	buf := make([]byte, 4096)
	for i := 0; i < len(steps); i += 2 {
		io.WriteString(c, steps[i])
		for !strings.Contains(out.String(), steps[i+1]) {
			n, err := c.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				t.Fatalf("waiting for %q: %v; got %q", steps[i+1], err, out.String())
			}
		}
	}
	return out.String()
}

func TestForwardRaw(t *testing.T) {
	srv, _ := upstream(t, echo)
	p := startProxy(t, to(srv.Listener.Addr().String()))
	tests := []struct {
		name  string
		steps []string
		want  []string
	}{
		{"expect continue", []string{
			"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", "100 Continue\r\n",
			"abc", "abc"}, []string{"HTTP/1.1 200"}},
		{"absolute form", []string{"GET http://details:9080/d?x HTTP/1.1\r\nHost: wrong\r\n\r\n", "Content-Length: 0\r\n\r\n"},
			[]string{"Got-Path: /d?x\r\n", "Got-Host: details:9080\r\n"}},
		{"http10", []string{"GET /old HTTP/1.0\r\n\r\n", "Connection: close\r\n"}, []string{"HTTP/1.1 200"}},
		{"bad request", []string{"GET / HTTP/1.1\r\nHost a\r\n\r\n", "Connection: close\r\n"}, []string{"HTTP/1.1 400 Bad Request"}},
		{"header too large", []string{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", "Connection: close\r\n"},
			[]string{"HTTP/1.1 431"}},
		{"chunked trailers", []string{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "hi"},
			[]string{"Got-Chunked: true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := rawExchange(t, p, tt.steps...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("answer lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestForwardFailures(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	closing := rawUpstream(t, func(c net.Conn) { // reads the request, closes
		bufio.NewReader(c).ReadString('\n')
	})
	midway := rawUpstream(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
	})
	tests := []struct {
		name   string
		route  RouteFunc
		status int
		body   string
		flags  string
	}{
		{"connect failure", to(deadAddr), 503, ConnectFailureBody, "UF"},
		{"reset before headers", to(closing), 503, ConnectionTerminationBody, "UC"},
		{"closed mid-response", to(midway), 200, "", "UC"},
		{"no route", func(*Request) Decision { return Decision{Status: 404, Flags: "NR"} }, 404, "", "NR"},
		{"no healthy upstream", func(*Request) Decision {
			return Decision{Status: 503, Body: "no healthy upstream", Flags: "UH"}
		}, 503, "no healthy upstream", "UH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, tt.route)
			resp, err := client(t, p).Get("http://a/")
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || (tt.body != "" && string(b) != tt.body) {
				t.Errorf("got %d %q (%v), want %d %q", resp.StatusCode, b, err, tt.status, tt.body)
			}
			if tt.flags == "UC" && tt.status == 200 && err == nil {
				t.Errorf("truncated body read without error")
			}
			if r := <-p.results; r.Flags != tt.flags {
				t.Errorf("flags %q, want %q (result %+v)", r.Flags, tt.flags, r)
			}
		})
	}
}

// rawUpstream serves every connection with handle and closes it.
func rawUpstream(t *testing.T, handle func(net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

func TestForwardRetriesStaleConnection(t *testing.T) {
	srv, conns := upstream(t, echo)
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	get := func() {
		resp, err := c.Get("http://a/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		<-p.results
	}
	get()
	srv.CloseClientConnections() // the pooled upstream connection goes stale
	get()
	if n := conns.Load(); n != 2 {
		t.Errorf("upstream saw %d connections, want 2", n)
	}
}

func TestForwardUpgrade(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var req Request
		if ReadRequest(br, &req, 0) != nil || req.Upgrade != "websocket" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		io.Copy(c, br) // echo
	})
	p := startProxy(t, to(up))
	out := rawExchange(t, p,
		"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "\r\n\r\n",
		"ping\n", "ping\n")
	if !strings.HasPrefix(out, "HTTP/1.1 101") {
		t.Errorf("answer %q", out)
	}
}

func TestForwardConcurrent(t *testing.T) {
	srv, _ := upstream(t, echo)
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				want := fmt.Sprintf("g%d-%d", g, i)
				resp, err := c.Post("http://a/", "text/plain", strings.NewReader(want))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != want {
					errs <- fmt.Errorf("got %q want %q", b, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServeDraining(t *testing.T) {
	srv, _ := upstream(t, echo)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var draining atomic.Bool
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- Serve(context.Background(), c, nil, to(srv.Listener.Addr().String()), &ServeOptions{Draining: draining.Load})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	var resp Response
	for i, drain := range []bool{false, true} {
		draining.Store(drain)
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
		if err := ReadResponse(br, &resp, "GET", 0); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var b Body
		b.ResetResponse(br, &resp)
		io.Copy(io.Discard, &b)
		if resp.Close != drain {
			t.Errorf("request %d: Connection: close = %v, want %v", i, resp.Close, drain)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("connection still open after draining: %v", err)
	}
}

func TestForwardRetry(t *testing.T) {
	// The upstream answers the first request of a connection and closes
	// the connection on the second without answering: a reused connection
	// that dies before any response byte.
	var conns atomic.Int32
	up := rawUpstream(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		var req Request
		var b Body
		for i := 0; ReadRequest(br, &req, 0) == nil; i++ {
			b.ResetRequest(br, &req)
			io.Copy(io.Discard, &b)
			if i == 1 {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tests := []struct {
		method  string
		body    string
		status  int
		retried bool
	}{
		{"GET", "", 200, true},
		{"POST", "data", 503, false}, // not replayable
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			p := startProxy(t, to(up))
			c := client(t, p)
			for i := 0; i < 2; i++ {
				req, _ := http.NewRequest(tt.method, "http://a/", strings.NewReader(tt.body))
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				r := <-p.results
				if i == 1 && (resp.StatusCode != tt.status || r.Retried != tt.retried) {
					t.Errorf("second %s: status %d retried %v, want %d %v (%+v)", tt.method, resp.StatusCode, r.Retried, tt.status, tt.retried, r)
				}
			}
		})
	}
}

func TestForwardTimeout(t *testing.T) {
	release := make(chan struct{})
	up := rawUpstream(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		<-release
	})
	t.Cleanup(func() { close(release) })
	p := startProxy(t, func(r *Request) Decision {
		d := to(up)(r)
		d.Timeout = 50 * time.Millisecond
		return d
	})
	resp, err := client(t, p).Get("http://a/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if r := <-p.results; resp.StatusCode != 504 || string(b) != TimeoutBody || r.Flags != "UT" {
		t.Errorf("got %d %q flags %q, want 504 %q UT", resp.StatusCode, b, r.Flags, TimeoutBody)
	}
}

func TestForwardStreamsChunks(t *testing.T) {
	next := make(chan struct{})
	srv, _ := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select { // the client must see "first" before "second" is written
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second")
	})
	p := startProxy(t, to(srv.Listener.Addr().String()))
	c := client(t, p)
	c.Timeout = 10 * time.Second
	resp, err := c.Get("http://a/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first read %q: %v", buf, err)
	}
	close(next)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "second" {
		t.Fatalf("rest %q: %v", rest, err)
	}
}

// TestUpstreamConnectionLimits: a connection older than
// MaxConnectionDuration is closed once its exchange ends, and one idle in
// the pool past its IdleTimeout is not reused.
func TestUpstreamConnectionLimits(t *testing.T) {
	tests := []struct {
		name      string
		idle, max time.Duration
		pause     time.Duration
		wantConns int32
	}{
		{"reused", 0, 0, 0, 1},
		{"max connection duration", 0, time.Nanosecond, 0, 3},
		{"idle timeout", 20 * time.Millisecond, 0, 60 * time.Millisecond, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := upstream(t, echo)
			addr := srv.Listener.Addr().String()
			p := startProxy(t, func(r *Request) Decision {
				d := to(addr)(r)
				d.IdleTimeout, d.MaxConnectionDuration = tt.idle, tt.max
				return d
			})
			c := client(t, p)
			for i := range 3 {
				resp, err := c.Get("http://reviews:9080/")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				<-p.results
				if i < 2 {
					time.Sleep(tt.pause)
				}
			}
			if n := conns.Load(); n != tt.wantConns {
				t.Errorf("upstream saw %d connections, want %d", n, tt.wantConns)
			}
		})
	}
}

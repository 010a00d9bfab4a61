package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeAllocations guards the hot path: a keep-alive request through
// Serve's loop (read the head, route, pooled upstream connection, write
// head and body, stream the response back) allocates nothing in the
// steady state. Heads are interned into shared chunks (one 16 KiB chunk
// per few dozen heads, which AllocsPerRun's per-run average rounds away).
func TestServeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	up := benchUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	pool := NewPool(PoolOptions{})
	t.Cleanup(pool.Close)
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", up)
	}
	route := func(*Request) Decision { return Decision{Key: up, Dial: dial} }
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			Serve(ctx, c, nil, route, &ServeOptions{Pool: pool})
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-served })

	tests := []struct {
		name string
		msg  string
	}{
		{"POST 1 KiB with x-request-id", benchHead + strings.Repeat("x", 1024)},
		{"GET, x-request-id added", "GET /productpage HTTP/1.1\r\nHost: productpage:9080\r\nUser-Agent: curl/8.5\r\nAccept: */*\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			msg := []byte(tt.msg)
			var resp Response
			var body Body
			var failed error
			exchange := func() {
				if _, err := c.Write(msg); err != nil {
					failed = err
					return
				}
				if err := ReadResponse(br, &resp, "POST", 0); err != nil || resp.Status != 200 {
					failed = err
					return
				}
				body.ResetResponse(br, &resp)
				io.Copy(io.Discard, &body)
			}
			for range 50 { // warm the pools: upstream connection, buffers, arenas
				exchange()
			}
			allocs := testing.AllocsPerRun(400, exchange)
			if failed != nil {
				t.Fatal(failed)
			}
			if allocs > 0 {
				t.Errorf("%v allocations per request through Serve, want 0", allocs)
			}
		})
	}
}

// countingConn counts the Read and Write calls made on a connection.
type countingConn struct {
	net.Conn
	reads, writes atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error)  { c.reads.Add(1); return c.Conn.Read(p) }
func (c *countingConn) Write(p []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(p) }

// TestServeCallsPerMessage: a 1 KiB POST and its response cross the proxy
// with one write per message (head and body coalesced) and one read per
// message on each side, not a write for the head and another for the body.
func TestServeCallsPerMessage(t *testing.T) {
	up := benchUpstream(t)
	var upc *countingConn
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", up)
		if err != nil {
			return nil, err
		}
		upc = &countingConn{Conn: c}
		return upc, nil
	}
	pool := NewPool(PoolOptions{})
	t.Cleanup(pool.Close)
	client, server := loopbackPair(t)
	down := &countingConn{Conn: server}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(context.Background(), down, nil, func(*Request) Decision { return Decision{Key: up, Dial: dial} }, &ServeOptions{Pool: pool})
	}()
	br := bufio.NewReader(client)
	msg := []byte(benchHead + strings.Repeat("x", 1024))
	var resp Response
	var body Body
	const n = 20
	for i := range n {
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := ReadResponse(br, &resp, "POST", 0); err != nil || resp.Status != 200 {
			t.Fatalf("request %d: status %d, %v", i, resp.Status, err)
		}
		body.ResetResponse(br, &resp)
		io.Copy(io.Discard, &body)
	}
	client.Close()
	<-done
	checks := []struct {
		what      string
		got, most int64
	}{
		{"writes upstream", upc.writes.Load(), n},
		{"writes downstream", down.writes.Load(), n},
		// every request and response is one read; the downstream side has
		// one more, the read that sees the client close.
		{"reads upstream", upc.reads.Load(), n},
		{"reads downstream", down.reads.Load(), n + 1},
	}
	for _, c := range checks {
		if c.got > c.most {
			t.Errorf("%d %s for %d exchanges, want at most %d", c.got, c.what, n, c.most)
		}
	}
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestServeIdleTimeout: a downstream connection with no request for
// IdleTimeout is closed, also after requests that kept its deadline
// armed; a request whose body arrives after IdleTimeout is still served,
// since an exchange that reads from downstream runs without the deadline.
func TestServeIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	up := benchUpstream(t)
	pool := NewPool(PoolOptions{})
	t.Cleanup(pool.Close)
	route := func(*Request) Decision {
		return Decision{Key: up, Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", up)
		}}
	}
	serve := func(t *testing.T) (net.Conn, *bufio.Reader, chan error) {
		client, server := loopbackPair(t)
		done := make(chan error, 1)
		go func() {
			done <- Serve(context.Background(), server, nil, route, &ServeOptions{Pool: pool, IdleTimeout: idle})
		}()
		return client, bufio.NewReader(client), done
	}
	roundTrip := func(t *testing.T, c net.Conn, br *bufio.Reader, parts ...string) {
		t.Helper()
		for i, p := range parts {
			if i > 0 {
				time.Sleep(2 * idle) // the body comes later than the idle timeout
			}
			if _, err := io.WriteString(c, p); err != nil {
				t.Fatal(err)
			}
		}
		var resp Response
		if err := ReadResponse(br, &resp, "POST", 0); err != nil || resp.Status != 200 {
			t.Fatalf("status %d, %v", resp.Status, err)
		}
		var body Body
		body.ResetResponse(br, &resp)
		io.Copy(io.Discard, &body)
	}
	waitClosed := func(t *testing.T, c net.Conn, done chan error) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle connection: read %d bytes, %v; want EOF (closed by the proxy)", n, err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after an idle timeout = %v, want nil", err)
		}
	}
	t.Run("closed when idle after requests", func(t *testing.T) {
		c, br, done := serve(t)
		for range 5 {
			roundTrip(t, c, br, benchHead+strings.Repeat("x", 1024))
		}
		waitClosed(t, c, done)
	})
	t.Run("slow body served", func(t *testing.T) {
		c, br, done := serve(t)
		head := strings.Replace(benchHead, "Content-Length: 1024", "Content-Length: 4", 1)
		roundTrip(t, c, br, head, "abcd")
		roundTrip(t, c, br, head+"efgh") // and the connection is still good
		waitClosed(t, c, done)
	})
}

package http1

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

// TestServeAllocations guards the hot path: a keep-alive request through
// Serve's loop (read the head, route, pooled upstream connection, write
// head and body, stream the response back) allocates nothing in the
// steady state. Heads are interned into shared chunks (one 16 KiB chunk
// per few dozen heads, which AllocsPerRun's per-run average rounds away).
func TestServeAllocations(t *testing.T) {
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

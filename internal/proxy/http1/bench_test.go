package http1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

const benchHead = "POST /api/v1/reviews/0 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: fortio.org/fortio-1.68.2\r\n" +
	"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\nX-B3-Traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\n" +
	"X-Request-Id: 9a3b2c4d-1111-4222-8333-444455556666\r\n\r\n"

func BenchmarkReadRequest(b *testing.B) {
	msg := []byte(benchHead + strings.Repeat("x", 1024))
	r := bytes.NewReader(msg)
	br := bufio.NewReader(r)
	var req Request
	var body Body
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r.Reset(msg)
		br.Reset(r)
		if err := ReadRequest(br, &req, 0); err != nil {
			b.Fatal(err)
		}
		body.ResetRequest(br, &req)
		io.Copy(io.Discard, &body)
	}
}

// benchUpstream is a minimal keep-alive HTTP/1.1 server that discards the
// request body and answers "ok", so allocations measured are the proxy's.
func benchUpstream(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				var req Request
				var body Body
				for ReadRequest(br, &req, 0) == nil {
					body.ResetRequest(br, &req)
					io.Copy(io.Discard, &body)
					bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
					if bw.Flush() != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// benchClient sends 1 KiB POSTs on one keep-alive connection to addr.
func benchClient(b *testing.B, addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(benchHead + strings.Repeat("x", 1024))
	br := bufio.NewReader(c)
	var resp Response
	var body Body
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if err := ReadResponse(br, &resp, "POST", 0); err != nil || resp.Status != 200 {
			b.Fatalf("response %d: %v", resp.Status, err)
		}
		body.ResetResponse(br, &resp)
		io.Copy(io.Discard, &body)
	}
}

func BenchmarkForward(b *testing.B) {
	up := benchUpstream(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	pool := NewPool(PoolOptions{})
	defer pool.Close()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", up)
	}
	route := func(*Request) Decision { return Decision{Key: up, Dial: dial} }
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go Serve(context.Background(), c, nil, route, &ServeOptions{Pool: pool})
		}
	}()
	benchClient(b, ln.Addr().String())
}

func BenchmarkForwardReverseProxy(b *testing.B) {
	up := benchUpstream(b)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: up})
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: rp}
	go srv.Serve(ln)
	defer srv.Close()
	benchClient(b, ln.Addr().String())
}

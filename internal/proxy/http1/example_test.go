package http1_test

import (
	"context"
	"net"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// ExampleServe forwards every request to one upstream, sharing a pool of
// keep-alive connections between downstream connections.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	defer ln.Close()
	pool := http1.NewPool(http1.PoolOptions{})
	defer pool.Close()
	const upstream = "127.0.0.1:8080"
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", upstream)
	}
	route := func(req *http1.Request) http1.Decision {
		if req.Path() == "/forbidden" {
			return http1.Decision{Status: 403, Body: "RBAC: access denied"}
		}
		return http1.Decision{Key: "echo|" + upstream, Dial: dial}
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go http1.Serve(context.Background(), c, nil, route, &http1.ServeOptions{Pool: pool})
	}
}

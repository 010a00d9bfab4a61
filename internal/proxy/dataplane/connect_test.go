package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestConnectTimeoutCoversHandshake: an upstream that accepts TCP and
// never answers the TLS handshake (a plaintext server in the place of a
// sidecar) fails the connect once the cluster's connect timeout is up,
// even when the request itself has no deadline.
func TestConnectTimeoutCoversHandshake(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, silent
		}
	}()
	d := newTestDataplane(t, "sidecar", randIP())
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ep := &rendpoint{addr: ap.String(), ap: ap, connectTimeout: 200 * time.Millisecond,
		tls: &tls.Config{InsecureSkipVerify: true}}
	done := make(chan error, 1)
	go func() {
		c, err := d.fwd.dialEndpoint(context.Background(), ep)
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var ce *connectError
		if !errors.As(err, &ce) {
			t.Fatalf("dialEndpoint to a silent TLS peer: %v, want a connect failure", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dialEndpoint to a silent TLS peer still waits for the handshake after 30 s (connect timeout 200ms)")
	}
}

package http1

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

func TestPool(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dials := 0
	dial := func(ctx context.Context) (net.Conn, error) {
		dials++
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	p := NewPool(PoolOptions{MaxIdlePerKey: 1, ProbeIdle: -1})
	t.Cleanup(p.Close)
	ctx := context.Background()

	a, _ := p.Get(ctx, "k", dial)
	b, _ := p.Get(ctx, "k", dial)
	sa, sb := <-accepted, <-accepted
	t.Cleanup(func() { sa.Close(); sb.Close() })
	p.Put(a)
	p.Put(b) // over MaxIdlePerKey: closed
	if n := p.IdleCount("k"); n != 1 {
		t.Fatalf("IdleCount = %d, want 1", n)
	}
	c, _ := p.Get(ctx, "k", dial)
	if c != a || !c.Reused || dials != 2 {
		t.Fatalf("Get returned %p (reused %v) after %d dials, want the idle %p", c, c.Reused, dials, a)
	}
	p.Put(c)
	sa.Close() // the server closes the idle connection
	got := waitStale(t, p, dial)
	if got == a || dials != 3 {
		t.Errorf("stale idle connection was reused (dials %d)", dials)
	}
	got.Close()
	<-accepted

	p.Put(mustGet(t, p, "other", dial))
	p.CloseIdle()
	if p.IdleCount("other") != 0 {
		t.Error("CloseIdle left idle connections")
	}
	if _, err := p.Get(ctx, "x", func(context.Context) (net.Conn, error) { return nil, errors.New("refused") }); err == nil {
		t.Error("Get with a failing dial returned no error")
	}
}

// waitStale gets a connection for "k" once the pool notices the closed one.
func waitStale(t *testing.T, p *Pool, dial DialFunc) *Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := mustGet(t, p, "k", dial)
		if !c.Reused {
			return c
		}
		p.Put(c) // the close has not arrived yet
		runtime.Gosched()
	}
	t.Fatal("the pool kept handing out a connection the server closed")
	return nil
}

func mustGet(t *testing.T, p *Pool, key string, dial DialFunc) *Conn {
	t.Helper()
	c, err := p.Get(context.Background(), key, dial)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPoolProbeIdle: a connection back from an exchange less than
// ProbeIdle ago is handed out without the liveness syscall; one idle for
// longer is checked, so a close the server sent meanwhile is noticed.
func TestPoolProbeIdle(t *testing.T) {
	tests := []struct {
		name       string
		probeIdle  time.Duration
		wantReused bool
	}{
		{"fresh connection: not probed", time.Hour, true},
		{"always probed", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS != "linux" {
				t.Skip("the liveness probe is Linux-only")
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			accepted := make(chan net.Conn, 2)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			dial := func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", ln.Addr().String())
			}
			p := NewPool(PoolOptions{ProbeIdle: tt.probeIdle})
			t.Cleanup(p.Close)
			a := mustGet(t, p, "k", dial)
			sa := <-accepted
			p.Put(a)
			sa.Close()
			deadline := time.Now().Add(10 * time.Second)
			for a.probe.alive() && time.Now().Before(deadline) { // until the FIN is in
				runtime.Gosched()
			}
			got := mustGet(t, p, "k", dial)
			defer got.Close()
			if reused := got == a; reused != tt.wantReused {
				t.Errorf("Get after the server closed: reused the closed connection = %v, want %v", reused, tt.wantReused)
			}
		})
	}
}

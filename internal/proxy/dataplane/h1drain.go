package dataplane

import (
	"context"
	"net"
	"sync"
)

// connTracker tracks a listener's HTTP/1 connections for draining.
type connTracker struct {
	mu     sync.Mutex
	conns  map[net.Conn]*h1conn
	closed bool
	wg     sync.WaitGroup
}

func (s *server) track(conn net.Conn, c *h1conn) bool {
	t := &s.tracker
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	if t.conns == nil {
		t.conns = map[net.Conn]*h1conn{}
	}
	t.conns[conn] = c
	t.wg.Add(1)
	return true
}

func (s *server) untrack(conn net.Conn) {
	t := &s.tracker
	t.mu.Lock()
	delete(t.conns, conn)
	t.mu.Unlock()
	t.wg.Done()
}

// drainH1 tells busy connections to close after their exchange, closes idle
// ones, and waits for all to end; when ctx ends first, it cuts them.
func (s *server) drainH1(ctx context.Context) error {
	t := &s.tracker
	s.draining.Store(true)
	t.mu.Lock()
	t.closed = true
	for _, c := range t.conns {
		if !c.busy.Load() {
			c.end() // idle between requests: Serve ends cleanly
		}
	}
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-done
		return ctx.Err()
	}
}

// tcpTracker tracks a listener's spliced TCP connections for draining.
type tcpTracker struct {
	mu     sync.Mutex
	conns  map[*splicing]struct{}
	closed bool
	wg     sync.WaitGroup
}

// splicing is one spliced TCP connection: downstream and, once dialled,
// upstream.
type splicing struct {
	down, up net.Conn
}

// trackTCP records a TCP connection being spliced; nil when s is draining.
func (s *server) trackTCP(conn net.Conn) *splicing {
	t := &s.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	if t.conns == nil {
		t.conns = map[*splicing]struct{}{}
	}
	sp := &splicing{down: conn}
	t.conns[sp] = struct{}{}
	t.wg.Add(1)
	return sp
}

// spliceUp records sp's upstream; false when the drain already cut sp.
func (s *server) spliceUp(sp *splicing, up net.Conn) bool {
	t := &s.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.conns[sp]; !ok {
		return false
	}
	sp.up = up
	return true
}

func (s *server) untrackTCP(sp *splicing) {
	t := &s.tcp
	t.mu.Lock()
	if _, ok := t.conns[sp]; ok {
		delete(t.conns, sp)
		t.wg.Done()
	}
	t.mu.Unlock()
}

// drainTCP lets spliced connections run until they end, as Envoy keeps a
// draining listener's TCP proxies; when ctx ends first (the drain time is
// up), it closes both sides of the ones left.
func (s *server) drainTCP(ctx context.Context) error {
	t := &s.tcp
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	for sp := range t.conns {
		sp.down.Close()
		if sp.up != nil {
			sp.up.Close()
		}
		delete(t.conns, sp)
		t.wg.Done()
	}
	t.mu.Unlock()
	<-done
	return ctx.Err()
}

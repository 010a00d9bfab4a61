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

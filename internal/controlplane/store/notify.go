package store

import (
	"log/slog"
	"slices"
	"sync"
)

// notifier calls subscribers with each new version, in version order, one
// call at a time and never under the store's lock. Versions are queued while
// the store's lock is held (so the queue is in order) and delivered after it
// is released by whichever goroutine finds no delivery running; a subscriber
// that changes the store from its callback only queues, so it cannot deadlock.
type notifier struct {
	log     *slog.Logger
	mu      sync.Mutex
	subs    []func(int64)
	pending []int64
	running bool
}

// subscribe adds fn.
func (n *notifier) subscribe(fn func(int64)) {
	n.mu.Lock()
	n.subs = append(n.subs, fn)
	n.mu.Unlock()
}

// enqueue records a new version; call it with the store's lock held.
func (n *notifier) enqueue(v int64) {
	n.mu.Lock()
	n.pending = append(n.pending, v)
	n.mu.Unlock()
}

// deliver calls subscribers for queued versions unless another goroutine is
// already doing so; call it without the store's lock.
func (n *notifier) deliver() {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		return
	}
	n.running = true
	for len(n.pending) > 0 {
		v := n.pending[0]
		n.pending = n.pending[1:]
		subs := slices.Clone(n.subs)
		n.mu.Unlock()
		for _, fn := range subs {
			n.call(fn, v)
		}
		n.mu.Lock()
	}
	n.running = false
	n.mu.Unlock()
}

// call runs one subscriber; a panic is logged so delivery goes on.
func (n *notifier) call(fn func(int64), v int64) {
	defer func() {
		if r := recover(); r != nil {
			n.log.Error("config subscriber panicked", "version", v, "panic", r)
		}
	}()
	fn(v)
}

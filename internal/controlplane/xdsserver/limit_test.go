package xdsserver

import (
	"context"
	"testing"
	"time"
	"unsafe"
)

// TestBudget: acquire waits for released bytes, takes at most the whole
// budget, and gives up with its context.
func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if n, err := b.acquire(ctx, 8); n != 8 || err != nil {
		t.Fatalf("acquire 8 = %d, %v", n, err)
	}
	got := make(chan int64)
	go func() {
		n, _ := b.acquire(ctx, 5)
		got <- n
	}()
	select {
	case n := <-got:
		t.Fatalf("acquired %d with 2 free", n)
	case <-time.After(50 * time.Millisecond):
	}
	b.release(8)
	if n := <-got; n != 5 {
		t.Errorf("acquired %d after the release, want 5", n)
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(cctx, 6); err == nil {
		t.Error("acquire beyond the budget returned before its context ended")
	}
}

// TestBudgetOrder: waiters are granted in the order they came, none
// overtakes the head; one that gave up is skipped.
func TestBudgetOrder(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if _, err := b.acquire(ctx, 10); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error)
	go func() { _, err := b.acquire(cctx, 4); gaveUp <- err }()
	order := make(chan int, 2)
	waitQueued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			b.mu.Lock()
			q := len(b.waiters)
			b.mu.Unlock()
			if q == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters, want %d", q, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitQueued(1)
	go func() { b.acquire(ctx, 6); order <- 1 }()
	waitQueued(2)
	go func() { b.acquire(ctx, 3); order <- 2 }()
	waitQueued(3)
	cancel()
	if err := <-gaveUp; err == nil {
		t.Fatal("the cancelled waiter got its bytes")
	}
	b.release(5) // 3 would fit, but 6 came first
	select {
	case n := <-order:
		t.Fatalf("waiter %d overtook the head of the queue", n)
	case <-time.After(30 * time.Millisecond):
	}
	b.release(1)
	if n := <-order; n != 1 {
		t.Fatalf("granted %d first, want 1", n)
	}
	b.release(3)
	if n := <-order; n != 2 {
		t.Errorf("granted %d second, want 2", n)
	}
}

// TestInterner: equal names from different requests end up as one string.
func TestInterner(t *testing.T) {
	in := newInterner()
	a := []string{string([]byte("outbound|9080||a")), string([]byte("b"))}
	b := []string{string([]byte("outbound|9080||a")), string([]byte("c"))}
	in.intern(a)
	in.intern(b)
	if unsafe.StringData(a[0]) != unsafe.StringData(b[0]) {
		t.Error("the same name from two requests is two strings")
	}
	if a[0] != "outbound|9080||a" || b[1] != "c" {
		t.Errorf("names changed: %v %v", a, b)
	}
}

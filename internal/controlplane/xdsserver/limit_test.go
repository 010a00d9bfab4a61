package xdsserver

import (
	"context"
	"testing"
	"time"
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

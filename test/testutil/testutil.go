// Package testutil holds the small helpers weft's process-level test
// suites (test/e2e, test/kube, test/kubeauth) share: polling with a
// deadline, a goroutine-safe output buffer, and a tail for failure logs.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Eventually polls fn every 50 ms until it returns nil, and fails the test
// with fn's last error when bound passes first.
func Eventually(t testing.TB, bound time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %v", bound, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Buffer is a bytes.Buffer safe for a process's stdout and stderr copiers
// and a test reading it at the same time.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Tail returns the last n bytes of s, marked "…" when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Package localpeer decides whether a connection to a sidecar's outbound
// capture port comes from the sidecar's own workload. Under Istio the pod's
// network namespace makes that so: only the pod's processes reach the
// capture ports. A standalone workload shares the host's loopback with
// every other process, so there the kernel is asked who is at the other
// end: its socket table (sock_diag) names the peer socket's inode and
// owner, and /proc says which processes hold that socket.
package localpeer

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Socket is the peer's end of a TCP connection as the kernel knows it.
type Socket struct {
	Inode uint64 // what /proc/PID/fd/N links to as socket:[INODE]
	UID   uint32 // the socket's owner
}

// ErrNotLocal means no socket of this network namespace is the peer: the
// connection comes from another host (or another namespace).
var ErrNotLocal = errors.New("the peer is not a socket of this host")

// ErrRefused wraps every reason Check gives for refusing a connection.
var ErrRefused = errors.New("not the workload's own traffic")

// Guard decides which connections to a capture port are the workload's
// own. Check may be called from many goroutines; AddProcess may be called
// at any time, concurrently with Check.
type Guard struct {
	// Netns: the proxy and its workload have a network namespace to
	// themselves (a Kubernetes pod, weft run --netns): every local source
	// is the workload's, only sources from outside are refused.
	Netns bool
	// PodIP is the workload's address (with Netns, its connections may
	// come from it).
	PodIP netip.Addr
	// UIDs: sockets these users own are the workload's (weft proxy
	// --outbound-allow uid:N, for an app weft did not start).
	UIDs []uint32
	// Any turns the check off: every local process may use the port.
	Any bool

	// Find and Holds are the kernel lookups (FindSocket and HoldsSocket
	// when nil); tests inject their own.
	Find  func(local, remote netip.AddrPort) (Socket, error)
	Holds func(pid int, inode uint64) (bool, error)

	mu       sync.RWMutex
	pids     []int
	expected chan struct{} // closed by the first AddProcess after Expect
}

// awaitBound is how long Check waits for an expected process.
const awaitBound = 5 * time.Second

// Expect says a process is about to be added (weft run is starting its
// app, whose PID it learns only once it runs): until then, or for at most
// a few seconds, Check waits for it instead of refusing the app's first
// connection.
func (g *Guard) Expect() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pids) == 0 && g.expected == nil {
		g.expected = make(chan struct{})
	}
}

// AddProcess makes process pid and its descendants the workload's (weft
// run's app, weft proxy --outbound-allow pid:N).
func (g *Guard) AddProcess(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !slices.Contains(g.pids, pid) {
		g.pids = append(g.pids, pid)
	}
	if g.expected != nil {
		close(g.expected)
		g.expected = nil
	}
}

// Empty reports whether the guard lets no process through: not Netns, not
// Any, and no UID or process given yet.
func (g *Guard) Empty() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return !g.Netns && !g.Any && len(g.UIDs) == 0 && len(g.pids) == 0
}

// Check reports whether a connection accepted on local from remote is the
// workload's: nil if so, else an error wrapping ErrRefused that says why.
// It costs at most one socket lookup and, for a process check, a read of
// the processes' descriptor tables: call it once per connection.
func (g *Guard) Check(local, remote netip.AddrPort) error {
	if g.Any {
		return nil
	}
	find, holds := g.Find, g.Holds
	if find == nil {
		find = FindSocket
	}
	if holds == nil {
		holds = HoldsSocket
	}
	src := remote.Addr().Unmap()
	if g.Netns && (src.IsLoopback() || src == g.PodIP.Unmap()) {
		return nil
	}
	s, err := find(local, remote)
	if errors.Is(err, ErrNotLocal) {
		return fmt.Errorf("%w: %s is not a local process", ErrRefused, remote)
	}
	if err != nil {
		return fmt.Errorf("%w: identifying the process behind %s: %w", ErrRefused, remote, err)
	}
	if g.Netns || slices.Contains(g.UIDs, s.UID) {
		return nil
	}
	g.mu.RLock()
	pids, expected := slices.Clone(g.pids), g.expected
	g.mu.RUnlock()
	if expected != nil {
		select {
		case <-expected:
		case <-time.After(awaitBound):
		}
		g.mu.RLock()
		pids = slices.Clone(g.pids)
		g.mu.RUnlock()
	}
	var errs []error
	for _, pid := range pids {
		ok, err := holds(pid, s.Inode)
		if ok {
			return nil
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s (uid %d) is not the app's process: %w", ErrRefused, remote, s.UID, errors.Join(errs...))
	}
	return fmt.Errorf("%w: %s (uid %d) is not the app's process", ErrRefused, remote, s.UID)
}

package dataplane

import (
	"testing"
	"time"
)

// TestPriorityFailover: traffic stays on the best priority while it has a
// healthy endpoint and moves to the next when all of it is ejected.
func TestPriorityFailover(t *testing.T) {
	eps := testEndpoints(4)
	eps[0].priority, eps[1].priority, eps[2].priority, eps[3].priority = 0, 0, 1, 2
	st := &state{}
	cl := &rcluster{name: "c", lbName: "ROUND_ROBIN", endpoints: eps, outlier: &routlier{maxEjectionPct: 100, baseEjection: time.Minute}}
	cl.lb = newRoundRobin(eps, st.rrPosition("c"))
	cl.levels = priorityLevels(cl, st)
	seen := map[string]int{}
	for range 100 {
		seen[cl.pick().addr]++
	}
	if seen[eps[0].addr] != 50 || seen[eps[1].addr] != 50 {
		t.Fatalf("priority 0's two endpoints should share all traffic: %v", seen)
	}
	for _, e := range eps[:2] {
		e.stats.ejectedUntil.Store(time.Now().Add(time.Minute).UnixNano())
	}
	for range 10 {
		if got := cl.pick(); got != eps[2] {
			t.Fatalf("with priority 0 ejected, got %s, want priority 1's %s", got.addr, eps[2].addr)
		}
	}
	eps[2].stats.ejectedUntil.Store(time.Now().Add(time.Minute).UnixNano())
	if got := cl.pick(); got != eps[3] {
		t.Fatalf("then priority 2: got %s", got.addr)
	}
}

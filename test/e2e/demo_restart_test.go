package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoBehavesLikeACluster: `weft demo --replicas reviews-v2=2` runs two
// reviews-v2 instances; a workload whose process is killed is restarted
// while the rest serve on, and so is the control plane, with the proxies
// serving on their last config while it is down.
func TestDemoBehavesLikeACluster(t *testing.T) {
	m := startDemo(t, "--replicas", "reviews-v2=2")
	eventually(t, 30*time.Second, func() error {
		out, err := m.weft("proxy-status")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, p := range []string{"reviews-v2-1.default", "reviews-v2-2.default"} {
			found := false
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == p {
					found = f[len(f)-1] == "reviews-v2" // the WORKLOAD column
				}
			}
			if !found {
				return fmt.Errorf("proxy-status lacks %s of workload reviews-v2:\n%s", p, out)
			}
		}
		return nil
	})
	eventually(t, 30*time.Second, func() error {
		seen := map[string]bool{}
		for range 40 {
			body, _, err := m.get(m.client, "/productpage")
			if err != nil {
				return err
			}
			if i := strings.Index(body, "reviews-v2-"); i >= 0 {
				seen[body[i:i+len("reviews-v2-1")]] = true
			}
		}
		if !seen["reviews-v2-1"] || !seen["reviews-v2-2"] {
			return fmt.Errorf("the page came from reviews-v2 instances %v, want both", seen)
		}
		return nil
	})

	t.Run("replicas are one workload in metrics and the graph", func(t *testing.T) {
		eventually(t, 60*time.Second, func() error {
			for range 10 {
				if _, _, err := m.get(m.client, "/productpage"); err != nil {
					return err
				}
			}
			edges, err := storeEdges(m)
			if err != nil {
				return err
			}
			var v2 float64
			for _, e := range edges {
				for _, w := range []string{e.Source.Workload, e.Destination.Workload} {
					if strings.HasSuffix(w, "-1") || strings.HasSuffix(w, "-2") {
						return fmt.Errorf("an edge names instance %q, not its workload: %+v", w, e)
					}
				}
				if e.Source.Workload == "productpage-v1" && e.Destination.Workload == "reviews-v2" {
					v2 += e.RequestRate
				}
			}
			if v2 <= 0 {
				return fmt.Errorf("no productpage-v1 → reviews-v2 edge with traffic among %+v", edges)
			}
			return nil
		})
	})

	t.Run("a killed workload is restarted", func(t *testing.T) {
		m.waitRunning()
		pid := demoChild(t, m, "--name", "details-v1-1")
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, func() error {
			if !strings.Contains(m.demo.out.String(), "details-v1-1 exited") {
				return fmt.Errorf("the demo did not report details-v1-1's exit")
			}
			if p := demoChildPID(m, "--name", "details-v1-1"); p == 0 || p == pid {
				return fmt.Errorf("details-v1-1 not running again (pid %d, was %d)", p, pid)
			}
			body, code, err := m.get(m.client, "/productpage")
			if err != nil || code != 200 || strings.Contains(body, "Error fetching product details") {
				return fmt.Errorf("page: HTTP %d, %v, details error shown: %v", code, err, strings.Contains(body, "Error fetching product details"))
			}
			return nil
		})
	})

	t.Run("the mesh serves while the control plane restarts", func(t *testing.T) {
		pid := demoChild(t, m, "control-plane", "--data-dir", filepath.Join(m.dataDir, "control-plane"))
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// While it is down (its first restart waits 1 s), the proxies serve on.
		if _, code, err := m.get(m.client, "/productpage"); err != nil || code != 200 {
			t.Errorf("page with the control plane down: HTTP %d, %v", code, err)
		}
		eventually(t, 60*time.Second, func() error {
			if p := demoChildPID(m, "control-plane", "--data-dir", filepath.Join(m.dataDir, "control-plane")); p == 0 || p == pid {
				return fmt.Errorf("control plane not running again")
			}
			out, err := m.weft("proxy-status")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			for _, p := range []string{"productpage-v1-1", "details-v1-1", "reviews-v2-2", "istio-ingressgateway"} {
				if !strings.Contains(out, p) {
					return fmt.Errorf("proxy-status lacks %s after the restart:\n%s", p, out)
				}
			}
			return nil
		})
		// It takes config again, and the proxies get it.
		m.apply(sample(t, "destination-rule-all.yaml"))
		m.applyRoutes(sample(t, "virtual-service-reviews-v3.yaml"))
		eventually(t, 20*time.Second, func() error {
			counts := m.count(m.client, 6)
			if counts["v3"] != 6 {
				return fmt.Errorf("after the restart and an apply reviews came from %v, want only v3", counts)
			}
			return nil
		})
	})
}

// demoChild returns the PID of the demo's child process whose command line
// holds every one of args in order (fails the test if there is none).
func demoChild(t *testing.T, m *mesh, args ...string) int {
	t.Helper()
	pid := demoChildPID(m, args...)
	if pid == 0 {
		t.Fatalf("no child of the demo runs with %q", args)
	}
	return pid
}

// demoChildPID is demoChild without the test: 0 when there is none.
func demoChildPID(m *mesh, args ...string) int {
	demo := m.demo.cmd.Process.Pid
	for pid, ppid := range processes() {
		if ppid != demo {
			continue
		}
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(raw), "\x00", " ")+" ", strings.Join(args, " ")+" ") {
			return pid
		}
	}
	return 0
}

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMTLSToggleUnderLoad is the security review's mesh-wide stall: after
// a registration race and several STRICT/PERMISSIVE toggles, every mTLS
// handshake to every sidecar timed out and the ingress answered nothing.
// Here Bookinfo serves pages without pause while mesh-wide
// PeerAuthentication flips 50 times, each flip in force on ratings' sidecar
// before the next, and workloads are killed and re-register (the demo
// restarts them) in the middle of flips. After it every sidecar still
// answers mTLS and the page still renders.
func TestMTLSToggleUnderLoad(t *testing.T) {
	const toggles = 50
	m := startDemo(t)
	m.waitRunning() // workloads are killed below: the demo must restart them
	dir := t.TempDir()
	mode := func(name string) string {
		f := filepath.Join(dir, name+".yaml")
		os.WriteFile(f, []byte("apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: "+name+"}\n"), 0o644)
		return f
	}
	strict, permissive := mode("STRICT"), mode("PERMISSIVE")
	workloads := []string{"productpage-v1-1", "details-v1-1", "reviews-v1-1", "reviews-v2-1", "reviews-v3-1", "ratings-v1-1"}
	ratings := proxyIP(t, m, "ratings-v1-1")
	plaintextXDS := m.b.controlPlaneIP() + ":15010"
	ips := map[string]string{}
	for _, w := range workloads {
		ips[w] = proxyIP(t, m, w)
	}

	// Load: two clients fetch the page back to back; the longest time with
	// no page from either is the stall.
	var (
		mu        sync.Mutex
		pages     int
		failures  = map[string]int{}
		lastOK    = time.Now()
		worstGap  time.Duration
		stop      = make(chan struct{})
		loadersWG sync.WaitGroup
	)
	for range 2 {
		loadersWG.Add(1)
		go func() {
			defer loadersWG.Done()
			c := newClient()
			for n := 0; n < 100000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body, code, err := m.get(c, "/productpage")
				mu.Lock()
				switch {
				case err == nil && code == 200 && strings.Contains(body, "Reviews served by"):
					pages++
					if gap := time.Since(lastOK); gap > worstGap {
						worstGap = gap
					}
					lastOK = time.Now()
				case err != nil:
					failures[fmt.Sprintf("%.60s", err.Error())]++
				default:
					failures[fmt.Sprintf("HTTP %d", code)]++
				}
				mu.Unlock()
			}
		}()
	}
	// The registration race: a workload's process is killed while a flip
	// is on its way; the demo restarts it, and its new sidecar joins and
	// registers while the policy changes.
	victims := []string{"ratings-v1-1", "reviews-v1-1", "details-v1-1", "reviews-v2-1", "reviews-v3-1"}
	var propagation []time.Duration
	for i := range toggles {
		f, wantPlaintext := strict, false
		if i%2 == 1 {
			f, wantPlaintext = permissive, true
		}
		if i%10 == 4 {
			victim := victims[(i/10)%len(victims)]
			if pid := demoChildPID(m, "run", "--name", victim); pid != 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			// ...and an anonymous client races it on plaintext xDS: it
			// tries to register as ratings and to take the victim's node.
			if _, err := plaintextADS(t, plaintextXDS, xdsNode(t, "127.0.81.50", "ratings-evil", "ratings")); err == nil {
				t.Errorf("flip %d: plaintext xDS served a node that asks to register", i+1)
			}
			if got, err := plaintextADS(t, plaintextXDS, xdsNode(t, ips[victim], victim, "")); err == nil && strings.Contains(fmt.Sprint(got), "spiffe://") {
				t.Errorf("flip %d: plaintext xDS served %s's node with its identities", i+1, victim)
			}
		}
		began := time.Now()
		m.apply(f)
		eventually(t, 15*time.Second, func() error {
			out, _ := plaintextToSidecar(ratings, 9080)
			if got := strings.HasPrefix(out, "HTTP/1.1 200"); got != wantPlaintext {
				return fmt.Errorf("flip %d (%s): ratings answers plaintext: %v", i+1, filepath.Base(f), got)
			}
			return nil
		})
		propagation = append(propagation, time.Since(began))
	}
	time.Sleep(2 * time.Second) // load on the final state
	close(stop)
	loadersWG.Wait()
	mu.Lock()
	if gap := time.Since(lastOK); gap > worstGap {
		worstGap = gap
	}
	failed := 0
	for _, n := range failures {
		failed += n
	}
	slices.Sort(propagation)
	t.Logf("%d flips under load: %d pages, %d failures %v, longest time without a page %v; flip in force on ratings after p50 %v, max %v",
		toggles, pages, failed, failures, worstGap.Round(time.Millisecond),
		propagation[len(propagation)/2].Round(time.Millisecond), propagation[len(propagation)-1].Round(time.Millisecond))
	mu.Unlock()
	if worstGap > 10*time.Second {
		t.Errorf("the mesh served no page for %v during the flips", worstGap)
	}
	if failed*20 > pages+failed {
		t.Errorf("%d of %d page loads failed during the flips (%v), want at most 5%%", failed, pages+failed, failures)
	}

	if out, err := m.weft("get", "workloadentries"); err != nil || strings.Contains(out, "evil") {
		t.Errorf("after the registration race: %v\n%s", err, out)
	}

	// The final state is PERMISSIVE; go STRICT once more: every sidecar
	// answers mTLS, refuses plaintext, and Bookinfo renders with ratings.
	m.apply(strict)
	for _, w := range workloads {
		ip := ips[w]
		eventually(t, 15*time.Second, func() error {
			if !tlsToSidecar(ip, 9080) {
				return fmt.Errorf("%s's sidecar does not answer a TLS handshake", w)
			}
			if out, _ := plaintextToSidecar(ip, 9080); strings.HasPrefix(out, "HTTP/1.1 200") {
				return fmt.Errorf("STRICT: %s's sidecar answers plaintext", w)
			}
			return nil
		})
	}
	eventually(t, 20*time.Second, func() error {
		for range 12 {
			body, code, err := m.get(m.client, "/productpage")
			if err != nil || code != 200 || strings.Contains(body, "currently unavailable") || strings.Contains(body, "Error fetching") {
				return fmt.Errorf("after the flips: %d, %v, %.200q", code, err, body)
			}
		}
		return nil
	})
}

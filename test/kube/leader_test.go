package kube

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// leaseName is the control plane's status-writer Lease
// (internal/kube/discovery.LeaseName).
const leaseName = "weft-status-leader"

// TestLeaderElection: two control planes outside the cluster elect one
// status writer with a real Lease; an object's status is written once,
// not once per replica; killing the leader (no release) hands the Lease
// over within its duration and the survivor writes the next status.
func TestLeaderElection(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	istioCRDs(t)
	ns := api.Namespace(t, "leader", nil)
	cs := api.Clientset(t)
	dc := dynamicClient(t)
	vs := gvrOf["VirtualService"]
	procs := map[string]*proc{}
	for _, id := range []string{"weftd-a", "weftd-b"} {
		procs[id], _ = startControlPlane(t, loopbackIP(), ns, []string{"POD_NAME=" + id})
	}
	holder := func() (string, error) {
		l, err := cs.CoordinationV1().Leases(ns).Get(ctx, leaseName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		if l.Spec.HolderIdentity == nil || procs[*l.Spec.HolderIdentity] == nil {
			return "", fmt.Errorf("Lease %s/%s held by %v", ns, leaseName, l.Spec.HolderIdentity)
		}
		return *l.Spec.HolderIdentity, nil
	}
	var leader string
	eventually(t, 30*time.Second, func() (err error) { leader, err = holder(); return err })

	// statusWrites applies VirtualService name and counts the updates it
	// gets until its status is written, then for a few more seconds: the
	// one writer writes it once.
	statusWrites := func(name string) int {
		t.Helper()
		y := fmt.Sprintf("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: %s}\nspec:\n  hosts: [%s]\n  http:\n  - route: [{destination: {host: %s}}]\n", name, name, name)
		if err := applyYAML(ctx, dc, ns, []byte(y)); err != nil {
			t.Fatal(err)
		}
		obj, err := dc.Resource(vs).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Watch from the created version, again after an error (a watch
		// cache behind a new CRD answers "too large resource version").
		rv, writes := obj.GetResourceVersion(), 0
		var settle <-chan time.Time
		deadline := time.After(60 * time.Second)
		for {
			w, err := dc.Resource(vs).Namespace(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: rv})
			if err != nil {
				t.Fatal(err)
			}
		events:
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok || ev.Type == watch.Error {
						w.Stop()
						time.Sleep(200 * time.Millisecond)
						break events
					}
					if ev.Type == watch.Modified {
						writes++
						if u, ok := ev.Object.(*unstructured.Unstructured); ok {
							rv = u.GetResourceVersion()
						}
						if settle == nil {
							settle = time.After(5 * time.Second)
						}
					}
				case <-settle:
					w.Stop()
					return writes
				case <-deadline:
					w.Stop()
					t.Fatalf("no status written on VirtualService %s within a minute", name)
				}
			}
		}
	}
	if n := statusWrites("first"); n != 1 {
		t.Errorf("VirtualService first was updated %d times with two replicas, want 1 status write", n)
	}
	if err := wantCondition(ctx, dc, vs, ns, "first", "True", "Accepted", "accepted"); err != nil {
		t.Error(err)
	}

	start := time.Now()
	procs[leader].kill(syscall.SIGKILL)
	var next string
	eventually(t, 45*time.Second, func() (err error) {
		next, err = holder()
		if err == nil && next == leader {
			return fmt.Errorf("the Lease is still %s's", leader)
		}
		return err
	})
	t.Logf("the Lease went from %s (killed) to %s in %s", leader, next, time.Since(start).Round(time.Millisecond))
	if n := statusWrites("second"); n != 1 {
		t.Errorf("VirtualService second was updated %d times by the new leader, want 1 status write", n)
	}
	if err := wantCondition(ctx, dc, vs, ns, "second", "True", "Accepted", "accepted"); err != nil {
		t.Error(err)
	}
}

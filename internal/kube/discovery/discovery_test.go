package discovery

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	metav1alpha1 "istio.io/api/meta/v1alpha1"
	apinetworking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiofake "istio.io/client-go/pkg/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

func TestMain(m *testing.M) {
	// Istio's generated informers do not tell client-go that the fake
	// clientset cannot stream a watch list, so the reflector would wait
	// forever for its bookmark: list then watch, as with older API servers.
	os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	goleak.VerifyTestMain(m)
}

// cluster is a fake API server with a running Controller.
type cluster struct {
	kube    *kubefake.Clientset
	istio   *istiofake.Clientset
	store   *store.Mem
	ctl     *Controller
	changes atomic.Int32
}

// Watches each fake must have open before the test changes objects: the
// fakes drop events sent before a watch is registered.
const (
	kubeWatches  = 5  // Namespaces, Services, EndpointSlices, Pods, Nodes
	istioWatches = 11 // the kinds of istioKinds
)

// countWatches makes every watch on cs counted in n once registered.
func countWatches(f *k8stesting.Fake, tracker k8stesting.ObjectTracker, n *atomic.Int32) {
	f.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := tracker.Watch(a.GetResource(), a.GetNamespace())
		if err == nil {
			n.Add(1)
		}
		return true, w, err
	})
}

// newFakes returns fake clientsets holding objs (Kubernetes or Istio
// objects, sorted by type) and counters of their open watches.
func newFakes(objs ...runtime.Object) (*kubefake.Clientset, *istiofake.Clientset, *atomic.Int32, *atomic.Int32) {
	var kobjs, iobjs []runtime.Object
	for _, o := range objs {
		switch o.(type) {
		case *corev1.Service, *corev1.Pod, *corev1.Node, *corev1.Namespace, *discoveryv1.EndpointSlice:
			kobjs = append(kobjs, o)
		default:
			iobjs = append(iobjs, o)
		}
	}
	kc, ic := kubefake.NewClientset(kobjs...), istiofake.NewSimpleClientset(iobjs...)
	var kw, iw atomic.Int32
	countWatches(&kc.Fake, kc.Tracker(), &kw)
	countWatches(&ic.Fake, ic.Tracker(), &iw)
	return kc, ic, &kw, &iw
}

// startCluster runs a Controller on fakes holding objs until the test ends.
func startCluster(t *testing.T, identity string, objs ...runtime.Object) *cluster {
	t.Helper()
	kc, ic, kw, iw := newFakes(objs...)
	c := &cluster{kube: kc, istio: ic}
	c.start(t, identity, kw, iw)
	return c
}

func (c *cluster) start(t *testing.T, identity string, kw, iw *atomic.Int32) {
	t.Helper()
	var err error
	if c.store == nil {
		if c.store, err = store.New(store.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	c.ctl, err = New(Options{
		Kube: c.kube, Istio: c.istio, Store: c.store, Namespace: "weft-system", Identity: identity,
		OnChange: func() { c.changes.Add(1) }, Debounce: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.ctl.Wait() })
	if err := c.ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every watch open", func() bool { return kw.Load() >= kubeWatches && iw.Load() >= istioWatches })
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRegistryFollowsTheCluster(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, "a",
		service("reviews", nil),
		pod("reviews-1", "10.1.0.5", true), pod("reviews-2", "10.1.0.6", false),
		slice("reviews-abc", "reviews", map[string]int32{"http": 9081}, endpoint("reviews-1", "10.1.0.5", ptr(true))),
	)
	addresses := func(host string) []string {
		s := c.ctl.Registry().Service(host)
		if s == nil {
			return nil
		}
		out := []string{}
		for _, e := range s.Endpoints {
			out = append(out, e.Address)
		}
		return out
	}
	const host = "reviews.default.svc.cluster.local"
	if got := addresses(host); len(got) != 1 || got[0] != "10.1.0.5" {
		t.Fatalf("initial endpoints = %v", got)
	}
	if ep := c.ctl.Registry().Service(host).Endpoints[0]; !ep.Sidecar || ep.ServiceAccount != "bookinfo-reviews" {
		t.Errorf("endpoint not joined with its injected pod: %+v", ep)
	}

	// A second ready endpoint appears.
	changes := c.changes.Load()
	sl := slice("reviews-abc", "reviews", map[string]int32{"http": 9081},
		endpoint("reviews-1", "10.1.0.5", ptr(true)), endpoint("reviews-2", "10.1.0.6", ptr(true)))
	if _, err := c.kube.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new endpoint", func() bool { return len(addresses(host)) == 2 })
	if c.changes.Load() == changes {
		t.Error("OnChange not called for a slice update")
	}
	// It turns not ready: gone.
	sl.Endpoints[1].Conditions.Ready = ptr(false)
	if _, err := c.kube.DiscoveryV1().EndpointSlices("default").Update(ctx, sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the not-ready endpoint to go", func() bool { return len(addresses(host)) == 1 })
	// A pod's labels change: the endpoint's labels follow.
	p := pod("reviews-1", "10.1.0.5", true)
	p.Labels["version"] = "v9"
	if _, err := c.kube.CoreV1().Pods("default").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new pod labels", func() bool {
		return c.ctl.Registry().Service(host).Endpoints[0].Labels["version"] == "v9"
	})
	// A new Service; then the old one is deleted.
	if _, err := c.kube.CoreV1().Services("default").Create(ctx, service("ratings", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new service", func() bool { return c.ctl.Registry().Service("ratings.default.svc.cluster.local") != nil })
	if err := c.kube.CoreV1().Services("default").Delete(ctx, "reviews", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted service to go", func() bool { return c.ctl.Registry().Service(host) == nil })
}

func TestNamespaceSelector(t *testing.T) {
	kc, ic, kw, iw := newFakes(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default", Labels: map[string]string{"mesh": "on"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
		service("reviews", nil), service("ratings", func(s *corev1.Service) { s.Namespace = "other" }),
	)
	st, _ := store.New(store.Options{})
	ctl, err := New(Options{Kube: kc, Istio: ic, Store: st, Namespace: "weft-system", Identity: "a",
		NamespaceSelector: mustSelector(t, "mesh=on"), Debounce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); ctl.Wait() }()
	if err := ctl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "watches", func() bool { return kw.Load() >= kubeWatches && iw.Load() >= istioWatches })
	if ctl.Registry().Service("reviews.default.svc.cluster.local") == nil || ctl.Registry().Service("ratings.other.svc.cluster.local") != nil {
		t.Fatalf("registry = %v, want only the selected namespace's service", hosts(ctl))
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"mesh": "on"}}}
	if _, err := kc.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the newly selected namespace's service", func() bool {
		return ctl.Registry().Service("ratings.other.svc.cluster.local") != nil
	})
}

func hosts(ctl *Controller) []string {
	var out []string
	for _, s := range ctl.Registry().Services {
		out = append(out, s.Hostname)
	}
	return out
}

func vs(name string, gen int64, hosts []string, dest string) *networkingv1.VirtualService {
	v := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Generation: gen}}
	v.Spec.Hosts = hosts
	v.Spec.Http = []*apinetworking.HTTPRoute{{Route: []*apinetworking.HTTPRouteDestination{{
		Destination: &apinetworking.Destination{Host: dest},
	}}}}
	return v
}

// statusOf reads a VirtualService's status from the fake API server.
func (c *cluster) statusOf(t *testing.T, name string) *metav1alpha1.IstioStatus {
	t.Helper()
	v, err := c.istio.NetworkingV1().VirtualServices("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &v.Status
}

// statusWrites counts the status updates of each object.
func (c *cluster) statusWrites() map[string]int {
	n := map[string]int{}
	for _, a := range c.istio.Actions() {
		if u, ok := a.(k8stesting.UpdateAction); ok && a.GetSubresource() == "status" {
			if m, ok := u.GetObject().(metav1.Object); ok {
				n[m.GetName()]++
			}
		}
	}
	return n
}

func reconciled(st *metav1alpha1.IstioStatus) *metav1alpha1.IstioCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == ConditionReconciled {
			return c
		}
	}
	return nil
}

func TestIstioConfigIntoStoreWithStatus(t *testing.T) {
	ctx := context.Background()
	c := startCluster(t, "a",
		service("reviews", nil),
		vs("reviews", 1, []string{"reviews"}, "reviews"),
		vs("ratings", 3, []string{"reviews.default.svc.cluster.local"}, "ratings"), // no such service: IST0101
		vs("bad", 2, []string{"*"}, "reviews"),                                     // "*" only on gateways
	)
	key := func(name string) config.Key {
		return config.Key{Kind: config.KindVirtualService, Namespace: "default", Name: name}
	}
	for _, name := range []string{"reviews", "ratings"} {
		o, ok := c.store.Get(key(name))
		if !ok || o.Source != store.SourceKubernetes || o.APIVersion != "networking.istio.io/v1" {
			t.Fatalf("VirtualService %s in the store: %+v, %v", name, o, ok)
		}
	}
	if _, ok := c.store.Get(key("bad")); ok {
		t.Fatal("the invalid VirtualService was stored")
	}
	waitFor(t, "a leader", c.ctl.Leader)
	waitFor(t, "every status", func() bool {
		return reconciled(c.statusOf(t, "reviews")) != nil && reconciled(c.statusOf(t, "ratings")) != nil && reconciled(c.statusOf(t, "bad")) != nil
	})

	good := c.statusOf(t, "reviews")
	if cond := reconciled(good); cond.GetStatus() != "True" || cond.GetObservedGeneration() != 1 || good.GetObservedGeneration() != 1 || len(good.GetValidationMessages()) != 0 {
		t.Errorf("valid VirtualService's status = %v", good)
	}
	warn := c.statusOf(t, "ratings")
	if cond := reconciled(warn); cond.GetStatus() != "True" || cond.GetObservedGeneration() != 3 ||
		len(warn.GetValidationMessages()) != 1 || warn.GetValidationMessages()[0].GetType().GetCode() != "IST0101" ||
		!strings.Contains(cond.GetMessage(), "IST0101") {
		t.Errorf("VirtualService to a missing host: status = %v, want Reconciled with IST0101", warn)
	}
	bad := c.statusOf(t, "bad")
	if cond := reconciled(bad); cond.GetStatus() != "False" || cond.GetReason() != ReasonInvalid ||
		!strings.Contains(cond.GetMessage(), "spec.hosts[0]") || bad.GetValidationMessages()[0].GetType().GetCode() != "IST0106" {
		t.Errorf("invalid VirtualService's status = %v, want Reconciled False naming spec.hosts[0] and IST0106", bad)
	}

	// The valid one turns invalid: refused, the last valid version stays.
	before, _ := c.store.Get(key("reviews"))
	broken := vs("reviews", 2, []string{"*"}, "reviews")
	proto.Merge(&broken.Status, good)
	if _, err := c.istio.NetworkingV1().VirtualServices("default").Update(ctx, broken, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal in the status", func() bool {
		cond := reconciled(c.statusOf(t, "reviews"))
		return cond.GetStatus() == "False" && cond.GetObservedGeneration() == 2
	})
	if after, _ := c.store.Get(key("reviews")); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the last valid version was replaced: %+v", after)
	}

	// Status is written only when it changes: a new object gets its status
	// in a pass that leaves the others' alone.
	writes := c.statusWrites()
	if _, err := c.istio.NetworkingV1().VirtualServices("default").Create(ctx, vs("new", 1, []string{"reviews"}, "reviews"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new object's status", func() bool { return reconciled(c.statusOf(t, "new")) != nil })
	waitFor(t, "the new object in the store", func() bool { _, ok := c.store.Get(key("new")); return ok })
	after := c.statusWrites()
	for _, name := range []string{"reviews", "ratings", "bad"} {
		if after[name] != writes[name] {
			t.Errorf("status of %s rewritten though unchanged (%d writes, then %d)", name, writes[name], after[name])
		}
	}

	// Deleted in the cluster: deleted from the store.
	if err := c.istio.NetworkingV1().VirtualServices("default").Delete(ctx, "ratings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deletion", func() bool { _, ok := c.store.Get(key("ratings")); return !ok })
}

func TestOneStatusWriter(t *testing.T) {
	kc, ic, kw, iw := newFakes(vs("reviews", 1, []string{"reviews"}, "reviews"))
	a := &cluster{kube: kc, istio: ic}
	a.start(t, "replica-a", kw, iw)
	waitFor(t, "replica-a to lead", a.ctl.Leader)
	b := &cluster{kube: kc, istio: ic}
	b.start(t, "replica-b", kw, iw)
	// Both replicas store the config; only the leader writes status.
	if _, ok := b.store.Get(config.Key{Kind: config.KindVirtualService, Namespace: "default", Name: "reviews"}); !ok {
		t.Error("replica-b did not store the config")
	}
	if b.ctl.Leader() {
		t.Error("two leaders")
	}
	lease, err := kc.CoordinationV1().Leases("weft-system").Get(context.Background(), LeaseName, metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "replica-a" {
		t.Errorf("lease = %+v, %v; want held by replica-a", lease, err)
	}
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

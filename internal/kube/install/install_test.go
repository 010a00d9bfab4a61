package install

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/kube/chart"
	"github.com/weft-mesh/weft/manifests"
)

var release = chart.Release{Name: "weft", Namespace: "weft-system"}

// cluster is a fake dynamic client that, as an API server, creates objects
// on server-side apply, records the order of applies and deletes, and
// (when establish is set) marks CRDs established.
type cluster struct {
	*dynamicfake.FakeDynamicClient
	mu        sync.Mutex
	applied   []string
	deleted   []string
	establish bool
}

func newCluster(t *testing.T, establish bool) *cluster {
	c := &cluster{FakeDynamicClient: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), establish: establish}
	tracker := c.Tracker()
	c.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.PatchAction)
		if p.GetPatchType() != "application/apply-patch+yaml" {
			return false, nil, nil
		}
		if opts := p.(k8stesting.PatchActionImpl).PatchOptions; opts.FieldManager != FieldManager || opts.Force == nil || !*opts.Force {
			t.Errorf("apply of %s: field manager %q force %v, want %q forced", p.GetName(), opts.FieldManager, opts.Force, FieldManager)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(p.GetPatch(), &obj.Object); err != nil {
			return true, nil, err
		}
		gvr := p.GetResource()
		if gvr == CRDResource && c.establish {
			unstructured.SetNestedSlice(obj.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		}
		c.mu.Lock()
		c.applied = append(c.applied, obj.GetKind()+" "+obj.GetName())
		c.mu.Unlock()
		err := tracker.Create(gvr, obj, p.GetNamespace())
		if apierrors.IsAlreadyExists(err) {
			err = tracker.Update(gvr, obj, p.GetNamespace())
		}
		if err != nil {
			return true, nil, err
		}
		got, err := tracker.Get(gvr, p.GetNamespace(), p.GetName())
		return true, got, err
	})
	c.PrependReactor("delete", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		c.deleted = append(c.deleted, a.GetResource().Resource+" "+a.(k8stesting.DeleteAction).GetName())
		c.mu.Unlock()
		return false, nil, nil
	})
	return c
}

func (c *cluster) exists(gvr schema.GroupVersionResource, ns, name string) bool {
	_, err := c.Tracker().Get(gvr, ns, name)
	return err == nil
}

func render(t *testing.T, profile string) (*chart.Chart, []chart.Document) {
	t.Helper()
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := c.Render(chart.Options{Profile: profile, Release: release})
	if err != nil {
		t.Fatal(err)
	}
	return c, docs
}

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	webhooks    = schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "mutatingwebhookconfigurations"}
	telemetries = schema.GroupVersionResource{Group: "telemetry.istio.io", Version: "v1", Resource: "telemetries"}
	namespaces  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	vsCRD       = "virtualservices.networking.istio.io"
)

func TestApplyThenUninstall(t *testing.T) {
	ch, docs := render(t, "demo")
	cl := newCluster(t, true)
	var out bytes.Buffer
	ctx := context.Background()
	if err := Apply(ctx, docs, Options{Client: cl, Out: &out, Poll: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if len(cl.applied) != len(docs) {
		t.Fatalf("%d objects applied, want %d", len(cl.applied), len(docs))
	}
	// In order: every CRD before anything else, the Deployment before the
	// webhook that calls it, Istio config last.
	pos := func(s string) int { return slices.Index(cl.applied, s) }
	lastCRD := 0
	for i, a := range cl.applied {
		if strings.HasPrefix(a, "CustomResourceDefinition ") {
			lastCRD = i
		}
	}
	order := []int{lastCRD, pos("Namespace weft-system"), pos("ServiceAccount weftd"), pos("ClusterRole weftd"), pos("Service weftd"),
		pos("Deployment weftd"), pos("MutatingWebhookConfiguration weft-sidecar-injector"), pos("Telemetry mesh-default")}
	if !slices.IsSorted(order) || slices.Contains(order, -1) {
		t.Errorf("apply order %v:\n%s", order, strings.Join(cl.applied, "\n"))
	}
	if !cl.exists(deployments, "weft-system", "weftd") || !cl.exists(webhooks, "", "weft-sidecar-injector") || !cl.exists(telemetries, "istio-system", "mesh-default") {
		t.Fatal("objects missing after apply")
	}
	if !strings.Contains(out.String(), "applied Deployment weft-system/weftd") {
		t.Errorf("output:\n%s", out.String())
	}
	// Applying again is idempotent.
	if err := Apply(ctx, docs, Options{Client: cl, Poll: time.Millisecond}); err != nil {
		t.Fatalf("second apply: %v", err)
	}

	all, err := Everything(ch, release)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Uninstall(ctx, all, false, Options{Client: cl, Out: &out}); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{{deployments, "weft-system", "weftd"}, {webhooks, "", "weft-sidecar-injector"}, {telemetries, "istio-system", "mesh-default"}, {namespaces, "", "weft-system"}} {
		if cl.exists(gone.gvr, gone.ns, gone.name) {
			t.Errorf("%s %s/%s still there after uninstall", gone.gvr.Resource, gone.ns, gone.name)
		}
	}
	if !cl.exists(CRDResource, "", vsCRD) || !cl.exists(namespaces, "", "istio-system") {
		t.Error("uninstall without --purge removed the CRDs or the kept istio-system namespace")
	}
	if i, j := slices.Index(cl.deleted, "mutatingwebhookconfigurations weft-sidecar-injector"), slices.Index(cl.deleted, "deployments weftd"); i < 0 || j < i {
		t.Errorf("delete order: the webhook (%d) must go before the Deployment (%d): %v", i, j, cl.deleted)
	}
	if err := Uninstall(ctx, all, true, Options{Client: cl}); err != nil {
		t.Fatalf("uninstall --purge (objects already gone are fine): %v", err)
	}
	if cl.exists(CRDResource, "", vsCRD) {
		t.Error("uninstall --purge kept the CRDs")
	}
}

func TestApplyWaitsForCRDs(t *testing.T) {
	_, docs := render(t, "minimal")
	ctx := context.Background()

	cl := newCluster(t, false)
	err := Apply(ctx, docs, Options{Client: cl, Timeout: 50 * time.Millisecond, Poll: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not established") {
		t.Fatalf("error %v, want CRDs not established", err)
	}
	if slices.ContainsFunc(cl.applied, func(s string) bool { return !strings.HasPrefix(s, "CustomResourceDefinition") }) {
		t.Errorf("applied more than the CRDs before they were established: %v", cl.applied)
	}

	// An API server that establishes the CRDs a few polls later: apply waits, then goes on.
	cl = newCluster(t, false)
	gets := 0
	cl.PrependReactor("get", "customresourcedefinitions", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if gets++; gets < 3*len(config.KindSchemas()) {
			return false, nil, nil
		}
		obj, err := cl.Tracker().Get(CRDResource, "", a.(k8stesting.GetAction).GetName())
		if err != nil {
			return true, nil, err
		}
		u := obj.(*unstructured.Unstructured)
		unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Established", "status": "True"}}, "status", "conditions")
		return true, u, nil
	})
	if err := Apply(ctx, docs, Options{Client: cl, Timeout: 10 * time.Second, Poll: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if len(cl.applied) != len(docs) || !cl.exists(deployments, "weft-system", "weftd") {
		t.Errorf("applied %v, want all %d objects", cl.applied, len(docs))
	}
}

func TestUnknownKind(t *testing.T) {
	docs := []chart.Document{{Source: "x.yaml", APIVersion: "example.com/v1", Kind: "Widget", Name: "w", YAML: []byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")}}
	err := Apply(context.Background(), docs, Options{Client: newCluster(t, true)})
	if err == nil || !strings.Contains(err.Error(), "does not know this kind") {
		t.Errorf("error %v, want an unknown kind", err)
	}
}

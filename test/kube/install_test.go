package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/kube/chart"
	"github.com/weft-mesh/weft/internal/kube/install"
	"github.com/weft-mesh/weft/manifests"
)

// bookinfoSamples is Istio's Bookinfo, as Istio ships it.
const bookinfoSamples = "../../../shared/istio-samples/bookinfo"

// chartObjects is what a profile installs, with each object's resource.
type chartObject struct {
	doc chart.Document
	gvr schema.GroupVersionResource
}

func chartObjects(t *testing.T, profile string, set ...string) []chartObject {
	t.Helper()
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := c.Render(chart.Options{Profile: profile, Set: set, Release: chart.Release{Name: "weft", Namespace: "weft-system"}})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(api.Clientset(t).Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	var out []chartObject
	for _, d := range docs {
		gv, err := schema.ParseGroupVersion(d.APIVersion)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mapper.RESTMapping(gv.WithKind(d.Kind).GroupKind(), gv.Version)
		if err != nil {
			t.Fatalf("%s %s: %v", d.Kind, d.Name, err)
		}
		out = append(out, chartObject{doc: d, gvr: m.Resource})
	}
	return out
}

// resourceVersions gets every object and returns its resourceVersion by
// kind/namespace/name; a missing object fails the test.
func resourceVersions(t *testing.T, objs []chartObject) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dc := dynamicClient(t)
	rvs := map[string]string{}
	for _, o := range objs {
		key := o.doc.Kind + " " + o.doc.Namespace + "/" + o.doc.Name
		u, err := dc.Resource(o.gvr).Namespace(o.doc.Namespace).Get(ctx, o.doc.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s after weft install: %v", key, err)
		}
		rvs[key] = u.GetResourceVersion()
	}
	return rvs
}

// TestInstall: weft install --profile demo into a real API server, twice,
// then weft uninstall and weft uninstall --purge. Not parallel: it owns
// weft-system and the CRDs while it runs.
func TestInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := mustWeft(t, "install", "--profile", "demo")
	if !strings.Contains(out, "installed (profile demo)") {
		t.Fatalf("weft install: %s", out)
	}
	objs := chartObjects(t, "demo")
	first := resourceVersions(t, objs)
	// Server-side apply of the same objects changes nothing.
	mustWeft(t, "install", "--profile", "demo")
	if second := resourceVersions(t, objs); fmt.Sprint(second) != fmt.Sprint(first) {
		for k, v := range first {
			if second[k] != v {
				t.Errorf("the second weft install changed %s (resourceVersion %s → %s)", k, v, second[k])
			}
		}
	}
	dc := dynamicClient(t)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	var crds []string
	for _, o := range objs {
		if o.doc.Kind != "CustomResourceDefinition" {
			continue
		}
		crds = append(crds, o.doc.Name)
		u, err := dc.Resource(crdGVR).Get(ctx, o.doc.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !conditionTrue(u, "Established") || !conditionTrue(u, "NamesAccepted") {
			t.Errorf("CRD %s is not Established and NamesAccepted: %v", o.doc.Name, u.Object["status"])
		}
	}
	if len(crds) != 11 {
		t.Errorf("the chart has %d CRDs, want Istio's 11 kinds weft serves", len(crds))
	}

	ns := api.Namespace(t, "bookinfo", nil)
	applied := applyBookinfo(ctx, t, ns)
	// The CRD schemas check what the API server can: a spec that is not an
	// object is refused, and the error names the field.
	bad := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "bad"}, "spec": "reviews"}}
	if _, err := dc.Resource(gvrOf["VirtualService"]).Namespace(ns).Create(ctx, bad, metav1.CreateOptions{}); !apierrors.IsInvalid(err) ||
		!strings.Contains(err.Error(), "spec") || !strings.Contains(err.Error(), "must be of type object") {
		t.Errorf("creating a VirtualService whose spec is a string: %v, want Invalid naming spec", err)
	}
	// Server-side apply refuses it too (its message names .spec, but the
	// API server answers 500, not 422: its own quirk).
	if err := applyYAML(ctx, dc, ns, []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec: reviews\n")); err == nil ||
		!strings.Contains(err.Error(), ".spec") {
		t.Errorf("applying a VirtualService whose spec is a string: %v, want an error naming .spec", err)
	}

	out = mustWeft(t, "uninstall")
	if !strings.Contains(out, "kept the CustomResourceDefinitions") {
		t.Errorf("weft uninstall: %s", out)
	}
	for _, o := range objs {
		key := o.doc.Kind + " " + o.doc.Namespace + "/" + o.doc.Name
		_, err := dc.Resource(o.gvr).Namespace(o.doc.Namespace).Get(ctx, o.doc.Name, metav1.GetOptions{})
		switch {
		case o.doc.Kind == "CustomResourceDefinition" || strings.Contains(string(o.doc.YAML), install.KeepAnnotation+": keep"):
			if err != nil {
				t.Errorf("weft uninstall (no --purge) removed %s: %v", key, err)
			}
		case o.doc.Kind == "Namespace":
			finalizeNamespace(ctx, t, o.doc.Name)
		default:
			if err := notFound(key, err); err != nil {
				t.Errorf("after weft uninstall: %v", err)
			}
		}
	}
	if n := countIstio(ctx, t, ns); n != applied {
		t.Errorf("after weft uninstall the namespace has %d Istio objects, want the %d applied", n, applied)
	}

	mustWeft(t, "uninstall", "--purge")
	for _, name := range crds {
		eventually(t, time.Minute, func() error {
			_, err := dc.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
			return notFound("CRD "+name, err)
		})
	}
}

// applyBookinfo applies every Istio object of Bookinfo's samples to ns and
// returns how many; any refusal fails the test.
func applyBookinfo(ctx context.Context, t *testing.T, ns string) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(bookinfoSamples, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("Istio's Bookinfo samples not found in %s: %v", bookinfoSamples, err)
	}
	dc := dynamicClient(t)
	names := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "networking.istio.io") {
			continue // the platform's Deployments and Services
		}
		// Several samples hold the same objects in other versions: each
		// file is applied in turn, as a user of Istio's tasks does.
		if err := applyYAML(ctx, dc, ns, b); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		for _, doc := range strings.Split(string(b), "\n---") {
			var obj unstructured.Unstructured
			// Objects of another namespace (cert-manager's Gateway in
			// istio-system) are not counted here.
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err == nil && obj.GetKind() != "" && obj.GetNamespace() == "" {
				names[obj.GetKind()+"/"+obj.GetName()] = true
			}
		}
	}
	if n := countIstio(ctx, t, ns); n != len(names) {
		t.Errorf("the namespace has %d Istio objects, want the %d of the samples", n, len(names))
	}
	return len(names)
}

func countIstio(ctx context.Context, t *testing.T, ns string) int {
	t.Helper()
	dc := dynamicClient(t)
	n := 0
	for kind, gvr := range gvrOf {
		l, err := dc.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("listing %s: %v", kind, err)
		}
		n += len(l.Items)
	}
	return n
}

// conditionTrue reports whether an object's status has condition typ True.
func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return m["status"] == "True"
		}
	}
	return false
}

// finalizeNamespace does what the namespace controller would for a deleted
// namespace (there is none): once it is Terminating and empty of what the
// test knows, it removes its finalizer, and waits until it is gone.
func finalizeNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	cs := api.Clientset(t)
	ns, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("namespace %s after weft uninstall: %v", name, err)
	}
	if ns.DeletionTimestamp == nil {
		t.Fatalf("weft uninstall did not delete namespace %s", name)
	}
	ns.Spec.Finalizers = nil
	if _, err := cs.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("finalizing namespace %s: %v", name, err)
	}
	eventually(t, 30*time.Second, func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		return notFound("namespace "+name, err)
	})
}

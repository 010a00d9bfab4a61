// Package install applies weft's rendered chart to a cluster and removes
// it: server-side apply through the dynamic client (field manager "weft"),
// CRDs first and waited for until established, then everything else in
// install order; uninstall deletes in reverse order and keeps the CRDs,
// and with them the user's Istio config, unless purged.
package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/kube/chart"
)

// FieldManager owns the fields weft install applies.
const FieldManager = "weft"

// KeepAnnotation, set to "keep", makes uninstall leave an object (Helm's
// resource policy).
const KeepAnnotation = "helm.sh/resource-policy"

// Defaults for Options.
const (
	DefaultTimeout = 2 * time.Minute
	defaultPoll    = 500 * time.Millisecond
)

// Options configures Apply and Uninstall.
type Options struct {
	// Client talks to the cluster. Required.
	Client dynamic.Interface
	// Out receives one line per object applied or deleted; nil discards them.
	Out io.Writer
	// Timeout bounds the wait for CRDs to be established (DefaultTimeout when 0).
	Timeout time.Duration
	// Poll is the interval between checks of the CRDs (500ms when 0).
	Poll time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Poll <= 0 {
		o.Poll = defaultPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// resource is where an object lives in the API.
type resource struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// builtin maps the chart's built-in apiVersion+kind to its resource.
var builtin = map[string]resource{
	"v1 Namespace":       {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"v1 ServiceAccount":  {schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, true},
	"v1 Service":         {schema.GroupVersionResource{Version: "v1", Resource: "services"}, true},
	"v1 Secret":          {schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, true},
	"v1 ConfigMap":       {schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
	"apps/v1 Deployment": {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
	"rbac.authorization.k8s.io/v1 ClusterRole": {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1",
		Resource: "clusterroles"}, false},
	"rbac.authorization.k8s.io/v1 ClusterRoleBinding": {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1",
		Resource: "clusterrolebindings"}, false},
	"rbac.authorization.k8s.io/v1 Role": {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1",
		Resource: "roles"}, true},
	"rbac.authorization.k8s.io/v1 RoleBinding": {schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1",
		Resource: "rolebindings"}, true},
	"admissionregistration.k8s.io/v1 MutatingWebhookConfiguration": {schema.GroupVersionResource{Group: "admissionregistration.k8s.io",
		Version: "v1", Resource: "mutatingwebhookconfigurations"}, false},
	"apiextensions.k8s.io/v1 CustomResourceDefinition": {CRDResource, false},
}

// CRDResource is the resource of CustomResourceDefinitions.
var CRDResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// resourceOf maps a document to its resource: the built-in kinds above
// and Istio's kinds (config.KindSchemas).
func resourceOf(d chart.Document) (resource, error) {
	if r, ok := builtin[d.APIVersion+" "+d.Kind]; ok {
		return r, nil
	}
	group, version, _ := strings.Cut(d.APIVersion, "/")
	for _, k := range config.KindSchemas() {
		if k.Kind == d.Kind && k.Group == group && slices.Contains(k.Versions, version) {
			return resource{schema.GroupVersionResource{Group: group, Version: version, Resource: k.Plural}, true}, nil
		}
	}
	return resource{}, fmt.Errorf("%s %s %s: weft install does not know this kind", d.APIVersion, d.Kind, d.Name)
}

func (r resource) client(c dynamic.Interface, ns string) dynamic.ResourceInterface {
	if r.namespaced {
		return c.Resource(r.gvr).Namespace(ns)
	}
	return c.Resource(r.gvr)
}

func describe(d chart.Document) string {
	if d.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", d.Kind, d.Namespace, d.Name)
	}
	return d.Kind + " " + d.Name
}

// Apply applies docs (in install order, as chart.Render returns them):
// the CRDs first, then, once every CRD is established, the rest.
func Apply(ctx context.Context, docs []chart.Document, opts Options) error {
	opts.defaults()
	var crds []string
	for i, d := range docs {
		if d.Kind != "CustomResourceDefinition" && len(crds) > 0 {
			if err := waitEstablished(ctx, opts, crds); err != nil {
				return err
			}
			crds = nil
		}
		if err := apply(ctx, opts, d); err != nil {
			return fmt.Errorf("object %d of %d: %w", i+1, len(docs), err)
		}
		if d.Kind == "CustomResourceDefinition" {
			crds = append(crds, d.Name)
		}
	}
	if len(crds) > 0 {
		return waitEstablished(ctx, opts, crds)
	}
	return nil
}

func apply(ctx context.Context, opts Options, d chart.Document) error {
	r, err := resourceOf(d)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(d.YAML, &obj.Object); err != nil {
		return fmt.Errorf("%s (%s): %w", describe(d), d.Source, err)
	}
	if _, err := r.client(opts.Client, d.Namespace).Apply(ctx, d.Name, obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying %s: %w", describe(d), err)
	}
	fmt.Fprintf(opts.Out, "applied %s\n", describe(d))
	return nil
}

// waitEstablished polls the CRDs until each has the condition Established.
func waitEstablished(ctx context.Context, opts Options, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	pending := slices.Clone(names)
	var last string
	for {
		var still []string
		for _, n := range pending {
			ok, why, err := established(ctx, opts.Client, n)
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("checking CustomResourceDefinition %s: %w", n, err)
			}
			if !ok {
				still = append(still, n)
				last = n + ": " + why
			}
		}
		if len(still) == 0 {
			fmt.Fprintf(opts.Out, "%d CustomResourceDefinitions established\n", len(names))
			return nil
		}
		pending = still
		t := time.NewTimer(opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d CustomResourceDefinitions not established after %s (%s): %w", len(still), opts.Timeout, last, ctx.Err())
		case <-t.C:
		}
	}
}

// established reports whether a CRD is established, and why not.
func established(ctx context.Context, c dynamic.Interface, name string) (bool, string, error) {
	u, err := c.Resource(CRDResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err.Error(), err
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	why := "no Established condition yet"
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" {
			if m["status"] == "True" {
				return true, "", nil
			}
			why = fmt.Sprintf("Established=%v: %v", m["status"], m["message"])
		}
		if m["type"] == "NamesAccepted" && m["status"] == "False" {
			return false, fmt.Sprintf("names not accepted: %v", m["message"]), nil
		}
	}
	return false, why, nil
}

// Uninstall deletes docs in reverse order. CustomResourceDefinitions, and
// so every Istio object of the cluster, are kept unless purge; objects
// annotated helm.sh/resource-policy=keep are kept; objects already gone
// are skipped.
func Uninstall(ctx context.Context, docs []chart.Document, purge bool, opts Options) error {
	opts.defaults()
	var errs []error
	for i := len(docs) - 1; i >= 0; i-- {
		d := docs[i]
		if d.Kind == "CustomResourceDefinition" && !purge {
			continue
		}
		if keep(d) {
			fmt.Fprintf(opts.Out, "kept %s (%s=keep)\n", describe(d), KeepAnnotation)
			continue
		}
		r, err := resourceOf(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		policy := metav1.DeletePropagationBackground
		err = r.client(opts.Client, d.Namespace).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
		switch {
		case apierrors.IsNotFound(err):
			opts.Logger.Debug("already gone", "object", describe(d))
		case err != nil:
			errs = append(errs, fmt.Errorf("deleting %s: %w", describe(d), err))
		default:
			fmt.Fprintf(opts.Out, "deleted %s\n", describe(d))
		}
	}
	if !purge {
		fmt.Fprintln(opts.Out, "kept the CustomResourceDefinitions and the Istio config (weft uninstall --purge deletes them)")
	}
	return errors.Join(errs...)
}

func keep(d chart.Document) bool {
	var m struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	return yaml.Unmarshal(d.YAML, &m) == nil && m.Metadata.Annotations[KeepAnnotation] == "keep"
}

// Everything renders every profile of c and returns each object once, in
// install order: what uninstall removes, whichever profile was installed.
func Everything(c *chart.Chart, rel chart.Release) ([]chart.Document, error) {
	seen := map[string]bool{}
	var out []chart.Document
	for _, p := range c.Profiles() {
		docs, err := c.Render(chart.Options{Profile: p, Release: rel})
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			key := d.APIVersion + " " + d.Kind + " " + d.Namespace + "/" + d.Name
			if !seen[key] {
				seen[key] = true
				out = append(out, d)
			}
		}
	}
	chart.Order(out)
	return out, nil
}

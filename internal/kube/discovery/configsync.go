package discovery

import (
	"context"
	"log/slog"
	"maps"
	"time"

	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/internal/analyze"
	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

// configSync makes the store's Kubernetes objects the valid Istio objects
// of the cluster, and computes and writes their status. It is level-based:
// each pass reads every informer's cache, so a missed event is repaired by
// the next one. Its methods run on one goroutine.
type configSync struct {
	log      *slog.Logger
	store    store.Store
	kinds    []crdKind
	services func() *registry.Registry
	now      func() time.Time

	refused map[config.Key]string // the refusal last logged, per object
}

// clusterObject is one Istio object of the cluster and weft's verdict on it.
type clusterObject struct {
	kind    *crdKind
	raw     any // the informer's object: read only
	meta    metav1.Object
	status  proto.Message
	obj     *config.Object
	invalid error // config.Validate's error: refused
}

func newConfigSync(st store.Store, kinds []crdKind, services func() *registry.Registry, log *slog.Logger) *configSync {
	return &configSync{
		log: log, store: st, kinds: kinds, services: services, now: time.Now,
		refused: map[config.Key]string{},
	}
}

// read converts every cached Istio object.
func (c *configSync) read() []clusterObject {
	var out []clusterObject
	for i := range c.kinds {
		k := &c.kinds[i]
		for _, raw := range k.informer.GetStore().List() {
			meta, spec, status, ok := k.parts(raw)
			if !ok {
				continue
			}
			out = append(out, clusterObject{kind: k, raw: raw, meta: meta, status: status, obj: &config.Object{
				Kind: k.kind, APIVersion: k.apiVersion,
				Name: meta.GetName(), Namespace: meta.GetNamespace(),
				Labels: maps.Clone(meta.GetLabels()), Annotations: maps.Clone(meta.GetAnnotations()),
				Spec: spec, Source: store.SourceKubernetes,
			}})
		}
	}
	return out
}

// sync stores the valid objects that changed and deletes from the store the
// Kubernetes objects gone from the cluster. An invalid object is refused
// with one log line per version; the version the store holds (the last
// valid one), if any, stays. It returns what it read.
func (c *configSync) sync() []clusterObject {
	objs := c.read()
	inCluster := make(map[config.Key]bool, len(objs))
	var puts []*config.Object
	for i := range objs {
		o := &objs[i]
		key := o.obj.Key()
		inCluster[key] = true
		if err := config.Validate(o.obj); err != nil {
			o.invalid = err
			if c.refused[key] != err.Error() {
				c.refused[key] = err.Error()
				c.log.Error("refusing invalid Istio config; the last valid version, if any, stays in use",
					"object", key.String(), "resource_version", o.meta.GetResourceVersion(), "error", err)
			}
			continue
		}
		delete(c.refused, key)
		if cur, ok := c.store.Get(key); ok && stored(cur, o.obj) {
			continue
		}
		puts = append(puts, o.obj)
	}
	// Apply copies the specs; the informer's objects stay untouched.
	if len(puts) > 0 {
		if _, err := c.store.Apply(puts); err != nil {
			c.log.Error("storing Istio config from Kubernetes", "objects", len(puts), "error", err)
		}
	}
	var gone []config.Key
	for _, o := range c.store.List("", "") {
		if o.Source == store.SourceKubernetes && !inCluster[o.Key()] {
			gone = append(gone, o.Key())
		}
	}
	for k := range c.refused {
		if !inCluster[k] {
			delete(c.refused, k)
		}
	}
	if len(gone) > 0 {
		if _, err := c.store.Delete(gone); err != nil {
			c.log.Error("deleting Istio config gone from Kubernetes", "error", err)
		}
	}
	return objs
}

// writeStatuses writes the status of every object whose status differs
// from what weft found: its validity and the analysis of the stored config
// (with the Kubernetes services). Conflicts are left to the next pass,
// which the object's update event starts.
func (c *configSync) writeStatuses(ctx context.Context, objs []clusterObject) {
	_, stored := c.store.Snapshot()
	byKey := map[config.Key][]analyze.Message{}
	for _, m := range analyze.AnalyzeWith(stored, c.services()) {
		byKey[m.Resource] = append(byKey[m.Resource], m)
	}
	now := c.now()
	for _, o := range objs {
		cur := istioStatus(o.status)
		want := desiredStatus(o.meta.GetGeneration(), o.invalid, byKey[o.obj.Key()], cur, now)
		if proto.Equal(want, cur) {
			continue
		}
		err := o.kind.writeStatus(ctx, o.raw, want)
		switch {
		case err == nil:
			c.log.Debug("status written", "object", o.obj.Key().String(), "generation", o.meta.GetGeneration())
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err) || ctx.Err() != nil:
			c.log.Debug("status not written; retrying on the next change", "object", o.obj.Key().String(), "error", err)
		default:
			c.log.Warn("writing status", "object", o.obj.Key().String(), "error", err)
		}
	}
}

// stored reports whether cur, a stored object, is o already (cheaper than
// an Apply that finds nothing changed, which copies o).
func stored(cur, o *config.Object) bool {
	return cur.Source == o.Source && cur.APIVersion == o.APIVersion &&
		maps.Equal(cur.Labels, o.Labels) && maps.Equal(cur.Annotations, o.Annotations) && proto.Equal(cur.Spec, o.Spec)
}

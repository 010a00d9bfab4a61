package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	listersdiscoveryv1 "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// services is the registry of a cluster's Services, kept up to date by
// shared informers on Namespaces, Services, EndpointSlices, Pods and Nodes.
// The registry is rebuilt lazily, on the first read after a change.
type services struct {
	log      *slog.Logger
	factory  informers.SharedInformerFactory
	selector labels.Selector // namespaces discovered; nil: all
	onChange func()

	namespaces listerscorev1.NamespaceLister
	services   listerscorev1.ServiceLister
	slices     listersdiscoveryv1.EndpointSliceLister
	pods       listerscorev1.PodLister
	nodes      listerscorev1.NodeLister
	synced     []cache.InformerSynced

	mu    sync.Mutex
	dirty bool
	reg   *registry.Registry
}

func newServices(client kubernetes.Interface, resync time.Duration, selector labels.Selector, log *slog.Logger, onChange func()) (*services, error) {
	f := informers.NewSharedInformerFactoryWithOptions(client, resync, informers.WithTransform(slim))
	s := &services{log: log, factory: f, selector: selector, onChange: onChange, dirty: true}
	ns := f.Core().V1().Namespaces()
	sv := f.Core().V1().Services()
	sl := f.Discovery().V1().EndpointSlices()
	po := f.Core().V1().Pods()
	no := f.Core().V1().Nodes()
	s.namespaces, s.services, s.slices, s.pods, s.nodes = ns.Lister(), sv.Lister(), sl.Lister(), po.Lister(), no.Lister()
	for _, h := range []struct {
		inf     cache.SharedIndexInformer
		matters func(old, cur any) bool
	}{
		{ns.Informer(), labelsChanged},
		{sv.Informer(), nil},
		{sl.Informer(), nil},
		{po.Informer(), podChanged},
		{no.Informer(), labelsChanged},
	} {
		if _, err := h.inf.AddEventHandler(s.handler(h.matters)); err != nil {
			return nil, fmt.Errorf("watching Kubernetes: %w", err)
		}
		s.synced = append(s.synced, h.inf.HasSynced)
	}
	return s, nil
}

// start runs the informers and waits until their caches are filled.
func (s *services) start(ctx context.Context) error {
	s.factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("syncing Services, EndpointSlices, Pods, Namespaces and Nodes from the API server: %w", context.Cause(ctx))
	}
	return nil
}

// shutdown waits for the informers' goroutines after ctx ended.
func (s *services) shutdown() { s.factory.Shutdown() }

// handler marks the registry stale on every add and delete, and on updates
// for which matters (nil: any) says so.
func (s *services) handler(matters func(old, cur any) bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { s.invalidate() },
		UpdateFunc: func(old, cur any) {
			if matters != nil && !matters(old, cur) {
				return
			}
			s.invalidate()
		},
		DeleteFunc: func(any) { s.invalidate() },
	}
}

func (s *services) invalidate() {
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
	if s.onChange != nil {
		s.onChange()
	}
}

// Registry returns the current registry of Kubernetes Services. It is
// immutable; a change makes a new one.
func (s *services) Registry() *registry.Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dirty {
		s.reg, s.dirty = s.build(), false
	}
	return s.reg
}

// build converts every discovered Service.
func (s *services) build() *registry.Registry {
	svcs, err := s.services.List(labels.Everything())
	if err != nil { // a lister never fails; keep the error visible anyway
		s.log.Error("listing Services", "error", err)
	}
	all, _ := s.slices.List(labels.Everything())
	byService := map[string][]*discoveryv1.EndpointSlice{}
	for _, sl := range all {
		if name := sl.Labels[LabelServiceName]; name != "" {
			byService[sl.Namespace+"/"+name] = append(byService[sl.Namespace+"/"+name], sl)
		}
	}
	lk := lookup{
		pod: func(ns, name string) *corev1.Pod {
			p, _ := s.pods.Pods(ns).Get(name)
			return p
		},
		node: func(name string) *corev1.Node {
			n, _ := s.nodes.Get(name)
			return n
		},
	}
	r := &registry.Registry{}
	for _, svc := range svcs {
		if !s.discovered(svc.Namespace) {
			continue
		}
		r.Services = append(r.Services, convertService(svc, byService[svc.Namespace+"/"+svc.Name], lk))
	}
	registry.Sort(r)
	return r
}

// discovered reports whether the namespace's services are in the registry.
func (s *services) discovered(namespace string) bool {
	if s.selector == nil || s.selector.Empty() {
		return true
	}
	ns, err := s.namespaces.Get(namespace)
	return err == nil && s.selector.Matches(labels.Set(ns.Labels))
}

func labelsChanged(old, cur any) bool {
	o, ok1 := old.(metav1.Object)
	c, ok2 := cur.(metav1.Object)
	return !ok1 || !ok2 || !maps.Equal(o.GetLabels(), c.GetLabels())
}

// podChanged: what the registry reads of a pod (its IP comes from the slices).
func podChanged(old, cur any) bool {
	o, ok1 := old.(*corev1.Pod)
	c, ok2 := cur.(*corev1.Pod)
	return !ok1 || !ok2 || !maps.Equal(o.Labels, c.Labels) ||
		o.Annotations[AnnotationSidecarStatus] != c.Annotations[AnnotationSidecarStatus] ||
		o.Spec.ServiceAccountName != c.Spec.ServiceAccountName || o.Spec.NodeName != c.Spec.NodeName
}

// slim drops from cached objects what the registry does not read: managed
// fields everywhere, and most of pods and nodes (the largest caches). It is
// idempotent and passes other types (tombstones) through.
func slim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, Namespace: o.Namespace, UID: o.UID, ResourceVersion: o.ResourceVersion, Labels: o.Labels,
			GenerateName: o.GenerateName,
		}}
		// The controller owner names the pod's workload (inject.WorkloadName).
		if owner := metav1.GetControllerOf(o); owner != nil {
			p.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if v, ok := o.Annotations[AnnotationSidecarStatus]; ok {
			p.Annotations = map[string]string{AnnotationSidecarStatus: v}
		}
		p.Spec.ServiceAccountName, p.Spec.NodeName = o.Spec.ServiceAccountName, o.Spec.NodeName
		for _, c := range o.Spec.Containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
		}
		for _, c := range o.Spec.InitContainers {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: c.Name})
		}
		return p, nil
	case *corev1.Node:
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: o.Name, UID: o.UID, ResourceVersion: o.ResourceVersion, Labels: o.Labels,
		}}, nil
	case metav1.Object:
		o.SetManagedFields(nil)
	}
	return obj, nil
}

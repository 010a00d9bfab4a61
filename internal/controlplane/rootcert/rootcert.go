// Package rootcert publishes the mesh's trust bundle to every namespace of
// a cluster as the ConfigMap istio-ca-root-cert (key root-cert.pem), as
// Istio does: a new pod's sidecar mounts it to authenticate the control
// plane before it has a certificate of its own.
package rootcert

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Names of the published ConfigMap (Istio's).
const (
	ConfigMapName = "istio-ca-root-cert"
	DataKey       = "root-cert.pem"
)

// DefaultResync is how often every namespace is checked again, repairing
// ConfigMaps edited or deleted by hand.
const DefaultResync = 5 * time.Minute

// Options configures a Publisher.
type Options struct {
	// Client is the cluster. Required.
	Client kubernetes.Interface
	// Bundle returns the PEM of the roots to publish. Required.
	Bundle func() []byte
	// Resync is DefaultResync when 0.
	Resync time.Duration
	// Logger receives the publisher's logs; nil discards them.
	Logger *slog.Logger
}

// Publisher keeps the ConfigMap in every namespace.
type Publisher struct {
	opts Options
	log  *slog.Logger
}

// New returns a publisher; Run starts it.
func New(opts Options) *Publisher {
	if opts.Resync <= 0 {
		opts.Resync = DefaultResync
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{opts: opts, log: opts.Logger.With("component", "rootcert")}
}

// Run watches namespaces and publishes the ConfigMap in each until ctx ends.
func (p *Publisher) Run(ctx context.Context) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	factory := informers.NewSharedInformerFactory(p.opts.Client, p.opts.Resync)
	nsInformer := factory.Core().V1().Namespaces().Informer()
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.Status.Phase != corev1.NamespaceTerminating && ns.DeletionTimestamp == nil {
			queue.Add(ns.Name)
		}
	}
	nsInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	stopped := make(chan struct{})
	defer func() { <-stopped }()
	go func() {
		defer close(stopped)
		<-ctx.Done()
		queue.ShutDown()
	}()
	for p.next(ctx, queue) {
	}
}

// next publishes to one queued namespace; false once the queue shut down.
func (p *Publisher) next(ctx context.Context, queue workqueue.TypedRateLimitingInterface[string]) bool {
	ns, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(ns)
	if err := p.publish(ctx, ns); err != nil {
		if ctx.Err() == nil {
			p.log.Warn("publishing the root certificate", "namespace", ns, "error", err)
			queue.AddRateLimited(ns)
		}
		return true
	}
	queue.Forget(ns)
	return true
}

// publish creates or updates the ConfigMap of namespace ns.
func (p *Publisher) publish(ctx context.Context, ns string) error {
	bundle := string(p.opts.Bundle())
	cms := p.opts.Client.CoreV1().ConfigMaps(ns)
	cm, err := cms.Get(ctx, ConfigMapName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/part-of": "weft"}},
			Data:       map[string]string{DataKey: bundle},
		}, metav1.CreateOptions{})
		if err == nil {
			p.log.Debug("published the root certificate", "namespace", ns)
		}
		if apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("created meanwhile; will check again: %w", err)
		}
		return err
	case err != nil:
		return err
	}
	if bytes.Equal([]byte(cm.Data[DataKey]), []byte(bundle)) {
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[DataKey] = bundle
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	if err == nil {
		p.log.Info("updated the root certificate", "namespace", ns)
	}
	return err
}

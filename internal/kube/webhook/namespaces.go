package webhook

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Namespaces looks namespaces' labels up in an informer's cache, and asks
// the API server for a namespace the cache does not hold yet (one created
// a moment before its first pod).
type Namespaces struct {
	lister corev1listers.NamespaceLister
	client kubernetes.Interface
}

// NewNamespaces returns the lookup of client's namespaces; it watches them
// until ctx ends and returns once its cache is filled (or ctx ends).
func NewNamespaces(ctx context.Context, client kubernetes.Interface, resync time.Duration) (*Namespaces, error) {
	factory := informers.NewSharedInformerFactory(client, resync)
	inf := factory.Core().V1().Namespaces()
	lister := inf.Lister()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		factory.Shutdown()
		return nil, fmt.Errorf("listing namespaces: %w", context.Cause(ctx))
	}
	context.AfterFunc(ctx, factory.Shutdown)
	return &Namespaces{lister: lister, client: client}, nil
}

// Labels returns the namespace's labels.
func (n *Namespaces) Labels(ctx context.Context, name string) (map[string]string, error) {
	ns, err := n.lister.Get(name)
	if apierrors.IsNotFound(err) {
		ns, err = n.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

package controlplane

import (
	"context"
	"fmt"
	"log/slog"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/casecret"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/kube/discovery"
)

// DiscoveryOptions, with Options.KubeClient, feed the registry and the
// config from the cluster (`--kubernetes`): Services, EndpointSlices, Pods,
// Namespaces and Nodes, and Istio's CRDs, whose status one elected replica
// writes (Lease discovery.LeaseName in KubeNamespace).
type DiscoveryOptions struct {
	// IstioClient reads Istio's CRDs and writes their status.
	IstioClient istioclient.Interface
	// Identity names this replica in the Lease (the pod name, $POD_NAME);
	// empty: the host name.
	Identity string
	// Selector, if set, is a label selector on namespaces: only their
	// Services are discovered (Istio's discoverySelectors).
	Selector string
}

// kubeDiscovery is the running discovery of a cluster.
type kubeDiscovery struct{ ctl *discovery.Controller }

// newKubeDiscovery prepares the discovery; changed is called when the
// cluster's Services may have changed.
func newKubeDiscovery(o *DiscoveryOptions, kc kubernetes.Interface, namespace string, st store.Store, log *slog.Logger, changed func()) (*kubeDiscovery, error) {
	if kc == nil || o.IstioClient == nil {
		return nil, fmt.Errorf("Kubernetes discovery needs the Kubernetes and Istio clients")
	}
	if namespace == "" {
		namespace = casecret.DefaultNamespace
	}
	var sel labels.Selector
	if o.Selector != "" {
		var err error
		if sel, err = labels.Parse(o.Selector); err != nil {
			return nil, fmt.Errorf("discovery selector %q: %w", o.Selector, err)
		}
	}
	ctl, err := discovery.New(discovery.Options{
		Kube: kc, Istio: o.IstioClient, Store: st, Namespace: namespace, Identity: o.Identity,
		NamespaceSelector: sel, OnChange: changed, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return &kubeDiscovery{ctl: ctl}, nil
}

// registry is Options.Registry for the xDS server: the cluster's Services,
// then what ServiceEntries and WorkloadEntries define (a Kubernetes Service
// hides a ServiceEntry of the same host).
func (k *kubeDiscovery) registry(objs []*config.Object) *registry.Registry {
	return registry.Merge(k.ctl.Registry(), registry.Build(objs))
}

// start fills the caches and the store; stop ends the watches.
func (k *kubeDiscovery) start(ctx context.Context) (stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	if err := k.ctl.Start(ctx); err != nil {
		cancel()
		k.ctl.Wait()
		return nil, fmt.Errorf("watching Kubernetes: %w", err)
	}
	return func() { cancel(); k.ctl.Wait() }, nil
}

// services is the cluster's registry for the API's analysis; nil when k is
// (standalone).
func (k *kubeDiscovery) services() func() *registry.Registry {
	if k == nil {
		return nil
	}
	return k.ctl.Registry
}

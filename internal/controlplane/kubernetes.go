package controlplane

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/controlplane/store"
	"github.com/weft-mesh/weft/internal/kube"
	"github.com/weft-mesh/weft/internal/kube/discovery"
)

// KubernetesOptions runs the control plane on a cluster (`--kubernetes`):
// the registry and the Istio config come from the API server.
type KubernetesOptions struct {
	// Kubeconfig is a kubeconfig file; empty: the files KubeconfigEnv
	// ($KUBECONFIG) names, else the pod's in-cluster config.
	Kubeconfig, KubeconfigEnv string
	// Namespace is the control plane's namespace (kube.DefaultNamespace when empty).
	Namespace string
	// Identity names this replica in the status writer's Lease (the pod
	// name, $POD_NAME); empty: the host name.
	Identity string
	// DiscoverySelector, if set, is a label selector on namespaces: only
	// their Services are discovered (Istio's discoverySelectors).
	DiscoverySelector string
	// Clients, if set, are used instead of connecting (tests pass fakes).
	Clients *kube.Clients
}

// kubeDiscovery is the running discovery of a cluster.
type kubeDiscovery struct {
	ctl     *discovery.Controller
	clients *kube.Clients
}

// newKubernetes connects to the cluster; changed is called when its
// Services may have changed.
func newKubernetes(o *KubernetesOptions, st store.Store, log *slog.Logger, changed func()) (*kubeDiscovery, error) {
	clients := o.Clients
	if clients == nil {
		cfg, err := kube.RESTConfig(o.Kubeconfig, o.KubeconfigEnv)
		if err != nil {
			return nil, err
		}
		if clients, err = kube.NewClients(cfg); err != nil {
			return nil, err
		}
	}
	ns := o.Namespace
	if ns == "" {
		ns = kube.DefaultNamespace
	}
	var sel labels.Selector
	if o.DiscoverySelector != "" {
		var err error
		if sel, err = labels.Parse(o.DiscoverySelector); err != nil {
			return nil, fmt.Errorf("discovery selector %q: %w", o.DiscoverySelector, err)
		}
	}
	ctl, err := discovery.New(discovery.Options{
		Kube: clients.Kube, Istio: clients.Istio, Store: st, Namespace: ns, Identity: o.Identity,
		NamespaceSelector: sel, OnChange: changed, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return &kubeDiscovery{ctl: ctl, clients: clients}, nil
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

// webhookOptions gives the injector (if it runs and has no client) the
// cluster's client, so it sees namespace labels and sets its CA bundle.
func (k *kubeDiscovery) webhookOptions(w *WebhookOptions) *WebhookOptions {
	if w == nil || w.Client != nil {
		return w
	}
	c := *w
	c.Client = k.clients.Kube
	return &c
}

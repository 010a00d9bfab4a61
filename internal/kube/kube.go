// Package kube connects weft to a Kubernetes API server: the REST config
// (in-cluster, a kubeconfig file or $KUBECONFIG) and the clientsets for
// Kubernetes' own API and Istio's CRDs.
package kube

import (
	"fmt"
	"path/filepath"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// DefaultNamespace is the control plane's namespace in a cluster.
const DefaultNamespace = "weft-system"

// Clients are the clientsets the control plane uses.
type Clients struct {
	// Kube reads Services, EndpointSlices, Pods, Namespaces and Nodes and
	// holds the leader-election Lease.
	Kube kubernetes.Interface
	// Istio reads Istio's CRDs and writes their status.
	Istio istioclient.Interface
}

// RESTConfig returns the config for the API server: from kubeconfig when
// given, else from the file(s) $KUBECONFIG names (kubeconfigEnv, the value
// the caller read), else the pod's in-cluster service account.
func RESTConfig(kubeconfig, kubeconfigEnv string) (*rest.Config, error) {
	if kubeconfig == "" && kubeconfigEnv == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster Kubernetes config (outside a pod, pass --kubeconfig or set KUBECONFIG): %w", err)
		}
		return cfg, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
	if kubeconfig == "" {
		rules.Precedence = filepath.SplitList(kubeconfigEnv)
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		src := kubeconfig
		if src == "" {
			src = "$KUBECONFIG " + kubeconfigEnv
		}
		return nil, fmt.Errorf("loading kubeconfig %s: %w", src, err)
	}
	return cfg, nil
}

// NewClients returns the clientsets for cfg.
func NewClients(cfg *rest.Config) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "weft-control-plane"
	}
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	i, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("Istio client: %w", err)
	}
	return &Clients{Kube: k, Istio: i}, nil
}

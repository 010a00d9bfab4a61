package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// kubeconfigFlag adds --kubeconfig to fs.
func kubeconfigFlag(fs *flag.FlagSet) *string {
	return fs.String("kubeconfig", "", "kubeconfig file (default $KUBECONFIG, else ~/.kube/config, else the pod's in-cluster config)")
}

// restConfig returns the API server's config: the kubeconfig file path,
// else the files $KUBECONFIG names, else ~/.kube/config, else the pod's
// in-cluster service account.
func restConfig(path string, env *Env) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	if env.Getenv != nil {
		if v := env.Getenv("KUBECONFIG"); v != "" {
			rules.Precedence = filepath.SplitList(v)
		}
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client config: %w (give --kubeconfig, set $KUBECONFIG, or run in a pod)", err)
	}
	cfg.UserAgent = "weft/" + Version
	return cfg, nil
}

// reachable checks that the API server of cfg answers.
func reachable(cfg *rest.Config) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = 10 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return fmt.Errorf("Kubernetes client: %w", err)
	}
	if _, err := dc.ServerVersion(); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "\n"); i > 0 {
			msg = msg[:i]
		}
		return fmt.Errorf("cannot reach the Kubernetes API server at %s: %s (check --kubeconfig, $KUBECONFIG or the current context)", cfg.Host, msg)
	}
	return nil
}

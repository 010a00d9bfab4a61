package cli

import (
	"flag"
	"fmt"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/rest"

	"github.com/weft-mesh/weft/internal/controlplane"
)

// discoveryFlags adds the Kubernetes discovery's flags to weft
// control-plane; the function it returns gives its options for the
// cluster of cfg (with --kubernetes), and sets the namespace from
// --kube-namespace when given.
func discoveryFlags(fs *flag.FlagSet) func(cfg *rest.Config, env *Env, namespace *string) (*controlplane.DiscoveryOptions, error) {
	ns := fs.String("kube-namespace", "", "with --kubernetes: the control plane's namespace (default: $POD_NAMESPACE, else weft-system)")
	sel := fs.String("kube-discovery-selector", "", "with --kubernetes: discover only the Services of namespaces matching this label selector (e.g. istio-discovery=enabled)")
	return func(cfg *rest.Config, env *Env, namespace *string) (*controlplane.DiscoveryOptions, error) {
		if *ns != "" {
			*namespace = *ns
		}
		ic, err := istioclient.NewForConfig(cfg)
		if err != nil {
			return nil, fmt.Errorf("Istio client: %w", err)
		}
		o := &controlplane.DiscoveryOptions{IstioClient: ic, Selector: *sel}
		if env.Getenv != nil {
			o.Identity = env.Getenv("POD_NAME")
		}
		return o, nil
	}
}

package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/weft-mesh/weft/internal/kube/chart"
	"github.com/weft-mesh/weft/internal/kube/install"
	"github.com/weft-mesh/weft/manifests"
)

// release is how weft install names its release: the chart's objects go
// to weft-system, as helm template weft manifests/charts/weft -n weft-system.
var release = chart.Release{Name: "weft", Namespace: "weft-system"}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func runInstall(ctx context.Context, env *Env) error {
	fs := newFlags(env, "install")
	profile := fs.String("profile", chart.DefaultProfile, "default (control plane + injector), demo (debug logs, 100% tracing, console on NodePort 30001) or minimal (control plane only)")
	var set stringsFlag
	fs.Var(&set, "set", "override a chart value KEY=VALUE (see manifests/charts/weft/values.yaml); repeatable")
	dryRun := fs.Bool("dry-run", false, "print the manifests instead of applying them")
	kubeconfig := kubeconfigFlag(fs)
	timeout := fs.Duration("timeout", install.DefaultTimeout, "how long to wait for the CRDs to be established")
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		return err
	}
	docs, err := c.Render(chart.Options{Profile: *profile, Set: set, Release: release})
	if err != nil {
		return err
	}
	if *dryRun {
		_, err := env.Stdout.Write(chart.YAML(docs))
		return err
	}
	client, err := dynamicClient(*kubeconfig, env)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := install.Apply(ctx, docs, install.Options{Client: client, Out: env.Stdout, Timeout: *timeout}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nweft %s installed (profile %s) in %s in %s.\n", c.Metadata().AppVersion, *profile, release.Namespace,
		time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(env.Stdout, "Next: kubectl label namespace default istio-injection=enabled; then deploy your apps (see docs/kubernetes.md).")
	return nil
}

func runUninstall(ctx context.Context, env *Env) error {
	fs := newFlags(env, "uninstall")
	purge := fs.Bool("purge", false, "also delete the CRDs, and with them every Istio config object of the cluster")
	kubeconfig := kubeconfigFlag(fs)
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	c, err := chart.Load(manifests.Chart, manifests.ChartDir)
	if err != nil {
		return err
	}
	docs, err := install.Everything(c, release)
	if err != nil {
		return err
	}
	client, err := dynamicClient(*kubeconfig, env)
	if err != nil {
		return err
	}
	return install.Uninstall(ctx, docs, *purge, install.Options{Client: client, Out: env.Stdout})
}

// dynamicClient connects to the API server of kubeconfig and checks it answers.
func dynamicClient(kubeconfig string, env *Env) (dynamic.Interface, error) {
	cfg, err := restConfig(kubeconfig, env)
	if err != nil {
		return nil, err
	}
	if err := reachable(cfg); err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}

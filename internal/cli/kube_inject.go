package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/weft-mesh/weft/internal/kube/inject"
	corev1 "k8s.io/api/core/v1"
)

// runKubeInject is istioctl kube-inject: it adds the sidecar to the pod
// templates of a YAML stream, offline.
func runKubeInject(_ context.Context, env *Env) error {
	fs := newFlags(env, "kube-inject")
	s := inject.DefaultSettings(Version)
	file := fs.String("f", "", "the YAML to inject (- for stdin)")
	output := fs.String("o", "", "write the result to this file (default stdout)")
	fs.StringVar(&s.Image, "image", s.Image, "the weft image of the injected containers")
	pull := fs.String("image-pull-policy", "", "imagePullPolicy of the injected containers: Always, IfNotPresent or Never (default: the cluster's)")
	fs.StringVar(&s.XDSAddress, "xds-address", s.XDSAddress, "the control plane's plaintext xDS address, as the proxies reach it")
	fs.StringVar(&s.SecureXDSAddress, "secure-xds-address", s.SecureXDSAddress, "the control plane's xDS and CA address over TLS")
	fs.BoolVar(&s.HoldApplicationUntilProxyStarts, "hold-application-until-proxy-starts", false,
		"start apps after their proxy is ready (the mesh default of proxy.istio.io/config's holdApplicationUntilProxyStarts)")
	fs.BoolVar(&s.DNSCapture, "dns-capture", false, "redirect the pods' DNS to the proxy's DNS proxy (the mesh default of proxyMetadata ISTIO_META_DNS_CAPTURE)")
	fs.BoolVar(&s.InboundPortsFromContainers, "inbound-ports-from-containers", false,
		"capture inbound traffic only on the ports the containers declare (default: every port, '*')")
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	switch p := corev1.PullPolicy(*pull); p {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		s.ImagePullPolicy = p
	default:
		return fmt.Errorf("--image-pull-policy %q: want Always, IfNotPresent or Never", *pull)
	}
	if *file == "" {
		return fmt.Errorf("kube-inject needs -f FILE (or -f - for stdin)")
	}
	var in io.Reader = os.Stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("-f: %w", err)
		}
		defer f.Close()
		in = f
	}
	var out bytes.Buffer
	warnings, err := inject.Documents(in, &out, s, true)
	for _, w := range warnings {
		fmt.Fprintln(env.Stderr, "Warning:", w)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	if *output == "" {
		_, err = env.Stdout.Write(out.Bytes())
		return err
	}
	if err := os.WriteFile(*output, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	return nil
}

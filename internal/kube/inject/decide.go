package inject

import (
	"fmt"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IgnoredNamespaces never get sidecars: Kubernetes' own and the control
// plane's.
var IgnoredNamespaces = []string{"kube-system", "kube-public", "kube-node-lease", "weft-system"}

// Decision is whether a pod gets a sidecar, and why.
type Decision struct {
	Inject bool
	Reason string
}

// Decide tells whether a pod gets a sidecar, as Istio's injector does:
//
//   - never a pod on the host network (its iptables rules would change the
//     node's), one already injected, or one in an ignored namespace;
//   - sidecar.istio.io/inject "false" on the pod (label, else annotation)
//     or istio-injection=disabled on the namespace: no;
//   - sidecar.istio.io/inject "true" on the pod or istio-injection=enabled
//     on the namespace: yes;
//   - otherwise byDefault (weft kube-inject injects every pod that does
//     not opt out; the webhook only those that opt in).
//
// nsLabels are the namespace's labels (nil when unknown).
func Decide(meta *metav1.ObjectMeta, spec *corev1.PodSpec, namespace string, nsLabels map[string]string, byDefault bool) Decision {
	if spec.HostNetwork {
		return Decision{Reason: "the pod uses the host network"}
	}
	if _, ok := meta.Annotations[annotation.SidecarStatus.Name]; ok {
		return Decision{Reason: "already injected (" + annotation.SidecarStatus.Name + " is set)"}
	}
	for _, ns := range IgnoredNamespaces {
		if namespace == ns {
			return Decision{Reason: "namespace " + ns + " is never injected"}
		}
	}
	where, value := "annotation", meta.Annotations[annotation.SidecarInject.Name]
	if v, ok := meta.Labels[label.SidecarInject.Name]; ok {
		// As Istio: the label is the newer API and wins over the annotation.
		where, value = "label", v
	}
	pod, podSays := parseBool(value)
	switch {
	case value != "" && !podSays:
		return Decision{Reason: fmt.Sprintf("pod %s %s is %q, not true or false", where, annotation.SidecarInject.Name, value)}
	case podSays && !pod:
		return Decision{Reason: fmt.Sprintf("pod %s %s is %q", where, annotation.SidecarInject.Name, value)}
	}
	if nsLabels[NamespaceInjectionLabel] == "disabled" {
		return Decision{Reason: "namespace label " + NamespaceInjectionLabel + "=disabled"}
	}
	switch {
	case pod:
		return Decision{Inject: true, Reason: fmt.Sprintf("pod %s %s is %q", where, annotation.SidecarInject.Name, value)}
	case nsLabels[NamespaceInjectionLabel] == "enabled":
		return Decision{Inject: true, Reason: "namespace label " + NamespaceInjectionLabel + "=enabled"}
	case byDefault:
		return Decision{Inject: true, Reason: "injected by default"}
	}
	return Decision{Reason: "neither the namespace label " + NamespaceInjectionLabel + "=enabled nor the pod's " +
		annotation.SidecarInject.Name + " asks for a sidecar"}
}

// parseBool reads a YAML 1.1 boolean as Istio does; ok is false for
// anything else.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "y", "yes", "true", "on":
		return true, true
	case "n", "no", "false", "off":
		return false, true
	}
	return false, false
}

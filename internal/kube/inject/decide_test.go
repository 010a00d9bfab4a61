package inject

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDecide(t *testing.T) {
	enabled := map[string]string{NamespaceInjectionLabel: "enabled"}
	disabled := map[string]string{NamespaceInjectionLabel: "disabled"}
	ann := func(v string) map[string]string { return map[string]string{"sidecar.istio.io/inject": v} }
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		hostNetwork bool
		namespace   string
		nsLabels    map[string]string
		byDefault   bool
		want        bool
		reason      string
	}{
		{name: "namespace enabled", nsLabels: enabled, want: true, reason: "istio-injection=enabled"},
		{name: "namespace unlabelled", want: false, reason: "neither"},
		{name: "namespace unlabelled, by default", byDefault: true, want: true, reason: "by default"},
		{name: "pod annotation true", annotations: ann("true"), want: true, reason: `annotation sidecar.istio.io/inject is "true"`},
		{name: "pod label true", labels: ann("true"), want: true, reason: `label sidecar.istio.io/inject is "true"`},
		{name: "pod annotation yes (YAML 1.1)", annotations: ann("yes"), want: true},
		{name: "pod annotation false wins over namespace", annotations: ann("false"), nsLabels: enabled, want: false, reason: `"false"`},
		{name: "pod label false wins over namespace", labels: ann("false"), nsLabels: enabled, want: false},
		{name: "pod false wins over by default", annotations: ann("false"), byDefault: true, want: false},
		{name: "label wins over annotation", labels: ann("false"), annotations: ann("true"), want: false, reason: "label"},
		{name: "label true wins over annotation false", labels: ann("true"), annotations: ann("false"), want: true},
		{name: "namespace disabled beats pod true", annotations: ann("true"), nsLabels: disabled, want: false, reason: "istio-injection=disabled"},
		{name: "namespace disabled beats by default", nsLabels: disabled, byDefault: true, want: false},
		{name: "bad value is not true", annotations: ann("maybe"), nsLabels: enabled, want: false, reason: `"maybe", not true or false`},
		{name: "host network", hostNetwork: true, annotations: ann("true"), nsLabels: enabled, want: false, reason: "host network"},
		{name: "already injected", annotations: map[string]string{"sidecar.istio.io/status": "{}"}, nsLabels: enabled, want: false, reason: "already injected"},
		{name: "kube-system", namespace: "kube-system", annotations: ann("true"), want: false, reason: "never injected"},
		{name: "weft-system", namespace: "weft-system", byDefault: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta := &metav1.ObjectMeta{Labels: tt.labels, Annotations: tt.annotations}
			spec := &corev1.PodSpec{HostNetwork: tt.hostNetwork}
			ns := tt.namespace
			if ns == "" {
				ns = "default"
			}
			d := Decide(meta, spec, ns, tt.nsLabels, tt.byDefault)
			if d.Inject != tt.want {
				t.Errorf("Inject = %v, want %v (reason %q)", d.Inject, tt.want, d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
		})
	}
}

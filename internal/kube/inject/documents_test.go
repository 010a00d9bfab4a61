package inject

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestDocumentsGolden(t *testing.T) {
	tests := []struct {
		input    string
		injected map[string]bool // kind/name -> whether it must carry a sidecar
	}{
		{"bookinfo", map[string]bool{"Service/reviews": false, "ServiceAccount/bookinfo-reviews": false,
			"Deployment/reviews-v1": true, "Deployment/productpage-v1": true, "Deployment/ratings-v1": true, "Deployment/details-v1": false}},
		{"workloads", map[string]bool{"Pod/sleep": true, "StatefulSet/web": true, "DaemonSet/agent": true,
			"DaemonSet/node-exporter": false, "ReplicaSet/frontend": true, "Job/migrate": true, "CronJob/report": true,
			"ConfigMap/settings": false, "Deployment/api": true, "Deployment/echo-proxyless": true}},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			in, err := os.Open(filepath.Join("testdata", tt.input+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var out bytes.Buffer
			if _, err := Documents(in, &out, testSettings(), true); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.input+".golden.yaml")
			if *update {
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("output differs from %s (-want +got; rerun with -update if intended):\n%s", golden, diff)
			}
			got := decodeStrict(t, out.Bytes())
			if diff := cmp.Diff(tt.injected, got); diff != "" {
				t.Errorf("objects and whether they were injected (-want +got):\n%s", diff)
			}
		})
	}
}

// decodeStrict decodes every document of a stream into its client-go type
// (an unknown field is an error) and returns, for each kind/name, whether
// its pod template has the proxy.
func decodeStrict(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		decodeObject(t, doc, got)
	}
}

func decodeObject(t *testing.T, doc []byte, got map[string]bool) {
	t.Helper()
	var tm typeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatal(err)
	}
	var (
		obj  any
		spec func() *corev1.PodSpec
	)
	switch tm.Kind {
	case "List":
		var l corev1.List
		if err := yaml.UnmarshalStrict(doc, &l); err != nil {
			t.Fatalf("List: %v", err)
		}
		for _, item := range l.Items {
			decodeObject(t, item.Raw, got)
		}
		return
	case "Service":
		obj = &corev1.Service{}
	case "ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "ConfigMap":
		obj = &corev1.ConfigMap{}
	case "Pod":
		p := &corev1.Pod{}
		obj, spec = p, func() *corev1.PodSpec { return &p.Spec }
	case "Deployment":
		d := &appsv1.Deployment{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.Template.Spec }
	case "StatefulSet":
		d := &appsv1.StatefulSet{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.Template.Spec }
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.Template.Spec }
	case "ReplicaSet":
		d := &appsv1.ReplicaSet{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.Template.Spec }
	case "Job":
		d := &batchv1.Job{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.Template.Spec }
	case "CronJob":
		d := &batchv1.CronJob{}
		obj, spec = d, func() *corev1.PodSpec { return &d.Spec.JobTemplate.Spec.Template.Spec }
	default:
		t.Fatalf("unexpected kind %s in the output", tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s %s does not decode strictly: %v", tm.Kind, tm.Metadata.Name, err)
	}
	injected := false
	if spec != nil {
		for _, c := range spec().Containers {
			injected = injected || c.Name == ProxyContainer
		}
	}
	got[tm.Kind+"/"+tm.Metadata.Name] = injected
}

func TestDocumentsErrors(t *testing.T) {
	tests := []struct {
		name, input string
		want        []string
	}{
		{
			name:  "unknown field",
			input: "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replica: 2\n",
			want:  []string{`document 2 (Deployment web): error unmarshaling JSON: while decoding JSON: json: unknown field "replica"`},
		},
		{
			name:  "old apiVersion",
			input: "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: old}\n",
			want:  []string{"document 1 (Deployment old): apiVersion extensions/v1beta1 is not supported for Deployment; use apps/v1"},
		},
		{
			name:  "no kind",
			input: "apiVersion: v1\nmetadata: {name: x}\n",
			want:  []string{"document 1: apiVersion and kind are required"},
		},
		{
			name:  "not an object",
			input: "- a\n- b\n",
			want:  []string{"document 1: not a Kubernetes object"},
		},
		{
			name: "bad annotation, and a bad List item",
			input: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {sidecar.istio.io/proxyCPU: x}\nspec: {containers: [{name: a, image: a}]}\n" +
				"---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: ok}}\n- {apiVersion: batch/v1, kind: Job, metadata: {name: j}, spec: {bogus: 1}}\n",
			want: []string{`document 1 (Pod p): annotation sidecar.istio.io/proxyCPU: "x" is not a quantity`,
				`document 2, List item 2 (Job j): error unmarshaling JSON: while decoding JSON: json: unknown field "bogus"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := Documents(strings.NewReader(tt.input), &out, testSettings(), true)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nwant it to contain\n%s", err, w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("wrote output despite the error:\n%s", out.String())
			}
		})
	}
}

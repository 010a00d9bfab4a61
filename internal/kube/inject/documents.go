package inject

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// DocumentError is a document of a YAML stream that could not be injected.
type DocumentError struct {
	// Index is the document's 1-based position in the stream; Item its
	// 1-based position in a List (0 outside a List).
	Index, Item int
	Kind, Name  string
	Err         error
}

func (e *DocumentError) Error() string {
	where := pos{e.Index, e.Item}.String()
	if e.Kind != "" {
		name := e.Name
		if name == "" {
			name = "(no name)"
		}
		where += fmt.Sprintf(" (%s %s)", e.Kind, name)
	}
	return where + ": " + e.Err.Error()
}

func (e *DocumentError) Unwrap() error { return e.Err }

// Documents reads a multi-document YAML stream (or JSON), injects the pod
// template of every Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet,
// ReplicationController, Job and CronJob (and of those in a List) that
// Decide selects with byDefault, and writes the stream to w; other
// documents pass through unchanged. Workloads are decoded strictly: an
// unknown field is an error. On any error nothing is written and the error
// lists every bad document (*DocumentError). It returns the warnings of
// the injections.
func Documents(r io.Reader, w io.Writer, s Settings, byDefault bool) ([]string, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var (
		out      bytes.Buffer
		errs     []error
		warnings []string
	)
	for index := 1; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &DocumentError{Index: index, Err: fmt.Errorf("reading YAML: %w", err)})
			break
		}
		if isEmpty(doc) {
			index--
			continue
		}
		res, w, err := document(doc, pos{index: index}, s, byDefault)
		warnings = append(warnings, w...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(res)
		if len(res) > 0 && res[len(res)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	if len(errs) > 0 {
		return warnings, errors.Join(errs...)
	}
	_, err := w.Write(out.Bytes())
	return warnings, err
}

// isEmpty reports whether a document holds only blanks and comments.
func isEmpty(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

// typeMeta is what a document says it is.
type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// workloadKinds maps a kind to its supported apiVersion.
var workloadKinds = map[string]string{
	"Pod": "v1", "ReplicationController": "v1", "List": "v1",
	"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
	"Job": "batch/v1", "CronJob": "batch/v1",
}

// pos is where a document is in the stream.
type pos struct{ index, item int }

func (p pos) String() string {
	if p.item > 0 {
		return fmt.Sprintf("document %d, List item %d", p.index, p.item)
	}
	return fmt.Sprintf("document %d", p.index)
}

// document injects one document and returns its new YAML (the document
// itself when it is not a workload), its warnings, and a *DocumentError
// (several in a List).
func document(doc []byte, at pos, s Settings, byDefault bool) ([]byte, []string, error) {
	var tm typeMeta
	fail := func(err error) ([]byte, []string, error) {
		return nil, nil, &DocumentError{Index: at.index, Item: at.item, Kind: tm.Kind, Name: tm.Metadata.Name, Err: err}
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return fail(fmt.Errorf("not a Kubernetes object: %w", err))
	}
	if tm.Kind == "" || tm.APIVersion == "" {
		return fail(errors.New("apiVersion and kind are required"))
	}
	want, workload := workloadKinds[tm.Kind]
	if !workload {
		return doc, nil, nil
	}
	if tm.APIVersion != want {
		return fail(fmt.Errorf("apiVersion %s is not supported for %s; use %s", tm.APIVersion, tm.Kind, want))
	}
	if tm.Kind == "List" {
		if at.item > 0 {
			return fail(errors.New("a List inside a List is not supported"))
		}
		return list(doc, at, s, byDefault)
	}
	obj, t, err := decodeWorkload(doc, tm)
	if err != nil {
		return fail(err)
	}
	res, err := Inject(t, nil, byDefault, s)
	if err != nil {
		return fail(err)
	}
	if !res.Injected {
		return doc, nil, nil
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		pod.ObjectMeta, pod.Spec = t.Template.ObjectMeta, t.Template.Spec
	}
	data, err := yaml.Marshal(obj)
	if err != nil {
		return fail(err)
	}
	warnings := make([]string, len(res.Warnings))
	for i, w := range res.Warnings {
		warnings[i] = fmt.Sprintf("%s (%s %s): %s", at, tm.Kind, tm.Metadata.Name, w)
	}
	return data, warnings, nil
}

// decodeWorkload decodes a workload strictly and returns it with its pod
// template (a Pod's is a copy, written back by the caller).
func decodeWorkload(doc []byte, tm typeMeta) (any, Target, error) {
	t := Target{Namespace: tm.Metadata.Namespace, WorkloadName: tm.Metadata.Name}
	var (
		obj any
		pod *corev1.Pod
		rc  *corev1.ReplicationController
	)
	switch tm.Kind {
	case "Pod":
		pod = &corev1.Pod{}
		obj = pod
	case "ReplicationController":
		rc = &corev1.ReplicationController{}
		obj = rc
	case "Deployment":
		d := &appsv1.Deployment{}
		obj, t.Template = d, &d.Spec.Template
	case "StatefulSet":
		d := &appsv1.StatefulSet{}
		obj, t.Template = d, &d.Spec.Template
	case "DaemonSet":
		d := &appsv1.DaemonSet{}
		obj, t.Template = d, &d.Spec.Template
	case "ReplicaSet":
		d := &appsv1.ReplicaSet{}
		obj, t.Template = d, &d.Spec.Template
	case "Job":
		d := &batchv1.Job{}
		obj, t.Template = d, &d.Spec.Template
	case "CronJob":
		d := &batchv1.CronJob{}
		obj, t.Template = d, &d.Spec.JobTemplate.Spec.Template
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, t, err
	}
	switch {
	case pod != nil:
		t.Template = &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	case rc != nil:
		if rc.Spec.Template == nil {
			return nil, t, errors.New("spec.template is required")
		}
		t.Template = rc.Spec.Template
	}
	return obj, t, nil
}

// list injects the items of a v1 List.
func list(doc []byte, at pos, s Settings, byDefault bool) ([]byte, []string, error) {
	var l corev1.List
	if err := yaml.UnmarshalStrict(doc, &l); err != nil {
		return nil, nil, &DocumentError{Index: at.index, Kind: "List", Err: err}
	}
	var (
		errs     []error
		warnings []string
	)
	for i := range l.Items {
		res, w, err := document(l.Items[i].Raw, pos{index: at.index, item: i + 1}, s, byDefault)
		warnings = append(warnings, w...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		js, err := yaml.YAMLToJSON(res)
		if err != nil {
			return nil, nil, &DocumentError{Index: at.index, Item: i + 1, Err: err}
		}
		l.Items[i] = runtime.RawExtension{Raw: js}
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	data, err := yaml.Marshal(&l)
	return data, warnings, err
}

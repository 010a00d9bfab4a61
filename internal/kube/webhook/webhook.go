// Package webhook is weft's sidecar injector as a Kubernetes mutating
// admission webhook: an HTTPS handler for AdmissionReview v1 that answers
// with a JSON Patch adding the sidecar (internal/kube/inject), the lookup
// of namespaces' labels, and the upkeep of the CA bundle in the
// MutatingWebhookConfiguration.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/internal/kube/inject"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Path is where the API server sends AdmissionReviews.
const Path = "/inject"

// MaxBodyBytes bounds an AdmissionReview (the API server's own limit on an
// object is about 3 MiB).
const MaxBodyBytes = 4 << 20

// NamespaceLabels returns a namespace's labels. Implementations are safe
// for concurrent use.
type NamespaceLabels interface {
	Labels(ctx context.Context, namespace string) (map[string]string, error)
}

// Handler serves AdmissionReview v1 requests for pods on Path. It is safe
// for concurrent use.
type Handler struct {
	settings   inject.Settings
	namespaces NamespaceLabels
	log        *slog.Logger
}

// NewHandler returns a handler injecting with settings; namespaces gives
// the istio-injection label of the pod's namespace. A nil logger discards.
func NewHandler(settings inject.Settings, namespaces NamespaceLabels, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{settings: settings, namespaces: namespaces, log: log.With("component", "injector")}
}

// ServeHTTP answers one AdmissionReview. Requests that are not an
// AdmissionReview get an HTTP error; an AdmissionReview always gets a
// review back, with the error in its response when the pod cannot be
// injected.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the injector accepts POST of an AdmissionReview only", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		http.Error(w, fmt.Sprintf("Content-Type %q: want application/json", r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("AdmissionReview larger than %d bytes", MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, "not an AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if gvk := review.GroupVersionKind(); gvk != admissionv1.SchemeGroupVersion.WithKind("AdmissionReview") || review.Request == nil {
		http.Error(w, fmt.Sprintf("want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion %q kind %q",
			review.APIVersion, review.Kind), http.StatusBadRequest)
		return
	}
	resp := h.Review(r.Context(), review.Request)
	out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// Review answers one AdmissionRequest for a pod: allowed, with a JSON
// Patch when the pod gets a sidecar; not allowed, with the reason, when
// the pod's annotations are invalid or the request is not for a pod.
func (h *Handler) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp, err := h.review(ctx, req)
	if err != nil {
		h.log.Warn("refused a pod", "namespace", req.Namespace, "name", req.Name, "uid", req.UID, "error", err)
		code := int32(http.StatusBadRequest)
		var internal *internalError
		if errors.As(err, &internal) {
			code = http.StatusInternalServerError
		}
		return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: false,
			Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: "weft sidecar injector: " + err.Error()}}
	}
	resp.UID = req.UID
	return resp
}

// internalError is a failure of the injector, not of the pod.
type internalError struct{ err error }

func (e *internalError) Error() string { return e.err.Error() }
func (e *internalError) Unwrap() error { return e.err }

func (h *Handler) review(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	podKind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	if req.Kind != podKind {
		return nil, fmt.Errorf("the injector handles v1 Pods, not %s; check the rules of the MutatingWebhookConfiguration",
			strings.TrimPrefix(req.Kind.Group+"/"+req.Kind.Version+" "+req.Kind.Kind, "/"))
	}
	if req.Operation != admissionv1.Create || req.SubResource != "" {
		return &admissionv1.AdmissionResponse{Allowed: true}, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return nil, fmt.Errorf("request.object is not a Pod: %w", err)
	}
	ns := req.Namespace
	if ns == "" {
		ns = pod.Namespace
	}
	labels, err := h.namespaces.Labels(ctx, ns)
	if err != nil {
		return nil, &internalError{fmt.Errorf("looking up namespace %s: %w", ns, err)}
	}
	original, err := json.Marshal(&pod)
	if err != nil {
		return nil, &internalError{err}
	}
	name := inject.WorkloadName(&pod)
	tmpl := &corev1.PodTemplateSpec{ObjectMeta: *pod.ObjectMeta.DeepCopy(), Spec: *pod.Spec.DeepCopy()}
	res, err := inject.Inject(inject.Target{Template: tmpl, Namespace: ns, WorkloadName: name}, labels, false, h.settings)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", podName(&pod, ns), err)
	}
	if !res.Injected {
		h.log.Debug("not injected", "pod", podName(&pod, ns), "reason", res.Decision.Reason)
		resp := &admissionv1.AdmissionResponse{Allowed: true}
		if strings.Contains(res.Decision.Reason, "not true or false") {
			resp.Warnings = []string{res.Decision.Reason}
		}
		return resp, nil
	}
	pod.ObjectMeta, pod.Spec = tmpl.ObjectMeta, tmpl.Spec
	injected, err := json.Marshal(&pod)
	if err != nil {
		return nil, &internalError{err}
	}
	patch, err := CreatePatch(original, injected)
	if err != nil {
		return nil, &internalError{err}
	}
	h.log.Info("injected the sidecar", "pod", podName(&pod, ns), "workload", name, "reason", res.Decision.Reason)
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt, Warnings: res.Warnings}, nil
}

func podName(pod *corev1.Pod, ns string) string {
	name := pod.Name
	if name == "" {
		name = pod.GenerateName + "*"
	}
	return ns + "/" + name
}

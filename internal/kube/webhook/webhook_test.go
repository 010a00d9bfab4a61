package webhook

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/kube/inject"
	"github.com/weft-mesh/weft/internal/spiffe"
	"go.uber.org/goleak"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"
)

// net/http lingers up to 500 ms on a connection whose body was too big
// (closeWriteAndWait), after Server.Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

// serviceName is the DNS name the API server reaches the injector at.
const serviceName = "weftd.weft-system.svc"

type injector struct {
	url    string
	client *http.Client
}

// startInjector serves the handler over TLS on loopback with a certificate
// for serviceName issued by a fresh mesh CA; its client trusts only that CA.
func startInjector(t *testing.T, namespaces ...runtime.Object) *injector {
	t.Helper()
	authority, err := ca.New(ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cert := authority.NewServingCert(spiffe.New("weft-system", "weftd"), []string{serviceName}, nil, time.Hour, nil)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cert.GetCertificate})
	if err != nil {
		t.Fatal(err)
	}
	lookup, err := NewNamespaces(t.Context(), fake.NewClientset(namespaces...), 0)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, NewHandler(inject.DefaultSettings("test"), lookup, nil))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(lis)
	t.Cleanup(func() { srv.Close() })
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(authority.TrustBundle()) {
		t.Fatal("no roots in the trust bundle")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: serviceName, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &injector{url: "https://" + lis.Addr().String() + Path, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (in *injector) post(t *testing.T, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := in.client.Post(in.url, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// review POSTs an AdmissionReview and returns the response to it.
func (in *injector) review(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	code, data := in.post(t, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, data)
	}
	var review admissionv1.AdmissionReview
	if err := yaml.UnmarshalStrict(data, &review); err != nil {
		t.Fatalf("the answer is not an AdmissionReview: %v\n%s", err, data)
	}
	if review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" || review.Response == nil {
		t.Fatalf("answer %s", data)
	}
	if review.Response.UID != "3b7d2c9e-8f41-4a57-9d0e-6f1c2b8a9e10" {
		t.Errorf("response uid %q, want the request's", review.Response.UID)
	}
	return review.Response
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// podReview returns testdata/review-pod.json with edit applied to its
// decoded request.
func podReview(t *testing.T, edit func(req map[string]any)) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "review-pod.json"))
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return data
	}
	var review map[string]any
	if err := json.Unmarshal(data, &review); err != nil {
		t.Fatal(err)
	}
	edit(review["request"].(map[string]any))
	out, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func podAnnotations(req map[string]any) map[string]any {
	return req["object"].(map[string]any)["metadata"].(map[string]any)["annotations"].(map[string]any)
}

// applyPatch applies a response's JSON Patch to the request's pod, as the
// API server does, and decodes the result strictly.
func applyPatch(t *testing.T, body []byte, resp *admissionv1.AdmissionResponse) *corev1.Pod {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v, want JSONPatch", resp.PatchType)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("not an RFC 6902 patch: %v\n%s", err, resp.Patch)
	}
	out, err := patch.Apply(review.Request.Object.Raw)
	if err != nil {
		t.Fatalf("applying the patch: %v\n%s", err, resp.Patch)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(out, &pod); err != nil {
		t.Fatalf("the patched pod does not decode strictly: %v", err)
	}
	return &pod
}

func containerNames(cs []corev1.Container) []string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return names
}

func TestWebhookInjects(t *testing.T) {
	in := startInjector(t,
		namespace("bookinfo", map[string]string{inject.NamespaceInjectionLabel: "enabled"}),
		namespace("plain", nil))
	body := podReview(t, nil)
	resp := in.review(t, body)
	if !resp.Allowed {
		t.Fatalf("not allowed: %+v", resp.Result)
	}
	pod := applyPatch(t, body, resp)
	if got, want := containerNames(pod.Spec.Containers), []string{"reviews", "istio-proxy"}; !slices.Equal(got, want) {
		t.Errorf("containers %v, want %v", got, want)
	}
	if got := containerNames(pod.Spec.InitContainers); !slices.Equal(got, []string{"istio-init"}) {
		t.Errorf("init containers %v", got)
	}
	var vols []string
	for _, v := range pod.Spec.Volumes {
		vols = append(vols, v.Name)
	}
	if want := []string{"kube-api-access-x7k2p", "istio-token", "istio-podinfo", "istiod-ca-cert"}; !slices.Equal(vols, want) {
		t.Errorf("volumes %v, want %v", vols, want)
	}
	for k, v := range map[string]string{"security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "reviews",
		"service.istio.io/canonical-revision": "v1", "pod-template-hash": "7f6b9c8d5d"} {
		if pod.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, pod.Labels[k], v)
		}
	}
	if pod.Annotations["sidecar.istio.io/status"] == "" || pod.Annotations["kubectl.kubernetes.io/restartedAt"] == "" ||
		pod.Annotations["prometheus.io/port"] != "15020" {
		t.Errorf("annotations %v", pod.Annotations)
	}
	if pod.GenerateName != "reviews-v1-7f6b9c8d5d-" || len(pod.OwnerReferences) != 1 || len(pod.Spec.Tolerations) != 2 {
		t.Errorf("the patch lost the pod's own fields: %+v", pod.ObjectMeta)
	}
	proxy := pod.Spec.Containers[1]
	for _, e := range proxy.Env {
		if e.Name == "ISTIO_META_WORKLOAD_NAME" && e.Value != "reviews-v1" {
			t.Errorf("workload name %q, want the Deployment's reviews-v1", e.Value)
		}
	}

	tests := []struct {
		name     string
		edit     func(req map[string]any)
		injected bool
		first    string // first container when injected
	}{
		{name: "namespace not labelled", edit: func(r map[string]any) { r["namespace"] = "plain" }},
		{name: "namespace not labelled, pod opts in", injected: true, first: "reviews", edit: func(r map[string]any) {
			r["namespace"] = "plain"
			podAnnotations(r)["sidecar.istio.io/inject"] = "true"
		}},
		{name: "pod opts out", edit: func(r map[string]any) { podAnnotations(r)["sidecar.istio.io/inject"] = "false" }},
		{name: "hold the app", injected: true, first: "istio-proxy", edit: func(r map[string]any) {
			podAnnotations(r)["proxy.istio.io/config"] = "holdApplicationUntilProxyStarts: true"
		}},
		{name: "update", edit: func(r map[string]any) { r["operation"] = "UPDATE" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := podReview(t, tt.edit)
			resp := in.review(t, body)
			if !resp.Allowed {
				t.Fatalf("not allowed: %+v", resp.Result)
			}
			if !tt.injected {
				if resp.Patch != nil {
					t.Errorf("patched: %s", resp.Patch)
				}
				return
			}
			pod := applyPatch(t, body, resp)
			if names := containerNames(pod.Spec.Containers); len(names) != 2 || names[0] != tt.first {
				t.Errorf("containers %v, want %s first", names, tt.first)
			}
		})
	}
}

func TestWebhookRefuses(t *testing.T) {
	in := startInjector(t, namespace("bookinfo", map[string]string{inject.NamespaceInjectionLabel: "enabled"}))
	tests := []struct {
		name string
		edit func(req map[string]any)
		code int32
		want string
	}{
		{name: "bad annotation", code: 400, want: `pod bookinfo/reviews-v1-7f6b9c8d5d-*: annotation sidecar.istio.io/proxyMemory: "lots" is not a quantity`,
			edit: func(r map[string]any) { podAnnotations(r)["sidecar.istio.io/proxyMemory"] = "lots" }},
		{name: "not a pod", code: 400, want: "handles v1 Pods, not apps/v1 Deployment",
			edit: func(r map[string]any) {
				r["kind"] = map[string]any{"group": "apps", "version": "v1", "kind": "Deployment"}
			}},
		{name: "object not a pod", code: 400, want: "request.object is not a Pod",
			edit: func(r map[string]any) { r["object"] = map[string]any{"spec": "nope"} }},
		{name: "unknown namespace", code: 500, want: "looking up namespace gone: namespaces \"gone\" not found",
			edit: func(r map[string]any) { r["namespace"] = "gone" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := in.review(t, podReview(t, tt.edit))
			if resp.Allowed || resp.Patch != nil || resp.Result == nil {
				t.Fatalf("response %+v, want a refusal", resp)
			}
			if resp.Result.Code != tt.code || !strings.Contains(resp.Result.Message, tt.want) {
				t.Errorf("result %d %q, want %d and %q", resp.Result.Code, resp.Result.Message, tt.code, tt.want)
			}
		})
	}
}

func TestWebhookBadRequests(t *testing.T) {
	in := startInjector(t)
	big := append([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"x","object":{"a":"`),
		bytes.Repeat([]byte("x"), MaxBodyBytes)...)
	tests := []struct {
		name, method, contentType string
		body                      []byte
		code                      int
		want                      string
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed, "accepts POST"},
		{"text", http.MethodPost, "text/plain", []byte("{}"), http.StatusUnsupportedMediaType, `Content-Type "text/plain": want application/json`},
		{"too big", http.MethodPost, "application/json", big, http.StatusRequestEntityTooLarge, "larger than"},
		{"not JSON", http.MethodPost, "application/json", []byte("kind: AdmissionReview"), http.StatusBadRequest, "not an AdmissionReview"},
		{"v1beta1", http.MethodPost, "application/json; charset=utf-8",
			[]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1","request":{"uid":"x"}}`),
			http.StatusBadRequest, `want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion "admission.k8s.io/v1beta1"`},
		{"no request", http.MethodPost, "application/json", []byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}`),
			http.StatusBadRequest, "with a request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, in.url, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := in.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			data, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code || !strings.Contains(string(data), tt.want) {
				t.Errorf("HTTP %d %q, want %d and %q", resp.StatusCode, data, tt.code, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

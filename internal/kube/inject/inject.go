// Package inject adds weft's sidecar to Kubernetes pods as Istio's injector
// does: it decides from the namespace's istio-injection label and the pod's
// sidecar.istio.io/inject label or annotation whether a pod gets a proxy, and
// adds the istio-proxy container, the istio-init container that installs
// the traffic capture, their volumes, labels and annotations. A pod
// annotated inject.istio.io/templates: grpc-agent (proxyless gRPC apps)
// gets Istio's grpc-agent template instead: no proxy and no capture, an
// agent that writes its apps' xDS bootstrap (GRPC_XDS_BOOTSTRAP) and
// certificate into a shared emptyDir. It is pure:
// the admission webhook (internal/kube/webhook) and weft kube-inject both
// call it.
package inject

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of what the injector adds (Istio's, so tools recognise them).
const (
	ProxyContainer = "istio-proxy"
	InitContainer  = "istio-init"
	TokenVolume    = "istio-token"
	PodInfoVolume  = "istio-podinfo"
	// TokenDir is where the projected service-account token is mounted;
	// the proxy reads TokenDir/istio-token.
	TokenDir = "/var/run/secrets/tokens"
	// TokenAudience is the audience of that token, checked by the CA.
	TokenAudience = "istio-ca"
	// PodInfoDir holds the pod's labels and annotations (downward API).
	PodInfoDir = "/etc/istio/pod"
	// RootCertVolume mounts the ConfigMap RootCertConfigMap, the mesh's
	// roots that the control plane publishes to every namespace, at
	// RootCertDir: the proxy authenticates the control plane with
	// RootCertDir/root-cert.pem before it has a certificate.
	RootCertVolume    = "istiod-ca-cert"
	RootCertConfigMap = "istio-ca-root-cert"
	RootCertDir       = "/var/run/secrets/istio"
)

// NamespaceInjectionLabel is the namespace label that turns injection on
// ("enabled") or off ("disabled") for every pod of a namespace.
const NamespaceInjectionLabel = "istio-injection"

// Istio's ports, as the proxy serves them.
const (
	OutboundCapturePort = 15001
	InboundCapturePort  = 15006
	MergedMetricsPort   = 15020
	HealthPort          = 15021
	StatsPort           = 15090
)

// ProxyUID is the user (and group) the proxy runs as; the capture rules
// exempt its traffic.
const ProxyUID = 1337

// Settings are the mesh-wide injection settings; Istio's annotations on a
// pod override some of them for that pod.
type Settings struct {
	// Image is the weft image for both containers.
	Image string
	// ImagePullPolicy of both containers; empty: the cluster's default.
	ImagePullPolicy corev1.PullPolicy
	// XDSAddress and SecureXDSAddress are the control plane's plaintext and
	// authenticated (xDS + CA) addresses.
	XDSAddress       string
	SecureXDSAddress string
	// ProxyUID is the proxy's user and group ID.
	ProxyUID int64
	// ProxyResources are the proxy's default requests and limits
	// (sidecar.istio.io/proxyCPU and friends override them).
	ProxyResources corev1.ResourceRequirements
	// InitResources are istio-init's requests and limits.
	InitResources corev1.ResourceRequirements
	// HoldApplicationUntilProxyStarts is the mesh default of ProxyConfig's
	// holdApplicationUntilProxyStarts (proxy.istio.io/config overrides it).
	HoldApplicationUntilProxyStarts bool
	// DNSCapture redirects the pods' DNS queries to the proxy's DNS proxy
	// (the mesh default of proxyMetadata ISTIO_META_DNS_CAPTURE).
	DNSCapture bool
	// InboundPortsFromContainers makes the default of includeInboundPorts
	// the ports the pod's containers declare ("*" when they declare none)
	// instead of "*".
	InboundPortsFromContainers bool
	// Revision is written in sidecar.istio.io/status.
	Revision string
}

// DefaultSettings returns the settings of an installed mesh: image
// ghcr.io/weft-mesh/weft:VERSION and the control plane at
// weftd.weft-system.svc.
func DefaultSettings(version string) Settings {
	return Settings{
		Image:            "ghcr.io/weft-mesh/weft:" + version,
		XDSAddress:       "weftd.weft-system.svc:15010",
		SecureXDSAddress: "weftd.weft-system.svc:15012",
		ProxyUID:         ProxyUID,
		ProxyResources:   resources("100m", "128Mi", "2", "1Gi"),
		InitResources:    resources("10m", "40Mi", "2", "1Gi"),
		Revision:         "default",
	}
}

func resources(cpu, mem, cpuLimit, memLimit string) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLimit), corev1.ResourceMemory: resource.MustParse(memLimit)},
	}
}

// Status is the value of the sidecar.istio.io/status annotation: what the
// injector added, so that it is not added twice.
type Status struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// Target is a pod to inject: a Pod's or a workload's pod template.
type Target struct {
	// Template is modified in place by Inject.
	Template *corev1.PodTemplateSpec
	// Namespace is the pod's namespace (the object's, for a template).
	Namespace string
	// WorkloadName names the workload (Deployment, Pod...); it is the
	// canonical service name when the pod has no app label.
	WorkloadName string
}

// Result says what Inject did.
type Result struct {
	// Injected is false when the decision was not to inject.
	Injected bool
	// Decision explains why the pod was or was not injected.
	Decision Decision
	// Warnings are annotations or fields weft does not honour.
	Warnings []string
}

// Inject decides whether t needs a sidecar (see Decide) and, if so, adds
// it to t.Template. An invalid annotation is an error naming it, and then
// t.Template is unchanged.
func Inject(t Target, nsLabels map[string]string, byDefault bool, s Settings) (Result, error) {
	d := Decide(&t.Template.ObjectMeta, &t.Template.Spec, t.Namespace, nsLabels, byDefault)
	if !d.Inject {
		return Result{Decision: d}, nil
	}
	ann, warnings, err := parseAnnotations(t.Template.Annotations, s)
	if err != nil {
		return Result{Decision: d}, err
	}
	tmpl, err := template(t.Template.Annotations)
	if err != nil {
		return Result{Decision: d}, err
	}
	spec := &t.Template.Spec
	for _, c := range slices.Concat(spec.Containers, spec.InitContainers) {
		if c.Name == ProxyContainer || c.Name == InitContainer {
			return Result{Decision: d}, fmt.Errorf("spec: container %q already exists (a sidecar added by hand?); remove it or set %s: \"false\"",
				c.Name, annotation.SidecarInject.Name)
		}
	}
	for _, v := range spec.Volumes {
		if v.Name == TokenVolume || v.Name == PodInfoVolume || v.Name == RootCertVolume || v.Name == XDSVolume {
			return Result{Decision: d}, fmt.Errorf("spec.volumes: volume %q already exists; the injector adds it", v.Name)
		}
	}
	if tmpl == TemplateGRPCAgent {
		injectAgent(t, s, ann)
		return Result{Injected: true, Decision: d, Warnings: warnings}, nil
	}
	inbound := ann.includeInboundPorts
	if !ann.inboundAnnotated {
		inbound = "*"
		if s.InboundPortsFromContainers {
			if ports := declaredPorts(spec.Containers); ports != "" {
				inbound = ports
			}
		}
	}
	meta := &t.Template.ObjectMeta
	appMetrics := rewritePrometheusAnnotations(meta)
	firstApp := ""
	if len(spec.Containers) > 0 {
		firstApp = spec.Containers[0].Name
	}
	proxy := proxyContainer(s, ann, t.WorkloadName, appMetrics)
	if ann.hold {
		spec.Containers = append([]corev1.Container{proxy}, spec.Containers...)
	} else {
		spec.Containers = append(spec.Containers, proxy)
	}
	spec.InitContainers = append(spec.InitContainers, initContainer(s, ann, inbound))
	spec.Volumes = append(spec.Volumes, volumes()...)
	addLabels(meta, t.WorkloadName)
	if firstApp != "" {
		setDefault(&meta.Annotations, "kubectl.kubernetes.io/default-container", firstApp)
		setDefault(&meta.Annotations, "kubectl.kubernetes.io/default-logs-container", firstApp)
	}
	status, _ := json.Marshal(Status{
		InitContainers: []string{InitContainer}, Containers: []string{ProxyContainer},
		Volumes: []string{TokenVolume, PodInfoVolume, RootCertVolume}, Revision: s.Revision,
	})
	meta.Annotations[annotation.SidecarStatus.Name] = string(status)
	return Result{Injected: true, Decision: d, Warnings: warnings}, nil
}

// addLabels adds the labels Istio's injector adds: the TLS mode and the
// canonical service name and revision.
func addLabels(meta *metav1.ObjectMeta, workload string) {
	setDefault(&meta.Labels, label.SecurityTlsMode.Name, "istio")
	addCanonicalLabels(meta, workload)
}

// addCanonicalLabels adds the canonical service name and revision labels.
func addCanonicalLabels(meta *metav1.ObjectMeta, workload string) {
	name := firstLabel(meta.Labels, label.ServiceCanonicalName.Name, "app.kubernetes.io/name", "app")
	if name == "" {
		name = workload
	}
	if name != "" {
		setDefault(&meta.Labels, label.ServiceCanonicalName.Name, name)
	}
	rev := firstLabel(meta.Labels, label.ServiceCanonicalRevision.Name, "app.kubernetes.io/version", "version")
	if rev == "" {
		rev = "latest"
	}
	setDefault(&meta.Labels, label.ServiceCanonicalRevision.Name, rev)
}

func firstLabel(labels map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

// setDefault sets m[k] = v unless m already has k.
func setDefault(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	if _, ok := (*m)[k]; !ok {
		(*m)[k] = v
	}
}

// declaredPorts returns the TCP ports the containers declare, comma-separated.
func declaredPorts(cs []corev1.Container) string {
	var ports []int
	for _, c := range cs {
		for _, p := range c.Ports {
			if (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) && !slices.Contains(ports, int(p.ContainerPort)) {
				ports = append(ports, int(p.ContainerPort))
			}
		}
	}
	slices.Sort(ports)
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ",")
}

// rewritePrometheusAnnotations points Prometheus' scrape annotations at
// the proxy's merged-metrics port, as Istio's metrics merging does, and
// returns the app's own metrics URL (from its former annotations) for the
// proxy to merge; it leaves pods that opted out alone.
func rewritePrometheusAnnotations(meta *metav1.ObjectMeta) (appMetrics string) {
	a := meta.Annotations
	if a[annotation.PrometheusMergeMetrics.Name] == "false" || a["prometheus.io/scrape"] == "false" {
		return ""
	}
	if port := a["prometheus.io/port"]; port != "" {
		path := a["prometheus.io/path"]
		if path == "" {
			path = "/metrics"
		}
		appMetrics = "http://localhost:" + port + path
	}
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	meta.Annotations["prometheus.io/scrape"] = "true"
	meta.Annotations["prometheus.io/port"] = fmt.Sprint(MergedMetricsPort)
	meta.Annotations["prometheus.io/path"] = "/stats/prometheus"
	return appMetrics
}

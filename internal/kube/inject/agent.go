package inject

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"istio.io/api/annotation"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Injection templates (inject.istio.io/templates), as Istio names them.
const (
	// TemplateSidecar is the default: the istio-proxy sidecar and istio-init.
	TemplateSidecar = "sidecar"
	// TemplateGRPCAgent is for proxyless gRPC apps (grpc-go's own xDS
	// client): no proxy and no traffic capture, an agent that writes the
	// apps' xDS bootstrap and keeps their mesh certificate renewed.
	TemplateGRPCAgent = "grpc-agent"
)

// The grpc-agent template's shared directory: an emptyDir the agent writes
// the bootstrap and the certificate files into, mounted at the same path
// in the app's containers so that the bootstrap's file paths hold there.
const (
	XDSVolume = "istio-xds"
	XDSDir    = "/etc/istio/proxy"
	// BootstrapFile is the apps' GRPC_XDS_BOOTSTRAP.
	BootstrapFile = XDSDir + "/bootstrap.json"
)

// template returns the pod's injection template: sidecar unless its
// inject.istio.io/templates annotation names grpc-agent.
func template(a map[string]string) (string, error) {
	v, ok := a[annotation.InjectTemplates.Name]
	if !ok || strings.TrimSpace(v) == "" {
		return TemplateSidecar, nil
	}
	var names []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 1 && (names[0] == TemplateSidecar || names[0] == TemplateGRPCAgent) {
		return names[0], nil
	}
	return "", fmt.Errorf("annotation %s: %q: weft has the templates %s and %s, one at a time",
		annotation.InjectTemplates.Name, v, TemplateSidecar, TemplateGRPCAgent)
}

// injectAgent is Inject for the grpc-agent template: the agent container
// first (its postStart hook holds the apps until the bootstrap is
// written), GRPC_XDS_BOOTSTRAP and the shared directory in every app
// container, no istio-init. The pod is not labelled
// security.istio.io/tlsMode=istio: its apps speak plain gRPC or gRPC's own
// mTLS, not the sidecars' tunnelled mTLS.
func injectAgent(t Target, s Settings, ps podSettings) {
	spec := &t.Template.Spec
	meta := &t.Template.ObjectMeta
	firstApp := ""
	if len(spec.Containers) > 0 {
		firstApp = spec.Containers[0].Name
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.Env = append(c.Env, corev1.EnvVar{Name: "GRPC_XDS_BOOTSTRAP", Value: BootstrapFile})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: XDSVolume, MountPath: XDSDir, ReadOnly: true})
	}
	spec.Containers = append([]corev1.Container{agentContainer(s, ps, t.WorkloadName)}, spec.Containers...)
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: XDSVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}})
	spec.Volumes = append(spec.Volumes, volumes()...)
	addCanonicalLabels(meta, t.WorkloadName)
	if firstApp != "" {
		setDefault(&meta.Annotations, "kubectl.kubernetes.io/default-container", firstApp)
		setDefault(&meta.Annotations, "kubectl.kubernetes.io/default-logs-container", firstApp)
	}
	status, _ := json.Marshal(Status{
		Containers: []string{ProxyContainer},
		Volumes:    []string{XDSVolume, TokenVolume, PodInfoVolume, RootCertVolume}, Revision: s.Revision,
	})
	meta.Annotations[annotation.SidecarStatus.Name] = string(status)
}

// agentContainer is the grpc-agent: weft-proxy proxy --proxyless-dir,
// named istio-proxy as Istio's, with the sidecar's identity, token and
// roots but no capture, no metrics and only the health port.
func agentContainer(s Settings, ps podSettings, workload string) corev1.Container {
	c := proxyContainer(s, ps, workload, "")
	c.Args = []string{"proxy", "--kubernetes", "--proxyless-dir", XDSDir,
		"--xds-address", s.XDSAddress,
		"--secure-xds-address", s.SecureXDSAddress,
		"--token-file", path.Join(TokenDir, TokenVolume),
		"--root-cert-file", path.Join(RootCertDir, "root-cert.pem"),
	}
	c.Ports = []corev1.ContainerPort{{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz/ready", Port: intstr.FromInt32(HealthPort)}},
		InitialDelaySeconds: 1, PeriodSeconds: 2, TimeoutSeconds: 3, FailureThreshold: 30,
	}
	c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: ReadyCommand}}}
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: XDSVolume, MountPath: XDSDir})
	return c
}

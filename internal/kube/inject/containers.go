package inject

import (
	"fmt"
	"path"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// tokenTTL is the validity of the projected token (the kubelet renews it).
const tokenTTL = 12 * 60 * 60

// ProxyBinary is weft-proxy in weft's image: the data plane alone (no
// control plane, Kubernetes clients or console), so the istio-proxy and
// istio-init containers map and keep a fraction of weft's memory.
const ProxyBinary = "/usr/local/bin/weft-proxy"

// ReadyCommand is the postStart hook of a held application: it returns
// once the proxy is ready, so the kubelet starts the next container only then.
var ReadyCommand = []string{ProxyBinary, "proxy-ready", "--wait"}

// proxyContainer returns the istio-proxy container.
func proxyContainer(s Settings, ps podSettings, workload, appMetrics string) corev1.Container {
	args := []string{"proxy", "--kubernetes",
		"--xds-address", s.XDSAddress,
		"--secure-xds-address", s.SecureXDSAddress,
		"--token-file", path.Join(TokenDir, TokenVolume),
		"--root-cert-file", path.Join(RootCertDir, "root-cert.pem"),
	}
	if appMetrics != "" {
		args = append(args, "--app-metrics-url", appMetrics)
	}
	uid := s.ProxyUID
	c := corev1.Container{
		Name:            ProxyContainer,
		Image:           ps.image,
		ImagePullPolicy: s.ImagePullPolicy,
		Command:         []string{ProxyBinary},
		Args:            args,
		Env: []corev1.EnvVar{
			fieldEnv("POD_NAME", "metadata.name"),
			fieldEnv("POD_NAMESPACE", "metadata.namespace"),
			fieldEnv("INSTANCE_IP", "status.podIP"),
			fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
			fieldEnv("HOST_IP", "status.hostIP"),
			{Name: "ISTIO_META_WORKLOAD_NAME", Value: workload},
		},
		Ports: []corev1.ContainerPort{
			{Name: "http-envoy-prom", ContainerPort: StatsPort, Protocol: corev1.ProtocolTCP},
			{Name: "health", ContainerPort: HealthPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz/ready", Port: intstr.FromInt32(HealthPort),
			}},
			InitialDelaySeconds: 1, PeriodSeconds: 2, TimeoutSeconds: 3, FailureThreshold: 30,
		},
		Resources: ps.resources,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &uid, RunAsGroup: &uid, RunAsNonRoot: ptr(true),
			AllowPrivilegeEscalation: ptr(false), Privileged: ptr(false), ReadOnlyRootFilesystem: ptr(true),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: TokenVolume, MountPath: TokenDir},
			{Name: PodInfoVolume, MountPath: PodInfoDir},
			{Name: RootCertVolume, MountPath: RootCertDir, ReadOnly: true},
		},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	if ps.hold {
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: ReadyCommand}}}
	}
	return c
}

// initContainer returns istio-init: weft-proxy iptables with istio-iptables' flags.
func initContainer(s Settings, ps podSettings, inbound string) corev1.Container {
	excludeInbound := fmt.Sprintf("%d,%d,%d", StatsPort, HealthPort, MergedMetricsPort)
	if ps.excludeInboundPorts != "" {
		excludeInbound += "," + ps.excludeInboundPorts
	}
	args := []string{"iptables",
		"-p", strconv.Itoa(OutboundCapturePort),
		"-z", strconv.Itoa(InboundCapturePort),
		"-u", strconv.FormatInt(s.ProxyUID, 10),
		"-m", "REDIRECT",
		"-i", ps.includeOutboundIPRanges,
		"-x", ps.excludeOutboundIPRanges,
		"-b", inbound,
		"-d", excludeInbound,
	}
	if ps.excludeOutboundPorts != "" {
		args = append(args, "-o", ps.excludeOutboundPorts)
	}
	if ps.dnsCapture {
		args = append(args, "--redirect-dns")
	}
	root := int64(0)
	return corev1.Container{
		Name:            InitContainer,
		Image:           ps.image,
		ImagePullPolicy: s.ImagePullPolicy,
		Command:         []string{ProxyBinary},
		Args:            args,
		Resources:       *s.InitResources.DeepCopy(),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser: &root, RunAsGroup: &root, RunAsNonRoot: ptr(false),
			AllowPrivilegeEscalation: ptr(false), Privileged: ptr(false), ReadOnlyRootFilesystem: ptr(false),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

// volumes returns the proxy's volumes: its identity token, projected with
// the CA's audience, the pod's labels and annotations, and the mesh's roots.
func volumes() []corev1.Volume {
	ttl := int64(tokenTTL)
	return []corev1.Volume{
		{Name: TokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: TokenAudience, ExpirationSeconds: &ttl, Path: TokenVolume,
			}}},
		}}},
		{Name: PodInfoVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
			},
		}}},
		{Name: RootCertVolume, VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: RootCertConfigMap},
		}}},
	}
}

func fieldEnv(name, field string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: field},
	}}
}

func ptr[T any](v T) *T { return &v }

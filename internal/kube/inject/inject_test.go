package inject

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testSettings() Settings { return DefaultSettings("test") }

func pod(annotations map[string]string) *corev1.PodTemplateSpec {
	return &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "reviews", "version": "v2"}, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "reviews", Image: "reviews",
			Ports: []corev1.ContainerPort{{ContainerPort: 9080}, {ContainerPort: 9090}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}}}}},
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q in %v", name, cs)
	return corev1.Container{}
}

// argAfter returns the value after name in args.
func argAfter(t *testing.T, args []string, name string) string {
	t.Helper()
	i := slices.Index(args, name)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no %s in %q", name, args)
	}
	return args[i+1]
}

func TestInject(t *testing.T) {
	tmpl := pod(nil)
	res, err := Inject(Target{Template: tmpl, Namespace: "default", WorkloadName: "reviews-v2"}, nil, true, testSettings())
	if err != nil || !res.Injected {
		t.Fatalf("Inject: %+v, %v", res, err)
	}
	spec := tmpl.Spec
	if names := []string{spec.Containers[0].Name, spec.Containers[1].Name}; !slices.Equal(names, []string{"reviews", ProxyContainer}) {
		t.Errorf("containers = %v, want the app then the proxy", names)
	}
	proxy := container(t, spec.Containers, ProxyContainer)
	if got, want := proxy.Args[:2], []string{"proxy", "--kubernetes"}; !slices.Equal(got, want) {
		t.Errorf("proxy args start %q, want %q", got, want)
	}
	if got := argAfter(t, proxy.Args, "--token-file"); got != "/var/run/secrets/tokens/istio-token" {
		t.Errorf("--token-file %s", got)
	}
	if got := argAfter(t, proxy.Args, "--root-cert-file"); got != "/var/run/secrets/istio/root-cert.pem" {
		t.Errorf("--root-cert-file %s", got)
	}
	if got := argAfter(t, proxy.Args, "--xds-address"); got != "weftd.weft-system.svc:15010" {
		t.Errorf("--xds-address %s", got)
	}
	env := map[string]string{}
	for _, e := range proxy.Env {
		if e.ValueFrom != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	for name, field := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace",
		"INSTANCE_IP": "status.podIP", "SERVICE_ACCOUNT": "spec.serviceAccountName"} {
		if env[name] != field {
			t.Errorf("env %s from %q, want %q", name, env[name], field)
		}
	}
	if sc := proxy.SecurityContext; *sc.RunAsUser != 1337 || *sc.RunAsGroup != 1337 {
		t.Errorf("proxy runs as %d:%d, want 1337:1337", *sc.RunAsUser, *sc.RunAsGroup)
	}
	if p := proxy.ReadinessProbe.HTTPGet; p.Path != "/healthz/ready" || p.Port.IntValue() != 15021 {
		t.Errorf("readiness probe %s:%s", p.Port.String(), p.Path)
	}
	if proxy.Lifecycle != nil {
		t.Errorf("postStart hook without holdApplicationUntilProxyStarts")
	}
	init := container(t, spec.InitContainers, InitContainer)
	wantInit := []string{"iptables", "-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT",
		"-i", "*", "-x", "", "-b", "*", "-d", "15090,15021,15020"}
	if diff := cmp.Diff(wantInit, init.Args); diff != "" {
		t.Errorf("istio-init args (-want +got):\n%s", diff)
	}
	if sc := init.SecurityContext; *sc.RunAsUser != 0 || !slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) {
		t.Errorf("istio-init security context %+v", sc)
	}
	if root := spec.Volumes[2]; root.Name != RootCertVolume || root.ConfigMap == nil || root.ConfigMap.Name != "istio-ca-root-cert" {
		t.Errorf("root certificate volume %+v", root)
	}
	tok := spec.Volumes[0].Projected.Sources[0].ServiceAccountToken
	if spec.Volumes[0].Name != TokenVolume || tok.Audience != "istio-ca" || tok.Path != "istio-token" {
		t.Errorf("token volume %+v", spec.Volumes[0])
	}
	wantLabels := map[string]string{"app": "reviews", "version": "v2", "security.istio.io/tlsMode": "istio",
		"service.istio.io/canonical-name": "reviews", "service.istio.io/canonical-revision": "v2"}
	if diff := cmp.Diff(wantLabels, tmpl.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	var st Status
	if err := json.Unmarshal([]byte(tmpl.Annotations["sidecar.istio.io/status"]), &st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(st.Containers, []string{ProxyContainer}) || !slices.Equal(st.InitContainers, []string{InitContainer}) ||
		!slices.Equal(st.Volumes, []string{TokenVolume, PodInfoVolume, RootCertVolume}) {
		t.Errorf("status annotation %+v", st)
	}
	for k, v := range map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "15020", "prometheus.io/path": "/stats/prometheus",
		"kubectl.kubernetes.io/default-container": "reviews"} {
		if tmpl.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, tmpl.Annotations[k], v)
		}
	}

	// Injecting again changes nothing.
	before := tmpl.DeepCopy()
	res, err = Inject(Target{Template: tmpl, Namespace: "default"}, nil, true, testSettings())
	if err != nil || res.Injected {
		t.Fatalf("second Inject: %+v, %v", res, err)
	}
	if diff := cmp.Diff(before, tmpl); diff != "" {
		t.Errorf("second Inject changed the pod:\n%s", diff)
	}
}

func TestInjectAnnotations(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		settings    func(*Settings)
		check       func(t *testing.T, tmpl *corev1.PodTemplateSpec, res Result)
	}{
		{
			name:        "holdApplicationUntilProxyStarts",
			annotations: map[string]string{"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true\nconcurrency: 2\n"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, res Result) {
				proxy := tmpl.Spec.Containers[0]
				if proxy.Name != ProxyContainer {
					t.Fatalf("first container %s, want %s", proxy.Name, ProxyContainer)
				}
				if h := proxy.Lifecycle; h == nil || !slices.Equal(h.PostStart.Exec.Command, []string{ProxyBinary, "proxy-ready", "--wait"}) {
					t.Errorf("postStart %+v", h)
				}
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "concurrency") {
					t.Errorf("warnings %q, want one about concurrency", res.Warnings)
				}
			},
		},
		{
			name:        "mesh default hold, pod says no",
			annotations: map[string]string{"proxy.istio.io/config": "holdApplicationUntilProxyStarts: false"},
			settings:    func(s *Settings) { s.HoldApplicationUntilProxyStarts = true },
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if tmpl.Spec.Containers[0].Name == ProxyContainer {
					t.Errorf("proxy first though the pod turned holding off")
				}
			},
		},
		{
			name: "resources",
			annotations: map[string]string{"sidecar.istio.io/proxyCPU": "50m", "sidecar.istio.io/proxyMemory": "64Mi",
				"sidecar.istio.io/proxyCPULimit": "500m", "sidecar.istio.io/proxyMemoryLimit": "256Mi"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				r := container(t, tmpl.Spec.Containers, ProxyContainer).Resources
				got := []string{r.Requests.Cpu().String(), r.Requests.Memory().String(), r.Limits.Cpu().String(), r.Limits.Memory().String()}
				if want := []string{"50m", "64Mi", "500m", "256Mi"}; !slices.Equal(got, want) {
					t.Errorf("resources %v, want %v", got, want)
				}
			},
		},
		{
			name: "traffic",
			annotations: map[string]string{
				"traffic.sidecar.istio.io/excludeOutboundPorts":    "3306, 6379",
				"traffic.sidecar.istio.io/excludeInboundPorts":     "8081",
				"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/8,172.16.0.0/12",
				"traffic.sidecar.istio.io/excludeOutboundIPRanges": "169.254.169.254/32",
				"traffic.sidecar.istio.io/includeInboundPorts":     "9080",
			},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				args := container(t, tmpl.Spec.InitContainers, InitContainer).Args
				for f, want := range map[string]string{"-o": "3306,6379", "-d": "15090,15021,15020,8081",
					"-i": "10.0.0.0/8,172.16.0.0/12", "-x": "169.254.169.254/32", "-b": "9080"} {
					if got := argAfter(t, args, f); got != want {
						t.Errorf("istio-init %s %q, want %q", f, got, want)
					}
				}
			},
		},
		{
			name:        "DNS capture",
			annotations: map[string]string{"proxy.istio.io/config": "proxyMetadata:\n  ISTIO_META_DNS_CAPTURE: \"true\"\n  OTHER: x\n"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, res Result) {
				if args := container(t, tmpl.Spec.InitContainers, InitContainer).Args; !slices.Contains(args, "--redirect-dns") {
					t.Errorf("istio-init args %q lack --redirect-dns", args)
				}
				if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "proxyMetadata OTHER") {
					t.Errorf("warnings %q, want one about OTHER", res.Warnings)
				}
			},
		},
		{
			name:     "inbound ports from containers",
			settings: func(s *Settings) { s.InboundPortsFromContainers = true },
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if got := argAfter(t, container(t, tmpl.Spec.InitContainers, InitContainer).Args, "-b"); got != "9080,9090" {
					t.Errorf("-b %q, want the declared TCP ports 9080,9090", got)
				}
			},
		},
		{
			name:        "no inbound capture",
			annotations: map[string]string{"traffic.sidecar.istio.io/includeInboundPorts": ""},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if got := argAfter(t, container(t, tmpl.Spec.InitContainers, InitContainer).Args, "-b"); got != "" {
					t.Errorf("-b %q, want empty", got)
				}
			},
		},
		{
			name:        "app metrics merged",
			annotations: map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if got := argAfter(t, container(t, tmpl.Spec.Containers, ProxyContainer).Args, "--app-metrics-url"); got != "http://localhost:9090/metrics" {
					t.Errorf("--app-metrics-url %q", got)
				}
				if tmpl.Annotations["prometheus.io/port"] != "15020" {
					t.Errorf("prometheus.io/port %q, want 15020", tmpl.Annotations["prometheus.io/port"])
				}
			},
		},
		{
			name:        "scraping turned off stays off",
			annotations: map[string]string{"prometheus.io/scrape": "false"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if tmpl.Annotations["prometheus.io/scrape"] != "false" || tmpl.Annotations["prometheus.io/port"] != "" {
					t.Errorf("annotations %v", tmpl.Annotations)
				}
			},
		},
		{
			name:        "proxy image",
			annotations: map[string]string{"sidecar.istio.io/proxyImage": "registry.local/weft:dev"},
			check: func(t *testing.T, tmpl *corev1.PodTemplateSpec, _ Result) {
				if img := container(t, tmpl.Spec.Containers, ProxyContainer).Image; img != "registry.local/weft:dev" {
					t.Errorf("image %s", img)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSettings()
			if tt.settings != nil {
				tt.settings(&s)
			}
			tmpl := pod(tt.annotations)
			res, err := Inject(Target{Template: tmpl, Namespace: "default"}, nil, true, s)
			if err != nil || !res.Injected {
				t.Fatalf("Inject: %+v, %v", res, err)
			}
			tt.check(t, tmpl, res)
		})
	}
}

func TestInjectErrors(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		extra       func(*corev1.PodTemplateSpec)
		want        string
	}{
		{name: "bad cpu", annotations: map[string]string{"sidecar.istio.io/proxyCPU": "lots"},
			want: `annotation sidecar.istio.io/proxyCPU: "lots" is not a quantity`},
		{name: "request over limit", annotations: map[string]string{"sidecar.istio.io/proxyMemory": "2Gi"},
			want: "memory request 2Gi is more than its limit 1Gi"},
		{name: "bad port", annotations: map[string]string{"traffic.sidecar.istio.io/excludeOutboundPorts": "3306,http"},
			want: `annotation traffic.sidecar.istio.io/excludeOutboundPorts: "http" is not a port`},
		{name: "port out of range", annotations: map[string]string{"traffic.sidecar.istio.io/excludeInboundPorts": "70000"},
			want: `"70000" is not a port`},
		{name: "wildcard not allowed", annotations: map[string]string{"traffic.sidecar.istio.io/excludeOutboundIPRanges": "*"},
			want: `annotation traffic.sidecar.istio.io/excludeOutboundIPRanges: "*" is not a CIDR`},
		{name: "bad CIDR", annotations: map[string]string{"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/33"},
			want: `"10.0.0.0/33" is not a CIDR`},
		{name: "bad proxy config", annotations: map[string]string{"proxy.istio.io/config": "holdApplicationUntilProxyStarts: sure"},
			want: "annotation proxy.istio.io/config: not a ProxyConfig"},
		{name: "bad DNS capture", annotations: map[string]string{"proxy.istio.io/config": "proxyMetadata: {ISTIO_META_DNS_CAPTURE: sometimes}"},
			want: `proxyMetadata ISTIO_META_DNS_CAPTURE "sometimes" is not true or false`},
		{name: "unknown proxy config field", annotations: map[string]string{"proxy.istio.io/config": "holdApplication: true"},
			want: "annotation proxy.istio.io/config: not a ProxyConfig"},
		{name: "unknown template", annotations: map[string]string{"inject.istio.io/templates": "grpc-simple"},
			want: `annotation inject.istio.io/templates: "grpc-simple"`},
		{name: "two templates", annotations: map[string]string{"inject.istio.io/templates": "sidecar,grpc-agent"},
			want: `annotation inject.istio.io/templates: "sidecar,grpc-agent"`},
		{name: "grpc-agent volume by hand", annotations: map[string]string{"inject.istio.io/templates": "grpc-agent"},
			extra: func(p *corev1.PodTemplateSpec) {
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "istio-xds"})
			},
			want: `volume "istio-xds" already exists`},
		{name: "sidecar by hand", extra: func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy"})
		}, want: `container "istio-proxy" already exists`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := pod(tt.annotations)
			if tt.extra != nil {
				tt.extra(tmpl)
			}
			before := tmpl.DeepCopy()
			_, err := Inject(Target{Template: tmpl, Namespace: "default"}, nil, true, testSettings())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if diff := cmp.Diff(before, tmpl); diff != "" {
				t.Errorf("a failed Inject changed the pod:\n%s", diff)
			}
		})
	}
}

// TestInjectGRPCAgent: inject.istio.io/templates picks the template; with
// grpc-agent a pod gets no sidecar proxy and no istio-init, but the agent
// (first, holding the apps until the bootstrap is written) sharing the
// istio-xds emptyDir with every app container, which gets
// GRPC_XDS_BOOTSTRAP; and no tlsMode label, which would send sidecars'
// tunnelled mTLS to proxyless apps.
func TestInjectGRPCAgent(t *testing.T) {
	tests := []struct {
		name, templates string
		agent           bool
	}{
		{"no annotation", "", false},
		{"sidecar", "sidecar", false},
		{"grpc-agent", "grpc-agent", true},
		{"grpc-agent with spaces", " grpc-agent ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ann map[string]string
			if tt.templates != "" {
				ann = map[string]string{"inject.istio.io/templates": tt.templates}
			}
			tmpl := pod(ann)
			tmpl.Spec.Containers = append(tmpl.Spec.Containers, corev1.Container{Name: "worker", Image: "worker"})
			res, err := Inject(Target{Template: tmpl, Namespace: "default", WorkloadName: "reviews-v2"}, nil, true, testSettings())
			if err != nil || !res.Injected {
				t.Fatalf("Inject: %+v, %v", res, err)
			}
			spec := tmpl.Spec
			var names []string
			for _, c := range spec.Containers {
				names = append(names, c.Name)
			}
			agentArgs := slices.Contains(spec.Containers[0].Args, "--proxyless-dir")
			if !tt.agent {
				if len(spec.InitContainers) != 1 || agentArgs || tmpl.Labels["security.istio.io/tlsMode"] != "istio" {
					t.Errorf("sidecar template: init %v, containers %v, labels %v", spec.InitContainers, names, tmpl.Labels)
				}
				return
			}
			if len(spec.InitContainers) != 0 {
				t.Errorf("grpc-agent: init containers %v, want none (no capture)", spec.InitContainers)
			}
			if want := []string{ProxyContainer, "reviews", "worker"}; !slices.Equal(names, want) {
				t.Errorf("containers %v, want %v", names, want)
			}
			agent := spec.Containers[0]
			if got := argAfter(t, agent.Args, "--proxyless-dir"); got != XDSDir {
				t.Errorf("--proxyless-dir %s, want %s", got, XDSDir)
			}
			if got := argAfter(t, agent.Args, "--token-file"); got != "/var/run/secrets/tokens/istio-token" {
				t.Errorf("--token-file %s", got)
			}
			if agent.Lifecycle == nil || !slices.Equal(agent.Lifecycle.PostStart.Exec.Command, ReadyCommand) {
				t.Errorf("agent postStart %v, want %v", agent.Lifecycle, ReadyCommand)
			}
			if len(agent.Ports) != 1 || agent.Ports[0].ContainerPort != HealthPort {
				t.Errorf("agent ports %v, want the health port only", agent.Ports)
			}
			if !slices.ContainsFunc(agent.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == XDSVolume && m.MountPath == XDSDir && !m.ReadOnly }) {
				t.Errorf("agent mounts %v: want %s writable at %s", agent.VolumeMounts, XDSVolume, XDSDir)
			}
			for _, c := range spec.Containers[1:] {
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				if env["GRPC_XDS_BOOTSTRAP"] != "/etc/istio/proxy/bootstrap.json" {
					t.Errorf("%s: GRPC_XDS_BOOTSTRAP %q", c.Name, env["GRPC_XDS_BOOTSTRAP"])
				}
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == XDSVolume && m.MountPath == XDSDir && m.ReadOnly }) {
					t.Errorf("%s mounts %v: want %s read-only at %s", c.Name, c.VolumeMounts, XDSVolume, XDSDir)
				}
			}
			vols := map[string]bool{}
			for _, v := range spec.Volumes {
				vols[v.Name] = true
				if v.Name == XDSVolume && v.EmptyDir == nil {
					t.Errorf("%s is not an emptyDir: %v", XDSVolume, v.VolumeSource)
				}
			}
			for _, v := range []string{XDSVolume, TokenVolume, PodInfoVolume, RootCertVolume} {
				if !vols[v] {
					t.Errorf("no volume %s in %v", v, vols)
				}
			}
			if _, ok := tmpl.Labels["security.istio.io/tlsMode"]; ok {
				t.Errorf("grpc-agent pod labelled tlsMode: %v", tmpl.Labels)
			}
			if tmpl.Labels["service.istio.io/canonical-name"] != "reviews" {
				t.Errorf("labels %v: want the canonical name", tmpl.Labels)
			}
			var st Status
			if err := json.Unmarshal([]byte(tmpl.Annotations["sidecar.istio.io/status"]), &st); err != nil || len(st.InitContainers) != 0 {
				t.Errorf("status %q (%v)", tmpl.Annotations["sidecar.istio.io/status"], err)
			}
			// Injected once only.
			if res, err := Inject(Target{Template: tmpl, Namespace: "default"}, nil, true, testSettings()); err != nil || res.Injected {
				t.Errorf("second Inject: %+v, %v", res, err)
			}
		})
	}
}

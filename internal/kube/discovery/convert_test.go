package discovery

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

func ptr[T any](v T) *T { return &v }

func TestProtocol(t *testing.T) {
	tests := []struct {
		name string
		port corev1.ServicePort
		want string
	}{
		{"http name", corev1.ServicePort{Name: "http"}, "HTTP"},
		{"http prefix", corev1.ServicePort{Name: "http-web"}, "HTTP"},
		{"http2", corev1.ServicePort{Name: "http2-api"}, "HTTP2"},
		{"https", corev1.ServicePort{Name: "https"}, "HTTPS"},
		{"grpc prefix", corev1.ServicePort{Name: "grpc-admin"}, "GRPC"},
		{"grpc-web before grpc", corev1.ServicePort{Name: "grpc-web-ui"}, "GRPC-Web"},
		{"tcp", corev1.ServicePort{Name: "tcp-db"}, "TCP"},
		{"tls", corev1.ServicePort{Name: "tls-x"}, "TLS"},
		{"mongo", corev1.ServicePort{Name: "mongo"}, "Mongo"},
		{"case-insensitive", corev1.ServicePort{Name: "HTTP-Web"}, "HTTP"},
		{"unnamed: detected", corev1.ServicePort{Port: 8080}, "AUTO"},
		{"unknown prefix", corev1.ServicePort{Name: "web"}, "AUTO"},
		{"no dash suffix match", corev1.ServicePort{Name: "httpbin"}, "AUTO"},
		{"appProtocol wins", corev1.ServicePort{Name: "tcp-x", AppProtocol: ptr("http")}, "HTTP"},
		{"appProtocol grpc", corev1.ServicePort{Name: "web", AppProtocol: ptr("grpc")}, "GRPC"},
		{"appProtocol h2c", corev1.ServicePort{Name: "http", AppProtocol: ptr("kubernetes.io/h2c")}, "HTTP2"},
		{"appProtocol ws", corev1.ServicePort{AppProtocol: ptr("kubernetes.io/ws")}, "HTTP"},
		{"appProtocol wss", corev1.ServicePort{AppProtocol: ptr("kubernetes.io/wss")}, "HTTP"},
		{"unknown appProtocol hides the name", corev1.ServicePort{Name: "http", AppProtocol: ptr("example.com/x")}, "AUTO"},
		{"empty appProtocol: the name", corev1.ServicePort{Name: "http", AppProtocol: ptr("")}, "HTTP"},
		{"udp", corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolUDP}, "UDP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Protocol(tt.port); got != tt.want {
				t.Errorf("Protocol(%+v) = %q, want %q", tt.port, got, tt.want)
			}
		})
	}
}

func service(name string, mutate func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10", "fd00::10"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 9080, TargetPort: intstr.FromString("web")},
				{Name: "grpc-admin", Port: 9090, TargetPort: intstr.FromInt32(19090)},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			},
		},
	}
	if mutate != nil {
		mutate(s)
	}
	return s
}

func pod(name, ip string, injected bool) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "reviews", "version": "v1"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "bookinfo-reviews", NodeName: "node-a",
			Containers: []corev1.Container{{Name: "reviews", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 9081}}}},
		},
		Status: corev1.PodStatus{PodIP: ip},
	}
	if injected {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ContainerProxy})
	}
	return p
}

// slice is an EndpointSlice of service name; endpoints are "pod=ip" with
// ready flags; ports are name=number.
func slice(name, svc string, ports map[string]int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   eps,
	}
	for n, p := range ports {
		sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(p)})
	}
	return sl
}

func endpoint(podName, ip string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{ip},
		Conditions: discoveryv1.EndpointConditions{Ready: ready},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: podName, Namespace: "default"},
	}
}

func lookupOf(pods []*corev1.Pod, nodes []*corev1.Node) lookup {
	return lookup{
		pod: func(ns, name string) *corev1.Pod {
			for _, p := range pods {
				if p.Namespace == ns && p.Name == name {
					return p
				}
			}
			return nil
		},
		node: func(name string) *corev1.Node {
			for _, n := range nodes {
				if n.Name == name {
					return n
				}
			}
			return nil
		},
	}
}

func TestConvertService(t *testing.T) {
	nodes := []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{
		corev1.LabelTopologyRegion: "eu-west1", corev1.LabelTopologyZone: "eu-west1-b", labelSubzone: "rack3"}}}}
	pods := []*corev1.Pod{pod("reviews-1", "10.1.0.5", true), pod("reviews-2", "10.1.0.6", false), pod("reviews-3", "10.1.0.7", true)}
	pods[1].Labels[LabelLocality] = "us.us-east1.r1"
	pods[1].Spec.ServiceAccountName = ""
	slices := []*discoveryv1.EndpointSlice{
		slice("reviews-abc", "reviews", map[string]int32{"http": 9081, "grpc-admin": 19090},
			endpoint("reviews-2", "10.1.0.6", nil), endpoint("reviews-1", "10.1.0.5", ptr(true)),
			endpoint("reviews-3", "10.1.0.7", ptr(false))),
		// A second slice repeating an address (during a move): one endpoint.
		slice("reviews-def", "reviews", map[string]int32{"http": 9081}, endpoint("reviews-1", "10.1.0.5", ptr(true))),
	}
	got := convertService(service("reviews", nil), slices, lookupOf(pods, nodes))
	want := &registry.Service{
		Hostname: "reviews.default.svc.cluster.local", Name: "reviews", Namespace: "default",
		Addresses: []string{"10.96.0.10", "fd00::10"}, Resolution: "STATIC",
		Ports: []registry.Port{
			{Name: "http", Number: 9080, Protocol: "HTTP"},
			{Name: "grpc-admin", Number: 9090, Protocol: "GRPC", TargetPort: 19090},
		},
		Endpoints: []*registry.Endpoint{
			{Name: "reviews-1", Namespace: "default", Address: "10.1.0.5", Weight: 1,
				Ports:  map[string]uint32{"http": 9081, "grpc-admin": 19090},
				Labels: map[string]string{"app": "reviews", "version": "v1"}, ServiceAccount: "bookinfo-reviews",
				Locality: "eu-west1/eu-west1-b/rack3", Sidecar: true, MTLS: true},
			{Name: "reviews-2", Namespace: "default", Address: "10.1.0.6", Weight: 1,
				Ports:  map[string]uint32{"http": 9081, "grpc-admin": 19090},
				Labels: map[string]string{"app": "reviews", "version": "v1", LabelLocality: "us.us-east1.r1"}, ServiceAccount: "default",
				Locality: "us/us-east1/r1"},
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("service (-want +got):\n%s", d)
	}
}

func TestConvertServiceTargetPortFromPod(t *testing.T) {
	// A slice without ports (as for a named targetPort no pod had when the
	// slice was written): the pod's container port named "web" is used.
	p := pod("reviews-1", "10.1.0.5", true)
	p.Annotations = map[string]string{AnnotationSidecarStatus: "{}"}
	p.Spec.Containers = p.Spec.Containers[:1]
	sl := slice("s", "reviews", nil, endpoint("reviews-1", "10.1.0.5", nil))
	got := convertService(service("reviews", nil), []*discoveryv1.EndpointSlice{sl}, lookupOf([]*corev1.Pod{p}, nil))
	if len(got.Endpoints) != 1 {
		t.Fatalf("endpoints = %+v", got.Endpoints)
	}
	ep := got.Endpoints[0]
	if n := ep.EndpointPort(got.Ports[0]); n != 9081 {
		t.Errorf("http endpoint port = %d, want 9081 (container port web)", n)
	}
	if n := ep.EndpointPort(got.Ports[1]); n != 19090 {
		t.Errorf("grpc-admin endpoint port = %d, want the numeric targetPort 19090", n)
	}
	if !ep.Sidecar || !ep.MTLS {
		t.Errorf("pod with the sidecar status annotation: Sidecar %v MTLS %v, want both", ep.Sidecar, ep.MTLS)
	}
	if ep.Locality != "" {
		t.Errorf("locality with no node known = %q, want none", ep.Locality)
	}
}

func TestConvertServiceKinds(t *testing.T) {
	pods := []*corev1.Pod{pod("db-0", "10.1.0.9", false)}
	slices := []*discoveryv1.EndpointSlice{slice("db-x", "db", map[string]int32{"tcp-db": 5432},
		endpoint("db-0", "10.1.0.9", ptr(true)), endpoint("db-1", "10.1.0.10", ptr(false)))}
	tests := []struct {
		name       string
		svc        *corev1.Service
		resolution string
		addresses  []string
		external   bool
		endpoints  []string
	}{
		{"headless: pod IPs, no address", service("db", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
		}), "NONE", nil, false, []string{"10.1.0.9"}},
		{"publishNotReadyAddresses keeps not-ready ones", service("db", func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, nil
			s.Spec.PublishNotReadyAddresses = true
		}), "NONE", nil, false, []string{"10.1.0.10", "10.1.0.9"}},
		{"ExternalName: DNS of the name", service("db", func(s *corev1.Service) {
			s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com.",
				Ports: []corev1.ServicePort{{Name: "tcp-db", Port: 5432, TargetPort: intstr.FromInt32(6543)}}}
		}), "DNS", nil, true, []string{"db.example.com"}},
		{"ClusterIP only", service("db", func(s *corev1.Service) { s.Spec.ClusterIPs = nil }), "STATIC", []string{"10.96.0.10"}, false, []string{"10.1.0.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := convertService(tt.svc, slices, lookupOf(pods, nil))
			var eps []string
			for _, e := range got.Endpoints {
				eps = append(eps, e.Address)
			}
			if got.Resolution != tt.resolution || got.MeshExternal != tt.external ||
				!cmp.Equal(got.Addresses, tt.addresses) || !cmp.Equal(eps, tt.endpoints) {
				t.Errorf("got resolution %s external %v addresses %v endpoints %v; want %s %v %v %v",
					got.Resolution, got.MeshExternal, got.Addresses, eps, tt.resolution, tt.external, tt.addresses, tt.endpoints)
			}
			if tt.external && (got.Ports[0].TargetPort != 0 || got.Endpoints[0].EndpointPort(got.Ports[0]) != 5432) {
				t.Errorf("ExternalName port %+v: the proxy must dial the service port", got.Ports[0])
			}
		})
	}
}

// TestSlimKeepsWhatConversionReads: a pod and a node as cached convert as
// the full objects do.
func TestSlimKeepsWhatConversionReads(t *testing.T) {
	p := pod("reviews-1", "10.1.0.5", false)
	p.Annotations = map[string]string{AnnotationSidecarStatus: "{}", "kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	p.Spec.InitContainers = []corev1.Container{{Name: ContainerProxy, Image: "weft"}}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}},
		Status: corev1.NodeStatus{Capacity: corev1.ResourceList{}}}
	sp, _ := slim(p)
	sn, _ := slim(n)
	again, _ := slim(sp)
	svc := service("reviews", nil)
	sl := []*discoveryv1.EndpointSlice{slice("s", "reviews", nil, endpoint("reviews-1", "10.1.0.5", nil))}
	full := convertService(svc, sl, lookupOf([]*corev1.Pod{p}, []*corev1.Node{n}))
	cached := convertService(svc, sl, lookupOf([]*corev1.Pod{again.(*corev1.Pod)}, []*corev1.Node{sn.(*corev1.Node)}))
	if d := cmp.Diff(full, cached); d != "" {
		t.Errorf("slimmed objects convert differently (-full +slim):\n%s", d)
	}
	if !full.Endpoints[0].Sidecar || full.Endpoints[0].Ports["http"] != 9081 || full.Endpoints[0].Locality != "/z1" {
		t.Errorf("endpoint %+v: want a sidecar (native), the container port web, zone z1", full.Endpoints[0])
	}
	if len(again.(*corev1.Pod).Annotations) != 1 {
		t.Errorf("cached pod annotations %v: want only the sidecar status", again.(*corev1.Pod).Annotations)
	}
}

// TestEndpointWorkload: a Deployment's pod is an endpoint of workload
// reviews-v1 (its metrics' destination_workload), also after the informer's
// slim transform; a bare pod is its own workload.
func TestEndpointWorkload(t *testing.T) {
	owned := pod("reviews-v1-7d4f9-x2k9p", "10.1.0.5", true)
	owned.Labels["pod-template-hash"] = "7d4f9"
	isController := true
	owned.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "reviews-v1-7d4f9", Controller: &isController}}
	slimmed, err := slim(owned)
	if err != nil {
		t.Fatal(err)
	}
	bare := pod("reviews-debug", "10.1.0.6", true)
	svc := service("reviews", nil)
	sl := slice("reviews-abc", "reviews", map[string]int32{"http": 9081},
		endpoint("reviews-v1-7d4f9-x2k9p", "10.1.0.5", nil), endpoint("reviews-debug", "10.1.0.6", nil))
	lk := lookupOf([]*corev1.Pod{slimmed.(*corev1.Pod), bare}, nil)
	for i, want := range []struct{ name, workload string }{{"reviews-v1-7d4f9-x2k9p", "reviews-v1"}, {"reviews-debug", "reviews-debug"}} {
		ep := endpointOf(svc, sl, sl.Endpoints[i], lk)
		if ep.Name != want.name || ep.WorkloadName() != want.workload {
			t.Errorf("endpoint %d: name %q workload %q, want %q and %q", i, ep.Name, ep.WorkloadName(), want.name, want.workload)
		}
	}
}

// TestInjected: a sidecar pod, by its istio-proxy container or the
// injector's status, but not a grpc-agent pod, whose istio-proxy is an
// agent beside proxyless gRPC apps.
func TestInjected(t *testing.T) {
	tests := []struct {
		name        string
		annotations map[string]string
		proxy       bool
		want        bool
	}{
		{"plain pod", nil, false, false},
		{"istio-proxy container", nil, true, true},
		{"status annotation", map[string]string{AnnotationSidecarStatus: "{}"}, false, true},
		{"sidecar template", map[string]string{AnnotationSidecarStatus: "{}", AnnotationInjectTemplates: "sidecar"}, true, true},
		{"grpc-agent template", map[string]string{AnnotationSidecarStatus: "{}", AnnotationInjectTemplates: "grpc-agent"}, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{}
			p.Annotations = tc.annotations
			p.Spec.Containers = []corev1.Container{{Name: "app"}}
			if tc.proxy {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: ContainerProxy})
			}
			if got := Injected(p); got != tc.want {
				t.Errorf("Injected = %v, want %v", got, tc.want)
			}
		})
	}
}

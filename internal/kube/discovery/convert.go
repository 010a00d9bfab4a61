package discovery

import (
	"maps"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
	"github.com/weft-mesh/weft/internal/kube/inject"
)

// Kubernetes and Istio names the conversion reads.
const (
	// ContainerProxy is the injected sidecar's container name (as Istio's).
	ContainerProxy = "istio-proxy"
	// AnnotationSidecarStatus is written by the injector on injected pods.
	AnnotationSidecarStatus = "sidecar.istio.io/status"
	// AnnotationInjectTemplates picks the injector's template (sidecar, grpc-agent).
	AnnotationInjectTemplates = "inject.istio.io/templates"
	// LabelServiceName links an EndpointSlice to its Service.
	LabelServiceName = discoveryv1.LabelServiceName
	// LabelLocality on a pod overrides its node's locality ("region.zone.subzone").
	LabelLocality = "istio-locality"
	labelRegion   = corev1.LabelTopologyRegion
	labelZone     = corev1.LabelTopologyZone
	labelSubzone  = "topology.istio.io/subzone"
	// Standard appProtocol values of Kubernetes (KEP-3726).
	appProtocolH2C = "kubernetes.io/h2c"
	appProtocolWS  = "kubernetes.io/ws"
	appProtocolWSS = "kubernetes.io/wss"
)

// Protocol selects a Service port's protocol as Istio does: UDP ports are
// UDP; else appProtocol when set (kubernetes.io/h2c is HTTP2,
// kubernetes.io/ws and kubernetes.io/wss are HTTP), else the port name
// ("http", "http-web", "grpc-web-x", "tcp-db", as config.ProtocolFromPortName).
// As in Istio, a set appProtocol is not backed by the port name. What
// selects nothing is config.ProtocolAuto: the proxies sniff HTTP/1.1 and
// HTTP/2 there and take the rest as TCP.
func Protocol(p corev1.ServicePort) string {
	if p.Protocol == corev1.ProtocolUDP {
		return config.ProtocolUDP
	}
	name := p.Name
	if p.AppProtocol != nil && *p.AppProtocol != "" {
		switch *p.AppProtocol {
		case appProtocolH2C:
			return config.ProtocolHTTP2
		case appProtocolWS, appProtocolWSS:
			return config.ProtocolHTTP
		}
		name = *p.AppProtocol
	}
	return config.ProtocolFromPortName(name)
}

// lookup finds the objects an EndpointSlice's endpoints refer to.
type lookup struct {
	pod  func(namespace, name string) *corev1.Pod
	node func(name string) *corev1.Node
}

// convertService turns one Service and its EndpointSlices into a registry
// service, as Istio's Kubernetes registry does:
//   - hostname NAME.NAMESPACE.svc.cluster.local, the cluster IPs as addresses;
//   - a headless Service (clusterIP None) has no address, resolution NONE,
//     and its ready pods' IPs as endpoints;
//   - an ExternalName Service is a mesh-external DNS service whose one
//     endpoint is the external name, resolved by the proxy;
//   - UDP ports are left out: the sidecar does not proxy UDP.
func convertService(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, lk lookup) *registry.Service {
	s := &registry.Service{
		Hostname:   config.ResolveHost(svc.Name, svc.Namespace),
		Name:       svc.Name,
		Namespace:  svc.Namespace,
		Resolution: "STATIC",
	}
	external := svc.Spec.Type == corev1.ServiceTypeExternalName && svc.Spec.ExternalName != ""
	for _, p := range svc.Spec.Ports {
		proto := Protocol(p)
		if proto == config.ProtocolUDP {
			continue
		}
		port := registry.Port{Name: p.Name, Number: uint32(p.Port), Protocol: proto}
		if !external && p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
			port.TargetPort = uint32(p.TargetPort.IntVal)
		}
		s.Ports = append(s.Ports, port)
	}
	sort.Slice(s.Ports, func(i, j int) bool { return s.Ports[i].Number < s.Ports[j].Number })
	switch {
	case external:
		s.Resolution, s.MeshExternal = "DNS", true
		s.Endpoints = []*registry.Endpoint{{
			Name: svc.Name, Namespace: svc.Namespace, Address: strings.TrimSuffix(svc.Spec.ExternalName, "."), Weight: 1,
		}}
		return s
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		s.Resolution = "NONE"
	default:
		for _, ip := range svc.Spec.ClusterIPs {
			if ip != "" && ip != corev1.ClusterIPNone {
				s.Addresses = append(s.Addresses, ip)
			}
		}
		if len(s.Addresses) == 0 && svc.Spec.ClusterIP != "" {
			s.Addresses = []string{svc.Spec.ClusterIP}
		}
	}
	s.Endpoints = sliceEndpoints(svc, slices, lk)
	return s
}

// sliceEndpoints lists the ready endpoints of the slices (every endpoint
// when the Service publishes not-ready addresses), one per address, sorted
// by address.
func sliceEndpoints(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, lk lookup) []*registry.Endpoint {
	seen := map[string]bool{}
	var out []*registry.Endpoint
	for _, sl := range slices {
		if sl.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		for _, e := range sl.Endpoints {
			// Kubernetes uses an endpoint's first address only.
			if len(e.Addresses) == 0 || seen[e.Addresses[0]] || !ready(e, svc) {
				continue
			}
			seen[e.Addresses[0]] = true
			out = append(out, endpointOf(svc, sl, e, lk))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// ready reports whether traffic may go to e: its Ready condition (unset
// means ready, as the API defines), or any endpoint when the Service
// publishes not-ready addresses.
func ready(e discoveryv1.Endpoint, svc *corev1.Service) bool {
	if svc.Spec.PublishNotReadyAddresses {
		return true
	}
	return e.Conditions.Ready == nil || *e.Conditions.Ready
}

// endpointOf builds one endpoint, joined with its pod when it has one.
func endpointOf(svc *corev1.Service, sl *discoveryv1.EndpointSlice, e discoveryv1.Endpoint, lk lookup) *registry.Endpoint {
	ep := &registry.Endpoint{Name: e.Addresses[0], Namespace: svc.Namespace, Address: e.Addresses[0], Weight: 1}
	var pod *corev1.Pod
	if r := e.TargetRef; r != nil && r.Kind == "Pod" && lk.pod != nil {
		ns := r.Namespace
		if ns == "" {
			ns = sl.Namespace
		}
		pod = lk.pod(ns, r.Name)
		ep.Name = r.Name
	}
	ep.Ports = map[string]uint32{}
	for _, p := range sl.Ports {
		if p.Port != nil && (p.Protocol == nil || *p.Protocol != corev1.ProtocolUDP) {
			ep.Ports[deref(p.Name)] = uint32(*p.Port)
		}
	}
	nodeName := deref(e.NodeName)
	if pod != nil {
		ep.Labels = maps.Clone(pod.Labels)
		if w := inject.WorkloadName(pod); w != ep.Name {
			ep.Workload = w
		}
		ep.ServiceAccount = pod.Spec.ServiceAccountName
		if ep.ServiceAccount == "" {
			ep.ServiceAccount = "default"
		}
		ep.Sidecar = Injected(pod)
		ep.MTLS = ep.Sidecar
		if nodeName == "" {
			nodeName = pod.Spec.NodeName
		}
		// A named targetPort the slice does not resolve: the pod's container port.
		for _, p := range svc.Spec.Ports {
			if _, ok := ep.Ports[p.Name]; !ok && p.TargetPort.Type == intstr.String {
				if n := containerPort(pod, p.TargetPort.StrVal); n != 0 {
					ep.Ports[p.Name] = n
				}
			}
		}
	}
	ep.Locality = locality(pod, nodeName, deref(e.Zone), lk)
	return ep
}

// Injected reports whether the pod runs weft's (or Istio's) sidecar: it has
// an istio-proxy container or the injector's status annotation, and is not
// a proxyless gRPC pod (inject.istio.io/templates: grpc-agent), whose
// istio-proxy container is an agent: its apps take no sidecar's mTLS tunnel.
func Injected(pod *corev1.Pod) bool {
	if pod.Annotations[AnnotationInjectTemplates] == inject.TemplateGRPCAgent {
		return false
	}
	if _, ok := pod.Annotations[AnnotationSidecarStatus]; ok {
		return true
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == ContainerProxy {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers { // a native sidecar
		if c.Name == ContainerProxy {
			return true
		}
	}
	return false
}

// containerPort is the number of the pod's container port called name, or 0.
func containerPort(pod *corev1.Pod, name string) uint32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return uint32(p.ContainerPort)
			}
		}
	}
	return 0
}

// locality is Istio's "region/zone/subzone" for an endpoint: the pod's
// istio-locality label ("region.zone.subzone"), else its node's topology
// labels, else the zone the EndpointSlice gives.
func locality(pod *corev1.Pod, nodeName, zone string, lk lookup) string {
	if pod != nil {
		if l := pod.Labels[LabelLocality]; l != "" {
			return strings.ReplaceAll(l, ".", "/")
		}
	}
	var region, subzone string
	if nodeName != "" && lk.node != nil {
		if n := lk.node(nodeName); n != nil {
			region, subzone = n.Labels[labelRegion], n.Labels[labelSubzone]
			if z := n.Labels[labelZone]; z != "" {
				zone = z
			}
		}
	}
	switch {
	case subzone != "":
		return region + "/" + zone + "/" + subzone
	case zone != "":
		return region + "/" + zone
	}
	return region
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

package registry

import (
	"sort"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// Build derives the registry from ServiceEntry and WorkloadEntry objects.
// WorkloadEntries join the ServiceEntries whose workloadSelector matches them
// in the same namespace; they are weft workloads and so have a sidecar.
// Inline ServiceEntry endpoints have none.
func Build(objs []*config.Object) *Registry {
	var entries, workloads []*config.Object
	for _, o := range objs {
		switch o.Kind {
		case config.KindServiceEntry:
			entries = append(entries, o)
		case config.KindWorkloadEntry:
			workloads = append(workloads, o)
		}
	}
	byHost := map[string]*Service{}
	for _, o := range entries {
		se, ok := o.Spec.(*networking.ServiceEntry)
		if !ok {
			continue
		}
		eps := entryEndpoints(o, se, workloads)
		for _, h := range se.GetHosts() {
			host := hostName(h, o.Namespace)
			svc := byHost[host]
			if svc == nil {
				svc = &Service{
					Hostname:     host,
					Name:         shortName(host),
					Namespace:    o.Namespace,
					Addresses:    se.GetAddresses(),
					MeshExternal: se.GetLocation() == networking.ServiceEntry_MESH_EXTERNAL,
					Resolution:   se.GetResolution().String(),
				}
				byHost[host] = svc
			}
			svc.Ports = mergePorts(svc.Ports, se.GetPorts())
			svc.Endpoints = append(svc.Endpoints, eps...)
		}
	}
	r := &Registry{}
	for _, s := range byHost {
		sort.Slice(s.Endpoints, func(i, j int) bool {
			if s.Endpoints[i].Address != s.Endpoints[j].Address {
				return s.Endpoints[i].Address < s.Endpoints[j].Address
			}
			return s.Endpoints[i].Name < s.Endpoints[j].Name
		})
		r.Services = append(r.Services, s)
	}
	Sort(r)
	return r
}

// Service returns the service with the given FQDN, or nil.
func (r *Registry) Service(host string) *Service {
	i := sort.Search(len(r.Services), func(i int) bool { return r.Services[i].Hostname >= host })
	if i < len(r.Services) && r.Services[i].Hostname == host {
		return r.Services[i]
	}
	return nil
}

// Port returns the service's port with the given number, or nil.
func (s *Service) Port(number uint32) *Port {
	for i := range s.Ports {
		if s.Ports[i].Number == number {
			return &s.Ports[i]
		}
	}
	return nil
}

// EndpointPort is the port an endpoint listens on for the service port p.
func (e *Endpoint) EndpointPort(p Port) uint32 {
	if n, ok := e.Ports[p.Name]; ok && n != 0 {
		return n
	}
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Number
}

func entryEndpoints(o *config.Object, se *networking.ServiceEntry, workloads []*config.Object) []*Endpoint {
	var eps []*Endpoint
	for i, we := range se.GetEndpoints() {
		ep := workloadEndpoint(we, o.Namespace, false)
		ep.Name = o.Name + "-" + itoa(i)
		eps = append(eps, ep)
	}
	sel := se.GetWorkloadSelector().GetLabels()
	if len(sel) == 0 {
		return eps
	}
	for _, w := range workloads {
		we, ok := w.Spec.(*networking.WorkloadEntry)
		if !ok || w.Namespace != o.Namespace || !matches(sel, we.GetLabels()) {
			continue
		}
		// A gateway takes traffic on its own ports: no sidecar hop.
		gateway := w.Annotations[config.AnnotationGateway] == "true"
		ep := workloadEndpoint(we, w.Namespace, !gateway)
		ep.Name = w.Name
		ep.Workload = w.Annotations[config.AnnotationWorkload]
		ep.MTLS = !gateway && w.Annotations[config.AnnotationMTLS] == "true"
		eps = append(eps, ep)
	}
	return eps
}

func workloadEndpoint(we *networking.WorkloadEntry, ns string, sidecar bool) *Endpoint {
	w := we.GetWeight()
	if w == 0 {
		w = 1
	}
	return &Endpoint{
		Namespace:      ns,
		Address:        we.GetAddress(),
		Ports:          we.GetPorts(),
		Labels:         we.GetLabels(),
		ServiceAccount: we.GetServiceAccount(),
		Weight:         w,
		Locality:       we.GetLocality(),
		Sidecar:        sidecar,
	}
}

func mergePorts(have []Port, ports []*networking.ServicePort) []Port {
	for _, p := range ports {
		dup := false
		for _, h := range have {
			if h.Number == p.GetNumber() {
				dup = true
			}
		}
		if dup {
			continue
		}
		proto := p.GetProtocol()
		if proto == "" {
			proto = config.ProtocolFromPortName(p.GetName())
		} else if norm, ok := config.ParseProtocol(proto); ok {
			proto = norm
		}
		have = append(have, Port{Name: p.GetName(), Number: p.GetNumber(), Protocol: proto, TargetPort: p.GetTargetPort()})
	}
	sort.Slice(have, func(i, j int) bool { return have[i].Number < have[j].Number })
	return have
}

// matches reports whether labels has every key/value of sel.
func matches(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Matches reports whether labels has every key/value of sel.
func Matches(sel, labels map[string]string) bool { return matches(sel, labels) }

// hostName resolves a ServiceEntry host: short names in the entry's namespace.
func hostName(h, ns string) string {
	if strings.Contains(h, ".") {
		return h
	}
	return config.ResolveHost(h, ns)
}

func shortName(host string) string {
	if i := strings.IndexByte(host, '.'); i > 0 {
		return host[:i]
	}
	return host
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

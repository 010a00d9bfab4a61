// Package registry derives the mesh's services and endpoints from
// ServiceEntry and WorkloadEntry objects (and, later, Kubernetes). Pure.
package registry

// Registry is an immutable view of services and their endpoints.
// Build it with Build; do not modify it after building.
type Registry struct {
	// Services sorted by Hostname.
	Services []*Service
}

// Service is one mesh host (e.g. reviews.default.svc.cluster.local).
type Service struct {
	Hostname     string // FQDN
	Name         string // short name, e.g. reviews
	Namespace    string
	Ports        []Port
	Addresses    []string // VIPs, if any
	MeshExternal bool
	Resolution   string // STATIC, DNS, DNS_ROUND_ROBIN, NONE
	Endpoints    []*Endpoint
}

// Port is one service port.
type Port struct {
	Name       string
	Number     uint32
	Protocol   string // HTTP, HTTP2, GRPC, TCP, TLS, HTTPS...
	TargetPort uint32 // endpoint port; 0 = same as Number
}

// WorkloadName is the endpoint's workload: Workload, else its Name.
func (e *Endpoint) WorkloadName() string {
	if e.Workload != "" {
		return e.Workload
	}
	return e.Name
}

// Endpoint is one workload instance backing a service.
type Endpoint struct {
	Name string // instance name (reviews-v2-1; a pod's name)
	// Workload is the workload it is an instance of (reviews-v2; a pod's
	// Deployment): Istio's source_workload/destination_workload. "" = Name.
	Workload       string
	Namespace      string
	Address        string
	Ports          map[string]uint32 // port name -> endpoint port override
	Labels         map[string]string
	ServiceAccount string
	Weight         uint32
	Locality       string
	Sidecar        bool // has a weft/Envoy sidecar: tlsMode istio
	// MTLS: its sidecar holds a mesh certificate and speaks mutual TLS
	// (annotation weft.io/mtls on its WorkloadEntry).
	MTLS bool
}

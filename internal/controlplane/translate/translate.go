// Package translate turns the mesh model (config + registry) into the xDS
// resources of one proxy. It is pure: no I/O, no clocks.
package translate

import (
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// Proxy types, as in the xDS node ID.
const (
	ProxySidecar = "sidecar"
	ProxyRouter  = "router"
)

// Proxy is what translate needs to know of the proxy it builds for.
type Proxy struct {
	ID             string // xDS node ID
	Type           string // ProxySidecar or ProxyRouter
	Name           string // workload name, e.g. reviews-v2-1
	Namespace      string
	IP             string // pod IP
	Labels         map[string]string
	ServiceAccount string
	// Locality is region/zone/subzone ("" unknown), from the node's locality.
	Locality string
	// MTLS: the proxy holds a mesh certificate (node metadata WEFT_MTLS) and
	// speaks mutual TLS to peers that do too.
	MTLS bool
}

// Input is everything one proxy's config depends on.
type Input struct {
	Config   []*config.Object
	Registry *registry.Registry
	Proxy    Proxy
	// Mesh is the mesh-wide config (zero: Istio's defaults).
	Mesh Mesh
}

// Output holds one proxy's resources, by xDS type.
type Output struct {
	Listeners []types.Resource
	Routes    []types.Resource
	Clusters  []types.Resource
	Endpoints []types.Resource
	// Versions holds a content hash per type URL: a type whose resources did
	// not change keeps its version, so only changed types are pushed.
	Versions map[string]string
	// Warnings name config fields present but not implemented yet.
	Warnings []string
	// Services are the hostnames of the services a shared part
	// (BuildShared) was translated from, after the Sidecar scope: a change
	// that concerns none of them leaves it as it is (ServicesConcerned).
	Services map[string]bool
}

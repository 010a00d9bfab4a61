package translate

import (
	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// ownKinds are the kinds BuildOwn reads: the Sidecar (outbound policy,
// scope) and the policies of the proxy's inbound side. Routing config
// (VirtualService, DestinationRule, Gateway) concerns only shared parts.
var ownKinds = map[string]bool{
	config.KindSidecar:               true,
	config.KindPeerAuthentication:    true,
	config.KindAuthorizationPolicy:   true,
	config.KindRequestAuthentication: true,
	config.KindTelemetry:             true,
	config.KindEnvoyFilter:           true,
}

// Scope indexes one config and registry for the per-proxy calls (ViewKey,
// BuildOwn), so that each costs what concerns its proxy, not the size of
// the mesh. Build it once per config version; it is safe for concurrent use.
type Scope struct {
	own   []*config.Object // of ownKinds
	keyed []*config.Object // what ViewKey reads: selectors and EnvoyFilters
	byIP  map[string][]*registry.Service
}

// NewScope indexes cfg and reg.
func NewScope(cfg []*config.Object, reg *registry.Registry) *Scope {
	s := &Scope{byIP: map[string][]*registry.Service{}}
	for _, o := range cfg {
		if ownKinds[o.Kind] {
			s.own = append(s.own, o)
		}
		if HasProxySelectors(o) {
			s.keyed = append(s.keyed, o)
		}
	}
	for _, svc := range reg.Services {
		seen := map[string]bool{}
		for _, ep := range svc.Endpoints {
			// Every endpoint, not only sidecars': a proxyless server's
			// listeners (BuildGRPCInbound) are its own part too.
			if !seen[ep.Address] {
				seen[ep.Address] = true
				s.byIP[ep.Address] = append(s.byIP[ep.Address], svc)
			}
		}
	}
	return s
}

// OwnInput is in reduced to what BuildOwn reads for in.Proxy: the config
// of ownKinds and the services with an endpoint at the proxy's IP.
// BuildOwn(s.OwnInput(in)) equals BuildOwn(in).
func (s *Scope) OwnInput(in Input) Input {
	in.Config = s.own
	in.Registry = &registry.Registry{Services: s.byIP[in.Proxy.IP]}
	return in
}

// KeyInput is in reduced to what ViewKey reads: ViewKey(s.KeyInput(in))
// equals ViewKey(in).
func (s *Scope) KeyInput(in Input) Input {
	in.Config = s.keyed
	return in
}

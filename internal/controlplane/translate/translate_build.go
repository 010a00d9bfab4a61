package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// validator is what every Envoy resource implements.
type validator interface{ Validate() error }

// Build returns the xDS resources of one proxy.
func Build(in Input) (*Output, error) { return build(in, partAll) }

func build(in Input, part part) (*Output, error) {
	b := &builder{in: in, part: part, out: &Output{Versions: map[string]string{}}}
	b.index()
	b.applySidecarScope()
	if part == partShared {
		b.out.Services = make(map[string]bool, len(b.in.Registry.Services))
		for _, s := range b.in.Registry.Services {
			b.out.Services[s.Hostname] = true
		}
	}
	switch in.Proxy.Type {
	case ProxyRouter:
		b.gateway()
	default:
		b.sidecar()
	}
	if part != partOwn {
		b.clusters()
	} else {
		sort.SliceStable(b.out.Clusters, func(i, j int) bool { return resourceName(b.out.Clusters[i]) < resourceName(b.out.Clusters[j]) })
	}
	b.applyTCPIdleTimeouts()
	b.applyEnvoyFilters()
	b.applyTelemetry()
	b.applyAuthorization()
	b.applyRequestAuthentication()
	if err := b.finish(); err != nil {
		return nil, err
	}
	return b.out, nil
}

// builder holds the indexes of one Build call.
type builder struct {
	in   Input
	part part // what to translate: all, the shared part or the own part
	out  *Output
	vs   []*config.Object          // VirtualServices, by namespace/name
	drs  map[string]*config.Object // DestinationRule by resolved host
	gws  []*config.Object
	// eds lists EDS clusters to give a ClusterLoadAssignment.
	eds []string
	// outboundPolicy is ALLOW_ANY or REGISTRY_ONLY for this proxy.
	outboundPolicy string
	// tcpIdle are the DestinationRules' connectionPool.tcp.idleTimeout by
	// outbound cluster name (set only where given).
	tcpIdle map[string]*durationpb.Duration
	// policies are the workload-selecting policies (PeerAuthentication,
	// Telemetry) by kind, so per-endpoint lookups skip the rest of the config.
	policies map[string][]*config.Object
}

func (b *builder) index() {
	b.drs = map[string]*config.Object{}
	b.policies = map[string][]*config.Object{}
	for _, o := range b.in.Config {
		switch o.Kind {
		case config.KindPeerAuthentication, config.KindTelemetry:
			b.policies[o.Kind] = append(b.policies[o.Kind], o)
		case config.KindVirtualService:
			b.vs = append(b.vs, o)
		case config.KindDestinationRule:
			dr := o.Spec.(*networking.DestinationRule)
			host := config.ResolveHost(dr.GetHost(), o.Namespace)
			if old, ok := b.drs[host]; !ok || older(o, old) {
				b.drs[host] = o
			}
		case config.KindGateway:
			b.gws = append(b.gws, o)
		}
	}
	sort.Slice(b.vs, func(i, j int) bool { return older(b.vs[i], b.vs[j]) })
}

// older orders objects as Istio does on conflicts: by namespace/name here
// (creation time is not kept), so results are deterministic.
func older(a, b *config.Object) bool {
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

func (b *builder) warn(o *config.Object, field, reason string) {
	b.out.Warnings = append(b.out.Warnings, fmt.Sprintf("%s: %s: %s", o.Key(), field, reason))
}

// finish validates every resource and computes per-type content versions.
func (b *builder) finish() error {
	sets := map[string][]types.Resource{
		resourcev3.ListenerType: b.out.Listeners,
		resourcev3.RouteType:    b.out.Routes,
		resourcev3.ClusterType:  b.out.Clusters,
		resourcev3.EndpointType: b.out.Endpoints,
	}
	for typ, set := range sets {
		h := sha256.New()
		for _, r := range set {
			if v, ok := r.(validator); ok {
				if err := v.Validate(); err != nil {
					return fmt.Errorf("%s %q: %w", typ, resourceName(r), err)
				}
			}
			data, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
			if err != nil {
				return fmt.Errorf("%s %q: %w", typ, resourceName(r), err)
			}
			h.Write(data)
		}
		b.out.Versions[typ] = hex.EncodeToString(h.Sum(nil))[:16]
	}
	return nil
}

func resourceName(r types.Resource) string {
	if n, ok := r.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	if n, ok := r.(interface{ GetClusterName() string }); ok {
		return n.GetClusterName()
	}
	return "?"
}

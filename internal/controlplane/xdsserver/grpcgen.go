package xdsserver

import (
	"maps"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// Proxyless gRPC clients (grpc-go's xDS client and its kin) announce node
// metadata GENERATOR=grpc, as with Istio. They get resources shaped for gRPC
// (Options.TranslateGRPC, translate.BuildGRPC) and never auto-register.
// Their state-of-the-world requests name the resources they want, one
// listener per target they dial, and sotwCache answers each with exactly
// the names it lists (a name the snapshot lacks is left out: gRPC then
// reports the target as unknown at once).
const (
	// GeneratorGRPC is the GENERATOR node metadata of proxyless gRPC clients.
	GeneratorGRPC = "grpc"
	// TypeProxyless is the type proxy-status shows for them.
	TypeProxyless = "proxyless"
)

// statusType is the proxy's type as proxy-status shows it: sidecar,
// router, or proxyless.
func (info *proxyInfo) statusType() string {
	if info.generator == GeneratorGRPC {
		return TypeProxyless
	}
	return info.proxy.Type
}

// buildGRPC builds a proxyless node's snapshot: its client side
// (Options.TranslateGRPC), shared by the nodes of one view key (namespace,
// locality, the label selectors that match them: what it depends on) and
// translated once per generation, and its server side
// (translate.BuildGRPCInbound: the listeners at its IP), its own. It
// returns nil when neither changed.
func (s *Server) buildGRPC(g *generation, b *proxyBuild, in translate.Input, delta bool) (*buildResult, error) {
	build := func() (*translate.Output, error) { return s.opts.TranslateGRPC(in) }
	var out *translate.Output
	var wire map[string]*wirePart
	if s.opts.ViewKey != nil && b.split {
		v, err := g.shared("grpc|"+b.key, build)
		if err != nil {
			return nil, err
		}
		out, wire = v.out, v.wire
	} else {
		var err error
		if out, err = build(); err != nil {
			return nil, err
		}
		if wire, err = wireParts(out); err != nil {
			return nil, err
		}
	}
	ownIn := g.scoped().OwnInput(in)
	own, err := translate.BuildGRPCInbound(ownIn)
	if err != nil {
		return nil, err
	}
	if b.built && out == b.shared && b.own != nil && maps.Equal(own.Versions, b.own.Versions) && !(delta && !b.deltaSet) {
		return nil, nil
	}
	ownWire, err := wireParts(own)
	if err != nil {
		return nil, err
	}
	b.shared, b.own, b.ownWire = out, own, ownWire
	merged := translate.Merge(out, own)
	ws := newWireSnapshot(merged.Versions, wire, ownWire)
	s.withMissing(ws, ListenerType, func(name string) proto.Message {
		if strings.HasPrefix(name, translate.GRPCInboundPrefix) {
			return nilIfNil(translate.GRPCInbound(ownIn, name))
		}
		return nilIfNil(translate.GRPCUnknownListener(name))
	})
	s.withMissing(ws, RouteType, func(name string) proto.Message { return nilIfNil(translate.GRPCUnknownRoute(name)) })
	return &buildResult{
		versions: merged.Versions,
		wire:     ws,
		warnings: merged.Warnings,
		full:     func() (*cache.Snapshot, error) { return grpcSnapshot(merged), nil },
	}, nil
}

// withMissing makes the type typeURL of ws answer names its parts lack
// with build's resource (nil: none), marshaled.
func (s *Server) withMissing(ws wireSnapshot, typeURL string, build func(name string) proto.Message) {
	wt := ws[typeURL]
	wt.missing = func(name string) *anypb.Any {
		m := build(name)
		if m == nil {
			return nil
		}
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			s.log.Error("marshaling a resource for an unknown name", "type", typeURL, "name", name, "error", err)
			return nil
		}
		return &anypb.Any{TypeUrl: typeURL, Value: data}
	}
	ws[typeURL] = wt
}

// nilIfNil turns a typed nil pointer into an untyped nil message.
func nilIfNil[T any, P interface {
	*T
	proto.Message
}](m P) proto.Message {
	if m == nil {
		return nil
	}
	return m
}

// grpcSnapshot is go-control-plane's snapshot of a proxyless client's
// resources (for a delta stream). translate validated them, and
// Snapshot.Consistent does not follow api_listener references: neither
// is checked again.
func grpcSnapshot(out *translate.Output) *cache.Snapshot {
	snap := &cache.Snapshot{}
	for typeURL, res := range map[string][]types.Resource{
		ClusterType: out.Clusters, EndpointType: out.Endpoints, ListenerType: out.Listeners, RouteType: out.Routes,
	} {
		snap.Resources[cache.GetResponseType(typeURL)] = cache.NewResources(out.Versions[typeURL], res)
	}
	return snap
}

package xdsclient

import (
	"errors"
	"fmt"
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// decoder knows one resource type: how to decode it, and which resources of
// another type its resources reference (RDS for LDS, EDS for CDS).
type decoder struct {
	typeURL string
	// decode unmarshals one resource and returns its name.
	decode func(*anypb.Any) (string, proto.Message, error)
	// dependent is the type whose subscription follows this type's
	// resources ("" if none); follow lists the names to subscribe.
	dependent string
	follow    func(map[string]proto.Message) []string
}

// decoders has one decoder per type URL the client subscribes to.
var decoders = map[string]decoder{
	ListenerType: {
		typeURL: ListenerType, dependent: RouteType, follow: routeNames,
		decode: decodeAs(func() *listener.Listener { return &listener.Listener{} }, (*listener.Listener).GetName),
	},
	RouteType: {
		typeURL: RouteType,
		decode:  decodeAs(func() *route.RouteConfiguration { return &route.RouteConfiguration{} }, (*route.RouteConfiguration).GetName),
	},
	ClusterType: {
		typeURL: ClusterType, dependent: EndpointType, follow: edsNames,
		decode: decodeAs(func() *cluster.Cluster { return &cluster.Cluster{} }, (*cluster.Cluster).GetName),
	},
	EndpointType: {
		typeURL: EndpointType,
		decode: decodeAs(func() *endpoint.ClusterLoadAssignment { return &endpoint.ClusterLoadAssignment{} },
			(*endpoint.ClusterLoadAssignment).GetClusterName),
	},
}

// decodeAs builds a decode function for message type M.
func decodeAs[M proto.Message](newMsg func() M, name func(M) string) func(*anypb.Any) (string, proto.Message, error) {
	return func(a *anypb.Any) (string, proto.Message, error) {
		m := newMsg()
		if a.GetTypeUrl() != "type.googleapis.com/"+string(m.ProtoReflect().Descriptor().FullName()) {
			return "", nil, fmt.Errorf("resource of type %s where %s was expected", a.GetTypeUrl(), m.ProtoReflect().Descriptor().FullName())
		}
		if err := a.UnmarshalTo(m); err != nil {
			return "", nil, fmt.Errorf("decoding %s: %w", m.ProtoReflect().Descriptor().Name(), err)
		}
		n := name(m)
		if n == "" {
			return "", nil, errors.New("a " + string(m.ProtoReflect().Descriptor().Name()) + " has no name")
		}
		return n, m, nil
	}
}

// routeNames lists the RDS route configs the listeners' HTTP connection
// managers reference, sorted.
func routeNames(ls map[string]proto.Message) []string {
	set := map[string]bool{}
	for _, m := range ls {
		l := m.(*listener.Listener)
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains[:len(chains):len(chains)], l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			for _, f := range fc.GetFilters() {
				h := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(h) || f.GetTypedConfig().UnmarshalTo(h) != nil {
					continue
				}
				if n := h.GetRds().GetRouteConfigName(); n != "" {
					set[n] = true
				}
			}
		}
	}
	return sortedSet(set)
}

// edsNames lists the EDS service names of the EDS clusters, sorted.
func edsNames(cs map[string]proto.Message) []string {
	set := map[string]bool{}
	for name, m := range cs {
		c := m.(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
			name = n
		}
		set[name] = true
	}
	return sortedSet(set)
}

func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortType(t string) string {
	switch t {
	case ListenerType:
		return "LDS"
	case RouteType:
		return "RDS"
	case ClusterType:
		return "CDS"
	case EndpointType:
		return "EDS"
	}
	return t
}

// isDependent reports whether t is subscribed by name (RDS, EDS) rather
// than as a wildcard (LDS, CDS).
func isDependent(t string) bool { return t == RouteType || t == EndpointType }

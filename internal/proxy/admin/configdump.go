package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	// Extensions that appear inside the dumped resources' typed configs:
	// protojson must know their types to print them (archtest checks
	// weft-proxy links every one the control plane sends).
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"

	"github.com/weft-mesh/weft/internal/proxy/xdsclient"
)

// jsonOptions prints as Envoy's admin does: proto field names. The output
// is re-indented with encoding/json, as protojson's spacing is unstable.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true}

// ConfigDump builds Envoy's ConfigDump from the last ACKed resources.
func ConfigDump(snaps []xdsclient.Snapshot) (*adminv3.ConfigDump, error) {
	dump := &adminv3.ConfigDump{}
	for _, s := range snaps {
		var m proto.Message
		switch s.TypeURL {
		case xdsclient.ListenerType:
			m = listenersDump(s)
		case xdsclient.RouteType:
			m = routesDump(s)
		case xdsclient.ClusterType:
			m = clustersDump(s)
		case xdsclient.EndpointType:
			m = endpointsDump(s)
		default:
			continue
		}
		a, err := anypb.New(m)
		if err != nil {
			return nil, fmt.Errorf("packing %s dump: %w", s.TypeURL, err)
		}
		dump.Configs = append(dump.Configs, a)
	}
	return dump, nil
}

func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func listenersDump(s xdsclient.Snapshot) *adminv3.ListenersConfigDump {
	d := &adminv3.ListenersConfigDump{VersionInfo: s.Version}
	for _, r := range s.Resources {
		d.DynamicListeners = append(d.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name: resourceName(r),
			ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
				VersionInfo: s.Version, Listener: r, LastUpdated: stamp(s.Updated),
			},
		})
	}
	return d
}

func routesDump(s xdsclient.Snapshot) *adminv3.RoutesConfigDump {
	d := &adminv3.RoutesConfigDump{}
	for _, r := range s.Resources {
		d.DynamicRouteConfigs = append(d.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: s.Version, RouteConfig: r, LastUpdated: stamp(s.Updated),
		})
	}
	return d
}

func clustersDump(s xdsclient.Snapshot) *adminv3.ClustersConfigDump {
	d := &adminv3.ClustersConfigDump{VersionInfo: s.Version}
	for _, r := range s.Resources {
		d.DynamicActiveClusters = append(d.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: s.Version, Cluster: r, LastUpdated: stamp(s.Updated),
		})
	}
	return d
}

func endpointsDump(s xdsclient.Snapshot) *adminv3.EndpointsConfigDump {
	d := &adminv3.EndpointsConfigDump{}
	for _, r := range s.Resources {
		d.DynamicEndpointConfigs = append(d.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
			VersionInfo: s.Version, EndpointConfig: r, LastUpdated: stamp(s.Updated),
		})
	}
	return d
}

// resourceName returns the name of a packed resource ("" if it has none).
func resourceName(a *anypb.Any) string {
	m, err := a.UnmarshalNew()
	if err != nil {
		return ""
	}
	if n, ok := m.(interface{ GetName() string }); ok {
		return n.GetName()
	}
	return ""
}

func (s *Server) configDump(w http.ResponseWriter, _ *http.Request) {
	dump, err := ConfigDump(s.opts.Config.Snapshots())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, dump, jsonOptions)
}

func (s *Server) serverInfo(w http.ResponseWriter, _ *http.Request) {
	uptime := durationpb.New(s.opts.Now().Sub(s.started).Truncate(time.Second))
	info := &adminv3.ServerInfo{
		Version:            s.opts.Version,
		State:              adminv3.ServerInfo_State(adminv3.ServerInfo_State_value[s.State()]),
		HotRestartVersion:  "disabled",
		CommandLineOptions: &adminv3.CommandLineOptions{ServiceNode: s.opts.Node.GetId(), ServiceCluster: s.opts.Node.GetCluster()},
		Node:               s.opts.Node,
		UptimeCurrentEpoch: uptime,
		UptimeAllEpochs:    uptime,
	}
	// LIVE is the enum's zero value: print defaults so the state shows.
	opts := jsonOptions
	opts.EmitDefaultValues = true
	writeJSON(w, info, opts)
}

// MarshalJSON encodes m as Envoy's admin does (proto field names, indented).
func MarshalJSON(m proto.Message) ([]byte, error) { return marshalJSON(m, jsonOptions) }

func marshalJSON(m proto.Message, opts protojson.MarshalOptions) ([]byte, error) {
	b, err := opts.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, fmt.Errorf("indenting %s: %w", m.ProtoReflect().Descriptor().Name(), err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func writeJSON(w http.ResponseWriter, m proto.Message, opts protojson.MarshalOptions) {
	b, err := marshalJSON(m, opts)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

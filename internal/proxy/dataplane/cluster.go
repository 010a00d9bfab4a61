package dataplane

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	ppts "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/proxy_protocol/v3"
	rawbuf "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

func compileCluster(c *cluster.Cluster, eds map[string]*endpoint.ClusterLoadAssignment, st *state) (*rcluster, error) {
	out := &rcluster{name: c.GetName(), connectTimeout: defaultConnectTimeout, svc: serviceOf(c.GetName())}
	if ct := c.GetConnectTimeout(); ct != nil {
		if err := ct.CheckValid(); err != nil || ct.AsDuration() <= 0 {
			return nil, fmt.Errorf("connect_timeout: must be a positive duration")
		}
		out.connectTimeout = ct.AsDuration()
	}
	var la *endpoint.ClusterLoadAssignment
	switch c.GetType() {
	case cluster.Cluster_EDS:
		out.kind = "eds"
		name := c.GetEdsClusterConfig().GetServiceName()
		if name == "" {
			name = c.GetName()
		}
		la = eds[name]
		out.awaitingEDS = la == nil
	case cluster.Cluster_STATIC:
		out.kind, la = "static", c.GetLoadAssignment()
	case cluster.Cluster_STRICT_DNS, cluster.Cluster_LOGICAL_DNS:
		out.kind, la = "dns", c.GetLoadAssignment()
	case cluster.Cluster_ORIGINAL_DST:
		out.kind = "original_dst"
	default:
		return nil, fmt.Errorf("type %s is not supported", c.GetType())
	}
	if err := unsupportedCluster(c); err != nil {
		return nil, err
	}
	limits, err := compileBreaker(c)
	if err != nil {
		return nil, err
	}
	out.breaker = st.breaker(out.name, limits)
	if out.outlier, err = compileOutlier(c); err != nil {
		return nil, err
	}
	if err := compileProtocol(out, c); err != nil {
		return nil, err
	}
	tunnelMatch, meshTLS, err := transportMatches(c)
	if err != nil {
		return nil, err
	}
	if ts := c.GetTransportSocket(); ts != nil {
		msg, err := anyOf(ts.GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("transport_socket: %w", err)
		}
		if u, ok := msg.(*tlsv3.UpstreamTlsContext); ok {
			if out.tls, err = compileUpstreamTLS(u); err != nil {
				return nil, fmt.Errorf("transport_socket %q: %w", ts.GetName(), err)
			}
		}
	}
	for _, loc := range la.GetEndpoints() {
		for _, lbe := range loc.GetLbEndpoints() {
			ep, err := compileEndpoint(lbe, tunnelMatch, meshTLS)
			if err != nil {
				return nil, err
			}
			if ep == nil {
				continue
			}
			ep.stats = st.endpointStats(out.name, ep.addr)
			ep.connectTimeout = out.connectTimeout
			ep.tls = out.tls
			ep.key = out.name + "|" + ep.addr
			if ep.tunnel {
				ep.key += "|tunnel"
			}
			if ep.mtls != nil {
				ep.key += "|mtls"
			}
			ep.priority = int(loc.GetPriority())
			out.endpoints = append(out.endpoints, ep)
		}
	}
	switch c.GetLbPolicy() {
	case cluster.Cluster_ROUND_ROBIN:
		out.lbName, out.lb = "ROUND_ROBIN", newRoundRobin(out.endpoints, st.rrPosition(out.name))
	case cluster.Cluster_LEAST_REQUEST:
		out.lbName, out.lb = "LEAST_REQUEST", leastRequest{}
	case cluster.Cluster_RANDOM:
		out.lbName, out.lb = "RANDOM", random{}
	case cluster.Cluster_RING_HASH, cluster.Cluster_MAGLEV:
		if err := compileHashLB(out, c); err != nil {
			return nil, err
		}
		if hasPriorities(out.endpoints) {
			return nil, fmt.Errorf("locality priorities with %s are not supported", out.lbName)
		}
	case cluster.Cluster_CLUSTER_PROVIDED:
		if out.kind != "original_dst" {
			return nil, fmt.Errorf("lb_policy CLUSTER_PROVIDED needs type ORIGINAL_DST")
		}
		out.lbName = "CLUSTER_PROVIDED"
	default:
		return nil, fmt.Errorf("lb_policy %s is not supported", c.GetLbPolicy())
	}
	if hasPriorities(out.endpoints) {
		out.levels = priorityLevels(out, st)
	}
	return out, nil
}

// unsupportedCluster refuses cluster fields that would change behaviour
// weft proxy does not implement.
func unsupportedCluster(c *cluster.Cluster) error {
	switch {
	case len(c.GetHealthChecks()) > 0:
		return fmt.Errorf("health_checks are not supported by weft proxy")
	case c.GetLbSubsetConfig() != nil:
		return fmt.Errorf("lb_subset_config is not supported by weft proxy (subsets are clusters of their own)")
	case c.GetLoadBalancingPolicy() != nil:
		return fmt.Errorf("load_balancing_policy is not supported by weft proxy (use lb_policy)")
	}
	return nil
}

func compileProtocol(out *rcluster, c *cluster.Cluster) error {
	for key, a := range c.GetTypedExtensionProtocolOptions() {
		if key != "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" {
			return fmt.Errorf("typed_extension_protocol_options %q is not supported", key)
		}
		opts := &upstreamhttp.HttpProtocolOptions{}
		if err := a.UnmarshalTo(opts); err != nil {
			return fmt.Errorf("typed_extension_protocol_options: %w", err)
		}
		out.h2 = opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil
		out.downstreamProto = opts.GetUseDownstreamProtocolConfig() != nil
		if opts.GetAutoConfig() != nil {
			return fmt.Errorf("typed_extension_protocol_options: auto_config is not supported (explicit_http_config or use_downstream_protocol_config)")
		}
		common := opts.GetCommonHttpProtocolOptions()
		if n := common.GetMaxRequestsPerConnection(); n != nil {
			out.maxRequestsPerConn = int(n.GetValue())
		}
		out.upstreamIdle = common.GetIdleTimeout().AsDuration()
		out.maxConnDuration = common.GetMaxConnectionDuration().AsDuration()
	}
	return nil
}

// transportMatches returns the metadata (tlsMode value) that selects the
// PROXY-protocol tunnel ("" when no match does) and the mesh TLS of the
// match that also requires mtls: "true" (nil when none does).
func transportMatches(c *cluster.Cluster) (string, *rmtls, error) {
	if ts := c.GetTransportSocket(); ts != nil {
		if a, err := anyOf(ts.GetTypedConfig()); err == nil {
			if _, ok := a.(*tlsv3.UpstreamTlsContext); ok {
				if len(c.GetTransportSocketMatches()) > 0 {
					return "", nil, fmt.Errorf("transport_socket tls with transport_socket_matches is not supported")
				}
				return "", nil, nil
			}
		}
		if _, _, err := transportSocket(ts); err != nil {
			return "", nil, fmt.Errorf("transport_socket: %w", err)
		}
	}
	tunnelMode := ""
	var meshTLS *rmtls
	for _, m := range c.GetTransportSocketMatches() {
		tunnel, mt, err := transportSocket(m.GetTransportSocket())
		if err != nil {
			return "", nil, fmt.Errorf("transport_socket_matches %q: %w", m.GetName(), err)
		}
		if !tunnel {
			continue
		}
		fields := m.GetMatch().GetFields()
		v, ok := fields["tlsMode"]
		switch {
		case !ok:
			return "", nil, fmt.Errorf("transport_socket_matches %q: a tlsMode match is required", m.GetName())
		case mt != nil && len(fields) == 2 && fields["mtls"].GetStringValue() == "true":
			meshTLS = mt
		case mt == nil && len(fields) == 1:
		default:
			return "", nil, fmt.Errorf("transport_socket_matches %q: only {tlsMode} and, with mesh TLS, {tlsMode, mtls: \"true\"} matches are supported", m.GetName())
		}
		tunnelMode = v.GetStringValue()
	}
	return tunnelMode, meshTLS, nil
}

// transportSocket reports whether ts is the PROXY protocol tunnel, and its
// mesh TLS when the tunnel wraps one; other than raw_buffer it's an error.
func transportSocket(ts *core.TransportSocket) (bool, *rmtls, error) {
	msg, err := anyOf(ts.GetTypedConfig())
	if err != nil {
		return false, nil, err
	}
	switch m := msg.(type) {
	case *rawbuf.RawBuffer:
		return false, nil, nil
	case *ppts.ProxyProtocolUpstreamTransport:
		if m.GetConfig().GetVersion() != core.ProxyProtocolConfig_V2 {
			return false, nil, fmt.Errorf("upstream_proxy_protocol: only version V2 is supported")
		}
		inner := m.GetTransportSocket()
		if inner == nil {
			return true, nil, nil
		}
		im, err := anyOf(inner.GetTypedConfig())
		if err != nil {
			return false, nil, err
		}
		switch u := im.(type) {
		case *rawbuf.RawBuffer:
			return true, nil, nil
		case *tlsv3.UpstreamTlsContext:
			mt, err := compileMeshTLS(u)
			if err != nil {
				return false, nil, fmt.Errorf("upstream_proxy_protocol: %w", err)
			}
			return true, mt, nil
		}
		return false, nil, fmt.Errorf("upstream_proxy_protocol: the inner transport socket must be raw_buffer or the mesh's TLS")
	}
	return false, nil, fmt.Errorf("transport socket %q (%s) is not supported by weft proxy", ts.GetName(), ts.GetTypedConfig().GetTypeUrl())
}

func compileEndpoint(lbe *endpoint.LbEndpoint, tunnelMode string, meshTLS *rmtls) (*rendpoint, error) {
	if hs := lbe.GetHealthStatus(); hs != core.HealthStatus_UNKNOWN && hs != core.HealthStatus_HEALTHY && hs != core.HealthStatus_DEGRADED {
		return nil, nil
	}
	sa := lbe.GetEndpoint().GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("endpoint: only socket addresses are supported")
	}
	ep := &rendpoint{addr: netJoin(sa.GetAddress(), sa.GetPortValue()), weight: int(lbe.GetLoadBalancingWeight().GetValue())}
	if ip, err := netip.ParseAddr(sa.GetAddress()); err == nil {
		ep.ap = netip.AddrPortFrom(ip, uint16(sa.GetPortValue()))
	}
	if w, ok := parseWorkload(lbe.GetMetadata().GetFilterMetadata()["istio"].GetFields()["workload"].GetStringValue()); ok {
		ep.workload = w
	}
	if tunnelMode != "" {
		md := lbe.GetMetadata().GetFilterMetadata()["envoy.transport_socket_match"]
		ep.tunnel = md.GetFields()["tlsMode"].GetStringValue() == tunnelMode && ep.ap.IsValid()
		if ep.tunnel && meshTLS != nil && md.GetFields()["mtls"].GetStringValue() == "true" {
			ep.mtls = meshTLS
		}
	}
	return ep, nil
}

func netJoin(host string, port uint32) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

package translate

import (
	"fmt"
	"net/netip"
	"strings"
)

// Istio's well-known resource names.
const (
	VirtualOutbound    = "virtualOutbound"
	VirtualInbound     = "virtualInbound"
	PassthroughCluster = "PassthroughCluster"
	BlackHoleCluster   = "BlackHoleCluster"
	// OutboundCapturePort and InboundCapturePort are Istio's capture ports.
	OutboundCapturePort = 15001
	InboundCapturePort  = 15006
)

// OutboundCluster names the cluster for host:port (and subset, "" for all).
func OutboundCluster(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// InboundCluster names the cluster that reaches the local app on port.
func InboundCluster(port uint32) string { return fmt.Sprintf("inbound|%d||", port) }

// ListenerName names the outbound listener for a port: 0.0.0.0_9080.
func ListenerName(port uint32) string { return fmt.Sprintf("0.0.0.0_%d", port) }

// RouteName names the outbound route config for a port: 9080.
func RouteName(port uint32) string { return fmt.Sprint(port) }

// GatewayRouteName names a gateway's route config for a port: http.8080.
func GatewayRouteName(port uint32) string { return fmt.Sprintf("http.%d", port) }

// domains lists the names a sidecar in namespace ns may call host:port by.
// Like Istio, the service's VIPs are domains too: a request to the VIP
// routes as one to its host, and the proxy's DNS answers the host with them.
func domains(host string, port uint32, ns string, vips []string) []string {
	withPort := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n, fmt.Sprintf("%s:%d", n, port))
		}
		return out
	}
	names := []string{host}
	suffix := ".svc." + clusterDomain
	if strings.HasSuffix(host, suffix) {
		base := strings.TrimSuffix(host, suffix) // name.namespace
		parts := strings.SplitN(base, ".", 2)
		if len(parts) == 2 && parts[1] == ns {
			names = append(names, parts[0])
		}
		names = append(names, base, base+".svc")
	}
	out := withPort(names...)
	for _, v := range vips {
		if ip, err := netip.ParseAddr(v); err == nil {
			h := ip.String()
			if ip.Is6() {
				h = "[" + h + "]"
			}
			out = append(out, h, fmt.Sprintf("%s:%d", h, port))
		}
	}
	return out
}

const clusterDomain = "cluster.local"

package proxy

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/xdsmeta"
)

// Port is a service port the proxy announces (WEFT_SERVICE metadata).
type Port struct {
	Name     string
	Number   uint32
	Protocol string // Istio's canonical name, from Name when empty
}

// ParsePort parses a --port value: NAME:NUMBER ("http:9080") or NUMBER
// alone, which is named "http" (weft's apps speak HTTP unless told).
func ParsePort(s string) (Port, error) {
	name, num, ok := strings.Cut(s, ":")
	if !ok {
		name, num = "http", s
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 || name == "" {
		return Port{}, fmt.Errorf("port %q: want NAME:NUMBER (http:9080) with NUMBER in 1-65535", s)
	}
	return Port{Name: name, Number: uint32(n), Protocol: xdsmeta.ProtocolFromPortName(name)}, nil
}

// String formats the port as NAME:NUMBER.
func (p Port) String() string { return p.Name + ":" + strconv.FormatUint(uint64(p.Number), 10) }

// NodeID returns Istio's node ID TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local.
func NodeID(mode string, ip netip.Addr, name, namespace string) string {
	return fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", mode, ip, name, namespace, namespace)
}

// node builds the xDS node of the proxy: ID and Istio's metadata keys
// (docs/architecture.md).
func (o *Options) node(adminAddr string) (*core.Node, error) {
	labels := map[string]any{}
	for k, v := range o.Labels {
		labels[k] = v
	}
	md := map[string]any{
		"NAMESPACE":     o.Namespace,
		"WORKLOAD_NAME": o.Workload,
		"LABELS":        labels,
		"INSTANCE_IPS":  o.IP.String(),
		"ADMIN_ADDRESS": adminAddr,
		"ISTIO_VERSION": o.ProxyVersion,
	}
	if o.ServiceAccount != "" {
		md["SERVICE_ACCOUNT"] = o.ServiceAccount
	}
	if o.joinsMesh() {
		md["WEFT_MTLS"] = "true" // it holds a mesh certificate: peers speak mTLS to it
	}
	if o.Service != "" {
		ports := make([]any, 0, len(o.Ports))
		for _, p := range o.Ports {
			ports = append(ports, map[string]any{"name": p.Name, "number": float64(p.Number), "protocol": p.Protocol})
		}
		md["WEFT_SERVICE"] = map[string]any{"name": o.Service, "ports": ports}
	}
	st, err := structpb.NewStruct(md)
	if err != nil {
		return nil, fmt.Errorf("node metadata: %w", err)
	}
	return &core.Node{
		Locality:      locality(o.Locality),
		Id:            NodeID(o.Mode, o.IP, o.Name, o.Namespace),
		Cluster:       o.clusterName(),
		Metadata:      st,
		UserAgentName: "weft",
		UserAgentVersionType: &core.Node_UserAgentVersion{
			UserAgentVersion: o.ProxyVersion,
		},
	}, nil
}

// clusterName is Envoy's service cluster, Istio style: NAME.NAMESPACE of
// the workload's app.
func (o *Options) clusterName() string {
	app := o.Service
	if app == "" {
		app = o.Labels["app"]
	}
	if app == "" {
		app = o.Name
	}
	return app + "." + o.Namespace
}

// RandomLoopbackIP picks a free address 127.X.Y.Z (X, Y, Z random, Z not 0
// or 255): one whose outbound, inbound, admin and health ports can all be
// bound. Other processes can still take it later; the proxy binds it soon.
func RandomLoopbackIP(ports ...uint32) (netip.Addr, error) {
	for range 100 {
		var b [3]byte
		for i := range b {
			n, err := rand.Int(rand.Reader, big.NewInt(254))
			if err != nil {
				return netip.Addr{}, fmt.Errorf("random IP: %w", err)
			}
			b[i] = byte(n.Int64() + 1)
		}
		ip := netip.AddrFrom4([4]byte{127, b[0], b[1], b[2]})
		if free(ip, ports) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free 127.X.Y.Z address found for ports %v", ports)
}

// free reports whether every port can be bound on ip.
func free(ip netip.Addr, ports []uint32) bool {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for _, p := range ports {
		l, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(p)).String())
		if err != nil {
			return false
		}
		lns = append(lns, l)
	}
	return true
}

// randomSuffix returns n random lowercase letters and digits.
func randomSuffix(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// locality parses region/zone/subzone into the node's locality (nil: none).
func locality(s string) *core.Locality {
	if s == "" {
		return nil
	}
	parts := append(strings.SplitN(s, "/", 3), "", "")
	return &core.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
}

package xdsserver

import (
	"encoding/json"
	"fmt"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// Node metadata keys, as Istio's (see docs/architecture.md).
const (
	metaNamespace      = "NAMESPACE"
	metaWorkloadName   = "WORKLOAD_NAME"
	metaServiceAccount = "SERVICE_ACCOUNT"
	metaLabels         = "LABELS"
	metaInstanceIPs    = "INSTANCE_IPS"
	metaAdminAddress   = "ADMIN_ADDRESS"
	metaIstioVersion   = "ISTIO_VERSION"
	metaWeftService    = "WEFT_SERVICE"
	metaMTLS           = "WEFT_MTLS"
	metaGenerator      = "GENERATOR"
)

// ServicePort is one port of a WEFT_SERVICE announced by a proxy.
type ServicePort struct {
	Name     string `json:"name"`
	Number   uint32 `json:"number"`
	Protocol string `json:"protocol,omitempty"`
}

// ServiceInfo is a proxy's WEFT_SERVICE metadata: the service it asks to be
// registered under.
type ServiceInfo struct {
	Name  string        `json:"name"`
	Ports []ServicePort `json:"ports"`
}

// proxyInfo is what a proxy's xDS node says about it.
type proxyInfo struct {
	proxy   translate.Proxy
	admin   string
	version string
	// workload is the node's WORKLOAD_NAME (reviews-v2): "" = its name.
	workload string
	service  *ServiceInfo // nil: no auto-registration
	// generator is the node's GENERATOR: GeneratorGRPC for a proxyless
	// gRPC client, "" for a proxy.
	generator string
}

// workloadName is the node's workload: WORKLOAD_NAME, else its name.
func (info *proxyInfo) workloadName() string {
	if info.workload != "" {
		return info.workload
	}
	return info.proxy.Name
}

// parseNode reads the node ID (TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local)
// and metadata of a proxy. Metadata, when present, wins over the ID's parts.
func parseNode(node *core.Node) (*proxyInfo, error) {
	id := node.GetId()
	parts := strings.Split(id, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node id %q: want TYPE~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local", id)
	}
	typ := parts[0]
	if typ != translate.ProxySidecar && typ != translate.ProxyRouter {
		return nil, fmt.Errorf("node id %q: type %q is neither %q nor %q", id, typ, translate.ProxySidecar, translate.ProxyRouter)
	}
	name, ns := parts[2], ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name, ns = name[:i], name[i+1:]
	}
	info := &proxyInfo{proxy: translate.Proxy{ID: id, Type: typ, Name: name, Namespace: ns, IP: parts[1]}}
	if err := info.readMetadata(node.GetMetadata()); err != nil {
		return nil, fmt.Errorf("node %q: %w", id, err)
	}
	if info.proxy.Name == "" || info.proxy.Namespace == "" || info.proxy.IP == "" {
		return nil, fmt.Errorf("node id %q: missing name, namespace or IP", id)
	}
	if info.version == "" {
		info.version = node.GetUserAgentVersion()
	}
	if l := node.GetLocality(); l != nil && (l.GetRegion() != "" || l.GetZone() != "" || l.GetSubZone() != "") {
		info.proxy.Locality = strings.Join([]string{l.GetRegion(), l.GetZone(), l.GetSubZone()}, "/")
	}
	return info, nil
}

// readMetadata fills info from the node's metadata Struct.
func (info *proxyInfo) readMetadata(md *structpb.Struct) error {
	fields := md.GetFields()
	str := func(k string) string { return fields[k].GetStringValue() }
	if v := str(metaNamespace); v != "" {
		info.proxy.Namespace = v
	}
	// WORKLOAD_NAME is the workload (reviews-v2), not this instance: the
	// node ID names the instance, as a pod's name in Istio's node IDs.
	info.workload = str(metaWorkloadName)
	if v := str(metaInstanceIPs); v != "" {
		info.proxy.IP = strings.TrimSpace(strings.Split(v, ",")[0])
	}
	info.proxy.ServiceAccount = str(metaServiceAccount)
	info.proxy.MTLS = str(metaMTLS) == "true"
	info.admin = str(metaAdminAddress)
	info.version = str(metaIstioVersion)
	if l := fields[metaLabels].GetStructValue(); l != nil {
		info.proxy.Labels = make(map[string]string, len(l.GetFields()))
		for k, v := range l.GetFields() {
			info.proxy.Labels[k] = v.GetStringValue()
		}
	}
	info.generator = str(metaGenerator)
	svc, ok := fields[metaWeftService]
	// A proxyless client never registers itself (its workload is declared
	// with a WorkloadEntry, or by weft run).
	if !ok || info.generator == GeneratorGRPC {
		return nil
	}
	raw, err := svc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("metadata %s: %w", metaWeftService, err)
	}
	var si ServiceInfo
	if err := json.Unmarshal(raw, &si); err != nil {
		return fmt.Errorf("metadata %s: %w", metaWeftService, err)
	}
	if si.Name == "" {
		return fmt.Errorf("metadata %s: missing name", metaWeftService)
	}
	info.service = &si
	return nil
}

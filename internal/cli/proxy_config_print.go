package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
)

// dumpParts are the resources of a config dump, by type.
type dumpParts struct {
	listeners []*listener.Listener
	routes    []*route.RouteConfiguration
	clusters  []*cluster.Cluster
	endpoints []*endpoint.ClusterLoadAssignment
}

// splitDump decodes the dynamic resources of Envoy's ConfigDump.
func splitDump(d *adminv3.ConfigDump) (*dumpParts, error) {
	out := &dumpParts{}
	for _, a := range d.GetConfigs() {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", a.GetTypeUrl(), err)
		}
		if err := out.add(m); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *dumpParts) add(m proto.Message) error {
	var err error
	switch c := m.(type) {
	case *adminv3.ListenersConfigDump:
		for _, l := range c.GetDynamicListeners() {
			err = appendAs(&p.listeners, l.GetActiveState().GetListener(), err)
		}
	case *adminv3.RoutesConfigDump:
		for _, r := range c.GetDynamicRouteConfigs() {
			err = appendAs(&p.routes, r.GetRouteConfig(), err)
		}
	case *adminv3.ClustersConfigDump:
		for _, cl := range c.GetDynamicActiveClusters() {
			err = appendAs(&p.clusters, cl.GetCluster(), err)
		}
	case *adminv3.EndpointsConfigDump:
		for _, e := range c.GetDynamicEndpointConfigs() {
			err = appendAs(&p.endpoints, e.GetEndpointConfig(), err)
		}
	}
	return err
}

// appendAs decodes a packed resource of type M onto list, unless err is set.
func appendAs[M proto.Message](list *[]M, a interface {
	UnmarshalNew() (proto.Message, error)
	GetTypeUrl() string
}, err error) error {
	if err != nil || a == nil {
		return err
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("decoding %s: %w", a.GetTypeUrl(), err)
	}
	v, ok := m.(M)
	if !ok {
		return fmt.Errorf("unexpected %s in the config dump", a.GetTypeUrl())
	}
	*list = append(*list, v)
	return nil
}

// resources returns one kind's resources for -o json.
func (p *dumpParts) resources(kind string) []proto.Message {
	var out []proto.Message
	switch kind {
	case "listeners":
		for _, m := range p.listeners {
			out = append(out, m)
		}
	case "routes":
		for _, m := range p.routes {
			out = append(out, m)
		}
	case "clusters":
		for _, m := range p.clusters {
			out = append(out, m)
		}
	case "endpoints":
		for _, m := range p.endpoints {
			out = append(out, m)
		}
	}
	return out
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) }

// printListeners prints one row per filter chain, as istioctl does.
func printListeners(w io.Writer, ls []*listener.Listener) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "ADDRESSES\tPORT\tMATCH\tDESTINATION")
	for _, l := range ls {
		sa := l.GetAddress().GetSocketAddress()
		chains := l.GetFilterChains()
		if l.GetDefaultFilterChain() != nil {
			chains = append(chains[:len(chains):len(chains)], l.GetDefaultFilterChain())
		}
		for _, fc := range chains {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", sa.GetAddress(), sa.GetPortValue(), describeMatch(fc.GetFilterChainMatch()), describeDestination(fc))
		}
	}
	return tw.Flush()
}

func describeMatch(m *listener.FilterChainMatch) string {
	var parts []string
	if m.GetDestinationPort() != nil {
		addrs := []string{"*"}
		if len(m.GetPrefixRanges()) > 0 {
			addrs = addrs[:0]
			for _, r := range m.GetPrefixRanges() {
				addrs = append(addrs, fmt.Sprintf("%s/%d", r.GetAddressPrefix(), r.GetPrefixLen().GetValue()))
			}
		}
		parts = append(parts, "Addr: "+strings.Join(addrs, ",")+":"+strconv.Itoa(int(m.GetDestinationPort().GetValue())))
	}
	if len(m.GetServerNames()) > 0 {
		parts = append(parts, "SNI: "+strings.Join(m.GetServerNames(), ","))
	}
	if m.GetTransportProtocol() != "" {
		parts = append(parts, "Trans: "+m.GetTransportProtocol())
	}
	if len(m.GetApplicationProtocols()) > 0 {
		parts = append(parts, "App: "+strings.Join(m.GetApplicationProtocols(), ","))
	}
	if len(parts) == 0 {
		return "ALL"
	}
	return strings.Join(parts, "; ")
}

// describeDestination says where a filter chain sends traffic.
func describeDestination(fc *listener.FilterChain) string {
	for _, f := range fc.GetFilters() {
		tc := f.GetTypedConfig()
		h, tp := &hcm.HttpConnectionManager{}, &tcpproxy.TcpProxy{}
		switch {
		case tc.MessageIs(h) && tc.UnmarshalTo(h) == nil:
			if n := h.GetRds().GetRouteConfigName(); n != "" {
				return "Route: " + n
			}
			var paths []string
			for _, vh := range h.GetRouteConfig().GetVirtualHosts() {
				for _, r := range vh.GetRoutes() {
					paths = append(paths, describeRouteMatch(r.GetMatch()))
				}
			}
			return "Inline Route: " + strings.Join(paths, "; ")
		case tc.MessageIs(tp) && tc.UnmarshalTo(tp) == nil:
			if c := tp.GetCluster(); c != "" {
				if c == "PassthroughCluster" || c == "BlackHoleCluster" {
					return c
				}
				return "Cluster: " + c
			}
			var names []string
			for _, c := range tp.GetWeightedClusters().GetClusters() {
				names = append(names, c.GetName())
			}
			return "Clusters: " + strings.Join(names, ",")
		}
	}
	return "Non-HTTP/Non-TCP"
}

// printRoutes prints one row per route of every virtual host.
func printRoutes(w io.Writer, rcs []*route.RouteConfiguration) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tVHOST NAME\tDOMAINS\tMATCH\tVIRTUAL SERVICE")
	for _, rc := range rcs {
		for _, vh := range rc.GetVirtualHosts() {
			domains := describeDomains(vh.GetDomains())
			if len(vh.GetRoutes()) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t404\n", rc.GetName(), vh.GetName(), domains)
			}
			for _, r := range vh.GetRoutes() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rc.GetName(), vh.GetName(), domains,
					describeRouteMatch(r.GetMatch()), istioConfigName(r.GetMetadata(), "virtual-service"))
			}
		}
	}
	return tw.Flush()
}

// describeDomains shows at most two domains without a port, and how many
// more there are, as istioctl does.
func describeDomains(domains []string) string {
	if len(domains) == 1 {
		return domains[0]
	}
	var bare []string
	for _, d := range domains {
		if !strings.Contains(d, ":") {
			bare = append(bare, d)
		}
	}
	const shown = 2
	if len(bare) <= shown {
		return strings.Join(bare, ", ")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(bare[:shown], ", "), len(bare)-shown)
}

func describeRouteMatch(m *route.RouteMatch) string {
	var s string
	switch {
	case m.GetPath() != "":
		s = m.GetPath()
	case m.GetSafeRegex() != nil:
		s = m.GetSafeRegex().GetRegex()
	case m.GetPathSeparatedPrefix() != "":
		s = m.GetPathSeparatedPrefix() + "/*"
	default:
		s = m.GetPrefix() + "*"
	}
	if len(m.GetHeaders()) > 0 || len(m.GetQueryParameters()) > 0 {
		s += fmt.Sprintf(" (+%d header/query matches)", len(m.GetHeaders())+len(m.GetQueryParameters()))
	}
	return s
}

// istioConfigName reads Istio's filter_metadata istio.config
// (/apis/GROUP/VERSION/namespaces/NS/KIND/NAME) as NAME.NS when its kind
// matches.
func istioConfigName(md *core.Metadata, kind string) string {
	cfg := md.GetFilterMetadata()["istio"].GetFields()["config"].GetStringValue()
	parts := strings.Split(strings.Trim(cfg, "/"), "/")
	if len(parts) < 7 || parts[len(parts)-2] != kind {
		return ""
	}
	return parts[len(parts)-1] + "." + parts[len(parts)-3]
}

// printClusters prints one row per cluster, splitting Istio cluster names
// DIRECTION|PORT|SUBSET|FQDN into their columns.
func printClusters(w io.Writer, cs []*cluster.Cluster) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "SERVICE FQDN\tPORT\tSUBSET\tDIRECTION\tTYPE\tDESTINATION RULE")
	for _, c := range cs {
		fqdn, port, subset, dir := c.GetName(), "-", "-", "-"
		if parts := strings.Split(c.GetName(), "|"); len(parts) == 4 {
			dir, port, subset, fqdn = parts[0], parts[1], parts[2], parts[3]
			if subset == "" {
				subset = "-"
			}
		}
		typ := c.GetType().String()
		if c.GetClusterType() != nil {
			typ = c.GetClusterType().GetName()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fqdn, port, subset, dir, typ, istioConfigName(c.GetMetadata(), "destination-rule"))
	}
	return tw.Flush()
}

// printEndpoints prints one row per host of /clusters?format=json.
func printEndpoints(w io.Writer, cs *adminv3.Clusters) error {
	type row struct{ ep, status, outlier, cluster string }
	var rows []row
	for _, c := range cs.GetClusterStatuses() {
		for _, h := range c.GetHostStatuses() {
			sa := h.GetAddress().GetSocketAddress()
			outlier := "OK"
			if h.GetHealthStatus().GetFailedOutlierCheck() {
				outlier = "FAILED"
			}
			rows = append(rows, row{
				ep:     fmt.Sprintf("%s:%d", sa.GetAddress(), sa.GetPortValue()),
				status: h.GetHealthStatus().GetEdsHealthStatus().String(), outlier: outlier, cluster: c.GetName(),
			})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].ep != rows[j].ep {
			return rows[i].ep < rows[j].ep
		}
		return rows[i].cluster < rows[j].cluster
	})
	tw := newTable(w)
	fmt.Fprintln(tw, "ENDPOINT\tSTATUS\tOUTLIER CHECK\tCLUSTER")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ep, r.status, r.outlier, r.cluster)
	}
	return tw.Flush()
}

package dataplane

import (
	"net/netip"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	weftconfig "github.com/weft-mesh/weft/internal/xdsmeta"
)

// dnsHosts maps each service host to its VIPs, from the clusters'
// metadata (weftconfig.MetadataServiceAddresses), for the DNS proxy. Services
// without a VIP are left out, so their queries go to the upstream resolver.
func dnsHosts(clusters map[string]*cluster.Cluster) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, c := range clusters {
		md := c.GetMetadata().GetFilterMetadata()[weftconfig.MetadataServiceAddresses].GetFields()
		host := strings.ToLower(strings.TrimSuffix(md["host"].GetStringValue(), "."))
		if host == "" {
			continue
		}
		for _, v := range md["addresses"].GetListValue().GetValues() {
			ip, err := netip.ParseAddr(v.GetStringValue())
			if err == nil && !slices.Contains(out[host], ip) {
				out[host] = append(out[host], ip)
			}
		}
	}
	for _, ips := range out {
		slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	}
	return out
}

// DNSHosts returns the mesh hosts with their VIPs, from the clusters in
// effect (do not modify the map).
func (d *Dataplane) DNSHosts() map[string][]netip.Addr { return d.rt.Load().dnsHosts }

package dataplane

import (
	"net"
	"net/netip"
	"slices"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// dnsHosts maps each service host of the route configs (a virtual host
// named HOST:PORT) to the VIPs among its domains, for the DNS proxy. Hosts
// without a VIP are left out, so their queries go to the upstream resolver.
func dnsHosts(routes map[string]*route.RouteConfiguration) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, rc := range routes {
		for _, vh := range rc.GetVirtualHosts() {
			host, _, err := net.SplitHostPort(vh.GetName())
			if err != nil || strings.Contains(host, "*") {
				continue
			}
			if _, err := netip.ParseAddr(host); err == nil {
				continue
			}
			host = strings.ToLower(host)
			for _, d := range vh.GetDomains() {
				ip, ok := domainIP(d)
				if ok && !slices.Contains(out[host], ip) {
					out[host] = append(out[host], ip)
				}
			}
		}
	}
	for _, ips := range out {
		slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	}
	return out
}

// domainIP parses a virtual host domain that is an address: IP, IP:PORT,
// [IPv6] or [IPv6]:PORT.
func domainIP(d string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(d); err == nil {
		return ip, true
	}
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		ip, err := netip.ParseAddr(d[1 : len(d)-1])
		return ip, err == nil
	}
	if h, _, err := net.SplitHostPort(d); err == nil {
		ip, err := netip.ParseAddr(h)
		return ip, err == nil
	}
	return netip.Addr{}, false
}

// DNSHosts returns the mesh hosts with their VIPs, from the route configs
// in effect (do not modify the map).
func (d *Dataplane) DNSHosts() map[string][]netip.Addr { return d.rt.Load().dnsHosts }

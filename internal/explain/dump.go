package explain

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbacfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// ObjectOf reads the Istio object a resource came from out of its
// istio.config metadata (/apis/GROUP/VERSION/namespaces/NS/KIND/NAME).
func ObjectOf(md *core.Metadata) *Object {
	path := md.GetFilterMetadata()["istio"].GetFields()["config"].GetStringValue()
	if path == "" {
		return nil
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// apis, group, version, namespaces, NS, kind, NAME
	if len(parts) != 7 || parts[3] != "namespaces" {
		return nil
	}
	kinds := map[string]string{"destination-rule": "DestinationRule", "virtual-service": "VirtualService"}
	kind := kinds[parts[5]]
	if kind == "" {
		kind = parts[5]
	}
	return &Object{Kind: kind, Namespace: parts[4], Name: parts[6]}
}

// ClusterOf builds what the proxy knows of cluster c from its config and
// its status on /clusters (st may be nil).
func ClusterOf(c *cluster.Cluster, st *adminv3.ClusterStatus) *Cluster {
	out := &Cluster{Name: c.GetName(), DestinationRule: ObjectOf(c.GetMetadata()), OutlierDetection: c.GetOutlierDetection() != nil}
	out.Service, out.Port, out.Subset, _ = ParseClusterName(c.GetName())
	for _, th := range c.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != core.RoutingPriority_DEFAULT {
			continue
		}
		set := func(name string, v interface{ GetValue() uint32 }, present bool) {
			if !present || v.GetValue() == ^uint32(0) {
				return
			}
			if out.Breakers == nil {
				out.Breakers = map[string]uint32{}
			}
			out.Breakers[name] = v.GetValue()
		}
		set("maxPendingRequests", th.GetMaxPendingRequests(), th.GetMaxPendingRequests() != nil)
		set("maxRequests", th.GetMaxRequests(), th.GetMaxRequests() != nil)
		set("maxConnections", th.GetMaxConnections(), th.GetMaxConnections() != nil)
		set("maxRetries", th.GetMaxRetries(), th.GetMaxRetries() != nil)
	}
	for _, h := range st.GetHostStatuses() {
		sa := h.GetAddress().GetSocketAddress()
		out.Endpoints = append(out.Endpoints, Endpoint{
			Address: joinHostPort(sa.GetAddress(), sa.GetPortValue()),
			Healthy: h.GetHealthStatus().GetEdsHealthStatus() != core.HealthStatus_UNHEALTHY &&
				!h.GetHealthStatus().GetFailedOutlierCheck(),
		})
	}
	return out
}

func joinHostPort(host string, port uint32) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.FormatUint(uint64(port), 10)
}

// Domains lists the virtual host domains of route configs, sorted.
func Domains(rcs []*route.RouteConfiguration) []string {
	seen := map[string]bool{}
	var out []string
	for _, rc := range rcs {
		for _, vh := range rc.GetVirtualHosts() {
			for _, d := range vh.GetDomains() {
				if !seen[d] {
					seen[d] = true
					out = append(out, d)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

var policyName = regexp.MustCompile(`^ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[\d+\]$`)

// AuthzOf reads the AuthorizationPolicies the inbound RBAC filters of a
// proxy's listeners enforce (Istio's ns[NS]-policy[NAME]-rule[N] names).
func AuthzOf(proxy string, ls []*listener.Listener) *Authz {
	a := &Authz{Proxy: proxy}
	seen := map[string]bool{}
	for _, l := range ls {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if !f.GetTypedConfig().MessageIs(m) || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				for _, hf := range m.GetHttpFilters() {
					r := &rbacfilter.RBAC{}
					if !hf.GetTypedConfig().MessageIs(r) || hf.GetTypedConfig().UnmarshalTo(r) != nil || r.GetRules() == nil {
						continue
					}
					action := r.GetRules().GetAction()
					if action == rbacv3.RBAC_ALLOW {
						a.AllowFilter = true
					}
					for name := range r.GetRules().GetPolicies() {
						mm := policyName.FindStringSubmatch(name)
						if mm == nil || seen[action.String()+mm[1]+"/"+mm[2]] {
							continue
						}
						seen[action.String()+mm[1]+"/"+mm[2]] = true
						o := Object{Kind: "AuthorizationPolicy", Namespace: mm[1], Name: mm[2]}
						switch action {
						case rbacv3.RBAC_DENY:
							a.Deny = append(a.Deny, o)
						case rbacv3.RBAC_ALLOW:
							a.Allow = append(a.Allow, o)
						}
					}
				}
			}
		}
	}
	sortObjects(a.Deny)
	sortObjects(a.Allow)
	return a
}

func sortObjects(os []Object) {
	sort.Slice(os, func(i, j int) bool { return os[i].String() < os[j].String() })
}

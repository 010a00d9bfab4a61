package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	networking "istio.io/api/networking/v1alpha3"
	security "istio.io/api/security/v1beta1"
	telemetry "istio.io/api/telemetry/v1alpha1"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// A sidecar's config splits in two parts:
//
//   - the shared part: outbound listeners (0.0.0.0_PORT), their route
//     configurations, the outbound clusters and their endpoints. It depends on
//     the proxy only through its ViewKey, so every proxy with the same key
//     gets the very same (immutable) resources, translated once;
//   - the own part: virtualOutbound (bound to the proxy's IP), virtualInbound
//     and the inbound clusters, which only that proxy has.
//
// Merge(BuildShared(in), BuildOwn(in)) equals Build(in) (share_test.go).

// part selects what a builder translates.
type part int

const (
	partAll    part = iota // Build: the whole config
	partShared             // BuildShared: what every proxy of a view shares
	partOwn                // BuildOwn: what only this proxy has
)

// ViewKey names the proxies that share one shared part: sidecars of the
// same namespace, locality and mTLS ability, matched by the same label
// selectors of the config (Sidecar, VirtualService sourceLabels, Telemetry
// and the policies), get equal shared parts. ok is false when the config of
// this proxy cannot be split (gateways, or EnvoyFilters that apply to it):
// use Build.
func ViewKey(in Input) (key string, ok bool) {
	if in.Proxy.Type == ProxyRouter {
		return "", false
	}
	var matched []string
	for _, o := range in.Config {
		switch o.Kind {
		case config.KindEnvoyFilter:
			if o.Namespace == RootNamespace || o.Namespace == in.Proxy.Namespace {
				sel := o.Spec.(*networking.EnvoyFilter).GetWorkloadSelector().GetLabels()
				if len(sel) == 0 || registry.Matches(sel, in.Proxy.Labels) {
					return "", false
				}
			}
			continue
		}
		for i, sel := range proxySelectors(o) {
			if len(sel) > 0 && registry.Matches(sel, in.Proxy.Labels) {
				matched = append(matched, fmt.Sprintf("%s/%s/%s#%d", o.Kind, o.Namespace, o.Name, i))
			}
		}
	}
	sort.Strings(matched)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%t\x00%s", in.Proxy.Type, in.Proxy.Namespace, in.Proxy.Locality, in.Proxy.MTLS, strings.Join(matched, "\x00"))
	return hex.EncodeToString(h.Sum(nil))[:24], true
}

// proxySelectors lists the label selectors of o that translate matches
// against the labels of the proxy it builds for.
func proxySelectors(o *config.Object) []map[string]string {
	switch s := o.Spec.(type) {
	case *networking.Sidecar:
		return []map[string]string{s.GetWorkloadSelector().GetLabels()}
	case *telemetry.Telemetry:
		return []map[string]string{s.GetSelector().GetMatchLabels()}
	case *security.PeerAuthentication:
		return []map[string]string{s.GetSelector().GetMatchLabels()}
	case *security.AuthorizationPolicy:
		return []map[string]string{s.GetSelector().GetMatchLabels()}
	case *security.RequestAuthentication:
		return []map[string]string{s.GetSelector().GetMatchLabels()}
	case *networking.VirtualService:
		var out []map[string]string
		for _, r := range s.GetHttp() {
			for _, m := range r.GetMatch() {
				out = append(out, m.GetSourceLabels())
			}
		}
		for _, r := range s.GetTls() {
			for _, m := range r.GetMatch() {
				out = append(out, m.GetSourceLabels())
			}
		}
		for _, r := range s.GetTcp() {
			for _, m := range r.GetMatch() {
				out = append(out, m.GetSourceLabels())
			}
		}
		return out
	}
	return nil
}

// BuildShared returns the shared part of a sidecar's config (see ViewKey):
// outbound listeners, routes, clusters and endpoints. Its resources must
// not be modified: they are handed to every proxy of the view.
func BuildShared(in Input) (*Output, error) { return build(in, partShared) }

// BuildOwn returns the part of a sidecar's config only it has:
// virtualOutbound, virtualInbound and the inbound clusters.
func BuildOwn(in Input) (*Output, error) { return build(in, partOwn) }

// Merge joins a proxy's shared and own parts into its whole config, in
// Build's order; it copies only the slices, never a resource.
func Merge(shared, own *Output) *Output {
	out := &Output{Versions: make(map[string]string, len(shared.Versions))}
	// Build puts virtualOutbound first and virtualInbound last.
	out.Listeners = make([]types.Resource, 0, len(shared.Listeners)+len(own.Listeners))
	var after []types.Resource
	for _, l := range own.Listeners {
		if resourceName(l) == VirtualOutbound {
			out.Listeners = append(out.Listeners, l)
		} else {
			after = append(after, l)
		}
	}
	out.Listeners = append(append(out.Listeners, shared.Listeners...), after...)
	out.Routes = joinSorted(shared.Routes, own.Routes, false)
	out.Clusters = joinSorted(shared.Clusters, own.Clusters, true)
	out.Endpoints = joinSorted(shared.Endpoints, own.Endpoints, false)
	for t, v := range shared.Versions {
		out.Versions[t] = combineVersions(v, own.Versions[t])
	}
	// Both parts warn about what both read (the Sidecar, say): once is enough.
	seen := make(map[string]bool, len(shared.Warnings))
	for _, w := range append(append([]string(nil), shared.Warnings...), own.Warnings...) {
		if !seen[w] {
			seen[w] = true
			out.Warnings = append(out.Warnings, w)
		}
	}
	return out
}

// joinSorted appends b to a; with byName, the result is merged by name
// (both inputs are sorted by name, as Build sorts clusters).
func joinSorted(a, b []types.Resource, byName bool) []types.Resource {
	if len(b) == 0 {
		return a
	}
	out := make([]types.Resource, 0, len(a)+len(b))
	if !byName {
		return append(append(out, a...), b...)
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if resourceName(b[j]) < resourceName(a[i]) {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	return append(append(out, a[i:]...), b[j:]...)
}

// combineVersions is the version of a type made of two parts.
func combineVersions(a, b string) string {
	if b == "" {
		return a
	}
	h := sha256.Sum256([]byte(a + "+" + b))
	return hex.EncodeToString(h[:])[:16]
}

// HasProxySelectors says whether o selects proxies by their labels, so that
// a change to it can move proxies from one view to another (ViewKey).
func HasProxySelectors(o *config.Object) bool {
	if o.Kind == config.KindEnvoyFilter {
		return true
	}
	for _, sel := range proxySelectors(o) {
		if len(sel) > 0 {
			return true
		}
	}
	return false
}

// ServicesConcerned returns the hostnames of the services whose shared
// resources a change to the objects changed (their old and their new
// versions) can alter, given every VirtualService of the configs (old and
// new): a VirtualService its hosts' virtual hosts, a DestinationRule its
// host's clusters and the routes that lead to it. all is true when any
// service can be concerned (other kinds, delegates, wildcard hosts).
func ServicesConcerned(changed []*config.Object, configs ...[]*config.Object) (hosts map[string]bool, all bool) {
	hosts = map[string]bool{}
	drHosts := map[string]bool{}
	for _, o := range changed {
		switch s := o.Spec.(type) {
		case *networking.VirtualService:
			if !addHosts(hosts, s.GetHosts(), o.Namespace) {
				return nil, true
			}
		case *networking.DestinationRule:
			h := config.ResolveHost(s.GetHost(), o.Namespace)
			if strings.Contains(h, "*") {
				return nil, true
			}
			hosts[h], drHosts[h] = true, true
		default:
			return nil, true
		}
	}
	if len(drHosts) == 0 {
		return hosts, false
	}
	// Routes carry the hash policy of their destination's DestinationRule.
	for _, objs := range configs {
		for _, o := range objs {
			vs, ok := o.Spec.(*networking.VirtualService)
			if !ok {
				continue
			}
			for _, d := range destinationHosts(vs) {
				if drHosts[config.ResolveHost(d, o.Namespace)] && !addHosts(hosts, vs.GetHosts(), o.Namespace) {
					return nil, true
				}
			}
		}
	}
	return hosts, false
}

// addHosts adds a VirtualService's resolved hosts to set; false when they
// cannot be told (none: a delegate; a wildcard).
func addHosts(set map[string]bool, hosts []string, namespace string) bool {
	if len(hosts) == 0 {
		return false
	}
	for _, h := range hosts {
		r := config.ResolveHost(h, namespace)
		if strings.Contains(r, "*") {
			return false
		}
		set[r] = true
	}
	return true
}

// destinationHosts lists every destination host a VirtualService names.
func destinationHosts(vs *networking.VirtualService) []string {
	var out []string
	for _, r := range vs.GetHttp() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination().GetHost())
		}
		out = append(out, r.GetMirror().GetHost())
		for _, m := range r.GetMirrors() {
			out = append(out, m.GetDestination().GetHost())
		}
	}
	for _, r := range vs.GetTcp() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination().GetHost())
		}
	}
	for _, r := range vs.GetTls() {
		for _, d := range r.GetRoute() {
			out = append(out, d.GetDestination().GetHost())
		}
	}
	return out
}

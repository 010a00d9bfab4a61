package analyze

import (
	"strings"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

// hostIndex answers "does this host exist?" from the registry's services.
type hostIndex struct {
	reg       *registry.Registry
	wildcards []string // ServiceEntry hosts such as "*.example.com"
}

func newHostIndex(reg *registry.Registry) hostIndex {
	h := hostIndex{reg: reg}
	for _, s := range reg.Services {
		if strings.HasPrefix(s.Hostname, "*") {
			h.wildcards = append(h.wildcards, s.Hostname)
		}
	}
	return h
}

// lookup finds the service a destination host names, written in namespace
// ns: the short name resolved as Istio does ("reviews" in default is
// reviews.default.svc.cluster.local), else the host as written (an external
// "example.com"), else a wildcard ServiceEntry host that matches it. The
// service is nil when only a wildcard matched.
func (h hostIndex) lookup(host, ns string) (svc *registry.Service, found bool) {
	for _, c := range candidates(host, ns) {
		if s := h.reg.Service(c); s != nil {
			return s, true
		}
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	for _, w := range h.wildcards {
		if hostsOverlap(w, lower) {
			return nil, true
		}
	}
	return nil, false
}

// candidates are the FQDNs a host written in namespace ns may mean.
func candidates(host, ns string) []string {
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	resolved := config.ResolveHost(host, ns)
	if resolved == lower {
		return []string{resolved}
	}
	return []string{resolved, lower}
}

// sameHost reports whether a (written in namespace nsA) and b (in nsB)
// name the same service, as Istio compares a DestinationRule's host with a
// destination's.
func sameHost(a, nsA, b, nsB string) bool {
	ra, rb := config.ResolveHost(a, nsA), config.ResolveHost(b, nsB)
	return ra == rb || hostsOverlap(ra, rb) && (strings.HasPrefix(ra, "*") || strings.HasPrefix(rb, "*"))
}

// hostsOverlap reports whether two host names, either possibly a wildcard
// ("*", "*.example.com"), can name the same host, as Istio's
// host.Name.Matches.
func hostsOverlap(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b || a == "*" || b == "*" {
		return true
	}
	wa, wb := strings.HasPrefix(a, "*"), strings.HasPrefix(b, "*")
	switch {
	case wa && wb:
		return strings.HasSuffix(a, b[1:]) || strings.HasSuffix(b, a[1:])
	case wa:
		return strings.HasSuffix(b, a[1:])
	case wb:
		return strings.HasSuffix(a, b[1:])
	}
	return false
}

// gatewayHost strips the namespace part of a Gateway server host
// ("ns/host", "*/host", "./host").
func gatewayHost(h string) string {
	if i := strings.IndexByte(h, '/'); i >= 0 {
		return h[i+1:]
	}
	return h
}

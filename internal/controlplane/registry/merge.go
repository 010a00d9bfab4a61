package registry

import "sort"

// Sort orders r's services by Hostname, as Service's lookup needs.
func Sort(r *Registry) {
	sort.Slice(r.Services, func(i, j int) bool { return r.Services[i].Hostname < r.Services[j].Hostname })
}

// Merge returns a registry with the services of every one of regs (nil
// ones skipped). Where two have the same hostname the earlier one wins, so
// callers list the Kubernetes registry first: as in Istio, a Kubernetes
// Service hides a ServiceEntry of the same host. The inputs are not
// modified; services are shared.
func Merge(regs ...*Registry) *Registry {
	out := &Registry{}
	seen := map[string]bool{}
	for _, r := range regs {
		if r == nil {
			continue
		}
		for _, s := range r.Services {
			if !seen[s.Hostname] {
				seen[s.Hostname] = true
				out.Services = append(out.Services, s)
			}
		}
	}
	Sort(out)
	return out
}

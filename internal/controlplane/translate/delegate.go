package translate

import (
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// expandDelegates replaces every http route that delegates with the
// delegate VirtualService's routes, their matches merged with the parent's
// as Istio merges them (the child's conditions, the parent's where the
// child sets none). Delegation is one level deep, as in Istio.
func (b *builder) expandDelegates(o *config.Object, routes []*networking.HTTPRoute) []*networking.HTTPRoute {
	var out []*networking.HTTPRoute
	for i, hr := range routes {
		d := hr.GetDelegate()
		if d == nil {
			out = append(out, hr)
			continue
		}
		ns := d.GetNamespace()
		if ns == "" {
			ns = o.Namespace
		}
		child := b.virtualService(ns, d.GetName())
		if child == nil {
			b.warn(o, "spec.http["+itoa(i)+"].delegate", "VirtualService "+ns+"/"+d.GetName()+" not found; the route is skipped")
			continue
		}
		for _, cr := range child.Spec.(*networking.VirtualService).GetHttp() {
			if cr.GetDelegate() != nil {
				b.warn(child, "spec.http.delegate", "a delegate VirtualService cannot delegate again; the route is skipped")
				continue
			}
			merged := proto.Clone(cr).(*networking.HTTPRoute)
			merged.Match = mergeMatches(hr.GetMatch(), cr.GetMatch())
			if merged.Name == "" {
				merged.Name = hr.GetName()
			}
			out = append(out, merged)
		}
	}
	return out
}

// virtualService finds a VirtualService by namespace and name.
func (b *builder) virtualService(ns, name string) *config.Object {
	for _, o := range b.vs {
		if o.Namespace == ns && o.Name == name {
			return o
		}
	}
	return nil
}

func mergeMatches(parents, children []*networking.HTTPMatchRequest) []*networking.HTTPMatchRequest {
	switch {
	case len(parents) == 0:
		return children
	case len(children) == 0:
		return parents
	}
	var out []*networking.HTTPMatchRequest
	for _, p := range parents {
		for _, c := range children {
			out = append(out, mergeMatch(p, c))
		}
	}
	return out
}

func mergeMatch(p, c *networking.HTTPMatchRequest) *networking.HTTPMatchRequest {
	m := proto.Clone(c).(*networking.HTTPMatchRequest)
	if m.Uri == nil {
		m.Uri = p.GetUri()
	}
	if m.Scheme == nil {
		m.Scheme = p.GetScheme()
	}
	if m.Method == nil {
		m.Method = p.GetMethod()
	}
	if m.Authority == nil {
		m.Authority = p.GetAuthority()
	}
	if m.Port == 0 {
		m.Port = p.GetPort()
	}
	m.IgnoreUriCase = m.IgnoreUriCase || p.GetIgnoreUriCase()
	union := func(dst *map[string]*networking.StringMatch, src map[string]*networking.StringMatch) {
		for k, v := range src {
			if *dst == nil {
				*dst = map[string]*networking.StringMatch{}
			}
			if _, ok := (*dst)[k]; !ok {
				(*dst)[k] = v
			}
		}
	}
	union(&m.Headers, p.GetHeaders())
	union(&m.QueryParams, p.GetQueryParams())
	union(&m.WithoutHeaders, p.GetWithoutHeaders())
	for k, v := range p.GetSourceLabels() {
		if m.SourceLabels == nil {
			m.SourceLabels = map[string]string{}
		}
		if _, ok := m.SourceLabels[k]; !ok {
			m.SourceLabels[k] = v
		}
	}
	if m.SourceNamespace == "" {
		m.SourceNamespace = p.GetSourceNamespace()
	}
	return m
}

package config

import (
	"fmt"
	"sort"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

// virtualService checks a VirtualService. A VirtualService with no hosts and
// no gateways is a delegate (Istio's route delegation) and is allowed.
func (v *validator) virtualService(vs *networking.VirtualService) {
	delegate := len(vs.GetHosts()) == 0 && len(vs.GetGateways()) == 0 && len(vs.GetTcp()) == 0 && len(vs.GetTls()) == 0
	if len(vs.GetHosts()) == 0 && !delegate {
		v.add("spec.hosts", "at least one host is required")
	}
	meshBound := len(vs.GetGateways()) == 0
	for i, g := range vs.GetGateways() {
		if g == "" {
			v.add(fmt.Sprintf("spec.gateways[%d]", i), "gateway name must not be empty")
		}
		if g == "mesh" {
			meshBound = true
		}
	}
	for i, h := range vs.GetHosts() {
		path := fmt.Sprintf("spec.hosts[%d]", i)
		if h == "*" && meshBound {
			v.add(path, "host \"*\" is only allowed for a VirtualService bound to gateways (not \"mesh\")")
			continue
		}
		v.host(path, h, false)
	}
	if len(vs.GetHttp())+len(vs.GetTcp())+len(vs.GetTls()) == 0 {
		v.add("spec", "at least one of http, tcp or tls routes is required")
	}
	for i, r := range vs.GetHttp() {
		v.httpRoute(fmt.Sprintf("spec.http[%d]", i), r, delegate)
	}
	for i, r := range vs.GetTcp() {
		path := fmt.Sprintf("spec.tcp[%d]", i)
		v.routeDestinations(path+".route", r.GetRoute())
		for j, m := range r.GetMatch() {
			v.labels(fmt.Sprintf("%s.match[%d].sourceLabels", path, j), m.GetSourceLabels())
		}
	}
	for i, r := range vs.GetTls() {
		path := fmt.Sprintf("spec.tls[%d]", i)
		if len(r.GetMatch()) == 0 {
			v.add(path+".match", "a tls route needs at least one match")
		}
		for j, m := range r.GetMatch() {
			if len(m.GetSniHosts()) == 0 {
				v.add(fmt.Sprintf("%s.match[%d].sniHosts", path, j), "at least one SNI host is required")
			}
		}
		v.routeDestinations(path+".route", r.GetRoute())
	}
}

// httpRoute checks one http route.
func (v *validator) httpRoute(path string, r *networking.HTTPRoute, delegate bool) {
	v.httpActions(path, r, delegate)
	for i, m := range r.GetMatch() {
		v.httpMatch(fmt.Sprintf("%s.match[%d]", path, i), m)
	}
	for i, d := range r.GetRoute() {
		dp := fmt.Sprintf("%s.route[%d]", path, i)
		v.destination(dp+".destination", d.GetDestination())
		if d.GetWeight() < 0 {
			v.add(dp+".weight", "weight %d must not be negative", d.GetWeight())
		}
	}
	if rw := r.GetRewrite(); rw != nil && rw.GetUriRegexRewrite() != nil {
		if rw.GetUri() != "" {
			v.add(path+".rewrite", "uri and uriRegexRewrite are mutually exclusive")
		}
		v.regex(path+".rewrite.uriRegexRewrite.match", rw.GetUriRegexRewrite().GetMatch())
	}
	v.durationAtLeast(path+".timeout", r.GetTimeout())
	v.retries(path+".retries", r.GetRetries())
	v.fault(path+".fault", r.GetFault())
	if m := r.GetMirror(); m != nil {
		v.destination(path+".mirror", m)
	}
	if r.GetMirrorPercentage() != nil {
		v.percent(path+".mirrorPercentage.value", r.GetMirrorPercentage())
	}
	for i, mp := range r.GetMirrors() {
		v.destination(fmt.Sprintf("%s.mirrors[%d].destination", path, i), mp.GetDestination())
		if mp.GetPercentage() != nil {
			v.percent(fmt.Sprintf("%s.mirrors[%d].percentage.value", path, i), mp.GetPercentage())
		}
	}
	for i, o := range r.GetCorsPolicy().GetAllowOrigins() {
		v.stringMatch(fmt.Sprintf("%s.corsPolicy.allowOrigins[%d]", path, i), o)
	}
}

// httpActions checks that a route has exactly one action and that its
// redirect, direct response or delegate is well formed.
func (v *validator) httpActions(path string, r *networking.HTTPRoute, delegate bool) {
	actions := 0
	for _, set := range []bool{len(r.GetRoute()) > 0, r.GetRedirect() != nil, r.GetDirectResponse() != nil, r.GetDelegate() != nil} {
		if set {
			actions++
		}
	}
	switch {
	case actions == 0:
		v.add(path, "needs a route (destination), redirect, directResponse or delegate")
	case actions > 1:
		v.add(path, "route, redirect, directResponse and delegate are mutually exclusive; set exactly one")
	}
	if r.GetDelegate() != nil {
		if delegate {
			v.add(path+".delegate", "a delegate VirtualService must not delegate again")
		}
		if r.GetDelegate().GetName() == "" {
			v.add(path+".delegate.name", "must not be empty")
		}
	}
	if rd := r.GetRedirect(); rd != nil {
		if rd.GetUri() == "" && rd.GetAuthority() == "" && rd.GetScheme() == "" && rd.GetPort() == 0 && rd.GetDerivePort() == 0 {
			v.add(path+".redirect", "a redirect must set uri, authority, scheme or port")
		}
		if c := rd.GetRedirectCode(); c != 0 && (c < 300 || c > 399) {
			v.add(path+".redirect.redirectCode", "%d is not a 3xx code", c)
		}
	}
	if dr := r.GetDirectResponse(); dr != nil && (dr.GetStatus() < 200 || dr.GetStatus() > 599) {
		v.add(path+".directResponse.status", "%d is not in 200-599", dr.GetStatus())
	}
}

// httpMatch checks one http match: its regexes must compile.
func (v *validator) httpMatch(path string, m *networking.HTTPMatchRequest) {
	v.stringMatch(path+".uri", m.GetUri())
	v.stringMatch(path+".scheme", m.GetScheme())
	v.stringMatch(path+".method", m.GetMethod())
	v.stringMatch(path+".authority", m.GetAuthority())
	for _, group := range []struct {
		name string
		m    map[string]*networking.StringMatch
	}{{"headers", m.GetHeaders()}, {"queryParams", m.GetQueryParams()}, {"withoutHeaders", m.GetWithoutHeaders()}} {
		for _, k := range sortedMatchKeys(group.m) {
			if k == "" {
				v.add(path+"."+group.name, "header or parameter name must not be empty")
			}
			v.stringMatch(path+"."+group.name+"["+k+"]", group.m[k])
		}
	}
	if m.GetPort() > 65535 {
		v.add(path+".port", "port number %d is not in 1-65535", m.GetPort())
	}
	v.labels(path+".sourceLabels", m.GetSourceLabels())
}

// stringMatch checks a StringMatch's regex, if any.
func (v *validator) stringMatch(path string, m *networking.StringMatch) {
	if re, ok := m.GetMatchType().(*networking.StringMatch_Regex); ok {
		v.regex(path+".regex", re.Regex)
	}
}

// destination checks a Destination: host, subset and port.
func (v *validator) destination(path string, d *networking.Destination) {
	if d == nil {
		v.add(path, "a destination is required")
		return
	}
	v.host(path+".host", d.GetHost(), false)
	if d.GetHost() == "*" {
		v.add(path+".host", "a destination host must not be \"*\"")
	}
	if s := d.GetSubset(); s != "" && (len(s) > 63 || !dns1123Label.MatchString(s)) {
		v.add(path+".subset", "%q is not a valid subset name (lower-case letters, digits and '-')", s)
	}
	if p := d.GetPort(); p != nil && p.GetNumber() > 65535 {
		v.add(path+".port.number", "port number %d is not in 1-65535", p.GetNumber())
	}
}

// routeDestinations checks weighted L4 destinations.
func (v *validator) routeDestinations(path string, ds []*networking.RouteDestination) {
	if len(ds) == 0 {
		v.add(path, "at least one destination is required")
	}
	for i, d := range ds {
		dp := fmt.Sprintf("%s[%d]", path, i)
		v.destination(dp+".destination", d.GetDestination())
		if d.GetWeight() < 0 {
			v.add(dp+".weight", "weight %d must not be negative", d.GetWeight())
		}
	}
}

// retries checks a retry policy.
func (v *validator) retries(path string, r *networking.HTTPRetry) {
	if r == nil {
		return
	}
	if r.GetAttempts() < 0 {
		v.add(path+".attempts", "%d must not be negative", r.GetAttempts())
	}
	v.durationAtLeast(path+".perTryTimeout", r.GetPerTryTimeout())
}

// fault checks fault injection: a delay needs a duration, an abort a code,
// and percentages are within 0-100.
func (v *validator) fault(path string, f *networking.HTTPFaultInjection) {
	if f == nil {
		return
	}
	if f.GetDelay() == nil && f.GetAbort() == nil {
		v.add(path, "needs a delay or an abort")
	}
	if d := f.GetDelay(); d != nil {
		if d.GetFixedDelay() == nil && d.GetExponentialDelay() == nil {
			v.add(path+".delay.fixedDelay", "a delay needs fixedDelay")
		}
		v.durationAtLeast(path+".delay.fixedDelay", d.GetFixedDelay())
		v.percent(path+".delay.percentage.value", d.GetPercentage())
	}
	if a := f.GetAbort(); a != nil {
		if _, ok := a.GetErrorType().(*networking.HTTPFaultInjection_Abort_HttpStatus); ok && (a.GetHttpStatus() < 200 || a.GetHttpStatus() > 599) {
			v.add(path+".abort.httpStatus", "%d is not in 200-599", a.GetHttpStatus())
		}
		if a.GetErrorType() == nil {
			v.add(path+".abort", "an abort needs httpStatus")
		}
		v.percent(path+".abort.percentage.value", a.GetPercentage())
	}
}

// percent checks a Percent is within 0-100.
func (v *validator) percent(path string, p *networking.Percent) {
	if val := p.GetValue(); val < 0 || val > 100 || val != val {
		v.add(path, "%v is not in 0-100", val)
	}
}

// durationAtLeast checks an optional duration is valid and not negative.
func (v *validator) durationAtLeast(path string, d *durationpb.Duration) {
	if d == nil {
		return
	}
	if err := d.CheckValid(); err != nil {
		v.add(path, "invalid duration: %v", err)
		return
	}
	if d.AsDuration() < 0 {
		v.add(path, "duration %s must not be negative", d.AsDuration())
	}
}

func sortedMatchKeys(m map[string]*networking.StringMatch) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

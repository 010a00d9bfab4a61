package dataplane

import (
	"fmt"
	"regexp"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// rewrite is a route's compiled path and authority rewrite.
type rewrite struct {
	prefix    string // prefix_rewrite: replaces the matched prefix (or the whole path)
	hasPrefix bool
	re        *regexp.Regexp // regex_rewrite
	sub       string
	authority string // host_rewrite_literal
}

func compileRewrite(out *rroute, ra *route.RouteAction) error {
	rw := &rewrite{prefix: ra.GetPrefixRewrite(), hasPrefix: ra.GetPrefixRewrite() != ""}
	if rr := ra.GetRegexRewrite(); rr != nil {
		if rw.hasPrefix {
			return fmt.Errorf("route: prefix_rewrite and regex_rewrite are exclusive")
		}
		re, err := regexp.Compile(rr.GetPattern().GetRegex())
		if err != nil {
			return fmt.Errorf("route.regex_rewrite: %w", err)
		}
		rw.re, rw.sub = re, envoySubstitution(rr.GetSubstitution())
	}
	switch h := ra.GetHostRewriteSpecifier().(type) {
	case nil:
	case *route.RouteAction_HostRewriteLiteral:
		rw.authority = h.HostRewriteLiteral
	default:
		return fmt.Errorf("route: host rewrite %T is not supported (only host_rewrite_literal)", h)
	}
	if rw.hasPrefix || rw.re != nil || rw.authority != "" {
		out.rewrite = rw
	}
	return nil
}

// envoySubstitution turns Envoy's \1 group references into Go's ${1}.
func envoySubstitution(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			b.WriteString("${" + string(s[i+1]) + "}")
			i++
			continue
		}
		if s[i] == '$' {
			b.WriteString("$$")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// path rewrites a request's path and query for route rt; ok is false when nothing changes.
func (rw *rewrite) path(rt *rroute, target string) (string, bool) {
	if rw == nil || (!rw.hasPrefix && rw.re == nil) {
		return target, false
	}
	p, query := target, ""
	if i := strings.IndexByte(target, '?'); i >= 0 {
		p, query = target[:i], target[i:]
	}
	switch {
	case rw.re != nil:
		p = rw.re.ReplaceAllString(p, rw.sub)
	case rt.prefix != "" && len(p) >= len(rt.prefix):
		p = rw.prefix + p[len(rt.prefix):]
	default: // path and regex matches: the whole path
		p = rw.prefix
	}
	return p + query, true
}

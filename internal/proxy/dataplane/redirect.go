package dataplane

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// redirect is a route's compiled redirect action.
type redirect struct {
	scheme, host, path string
	port               uint32
	status             int
}

var redirectCodes = map[route.RedirectAction_RedirectResponseCode]int{
	route.RedirectAction_MOVED_PERMANENTLY:  http.StatusMovedPermanently,
	route.RedirectAction_FOUND:              http.StatusFound,
	route.RedirectAction_SEE_OTHER:          http.StatusSeeOther,
	route.RedirectAction_TEMPORARY_REDIRECT: http.StatusTemporaryRedirect,
	route.RedirectAction_PERMANENT_REDIRECT: http.StatusPermanentRedirect,
}

func compileRedirect(out *rroute, r *route.Route, ra *route.RedirectAction) error {
	rd := &redirect{scheme: ra.GetSchemeRedirect(), host: ra.GetHostRedirect(), port: ra.GetPortRedirect(),
		path: ra.GetPathRedirect(), status: redirectCodes[ra.GetResponseCode()]}
	switch {
	case ra.GetHttpsRedirect():
		rd.scheme = "https"
	case ra.GetPrefixRewrite() != "" || ra.GetRegexRewrite() != nil:
		return fmt.Errorf("redirect: prefix_rewrite and regex_rewrite are not supported yet")
	case ra.GetStripQuery():
		return fmt.Errorf("redirect: strip_query is not supported yet")
	}
	if rd.status == 0 {
		return fmt.Errorf("redirect.response_code %s is not supported", ra.GetResponseCode())
	}
	out.redirect = rd
	return compileRouteHeaders(out, r)
}

// location builds the Location of a redirect for a request to host (host[:port]) and target (path?query).
func (rd *redirect) location(scheme, host, target string) string {
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, ""
	}
	if rd.scheme != "" {
		scheme = rd.scheme
	}
	if rd.host != "" {
		h = rd.host
	}
	if rd.port != 0 {
		p = strconv.Itoa(int(rd.port))
	}
	if (scheme == "http" && p == "80") || (scheme == "https" && p == "443") {
		p = ""
	}
	if rd.path != "" {
		query := ""
		if i := strings.IndexByte(target, '?'); i >= 0 {
			query = target[i:]
		}
		target = rd.path + query
	}
	if p != "" {
		h = net.JoinHostPort(h, p)
	}
	return scheme + "://" + h + target
}

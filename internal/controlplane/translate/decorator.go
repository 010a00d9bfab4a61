package translate

import (
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// decorate sets a route's decorator: the operation (span name) a proxy
// gives the requests it serves, as Istio names them so that traces read the
// same in Jaeger. A route to one cluster outbound|PORT|SUBSET|HOST is
// "HOST:PORT" and its match's path: "/*" for a prefix "/" (every route
// without a uri match), "PREFIX*" for another prefix, the path of an exact
// match, the regex of a regex match. A route to weighted clusters (or that
// sends nowhere) is named by its VirtualService, "VS:PORT" and the path,
// vs being the VirtualService's name and port the listener's.
func decorate(r *route.Route, vs string, port uint32) {
	path := "/*"
	switch m := r.GetMatch(); m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		path = m.GetPrefix() + "*"
	case *route.RouteMatch_Path:
		path = m.GetPath()
	case *route.RouteMatch_SafeRegex:
		path = m.GetSafeRegex().GetRegex()
	case *route.RouteMatch_PathSeparatedPrefix:
		path = m.GetPathSeparatedPrefix() + "*"
	}
	host := vs + ":" + strconv.FormatUint(uint64(port), 10)
	if h, p, ok := outboundHostPort(r.GetRoute().GetCluster()); ok {
		host = h + ":" + p
	}
	r.Decorator = &route.Decorator{Operation: host + path}
}

// outboundHostPort splits outbound|PORT|SUBSET|HOST into HOST and PORT.
func outboundHostPort(cluster string) (host, port string, ok bool) {
	parts := strings.Split(cluster, "|")
	if len(parts) != 4 || parts[0] != "outbound" || parts[1] == "" || parts[3] == "" {
		return "", "", false
	}
	return parts[3], parts[1], true
}

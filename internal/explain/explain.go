// Package explain names, in words, why a request a proxy logged failed:
// it reads the proxy's access log entry together with the live config the
// proxy ACKed (its config dump and cluster status) and, for denials, the
// destination proxy's, and says which Istio object to fix.
package explain

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Entry is one access log record, with the keys of Istio's JSON format.
type Entry struct {
	StartTime       string `json:"start_time"`
	Method          string `json:"method"`
	Path            string `json:"path"`
	ResponseCode    int    `json:"response_code"`
	ResponseFlags   string `json:"response_flags"`
	Details         string `json:"response_code_details"`
	UpstreamHost    string `json:"upstream_host"`
	UpstreamCluster string `json:"upstream_cluster"`
	UpstreamFailure string `json:"upstream_transport_failure_reason"`
	RouteName       string `json:"route_name"`
	RequestID       string `json:"request_id"`
	Authority       string `json:"authority"`
	DownstreamLocal string `json:"downstream_local_address"`
}

// Failed reports whether the entry records a failed exchange: a 5xx, a
// denial (401, 403) or a response flag (TCP connections log no code).
func (e Entry) Failed() bool {
	return e.ResponseCode >= 500 || e.ResponseCode == 401 || e.ResponseCode == 403 || flags(e) != ""
}

// ParseLog decodes access log lines (one JSON object each); lines that are
// not JSON objects (a text-format log) are skipped.
func ParseLog(lines []string) []Entry {
	out := make([]Entry, 0, len(lines))
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

// ErrNoFailure is returned by Pick when the log holds no matching request.
var ErrNoFailure = errors.New("no failed request in the access log")

// Pick returns the last failed entry with request ID id (a request ID is
// shared by the inbound request and the calls it makes, so several
// entries carry it), else the last entry with it; when id is "", the
// last failed entry.
func Pick(entries []Entry, id string) (Entry, error) {
	var any *Entry
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if id != "" && e.RequestID != id {
			continue
		}
		if e.Failed() {
			return e, nil
		}
		if id != "" && any == nil {
			any = &entries[i]
		}
	}
	if any != nil {
		return *any, nil
	}
	if id != "" {
		return Entry{}, fmt.Errorf("request %s: %w", id, ErrNoFailure)
	}
	return Entry{}, ErrNoFailure
}

// Object names an Istio object: what to fix.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Field is the part of the object at stake, e.g. spec.subsets[v4].
	Field string `json:"field,omitempty"`
}

// String is "Kind ns/name".
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Endpoint is one endpoint of a cluster as the proxy sees it.
type Endpoint struct {
	Address string `json:"address"`
	Healthy bool   `json:"healthy"`
}

// Cluster is what a proxy's live config and cluster status say of the
// cluster a request went to.
type Cluster struct {
	Name    string `json:"name"`
	Service string `json:"service"`
	Port    int    `json:"port"`
	Subset  string `json:"subset,omitempty"`
	// DestinationRule is the object the cluster came from (its
	// istio.config metadata), nil when none applies.
	DestinationRule *Object `json:"destinationRule,omitempty"`
	// SubsetLabels are the labels the subset selects (from the
	// DestinationRule), when known.
	SubsetLabels map[string]string `json:"subsetLabels,omitempty"`
	Endpoints    []Endpoint        `json:"endpoints"`
	// Circuit breaker thresholds in Istio's names; absent: unlimited.
	Breakers map[string]uint32 `json:"circuitBreakers,omitempty"`
	// OutlierDetection is whether the cluster ejects failing endpoints.
	OutlierDetection bool `json:"outlierDetection"`
	// Overflows counts requests the circuit breakers refused.
	Overflows int64 `json:"overflows"`
}

// ParseClusterName splits Istio's outbound|PORT|SUBSET|HOST.
func ParseClusterName(name string) (service string, port int, subset string, ok bool) {
	parts := strings.Split(name, "|")
	if len(parts) != 4 {
		return "", 0, "", false
	}
	if _, err := fmt.Sscanf(parts[1], "%d", &port); err != nil {
		return "", 0, "", false
	}
	return parts[3], port, parts[2], true
}

// Authz is what the destination proxy's inbound RBAC filters hold.
type Authz struct {
	// Proxy is the destination proxy's name.
	Proxy string `json:"proxy"`
	// Deny and Allow are the AuthorizationPolicies enforced, as objects.
	Deny  []Object `json:"deny,omitempty"`
	Allow []Object `json:"allow,omitempty"`
	// AllowFilter is whether an ALLOW filter is in place, even one with
	// no rules (allow-nothing), which allows nothing.
	AllowFilter bool `json:"allowFilter,omitempty"`
	// Entry is the destination's own log entry of the request, if found.
	Entry *Entry `json:"entry,omitempty"`
}

// Facts are everything Diagnose reads besides the entry.
type Facts struct {
	// Proxy is the source proxy's name.
	Proxy string `json:"proxy"`
	// Cluster is the upstream cluster of the entry, nil if the proxy's
	// config has none by that name.
	Cluster *Cluster `json:"cluster,omitempty"`
	// VirtualHosts are the domains the route config of the entry's
	// listener serves (for NR).
	VirtualHosts []string `json:"virtualHosts,omitempty"`
	// Authz is the destination side's authorization, for denials.
	Authz *Authz `json:"authz,omitempty"`
	// VirtualService and Rule are the object and http rule whose route
	// took the request, as the proxy's route matching finds it again from
	// the logged method, authority and path (headers are not logged).
	VirtualService *Object `json:"virtualService,omitempty"`
	Rule           *Rule   `json:"rule,omitempty"`
	// Dial is what dialling the upstream host found now ("refused",
	// "timeout", "open" or ""), for UF.
	Dial string `json:"dial,omitempty"`
}

// Cause is the explanation of one failed request.
type Cause struct {
	Code  int    `json:"code"`
	Flags string `json:"flags,omitempty"`
	// Text names the cause in words, e.g. "503 UH no healthy upstream: …".
	Text string `json:"text"`
	// Fix is the object to change, when one is to blame.
	Fix     *Object `json:"fix,omitempty"`
	Entry   Entry   `json:"entry"`
	Facts   Facts   `json:"facts"`
	Checked string  `json:"checkedAt"`
}

// Diagnose names the cause of e's failure from the facts.
func Diagnose(e Entry, f Facts, now time.Time) Cause {
	c := Cause{Code: e.ResponseCode, Flags: flags(e), Entry: e, Facts: f, Checked: now.UTC().Format(time.RFC3339)}
	c.Text, c.Fix = diagnose(e, f)
	return c
}

func flags(e Entry) string {
	if e.ResponseFlags == "-" || e.ResponseFlags == "null" {
		return ""
	}
	return e.ResponseFlags
}

func diagnose(e Entry, f Facts) (string, *Object) {
	flag, _, _ := strings.Cut(flags(e), ",")
	cl := f.Cluster
	switch flag {
	case "NR":
		return noRoute(e, f.VirtualHosts), nil
	case "NC":
		return fmt.Sprintf("NC: the route for %s%s sends to a cluster the proxy does not have: the destination host or port of its VirtualService names no service the proxy knows", e.Authority, e.Path), nil
	case "UH":
		return noHealthy(e, f)
	case "UO":
		return overflow(cl)
	case "UF":
		return connectFailure(e, f)
	case "UT":
		return fmt.Sprintf("UT: upstream %s did not answer within the route's timeout (route %s)", e.UpstreamHost, e.RouteName), nil
	case "FI":
		return fmt.Sprintf("FI: fault injection of route %s aborted the request with %d", e.RouteName, e.ResponseCode), nil
	case "DI":
		return fmt.Sprintf("DI: fault injection of route %s delayed the request", e.RouteName), nil
	case "RL":
		return "RL: rate limited by the proxy's local rate limit", nil
	case "URX":
		return fmt.Sprintf("URX: retries of route %s exhausted; the last answer was %d from %s", e.RouteName, e.ResponseCode, e.UpstreamHost), nil
	}
	if strings.HasPrefix(e.Details, "rbac_access_denied") || e.ResponseCode == 403 && f.Authz != nil {
		return denied(e, f.Authz)
	}
	if strings.HasPrefix(e.Details, "jwt_authn_access_denied") {
		return fmt.Sprintf("%d: the request's JWT failed the RequestAuthentication (%s)", e.ResponseCode, e.Details), nil
	}
	if e.ResponseCode >= 500 && e.Details == "via_upstream" {
		return fmt.Sprintf("%d from the application at %s (the proxy forwarded its answer)", e.ResponseCode, e.UpstreamHost), nil
	}
	return fmt.Sprintf("%d %s (%s)", e.ResponseCode, flags(e), e.Details), nil
}

func noRoute(e Entry, domains []string) string {
	wildcard := false
	var named []string
	for _, d := range domains {
		if d == "*" {
			wildcard = true
		} else {
			named = append(named, d)
		}
	}
	s := "NR: no route for host " + e.Authority
	if wildcard {
		return s + fmt.Sprintf(" path %s: the virtual host * takes the host, but no route of it matches the request", e.Path)
	}
	if len(named) > 0 {
		s += fmt.Sprintf(" (the proxy's routes serve %s)", strings.Join(limit(named, 8), ", "))
	}
	return s + ": no VirtualService or service has that host and port"
}

func noHealthy(e Entry, f Facts) (string, *Object) {
	cl := f.Cluster
	prefix := fmt.Sprintf("%d UH no healthy upstream: ", e.ResponseCode)
	if cl == nil {
		return prefix + fmt.Sprintf("cluster %s is not in the proxy's config", e.UpstreamCluster), nil
	}
	if len(cl.Endpoints) == 0 {
		if cl.Subset != "" && cl.DestinationRule != nil {
			fix := *cl.DestinationRule
			fix.Field = "spec.subsets[" + cl.Subset + "]"
			sel := "its labels"
			if len(cl.SubsetLabels) > 0 {
				sel = labelString(cl.SubsetLabels)
			}
			by := ""
			if f.VirtualService != nil {
				by = fmt.Sprintf(" (VirtualService %s %s routes to it)", f.VirtualService.Name, f.Rule)
			}
			return prefix + fmt.Sprintf("subset %s of DestinationRule %s selects %s, which no endpoint has%s", cl.Subset, cl.DestinationRule.Name, sel, by), &fix
		}
		return prefix + fmt.Sprintf("service %s has no endpoints on port %d", cl.Service, cl.Port), nil
	}
	if n := unhealthy(cl); n == len(cl.Endpoints) {
		return prefix + ejected(cl), cl.DestinationRule
	}
	return prefix + fmt.Sprintf("%d of %d endpoints of %s were healthy when checked", len(cl.Endpoints)-unhealthy(cl), len(cl.Endpoints), cl.Name), nil
}

func unhealthy(cl *Cluster) int {
	n := 0
	for _, ep := range cl.Endpoints {
		if !ep.Healthy {
			n++
		}
	}
	return n
}

func ejected(cl *Cluster) string {
	s := fmt.Sprintf("all %d endpoints ejected by outlierDetection", len(cl.Endpoints))
	if cl.DestinationRule != nil {
		s += " of DestinationRule " + cl.DestinationRule.Name
	}
	return s
}

func overflow(cl *Cluster) (string, *Object) {
	if cl == nil {
		return "UO: circuit breaker open (the cluster is no longer in the proxy's config)", nil
	}
	var set []string
	for _, k := range []string{"maxPendingRequests", "maxRequests", "maxConnections", "maxRetries"} {
		if v, ok := cl.Breakers[k]; ok {
			set = append(set, fmt.Sprintf("%s=%d", k, v))
		}
	}
	s := "UO: circuit breaker"
	if len(set) > 0 {
		s += " " + strings.Join(set, " ")
	}
	s += fmt.Sprintf(" on %s (%d requests refused so far)", cl.Name, cl.Overflows)
	var fix *Object
	if cl.DestinationRule != nil {
		o := *cl.DestinationRule
		o.Field = "trafficPolicy.connectionPool"
		fix = &o
		s += ", set by DestinationRule " + o.Name
	}
	return s, fix
}

func connectFailure(e Entry, f Facts) (string, *Object) {
	var s string
	switch f.Dial {
	case "refused":
		s = "UF: connection refused by " + e.UpstreamHost
	case "timeout":
		s = "UF: connection to " + e.UpstreamHost + " timed out"
	default:
		s = "UF: could not connect to " + e.UpstreamHost
	}
	if e.UpstreamFailure != "" && e.UpstreamFailure != "-" {
		s += " (" + e.UpstreamFailure + ")"
	}
	if cl := f.Cluster; cl != nil && len(cl.Endpoints) > 0 && unhealthy(cl) == len(cl.Endpoints) && cl.OutlierDetection {
		s += "; " + ejected(cl)
	}
	return s, nil
}

func denied(e Entry, a *Authz) (string, *Object) {
	code := e.ResponseCode
	if a == nil {
		return fmt.Sprintf("RBAC: %d denied by an AuthorizationPolicy (%s); the destination's config was not read", code, e.Details), nil
	}
	where := ""
	if a.Proxy != "" {
		where = " at " + a.Proxy
	}
	switch {
	case len(a.Deny) == 1:
		return fmt.Sprintf("RBAC: denied by AuthorizationPolicy %s%s", a.Deny[0].Name, where), &a.Deny[0]
	case len(a.Deny) > 1:
		return fmt.Sprintf("RBAC: denied by one of the DENY AuthorizationPolicies %s%s", names(a.Deny), where), &a.Deny[0]
	case len(a.Allow) > 0:
		return fmt.Sprintf("RBAC: no rule of the ALLOW AuthorizationPolicies %s%s allows it", names(a.Allow), where), &a.Allow[0]
	case a.AllowFilter:
		return fmt.Sprintf("RBAC: an ALLOW AuthorizationPolicy with no rules (allow-nothing) applies%s and allows nothing", where), nil
	}
	return fmt.Sprintf("RBAC: %d denied%s, and its proxy enforces no AuthorizationPolicy now (since removed?)", code, where), nil
}

func names(os []Object) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.Name
	}
	return strings.Join(s, ", ")
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func limit(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string(nil), s[:n]...), "…")
}

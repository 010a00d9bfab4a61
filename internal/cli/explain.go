package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/explain"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// headerFlags collects repeated -H 'k: v' flags.
type headerFlags http.Header

func (h headerFlags) String() string { return fmt.Sprint(http.Header(h)) }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want 'name: value'", v)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(val))
	return nil
}

const explainUsage = "usage: weft explain SOURCE URL [-H 'k: v']… [--method M] [-o json]\n       weft explain --last-error SOURCE [--request-id ID] [-o json]"

// runExplain walks a request through SOURCE's proxy (weft explain SOURCE
// URL) or explains a failed request from its access log (--last-error,
// --request-id).
func runExplain(ctx context.Context, env *Env) error {
	fs := newFlags(env, "explain")
	headers := headerFlags{}
	fs.Var(headers, "H", "a request header 'name: value' (repeatable)")
	method := fs.String("method", http.MethodGet, "the request's method")
	lastError := fs.Bool("last-error", false, "explain the last failed request in SOURCE's access log")
	requestID := fs.String("request-id", "", "explain the request with this x-request-id in SOURCE's access log")
	output := fs.String("o", "", "output format: json (default: text)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	logged := *lastError || *requestID != ""
	if logged && len(args) != 1 || !logged && len(args) != 2 {
		fmt.Fprintln(env.Stderr, explainUsage)
		return errUsage
	}
	if *output != "" && *output != "json" {
		return fmt.Errorf("-o %q: want json", *output)
	}
	c, err := client()
	if err != nil {
		return err
	}
	if !logged {
		w, err := explainWalk(ctx, c, args[0], args[1], *method, http.Header(headers))
		if err != nil {
			return err
		}
		if *output == "json" {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(w)
		}
		w.Print(env.Stdout)
		return nil
	}
	cause, err := explainLogged(ctx, c, args[0], *requestID)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(cause)
	}
	printCause(env.Stdout, cause)
	return nil
}

func printCause(w io.Writer, c explain.Cause) {
	e := c.Entry
	fmt.Fprintf(w, "request %s %s%s at %s (id %s) → %d %s\n", e.Method, e.Authority, e.Path, e.StartTime, e.RequestID, e.ResponseCode, c.Flags)
	if e.RouteName != "" || e.UpstreamCluster != "" {
		fmt.Fprintf(w, "  route %s → cluster %s → host %s\n", dash(e.RouteName), dash(e.UpstreamCluster), dash(e.UpstreamHost))
	}
	if vs := c.Facts.VirtualService; vs != nil {
		fmt.Fprintf(w, "  routed by %s %s\n", vs, c.Facts.Rule)
	}
	if cl := c.Facts.Cluster; cl != nil {
		healthy := 0
		for _, ep := range cl.Endpoints {
			if ep.Healthy {
				healthy++
			}
		}
		fmt.Fprintf(w, "  cluster %s: %d endpoints, %d healthy", cl.Name, len(cl.Endpoints), healthy)
		if cl.DestinationRule != nil {
			fmt.Fprintf(w, ", from %s", cl.DestinationRule)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "cause: %s\n", c.Text)
	if c.Fix != nil {
		fix := c.Fix.String()
		if c.Fix.Field != "" {
			fix += " (" + c.Fix.Field + ")"
		}
		fmt.Fprintf(w, "fix:   %s\n", fix)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// explainLogged reads SOURCE's access log, picks the request and gathers
// the facts of the proxies' live config that explain it.
func explainLogged(ctx context.Context, c *api.Client, source, requestID string) (explain.Cause, error) {
	proxies, err := c.Proxies(ctx)
	if err != nil {
		return explain.Cause{}, err
	}
	src, err := findSource(proxies, source)
	if err != nil {
		return explain.Cause{}, err
	}
	lines, err := fetchLog(ctx, src.AdminAddress)
	if err != nil {
		return explain.Cause{}, err
	}
	e, err := explain.Pick(explain.ParseLog(lines), requestID)
	if err != nil {
		return explain.Cause{}, fmt.Errorf("%s: %w (see weft logs %s.%s)", src.Name, err, src.Name, src.Namespace)
	}
	facts := explain.Facts{Proxy: src.Name + "." + src.Namespace}
	parts, err := proxyDump(ctx, src.AdminAddress)
	if err != nil {
		return explain.Cause{}, err
	}
	if e.UpstreamCluster != "" {
		var cs adminv3.Clusters
		if err := fetchAdmin(ctx, src.AdminAddress, "/clusters?format=json", &cs); err != nil {
			return explain.Cause{}, err
		}
		for _, cl := range parts.clusters {
			if cl.GetName() != e.UpstreamCluster {
				continue
			}
			var st *adminv3.ClusterStatus
			for _, s := range cs.GetClusterStatuses() {
				if s.GetName() == cl.GetName() {
					st = s
				}
			}
			facts.Cluster = explain.ClusterOf(cl, st)
			facts.Cluster.Overflows = overflows(ctx, src.AdminAddress, cl.GetName())
			subsetLabels(ctx, c, facts.Cluster)
		}
	}
	if port := entryPort(e); port != 0 {
		facts.VirtualService, facts.Rule = explain.RouteOf(explain.Config{Listeners: parts.listeners, Routes: parts.routes}, e, port)
	}
	flag, _, _ := strings.Cut(e.ResponseFlags, ",")
	switch {
	case flag == "NR":
		facts.VirtualHosts = explain.Domains(parts.routes)
	case flag == "UF" && e.UpstreamHost != "":
		facts.Dial = dial(ctx, e.UpstreamHost)
	case strings.HasPrefix(e.Details, "rbac_access_denied"):
		facts.Authz = explain.AuthzOf(facts.Proxy, parts.listeners)
	case e.ResponseCode == 403 && e.UpstreamHost != "":
		facts.Authz = destinationAuthz(ctx, proxies, e)
	}
	return explain.Diagnose(e, facts, time.Now()), nil
}

// findSource finds the proxy named SOURCE (NAME, NAME.NAMESPACE or node
// ID), else the one proxy of the workload SOURCE.
func findSource(ps []xdsserver.ProxyStatus, source string) (xdsserver.ProxyStatus, error) {
	found := filterProxies(ps, []string{source})
	if len(found) == 0 {
		for _, p := range ps {
			if p.Workload == source || p.Workload+"."+p.Namespace == source {
				found = append(found, p)
			}
		}
	}
	switch {
	case len(found) == 0:
		return xdsserver.ProxyStatus{}, fmt.Errorf("no connected proxy or workload named %q (see weft proxy-status)", source)
	case len(found) > 1:
		return xdsserver.ProxyStatus{}, fmt.Errorf("%d proxies match %q: name one (%s)", len(found), source, proxyNames(found))
	case found[0].AdminAddress == "":
		return xdsserver.ProxyStatus{}, fmt.Errorf("proxy %q has no admin address: its access log cannot be read", source)
	}
	return found[0], nil
}

func fetchLog(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := "http://" + addr + "/logs?tail=0"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the proxy's access log: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	return lines, nil
}

func proxyDump(ctx context.Context, addr string) (*dumpParts, error) {
	var dump adminv3.ConfigDump
	if err := fetchAdmin(ctx, addr, "/config_dump", &dump); err != nil {
		return nil, err
	}
	return splitDump(&dump)
}

// overflows reads the cluster's upstream_rq_pending_overflow counter from
// the proxy's /stats/prometheus (0 if it has none or cannot be read).
func overflows(ctx context.Context, addr, name string) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats/prometheus", nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var n int64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "envoy_cluster_upstream_rq_pending_overflow{") && strings.Contains(l, `cluster_name="`+name+`"`) {
			fmt.Sscanf(l[strings.LastIndexByte(l, ' ')+1:], "%d", &n)
		}
	}
	return n
}

// subsetLabels fills the labels the cluster's subset selects from its
// DestinationRule in the config store.
func subsetLabels(ctx context.Context, c *api.Client, cl *explain.Cluster) {
	if cl.Subset == "" || cl.DestinationRule == nil {
		return
	}
	objs, err := c.Get(ctx, api.Query{Kind: "DestinationRule", Namespace: cl.DestinationRule.Namespace, Name: cl.DestinationRule.Name})
	if err != nil {
		return
	}
	for _, o := range objs {
		dr, ok := o.Spec.(*networking.DestinationRule)
		if !ok {
			continue
		}
		for _, ss := range dr.GetSubsets() {
			if ss.GetName() == cl.Subset {
				cl.SubsetLabels = ss.GetLabels()
			}
		}
	}
}

// dial tries the upstream host now: "refused", "timeout" or "open".
func dial(ctx context.Context, hostport string) string {
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", hostport)
	switch {
	case err == nil:
		conn.Close()
		return "open"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return ""
}

// destinationAuthz reads the AuthorizationPolicies of the proxy that
// answered e (found by its upstream host's address) and its own log
// entry of the request.
func destinationAuthz(ctx context.Context, ps []xdsserver.ProxyStatus, e explain.Entry) *explain.Authz {
	host, _, err := net.SplitHostPort(e.UpstreamHost)
	if err != nil {
		return nil
	}
	for _, p := range ps {
		if p.IP != host || p.AdminAddress == "" {
			continue
		}
		lines, err := fetchLog(ctx, p.AdminAddress)
		if err != nil {
			return nil
		}
		in, err := explain.Pick(explain.ParseLog(lines), e.RequestID)
		if err != nil || !strings.HasPrefix(in.Details, "rbac_access_denied") {
			return nil // the application answered 403, not the proxy
		}
		parts, err := proxyDump(ctx, p.AdminAddress)
		if err != nil {
			return nil
		}
		a := explain.AuthzOf(p.Name+"."+p.Namespace, parts.listeners)
		a.Entry = &in
		return a
	}
	return nil
}

// explainWalk walks a request to rawURL through SOURCE's proxy's live
// config, and on to the destination proxies' inbound side.
func explainWalk(ctx context.Context, c *api.Client, source, rawURL, method string, h http.Header) (explain.Walk, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		if err == nil {
			err = errors.New("no host")
		}
		return explain.Walk{}, fmt.Errorf("URL %q: %w (want http://HOST[:PORT]/PATH)", rawURL, err)
	}
	port := uint32(80)
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return explain.Walk{}, fmt.Errorf("URL %q: port: %w", rawURL, err)
		}
		port = uint32(n)
	}
	proxies, err := c.Proxies(ctx)
	if err != nil {
		return explain.Walk{}, err
	}
	src, err := findSource(proxies, source)
	if err != nil {
		return explain.Walk{}, err
	}
	cfg, err := liveConfig(ctx, src)
	if err != nil {
		return explain.Walk{}, err
	}
	cache := map[string]*explain.Config{}
	dest := func(addr string) *explain.Config {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil
		}
		for _, p := range proxies {
			if p.IP != host || p.AdminAddress == "" || p.Type == xdsserver.TypeProxyless {
				continue
			}
			if d, ok := cache[p.ID]; ok {
				return d
			}
			d, err := liveConfig(ctx, p)
			if err != nil {
				d = nil
			}
			cache[p.ID] = d
			return d
		}
		return nil
	}
	pq := u.RequestURI()
	req := explain.Request{Method: method, Authority: u.Host, Port: port, PathQuery: pq, Header: h}
	if src.ServiceAccount != "" {
		req.Principal = spiffe.New(src.Namespace, src.ServiceAccount).String()
	}
	if a, err := netip.ParseAddr(src.IP); err == nil {
		req.Source = a
	}
	return explain.WalkRequest(*cfg, req, dest)
}

// liveConfig reads a proxy's config dump and cluster status.
func liveConfig(ctx context.Context, p xdsserver.ProxyStatus) (*explain.Config, error) {
	parts, err := proxyDump(ctx, p.AdminAddress)
	if err != nil {
		return nil, err
	}
	var cs adminv3.Clusters
	if err := fetchAdmin(ctx, p.AdminAddress, "/clusters?format=json", &cs); err != nil {
		return nil, err
	}
	return &explain.Config{Proxy: p.Name + "." + p.Namespace, Listeners: parts.listeners, Routes: parts.routes, Clusters: parts.clusters, Status: &cs}, nil
}

// entryPort is the port a logged request was sent to: its authority's,
// else its downstream local address's.
func entryPort(e explain.Entry) uint32 {
	for _, hp := range []string{e.Authority, e.DownstreamLocal} {
		if _, p, err := net.SplitHostPort(hp); err == nil {
			if n, err := strconv.ParseUint(p, 10, 16); err == nil {
				return uint32(n)
			}
		}
	}
	return 0
}

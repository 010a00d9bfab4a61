package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"text/tabwriter"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
)

func runProxyStatus(ctx context.Context, env *Env) error {
	fs := newFlags(env, "proxy-status")
	output := fs.String("o", "", "output format: json (default: a table)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	proxies, err := c.Proxies(ctx)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		proxies = filterProxies(proxies, args)
		if len(proxies) == 0 {
			return fmt.Errorf("no connected proxy named %v", args)
		}
	}
	switch *output {
	case "json":
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(proxies)
	case "":
		return printProxyStatus(env.Stdout, proxies, controlPlaneName(c.BaseURL()))
	}
	return fmt.Errorf("-o %q: want json", *output)
}

// filterProxies keeps the proxies named NAME or NAME.NAMESPACE in names.
func filterProxies(ps []xdsserver.ProxyStatus, names []string) []xdsserver.ProxyStatus {
	var out []xdsserver.ProxyStatus
	for _, p := range ps {
		for _, n := range names {
			if n == p.Name || n == p.Name+"."+p.Namespace || n == p.ID {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// controlPlaneName is what the ISTIOD column shows: the control plane's host:port.
func controlPlaneName(base string) string {
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return "weft-control-plane@" + u.Host
	}
	return "weft-control-plane"
}

// psColumns are the xDS types proxy-status shows, in istioctl's order.
var psColumns = []struct{ title, typeURL string }{
	{"CDS", xdsserver.ClusterType}, {"LDS", xdsserver.ListenerType},
	{"EDS", xdsserver.EndpointType}, {"RDS", xdsserver.RouteType},
}

// printProxyStatus writes istioctl proxy-status's table, then any NACK's error.
func printProxyStatus(w io.Writer, ps []xdsserver.ProxyStatus, cp string) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	// istioctl's columns, then the proxy's type (sidecar, router or
	// proxyless) and the workload it is an instance of (as metrics and the
	// console name it).
	fmt.Fprintln(tw, "NAME\tCLUSTER\tCDS\tLDS\tEDS\tRDS\tISTIOD\tVERSION\tTYPE\tWORKLOAD")
	var nacks []string
	for _, p := range ps {
		name := p.Name + "." + p.Namespace
		row := name + "\tKubernetes\t"
		for _, col := range psColumns {
			ts := p.Types[col.typeURL]
			row += syncCell(ts) + "\t"
			if ts.Nacked != "" {
				nacks = append(nacks, fmt.Sprintf("%s %s NACK: %s", name, col.title, ts.Nacked))
			}
		}
		version := p.Version
		if version == "" {
			version = "-"
		}
		workload := p.Workload
		if workload == "" {
			workload = p.Name
		}
		typ := p.Type
		if typ == "" {
			typ = "-"
		}
		fmt.Fprintln(tw, row+cp+"\t"+version+"\t"+typ+"\t"+workload)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	sort.Strings(nacks)
	for _, n := range nacks {
		fmt.Fprintln(w, n)
	}
	return nil
}

// syncCell is one type's cell: "SYNCED (v)", "STALE", "STALE (NACKED)",
// "NOT SENT" or "IGNORED".
func syncCell(ts xdsserver.TypeStatus) string {
	switch {
	case ts.Status == "":
		return xdsserver.StatusIgnored
	case ts.Nacked != "":
		return ts.Status + " (NACKED)"
	case ts.Status == xdsserver.StatusSynced && ts.Acked != "":
		v := ts.Acked
		if len(v) > 8 {
			v = v[:8]
		}
		return ts.Status + " (" + v + ")"
	}
	return ts.Status
}

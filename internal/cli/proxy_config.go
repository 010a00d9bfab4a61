package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/proxy/admin" // also registers the extension types found in dumps
)

// proxyConfigKinds are the arguments proxy-config takes, as istioctl's.
var proxyConfigKinds = map[string]string{
	"listeners": "listeners", "listener": "listeners", "l": "listeners",
	"routes": "routes", "route": "routes", "r": "routes",
	"clusters": "clusters", "cluster": "clusters", "c": "clusters",
	"endpoints": "endpoints", "endpoint": "endpoints", "ep": "endpoints",
}

func runProxyConfig(ctx context.Context, env *Env) error {
	fs := newFlags(env, "proxy-config")
	output := fs.String("o", "", "output format: json (the raw xDS; default: a table)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) != 2 || proxyConfigKinds[args[0]] == "" {
		fmt.Fprintln(env.Stderr, "usage: weft proxy-config listeners|routes|clusters|endpoints PROXY [-o json]")
		return errUsage
	}
	if *output != "" && *output != "json" {
		return fmt.Errorf("-o %q: want json", *output)
	}
	kind := proxyConfigKinds[args[0]]
	c, err := client()
	if err != nil {
		return err
	}
	addr, err := adminAddress(ctx, c, args[1])
	if err != nil {
		return err
	}
	if kind == "endpoints" && *output == "" {
		var cs adminv3.Clusters
		if err := fetchAdmin(ctx, addr, "/clusters?format=json", &cs); err != nil {
			return err
		}
		return printEndpoints(env.Stdout, &cs)
	}
	var dump adminv3.ConfigDump
	if err := fetchAdmin(ctx, addr, "/config_dump", &dump); err != nil {
		return err
	}
	d, err := splitDump(&dump)
	if err != nil {
		return err
	}
	if *output == "json" {
		return printRawJSON(env.Stdout, d.resources(kind))
	}
	switch kind {
	case "listeners":
		return printListeners(env.Stdout, d.listeners)
	case "routes":
		return printRoutes(env.Stdout, d.routes)
	}
	return printClusters(env.Stdout, d.clusters)
}

// adminAddress finds the admin address of the proxy named NAME.NAMESPACE,
// NAME or by its node ID through the control plane's proxy list.
func adminAddress(ctx context.Context, c *api.Client, name string) (string, error) {
	proxies, err := c.Proxies(ctx)
	if err != nil {
		return "", err
	}
	found := filterProxies(proxies, []string{name})
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("no connected proxy named %q (see weft proxy-status)", name)
	case len(found) > 1:
		return "", fmt.Errorf("%d proxies are named %q: give NAME.NAMESPACE (%s)", len(found), name, proxyNames(found))
	case found[0].Type == xdsserver.TypeProxyless:
		return "", fmt.Errorf("%q is a proxyless gRPC app: its xDS client holds its config and has no config dump; weft proxy-status shows what it was sent", name)
	case found[0].AdminAddress == "":
		return "", fmt.Errorf("proxy %q did not announce its admin address (ADMIN_ADDRESS metadata)", name)
	}
	return found[0].AdminAddress, nil
}

func proxyNames(ps []xdsserver.ProxyStatus) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name + "." + p.Namespace
	}
	return strings.Join(names, ", ")
}

// fetchAdmin GETs an admin page and decodes its protobuf JSON into m.
func fetchAdmin(ctx context.Context, addr, path string, m proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading the proxy's admin page: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, m); err != nil {
		return fmt.Errorf("decoding %s: %w", url, err)
	}
	return nil
}

// printRawJSON prints resources as a JSON array, as Envoy's admin does.
func printRawJSON(w io.Writer, ms []proto.Message) error {
	if len(ms) == 0 {
		_, err := io.WriteString(w, "[]\n")
		return err
	}
	io.WriteString(w, "[\n")
	for i, m := range ms {
		b, err := admin.MarshalJSON(m)
		if err != nil {
			return err
		}
		text := strings.TrimRight(string(b), "\n")
		if i < len(ms)-1 {
			text += ","
		}
		io.WriteString(w, indent(text, "  ")+"\n")
	}
	_, err := io.WriteString(w, "]\n")
	return err
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

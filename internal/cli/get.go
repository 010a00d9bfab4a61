package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/api"
)

func runGet(ctx context.Context, env *Env) error {
	fs := newFlags(env, "get")
	ns := fs.String("n", config.DefaultNamespace, "namespace")
	all := fs.Bool("A", false, "all namespaces")
	output := fs.String("o", "", "output format: yaml or json (default: a table)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) == 0 || len(args) > 2 {
		return fmt.Errorf("usage: weft get KIND [NAME] [-n NS | -A] [-o yaml|json] (KIND: %s, or all)", strings.Join(config.Kinds(), ", "))
	}
	q := api.Query{Namespace: *ns}
	if args[0] != "all" {
		q.Kind = args[0]
	}
	if len(args) == 2 {
		q.Name = args[1]
	}
	if *all {
		q.Namespace = ""
	}
	c, err := client()
	if err != nil {
		return err
	}
	switch *output {
	case "yaml":
		out, err := c.GetYAML(ctx, q)
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(out)
		return err
	case "json", "":
		objs, err := c.Get(ctx, q)
		if err != nil {
			return err
		}
		if *output == "json" {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(objs)
		}
		if len(objs) == 0 {
			fmt.Fprintf(env.Stderr, "No resources found%s.\n", nsSuffix(q.Namespace))
			return nil
		}
		return printObjects(env.Stdout, objs, q.Kind == "")
	}
	return fmt.Errorf("-o %q: want yaml or json", *output)
}

func nsSuffix(ns string) string {
	if ns == "" {
		return ""
	}
	return " in " + ns + " namespace"
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments (weft get vs reviews -n prod) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// printObjects writes a table: NAMESPACE, [KIND,] NAME, a summary of the spec, SOURCE.
func printObjects(w io.Writer, objs []*config.Object, withKind bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAMESPACE\t"
	if withKind {
		head += "KIND\t"
	}
	fmt.Fprintln(tw, head+"NAME\tSUMMARY\tSOURCE\tVERSION")
	for _, o := range objs {
		row := o.Namespace + "\t"
		if withKind {
			row += o.Kind + "\t"
		}
		fmt.Fprintln(tw, row+o.Name+"\t"+summary(o)+"\t"+o.Source+"\t"+strconv.FormatInt(o.ResourceVersion, 10))
	}
	return tw.Flush()
}

// summary is a one-line description of an object's spec.
func summary(o *config.Object) string {
	switch s := o.Spec.(type) {
	case *networking.VirtualService:
		out := "hosts=" + strings.Join(s.GetHosts(), ",")
		if len(s.GetGateways()) > 0 {
			out += " gateways=" + strings.Join(s.GetGateways(), ",")
		}
		return out
	case *networking.DestinationRule:
		subsets := make([]string, 0, len(s.GetSubsets()))
		for _, ss := range s.GetSubsets() {
			subsets = append(subsets, ss.GetName())
		}
		return "host=" + s.GetHost() + " subsets=" + strings.Join(subsets, ",")
	case *networking.Gateway:
		var hosts []string
		for _, srv := range s.GetServers() {
			hosts = append(hosts, fmt.Sprintf("%d:%s", srv.GetPort().GetNumber(), strings.Join(srv.GetHosts(), ",")))
		}
		return "servers=" + strings.Join(hosts, " ")
	case *networking.ServiceEntry:
		return "hosts=" + strings.Join(s.GetHosts(), ",") + " " + s.GetLocation().String() + " " + s.GetResolution().String()
	case *networking.WorkloadEntry:
		return "address=" + s.GetAddress() + " labels=" + labelString(s.GetLabels())
	}
	return "-"
}

func labelString(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

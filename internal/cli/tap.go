package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/weft-mesh/weft/internal/controlplane/api"
	"github.com/weft-mesh/weft/internal/tap"
)

// runTap streams live requests through a workload's or service's proxies,
// as Linkerd's viz tap: weft tap WORKLOAD|SERVICE [-n NS] [--path P]
// [--method M] [--authority A] [--max N] [-o json].
func runTap(ctx context.Context, env *Env) error {
	fs := newFlags(env, "tap")
	ns := fs.String("n", "", "namespace (default: any)")
	path := fs.String("path", "", "only requests whose path starts with this")
	method := fs.String("method", "", "only requests with this method")
	authority := fs.String("authority", "", "only requests to this authority (host or host:port)")
	max := fs.Int("max", 0, "stop after this many requests (0: until interrupted)")
	output := fs.String("o", "", "output format: json (default: one line per request)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) != 1 || (*output != "" && *output != "json") || *max < 0 {
		fmt.Fprintln(env.Stderr, "usage: weft tap WORKLOAD|SERVICE [-n NS] [--path P] [--method M] [--authority A] [--max N] [-o json]")
		return errUsage
	}
	c, err := client()
	if err != nil {
		return err
	}
	req := api.TapRequest{Target: args[0], Namespace: *ns, Max: *max,
		Filter: tap.Filter{PathPrefix: *path, Method: *method, Authority: *authority}}
	enc := json.NewEncoder(env.Stdout)
	return c.Tap(ctx, req, func(e tap.Event) error {
		if e.Error != "" {
			fmt.Fprintf(env.Stderr, "tap %s: %s\n", e.Proxy, e.Error)
			return nil
		}
		if *output == "json" {
			return enc.Encode(&e)
		}
		return printTapEvent(env.Stdout, &e)
	})
}

// printTapEvent writes one exchange as a line of key=value fields, as
// Linkerd's tap does: time, proxy, direction, source → destination, then
// the request and its answer.
func printTapEvent(w io.Writer, e *tap.Event) error {
	dir := "out"
	if e.Direction == tap.Inbound {
		dir = "in "
	}
	flags, trace := tapField(e.ResponseFlags), tapField(e.TraceID)
	_, err := fmt.Fprintf(w, "%s %s %s %s -> %s :method=%s :authority=%s :path=%s :status=%s flags=%s latency=%sms route=%s upstream=%s trace=%s\n",
		e.Time.Local().Format("15:04:05.000"), e.Proxy, dir, tapField(e.Source), tapField(e.Destination), tapField(e.Method), tapField(e.Authority),
		tapField(e.Path), strconv.Itoa(e.Status), flags, strconv.FormatFloat(e.LatencyMillis, 'f', 1, 64), tapField(e.Route), tapField(e.UpstreamHost), trace)
	return err
}

// tapField is s, or "-" when empty.
func tapField(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

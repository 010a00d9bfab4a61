package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/telemetry/traces"
)

// runTraces lists recent traces from the control plane's trace store.
func runTraces(ctx context.Context, env *Env) error {
	fs := newFlags(env, "traces")
	service := fs.String("service", "", "only traces with a span of this service (e.g. reviews.default)")
	operation := fs.String("operation", "", "only traces with a span of this operation")
	limit := fs.Int("limit", 20, "list at most this many traces (0: all)")
	lookback := fs.Duration("lookback", 0, "only traces with a span started this recently (0: any)")
	minDuration := fs.Duration("min-duration", 0, "only traces with a span lasting at least this long")
	output := fs.String("o", "", "output format: json (default: a table)")
	client := controlPlaneFlag(fs, env)
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	if *output != "" && *output != "json" {
		return fmt.Errorf("-o %q: want json", *output)
	}
	if *limit < 0 {
		return fmt.Errorf("--limit %d: want 0 or more", *limit)
	}
	v := url.Values{"limit": {strconv.Itoa(*limit)}}
	for k, s := range map[string]string{"service": *service, "operation": *operation} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if *lookback > 0 {
		v.Set("lookback", lookback.String())
	}
	if *minDuration > 0 {
		v.Set("minDuration", minDuration.String())
	}
	c, err := client()
	if err != nil {
		return err
	}
	base := c.BaseURL()
	resp, err := getTraces(ctx, base+"/api/v1/traces?"+v.Encode())
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp.Summaries)
	}
	return printTraces(env.Stdout, resp.Summaries)
}

func getTraces(ctx context.Context, u string) (*traces.SearchResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the control plane at %s: %w; is `weft control-plane` running?", req.URL.Host, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("reading traces: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("listing traces: %s", e.Error)
		}
		return nil, fmt.Errorf("listing traces: HTTP %d", res.StatusCode)
	}
	var out traces.SearchResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decoding traces: %w", err)
	}
	return &out, nil
}

// printTraces prints one line per trace, most recent first.
func printTraces(w io.Writer, ts []traces.TraceSummary) error {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "TRACE ID\tSTART\tROOT SERVICE\tROOT OPERATION\tSPANS\tERRORS\tDURATION")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t.TraceID, t.Start.Local().Format("15:04:05.000"),
			t.RootService, t.RootOperation, t.Spans, t.Errors, t.Duration.Round(time.Microsecond))
	}
	return tw.Flush()
}

package proxycli

import (
	"context"
	"errors"
	"fmt"
	"github.com/weft-mesh/weft/internal/cmdline"
	"net/http"
	"time"
)

// runProxyReady checks the proxy's readiness (GET /healthz/ready); with
// --wait it polls until ready. The injected postStart hook of a pod with
// holdApplicationUntilProxyStarts runs it, so the kubelet starts the app
// only once the proxy is ready (Istio's pilot-agent wait).
func runProxyReady(ctx context.Context, env *Env) error {
	fs := newFlags(env, "proxy-ready")
	url := fs.String("url", "http://localhost:15021/healthz/ready", "the proxy's readiness URL")
	wait := fs.Bool("wait", false, "poll until the proxy is ready instead of checking once")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --wait: give up after this long")
	period := fs.Duration("period", 200*time.Millisecond, "with --wait: time between checks")
	if err := cmdline.ParseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if !*wait {
		return checkReady(ctx, client, *url)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tick := time.NewTicker(*period)
	defer tick.Stop()
	for {
		err := checkReady(ctx, client, *url)
		if err == nil {
			fmt.Fprintln(env.Stdout, "proxy ready")
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("proxy not ready after %s: %w", *timeout, err)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// checkReady returns nil when GET url answers 200.
func checkReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

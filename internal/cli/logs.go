package cli

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// runLogs prints a proxy's access log (JSON lines with Envoy's fields):
// weft logs PROXY [-f] [--tail N].
func runLogs(ctx context.Context, env *Env) error {
	fs := newFlags(env, "logs")
	follow := fs.Bool("f", false, "follow: keep printing new lines until interrupted")
	tail := fs.Int("tail", 100, "how many recent lines to print first (0: all the proxy keeps)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		fmt.Fprintln(env.Stderr, "usage: weft logs PROXY [-f] [--tail N]")
		return errUsage
	}
	if *tail < 0 {
		return fmt.Errorf("--tail %d: want 0 or more lines", *tail)
	}
	c, err := client()
	if err != nil {
		return err
	}
	addr, err := adminAddress(ctx, c, args[0])
	if err != nil {
		return err
	}
	q := url.Values{"tail": {strconv.Itoa(*tail)}}
	if *follow {
		q.Set("follow", "1")
	}
	u := "http://" + addr + "/logs?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reading the proxy's access log: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b.String())
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintln(env.Stdout, sc.Text())
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the access log: %w", err)
	}
	return nil
}

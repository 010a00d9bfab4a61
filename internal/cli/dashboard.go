package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/console"
)

// envConsole names the environment variable with the console's URL.
const envConsole = "WEFT_CONSOLE"

// consolePages are the console's pages `weft dashboard PAGE` opens.
var consolePages = []string{"graph", "services", "workloads", "config", "traces", "wizards"}

// runDashboard opens the console in a browser (xdg-open) or prints its URL.
func runDashboard(ctx context.Context, env *Env) error {
	fs := newFlags(env, "dashboard")
	u := fs.String("url", "", "the console's URL (default: $"+envConsole+", else $"+envControlPlane+"'s host on port "+
		console.DefaultPort+", else http://"+console.DefaultAddress+")")
	noBrowser := fs.Bool("no-browser", false, "only print the URL")
	if err := parseFlags(fs, env.Args); err != nil {
		return err
	}
	page := ""
	switch fs.NArg() {
	case 0:
	case 1:
		page = fs.Arg(0)
		if !slices.Contains(consolePages, page) {
			return fmt.Errorf("unknown page %q: want one of %s", page, strings.Join(consolePages, ", "))
		}
	default:
		return fmt.Errorf("want at most one page (%s), got %q", strings.Join(consolePages, ", "), fs.Args())
	}
	base := *u
	if base == "" {
		base = consoleURL(env.Getenv)
	}
	target := strings.TrimSuffix(base, "/") + "/"
	if page != "" {
		target += "#/" + page
	}
	if err := probeConsole(ctx, base); err != nil {
		fmt.Fprintf(env.Stderr, "weft dashboard: the console does not answer at %s (%v); is the control plane running?\n", base, err)
	}
	if !*noBrowser {
		if opener, err := exec.LookPath("xdg-open"); err == nil {
			cmd := exec.Command(opener, target)
			if err := cmd.Start(); err == nil {
				go func() { _ = cmd.Wait() }() // xdg-open returns once the browser has it
				fmt.Fprintf(env.Stdout, "opening the console: %s\n", target)
				return nil
			}
		}
	}
	fmt.Fprintf(env.Stdout, "the console: %s\n", target)
	return nil
}

// consoleURL is the console's default URL from the environment.
func consoleURL(getenv func(string) string) string {
	if getenv != nil {
		if v := getenv(envConsole); v != "" {
			return v
		}
		if v := getenv(envControlPlane); v != "" {
			if !strings.Contains(v, "://") {
				v = "http://" + v
			}
			if cp, err := url.Parse(v); err == nil && cp.Hostname() != "" {
				return "http://" + net.JoinHostPort(cp.Hostname(), console.DefaultPort)
			}
		}
	}
	return "http://" + console.DefaultAddress
}

// probeConsole checks that the console answers.
func probeConsole(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/api/v1/proxies", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

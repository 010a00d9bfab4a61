// Package cli implements weft's subcommands. Each subcommand lives in its
// own file and is wired here; main only calls Run.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/weft-mesh/weft/internal/sysmon"
)

// Env is what a subcommand gets: its arguments, output streams and the
// process environment lookup (injected so tests need not touch os.Environ).
type Env struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

type command struct {
	summary string
	run     func(ctx context.Context, env *Env) error
	hidden  bool
}

// commands is the subcommand table. Keep it sorted by name.
func commands() map[string]command {
	return map[string]command{
		"analyze":       {summary: "report Istio's analysis messages for files and/or live config", run: runAnalyze},
		"apply":         {summary: "apply Istio config from a file or stdin (-f FILE|-)", run: runApply},
		"bookinfo":      {summary: "run one Bookinfo app (used by the demo)", run: runBookinfo, hidden: true},
		"control-plane": {summary: "run the control plane (xDS, config API)", run: runControlPlane},
		"dashboard":     {summary: "open the web console (the graph, traces, config) in a browser", run: runDashboard},
		"delete":        {summary: "delete Istio config named in a file (-f FILE|-)", run: runDelete},
		"demo":          {summary: "run Bookinfo with sidecars, an ingress gateway and load", run: runDemo},
		"gateway":       {summary: "run an ingress gateway proxy", run: runGateway},
		"get":           {summary: "list config: get KIND [NAME] [-o yaml]", run: runGet},
		"install":       {summary: "install weft on Kubernetes: install [--profile default|demo|minimal] [--set K=V] [--dry-run]", run: runInstall},
		"iptables":      {summary: "redirect a pod's traffic to its sidecar (the istio-init container; istio-iptables' flags)", run: runIPTables},
		"kube-inject":   {summary: "add the sidecar to Kubernetes workloads in YAML: kube-inject -f FILE|- [-o FILE]", run: runKubeInject},
		"logs":          {summary: "print a proxy's access log: logs PROXY [-f] [--tail N]", run: runLogs},
		"proxy":         {summary: "run a sidecar proxy without an app", run: runProxy},
		"proxy-config":  {summary: "show a proxy's listeners|routes|clusters|endpoints", run: runProxyConfig},
		"proxy-ready":   {summary: "check (or --wait for) the proxy's readiness, for a pod's postStart hook", run: runProxyReady},
		"proxy-status":  {summary: "show every proxy and whether its config is in sync", run: runProxyStatus},
		"run":           {summary: "run an app with a sidecar: run [flags] -- CMD ARGS", run: runRun},
		"tcp-echo":      {summary: "run Istio's tcp-echo sample server (used by tests)", run: runTCPEcho, hidden: true},
		"temperature":   {summary: "run one app of the gRPC demo (used by the demo)", run: runTemperature, hidden: true},
		"token":         {summary: "create a join token: token create --namespace NS --service-account SA [--ttl 1h]", run: runToken},
		"traces":        {summary: "list recent traces: traces [--service S] [--limit N]", run: runTraces},
		"uninstall":     {summary: "remove weft from Kubernetes (keeps the CRDs and Istio config unless --purge)", run: runUninstall},
		"version":       {summary: "print weft's version", run: runVersion},

		"prometheus-config": {summary: "print a prometheus.yml that scrapes every proxy and the control plane", run: runPrometheusConfig},
	}
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

// Run runs the subcommand named by args[0] and returns the process exit
// code. It is the process's main: a proxy or gateway first re-executes
// itself with the runtime's monitor tuned for a busy proxy (package sysmon).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "proxy" || args[0] == "gateway") {
		if err := sysmon.Reexec(); err != nil {
			fmt.Fprintf(stderr, "weft: %v; running on with the runtime's defaults\n", err)
		}
	}
	return RunEnv(ctx, &Env{Args: args, Stdout: stdout, Stderr: stderr, Getenv: getenv})
}

// RunEnv is Run with an explicit environment.
func RunEnv(ctx context.Context, env *Env) int {
	cmds := commands()
	if len(env.Args) == 0 || env.Args[0] == "help" || env.Args[0] == "-h" || env.Args[0] == "--help" {
		usage(env.Stderr, cmds)
		if len(env.Args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[env.Args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "weft: unknown command %q\n", env.Args[0])
		usage(env.Stderr, cmds)
		return 2
	}
	sub := *env
	sub.Args = env.Args[1:]
	if err := cmd.run(ctx, &sub); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var exit *exitCodeError
		if errors.As(err, &exit) {
			return exit.code
		}
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(env.Stderr, "weft %s: %v\n", env.Args[0], err)
		}
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: weft COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n, c := range cmds {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].summary)
	}
}

// newFlags returns a FlagSet for a subcommand that reports errors instead of exiting.
func newFlags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("weft "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// Package cli implements weft's subcommands. Each subcommand lives in its
// own file and is wired here; main only calls Run.
package cli

import (
	"context"
	"flag"
	"io"

	"github.com/weft-mesh/weft/internal/cmdline"
)

// Env is what a subcommand gets: its arguments, output streams and the
// process environment lookup (injected so tests need not touch os.Environ).
type Env = cmdline.Env

type command = cmdline.Command

// Shorthands for the helpers weft shares with weft-proxy.
var (
	errUsage         = cmdline.ErrUsage
	parseFlags       = cmdline.ParseFlags
	parseFlagsNoArgs = cmdline.ParseFlagsNoArgs
	newLogger        = cmdline.NewLogger
)

// Version is weft's release version.
const Version = cmdline.Version

// commands is the subcommand table. Keep it sorted by name. The data plane's
// commands (proxy, gateway, run, iptables, proxy-ready) are weft-proxy's:
// dataPlane adds them.
func commands() map[string]command {
	return dataPlane(map[string]command{
		"analyze":       {Summary: "report Istio's analysis messages for files and/or live config", Run: runAnalyze},
		"apply":         {Summary: "apply Istio config from a file or stdin (-f FILE|-)", Run: runApply},
		"bookinfo":      {Summary: "run one Bookinfo app (used by the demo)", Run: runBookinfo, Hidden: true},
		"control-plane": {Summary: "run the control plane (xDS, config API)", Run: runControlPlane},
		"credentials":   {Summary: "create an admin credentials file (mTLS client certificate) for another host: credentials create --out FILE", Run: runCredentials},
		"dashboard":     {Summary: "open the web console (the graph, traces, config) in a browser", Run: runDashboard},
		"dashboards":    {Summary: "list or print weft's Grafana dashboards: dashboards [NAME] [-o DIR]", Run: runDashboards},
		"delete":        {Summary: "delete Istio config named in a file (-f FILE|-)", Run: runDelete},
		"diff":          {Summary: "show a config change as a YAML diff: diff REV | diff REV1 REV2|now", Run: runDiff},
		"demo":          {Summary: "run Bookinfo with sidecars, an ingress gateway and load", Run: runDemo},
		"get":           {Summary: "list config: get KIND [NAME] [-o yaml]", Run: runGet},
		"history":       {Summary: "list the config's revisions: history [KIND[/NAME]]", Run: runHistory},
		"install":       {Summary: "install weft on Kubernetes: install [--profile default|demo|minimal] [--set K=V] [--dry-run]", Run: runInstall},
		"kube-inject":   {Summary: "add the sidecar to Kubernetes workloads in YAML: kube-inject -f FILE|- [-o FILE]", Run: runKubeInject},
		"explain":       {Summary: "walk a request through a proxy's live config (explain SOURCE URL), or name a failed one's cause (explain --last-error SOURCE)", Run: runExplain},
		"logs":          {Summary: "print a proxy's access log: logs PROXY [-f] [--tail N]", Run: runLogs},
		"tap":           {Summary: "stream live requests: tap WORKLOAD|SERVICE [--path P] [--method M] [--authority A] [--max N]", Run: runTap},
		"proxy-config":  {Summary: "show a proxy's listeners|routes|clusters|endpoints", Run: runProxyConfig},
		"proxy-status":  {Summary: "show every proxy and whether its config is in sync", Run: runProxyStatus},
		"rollback":      {Summary: "write the config of a revision back: rollback REV (weft history lists them)", Run: runRollback},
		"tcp-echo":      {Summary: "run Istio's tcp-echo sample server (used by tests)", Run: runTCPEcho, Hidden: true},
		"temperature":   {Summary: "run one app of the gRPC demo (used by the demo)", Run: runTemperature, Hidden: true},
		"token":         {Summary: "create a join token: token create --namespace NS --service-account SA [--ttl 1h]", Run: runToken},
		"traces":        {Summary: "list recent traces: traces [--service S] [--limit N]", Run: runTraces},
		"uninstall":     {Summary: "remove weft from Kubernetes (keeps the CRDs and Istio config unless --purge)", Run: runUninstall},
		"version":       cmdline.VersionCommand("weft"),

		"prometheus-config": {Summary: "print a prometheus.yml that scrapes every proxy and the control plane", Run: runPrometheusConfig},
	})
}

// Run runs the subcommand named by args[0] and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunEnv(ctx, &Env{Args: args, Stdout: stdout, Stderr: stderr, Getenv: cmdline.Getenv})
}

// RunEnv is Run with an explicit environment.
func RunEnv(ctx context.Context, env *Env) int {
	return cmdline.Main(ctx, "weft", commands(), env)
}

// newFlags returns a FlagSet for a subcommand that reports errors instead of exiting.
func newFlags(env *Env, name string) *flag.FlagSet { return cmdline.NewFlags(env, "weft "+name) }

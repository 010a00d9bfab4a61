// Package proxycli implements weft-proxy's subcommands: the data plane's
// processes (sidecar, gateway, weft run's sidecar beside its app), the
// istio-init iptables set-up and the readiness check. weft-proxy links only
// these, not the control plane, Kubernetes clients or the console, so a
// sidecar maps and keeps little memory; the weft CLI execs weft-proxy for
// these commands.
package proxycli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/weft-mesh/weft/internal/cmdline"
	"github.com/weft-mesh/weft/internal/memtrim"
	"github.com/weft-mesh/weft/internal/sysmon"
)

// Prog is the data plane binary's name.
const Prog = "weft-proxy"

// Env is what a subcommand gets.
type Env = cmdline.Env

// Commands is weft-proxy's subcommand table; the weft CLI offers the same
// names and execs weft-proxy for them.
func Commands() map[string]cmdline.Command {
	return map[string]cmdline.Command{
		"gateway":     {Summary: "run an ingress gateway proxy", Run: runGateway},
		"iptables":    {Summary: "redirect a pod's traffic to its sidecar (the istio-init container; istio-iptables' flags)", Run: runIPTables},
		"proxy":       {Summary: "run a sidecar proxy without an app", Run: runProxy},
		"proxy-ready": {Summary: "check (or --wait for) the proxy's readiness, for a pod's postStart hook", Run: runProxyReady},
		"run":         {Summary: "run an app with a sidecar: run [flags] -- CMD ARGS", Run: runRun},
		"version":     cmdline.VersionCommand(Prog),
	}
}

// Run runs the subcommand named by args[0] and returns the process exit
// code. It is the process's main: a proxy or gateway first re-executes
// itself with the runtime's monitor tuned for a busy proxy (package sysmon).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "proxy" || args[0] == "gateway") {
		if err := sysmon.Reexec(); err != nil {
			fmt.Fprintf(stderr, "%s: %v; running on with the runtime's defaults\n", Prog, err)
		}
	}
	if len(args) > 0 && (args[0] == "proxy" || args[0] == "gateway" || args[0] == "run") {
		tuneRuntime(cmdline.Getenv)
		trim(stderr) // what package initialisation touched
	}
	return RunEnv(ctx, &Env{Args: args, Stdout: stdout, Stderr: stderr, Getenv: cmdline.Getenv})
}

// RunEnv is Run with an explicit environment.
func RunEnv(ctx context.Context, env *Env) int {
	return cmdline.Main(ctx, Prog, Commands(), env)
}

// newFlags returns the FlagSet of subcommand name.
func newFlags(env *Env, name string) *flag.FlagSet { return cmdline.NewFlags(env, Prog+" "+name) }

// trim drops the resident pages of weft-proxy's own code and read-only data
// (package memtrim): a long-lived proxy keeps only what it touches again.
func trim(stderr io.Writer) {
	if _, err := memtrim.Binary(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", Prog, err)
	}
}

// gcPercent is weft-proxy's GOGC: a proxy's live heap is small and steady
// (its config, its connections' buffers), so collecting at half of it
// again instead of all of it again costs little CPU and keeps the heap,
// most of its private memory, a third smaller.
const gcPercent = 50

// tuneRuntime sets the proxy's runtime defaults, each unless the user's
// environment sets it: GOGC, and no heap profiling (every sampled
// allocation walks its stack, which keeps the binary's pc tables resident;
// GODEBUG=memprofilerate=N turns it back on for /debug/pprof/heap).
func tuneRuntime(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if !strings.Contains(getenv("GODEBUG"), "memprofilerate=") {
		runtime.MemProfileRate = 0
	}
}

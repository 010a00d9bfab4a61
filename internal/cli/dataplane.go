package cli

import (
	"context"

	"github.com/weft-mesh/weft/internal/proxybin"
	"github.com/weft-mesh/weft/internal/proxycli"
)

// dataPlane adds weft-proxy's commands to cmds. Each execs weft-proxy with
// the same arguments, so a sidecar, gateway or istio-init process is the
// small binary, never this one with the control plane, client-go and the
// console in it.
func dataPlane(cmds map[string]command) map[string]command {
	for name, c := range proxycli.Commands() {
		if _, ok := cmds[name]; ok {
			continue // weft's own version
		}
		cmds[name] = command{Summary: c.Summary, Hidden: c.Hidden, Run: execProxy(name)}
	}
	return cmds
}

// execProxy returns a command that replaces weft with `weft-proxy NAME
// ARGS...`; the new process writes to weft's own standard streams.
func execProxy(name string) func(context.Context, *Env) error {
	return func(ctx context.Context, env *Env) error {
		bin, err := proxybin.Finder{Progress: env.Stderr}.Find(ctx)
		if err != nil {
			return err
		}
		return proxybin.Exec(bin, append([]string{name}, env.Args...))
	}
}

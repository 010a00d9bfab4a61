package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Version is weft's release version.
const Version = "0.1.0"

func runVersion(_ context.Context, env *Env) error {
	fs := newFlags(env, "version")
	if err := fs.Parse(env.Args); err != nil {
		return err
	}
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	fmt.Fprintf(env.Stdout, "weft %s (revision %s)\n", Version, rev)
	return nil
}

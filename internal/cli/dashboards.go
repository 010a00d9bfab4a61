package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/weft-mesh/weft/internal/dashboards"
)

// runDashboards lists weft's Grafana dashboards, prints one as JSON for
// Grafana's import, or writes them all to a directory (-o DIR).
func runDashboards(_ context.Context, env *Env) error {
	fs := newFlags(env, "dashboards")
	dir := fs.String("o", "", "write every dashboard to `DIR`/NAME.json instead of printing")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: weft dashboards [NAME] [-o DIR]\n\nWith no NAME, lists the dashboards; with NAME, prints its Grafana JSON.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(env.Args); err != nil {
		return errUsage
	}
	all, err := dashboards.Load()
	if err != nil {
		return err
	}
	switch {
	case fs.NArg() > 1 || (fs.NArg() == 1 && *dir != ""):
		fs.Usage()
		return errUsage
	case *dir != "":
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return fmt.Errorf("dashboards: %w", err)
		}
		for _, d := range all {
			f := filepath.Join(*dir, d.Name+".json")
			if err := os.WriteFile(f, d.JSON, 0o644); err != nil {
				return fmt.Errorf("dashboards: %w", err)
			}
			fmt.Fprintln(env.Stdout, f)
		}
		return nil
	case fs.NArg() == 1:
		d, err := dashboards.Get(fs.Arg(0))
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(d.JSON)
		return err
	}
	fmt.Fprintf(env.Stdout, "%-20s %-24s %s\n", "NAME", "TITLE", "PANELS")
	for _, d := range all {
		fmt.Fprintf(env.Stdout, "%-20s %-24s %d\n", d.Name, d.Title, len(d.Panels))
	}
	fmt.Fprintln(env.Stdout, "\nweft dashboards NAME > NAME.json prints one for Grafana's Import; weft install ships them as ConfigMaps labelled grafana_dashboard=1.")
	return nil
}

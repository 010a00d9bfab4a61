package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/weft-mesh/weft/internal/config"
)

// runHistory lists the config's revisions: history [KIND[/NAME]] [-n NS | -A] [-o json].
func runHistory(ctx context.Context, env *Env) error {
	fs := newFlags(env, "history")
	ns := fs.String("n", "", "namespace (default: all)")
	output := fs.String("o", "", "output format: json (default: a table)")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) > 1 || (*output != "" && *output != "json") {
		return fmt.Errorf("usage: weft history [KIND[/NAME]] [-n NS] [-o json]")
	}
	var kind, name string
	if len(args) == 1 {
		kind, name, _ = strings.Cut(args[0], "/")
		k, ok := config.LookupKind(kind)
		if !ok {
			return fmt.Errorf("unknown kind %q; known kinds: %s", kind, strings.Join(config.Kinds(), ", "))
		}
		kind = k
	}
	c, err := client()
	if err != nil {
		return err
	}
	revs, err := c.History(ctx, kind, *ns, name)
	if err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(revs)
	}
	if len(revs) == 0 {
		fmt.Fprintln(env.Stderr, "No revisions.")
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tTIME\tBY\tCHANGES")
	for _, r := range revs {
		var cs []string
		for _, ch := range r.Changes {
			cs = append(cs, fmt.Sprintf("%s %s %s/%s", ch.Action, strings.ToLower(ch.Kind), ch.Namespace, ch.Name))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Number, r.Time.Local().Format("2006-01-02 15:04:05"), r.Actor, strings.Join(cs, ", "))
	}
	return tw.Flush()
}

// runDiff prints a unified YAML diff: diff REV (what REV changed) or diff
// REV1 REV2 (the config from REV1 to REV2; REV2 "now" for the current).
func runDiff(ctx context.Context, env *Env) error {
	fs := newFlags(env, "diff")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	usage := fmt.Errorf("usage: weft diff REV (what revision REV changed) | weft diff REV1 REV2|now")
	if len(args) < 1 || len(args) > 2 {
		return usage
	}
	revs := make([]int64, len(args))
	for i, a := range args {
		if i == 1 && a == "now" {
			continue
		}
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("revision %q: want a revision number (weft history lists them)", a)
		}
		revs[i] = n
	}
	from, to := revs[0]-1, revs[0]
	if len(revs) == 2 {
		from, to = revs[0], revs[1]
	}
	c, err := client()
	if err != nil {
		return err
	}
	d, err := c.Diff(ctx, from, to)
	if err != nil {
		return err
	}
	if d == "" {
		fmt.Fprintln(env.Stderr, "No differences.")
		return nil
	}
	_, err = fmt.Fprint(env.Stdout, d)
	return err
}

// runRollback writes the config of a revision back, as a new revision.
func runRollback(ctx context.Context, env *Env) error {
	fs := newFlags(env, "rollback")
	client := controlPlaneFlag(fs, env)
	args, err := parseInterspersed(fs, env.Args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return fmt.Errorf("usage: weft rollback REV (the config as it was at revision REV; weft history lists them)")
	}
	rev, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || rev < 0 {
		return fmt.Errorf("revision %q: want a revision number (weft history lists them)", args[0])
	}
	c, err := client()
	if err != nil {
		return err
	}
	resp, err := c.Rollback(ctx, rev)
	if err != nil {
		return err
	}
	for _, r := range resp.Results {
		fmt.Fprintln(env.Stdout, r.String())
	}
	if len(resp.Results) == 0 {
		fmt.Fprintf(env.Stdout, "the config is already as at revision %d\n", rev)
		return nil
	}
	fmt.Fprintf(env.Stdout, "rolled back to revision %d as revision %d (undo: weft rollback %d)\n", rev, resp.Revision, resp.Revision-1)
	return nil
}

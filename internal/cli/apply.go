package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/weft-mesh/weft/internal/controlplane/api"
)

// runApply applies files; the control plane's analysis warnings about the
// applied objects go to stderr (as kubectl's "Warning:" lines), before the
// results.
func runApply(ctx context.Context, env *Env) error {
	return runChange(ctx, env, "apply", func(c *api.Client, ctx context.Context, source string, data []byte) ([]api.Result, error) {
		resp, err := c.ApplyChange(ctx, source, data)
		for _, w := range resp.Warnings {
			fmt.Fprintln(env.Stderr, w)
		}
		return resp.Results, err
	})
}

// changeFunc sends one file's YAML to the control plane.
type changeFunc func(c *api.Client, ctx context.Context, source string, data []byte) ([]api.Result, error)

// runChange is apply and delete: -f FILE|DIR|- (repeatable), one request per
// file, a line per object changed, and an error if any file failed.
func runChange(ctx context.Context, env *Env, name string, change changeFunc) error {
	fs := newFlags(env, name)
	var files []string
	fs.Func("f", "a YAML file, a directory of YAML files, or - for stdin (repeatable)", func(s string) error {
		files = append(files, s)
		return nil
	})
	client := controlPlaneFlag(fs, env)
	if err := parseFlagsNoArgs(fs, env.Args); err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%s needs -f FILE (or -f - for stdin)", name)
	}
	inputs, err := readInputs(files)
	if err != nil {
		return err
	}
	c, err := client()
	if err != nil {
		return err
	}
	var failed []error
	for _, in := range inputs {
		results, err := change(c, ctx, in.name, in.data)
		for _, r := range results {
			fmt.Fprintln(env.Stdout, r.String())
		}
		if errors.Is(err, api.ErrUnreachable) {
			return err
		}
		if err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// input is one file's content.
type input struct {
	name string
	data []byte
}

// readInputs reads every -f argument: files, directories (their .yaml, .yml
// and .json files, sorted) and - (stdin).
func readInputs(args []string) ([]input, error) {
	var out []input
	for _, a := range args {
		if a == "-" {
			data, err := io.ReadAll(os.Stdin)
			if err != nil {
				return nil, fmt.Errorf("reading stdin: %w", err)
			}
			out = append(out, input{name: "stdin", data: data})
			continue
		}
		paths, err := configFiles(a)
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("-f: %w", err)
			}
			out = append(out, input{name: p, data: data})
		}
	}
	return out, nil
}

// configFiles returns path itself, or the YAML/JSON files in directory path.
func configFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	var files []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			files = append(files, filepath.Join(path, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("directory %s has no .yaml, .yml or .json files", path)
	}
	sort.Strings(files)
	return files, nil
}

package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/weft-mesh/weft/internal/analyze"
	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/api"
)

// runAnalyze is `weft analyze`, istioctl analyze for weft: it reports
// Istio's analysis messages for the files given with -f (directories are
// walked for *.yaml and *.yml) together with, when --live is set or no -f
// is given, the config live in the control plane; file objects replace live
// ones of the same kind, namespace and name. It fails when a message is an
// Error, as istioctl does.
func runAnalyze(ctx context.Context, env *Env) error {
	fset := newFlags(env, "analyze")
	var files []string
	fset.Func("f", "a YAML file, a directory (walked for *.yaml, *.yml) or - for stdin (repeatable)", func(s string) error {
		files = append(files, s)
		return nil
	})
	live := fset.Bool("live", false, "also analyze the config live in the control plane (the default without -f)")
	ns := fset.String("n", config.DefaultNamespace, "report messages about objects of this namespace")
	all := fset.Bool("A", false, "report messages about objects of all namespaces")
	output := fset.String("o", "text", "output format: text or json")
	client := controlPlaneFlag(fset, env)
	if err := parseFlagsNoArgs(fset, env.Args); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("-o %q: want text or json", *output)
	}
	var objs []*config.Object
	if *live || len(files) == 0 {
		c, err := client()
		if err != nil {
			return err
		}
		got, err := c.Get(ctx, api.Query{})
		if err != nil {
			return fmt.Errorf("reading the live config: %w", err)
		}
		objs = got
	}
	fileObjs, parseMsgs, err := readAnalyzeFiles(files)
	if err != nil {
		return err
	}
	msgs := append(parseMsgs, analyze.Analyze(mergeObjects(objs, fileObjs))...)
	target := "namespace: " + *ns
	if *all {
		target = "all namespaces"
	} else {
		msgs = inNamespace(msgs, *ns)
	}
	analyze.Sort(msgs)
	if err := printMessages(env, *output, msgs); err != nil {
		return err
	}
	if len(msgs) == 0 {
		fmt.Fprintf(env.Stderr, "\u2714 No validation issues found when analyzing %s.\n", target)
	}
	if analyze.HasErrors(msgs) {
		return fmt.Errorf("Analyzers found issues when analyzing %s.\nSee https://istio.io/latest/docs/reference/config/analysis for more information about causes and resolutions", target)
	}
	return nil
}

func printMessages(env *Env, output string, msgs []analyze.Message) error {
	if output == "json" {
		if msgs == nil {
			msgs = []analyze.Message{}
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "\t")
		return enc.Encode(msgs)
	}
	for _, m := range msgs {
		fmt.Fprintln(env.Stdout, m)
	}
	return nil
}

// mergeObjects returns live with the file objects replacing those of the
// same key (and the later file object winning among files).
func mergeObjects(live, files []*config.Object) []*config.Object {
	byKey := map[config.Key]int{}
	var out []*config.Object
	for _, o := range append(append([]*config.Object(nil), live...), files...) {
		if i, ok := byKey[o.Key()]; ok {
			out[i] = o
			continue
		}
		byKey[o.Key()] = len(out)
		out = append(out, o)
	}
	return out
}

// inNamespace keeps the messages about objects of ns, and those about
// documents that could not be read as objects.
func inNamespace(msgs []analyze.Message, ns string) []analyze.Message {
	var out []analyze.Message
	for _, m := range msgs {
		if m.Resource == (config.Key{}) || m.Resource.Namespace == ns {
			out = append(out, m)
		}
	}
	return out
}

// readAnalyzeFiles reads every -f argument. A document that does not parse
// becomes IST0106 messages; the file's other documents are still analyzed.
func readAnalyzeFiles(args []string) ([]*config.Object, []analyze.Message, error) {
	var (
		objs []*config.Object
		msgs []analyze.Message
	)
	for _, a := range args {
		paths := []string{a}
		if a != "-" {
			var err error
			if paths, err = yamlFiles(a); err != nil {
				return nil, nil, err
			}
		}
		for _, p := range paths {
			var data []byte
			var err error
			if p == "-" {
				data, err = io.ReadAll(os.Stdin)
				p = "stdin"
			} else {
				data, err = os.ReadFile(p)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("-f: %w", err)
			}
			o, m := parseLenient(p, data)
			objs, msgs = append(objs, o...), append(msgs, m...)
		}
	}
	return objs, msgs, nil
}

// parseLenient parses data; when the file as a whole does not parse, it
// parses each document alone so that the good ones are analyzed too.
func parseLenient(source string, data []byte) ([]*config.Object, []analyze.Message) {
	objs, err := config.ParseWith(source, data, config.ParseOptions{SkipForeign: true})
	if err == nil {
		return objs, nil
	}
	var msgs []analyze.Message
	for _, doc := range splitYAML(data) {
		o, err := config.ParseWith(source, doc, config.ParseOptions{SkipForeign: true})
		if err != nil {
			msgs = append(msgs, analyze.SchemaMessages(err)...)
			continue
		}
		objs = append(objs, o...)
	}
	return objs, msgs
}

// splitYAML splits a YAML stream at its "---" document separators.
func splitYAML(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), len(data)+1)
	flush := func() {
		if strings.TrimSpace(cur.String()) != "" {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
		}
		cur.Reset()
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// yamlFiles returns path itself, or the *.yaml and *.yml files under
// directory path (recursively), sorted.
func yamlFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := strings.ToLower(filepath.Ext(p))
		if !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("-f: %w", err)
	}
	if len(files) == 0 {
		return nil, errors.New("-f: directory " + path + " has no .yaml or .yml files")
	}
	sort.Strings(files)
	return files, nil
}

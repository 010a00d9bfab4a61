// Package chart renders weft's Helm chart (manifests/charts/weft) without
// Helm: values.yaml with a profile overlay and --set values, the crds/
// files as they are, and templates/ through text/template with the few
// Helm functions the templates use (funcs.go). The templates keep to that
// subset, so `helm template` renders the same objects.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// DefaultProfile is the profile values.yaml describes alone.
const DefaultProfile = "default"

// Release is what templates see as .Release.
type Release struct {
	Name      string
	Namespace string
}

// Metadata is what templates see as .Chart (from Chart.yaml).
type Metadata struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	AppVersion  string `json:"appVersion"`
	Description string `json:"description"`
}

// Chart is a loaded chart. It is immutable and safe for concurrent use.
type Chart struct {
	fsys     fs.FS
	dir      string
	meta     Metadata
	defaults map[string]any
	profiles map[string]map[string]any // name → overlay; "default" → empty
}

// Load reads the chart in directory dir of fsys.
func Load(fsys fs.FS, dir string) (*Chart, error) {
	c := &Chart{fsys: fsys, dir: dir, profiles: map[string]map[string]any{DefaultProfile: {}}}
	raw, err := fs.ReadFile(fsys, path.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", dir, err)
	}
	// Chart.yaml has fields this renderer does not use: read it leniently.
	if err := yaml.Unmarshal(raw, &c.meta); err != nil {
		return nil, fmt.Errorf("chart %s: Chart.yaml: %w", dir, err)
	}
	if c.defaults, err = readValues(fsys, path.Join(dir, "values.yaml")); err != nil {
		return nil, err
	}
	files, err := fs.Glob(fsys, path.Join(dir, "values-*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(path.Base(f), "values-"), ".yaml")
		if c.profiles[name], err = readValues(fsys, f); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func readValues(fsys fs.FS, name string) (map[string]any, error) {
	raw, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("chart values: %w", err)
	}
	v := map[string]any{}
	if err := yaml.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("chart values %s: %w", name, err)
	}
	return v, nil
}

// Metadata returns the chart's Chart.yaml.
func (c *Chart) Metadata() Metadata { return c.meta }

// Profiles returns the profile names, sorted: "default" and one per
// values-PROFILE.yaml.
func (c *Chart) Profiles() []string {
	out := make([]string, 0, len(c.profiles))
	for p := range c.profiles {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// ErrUnknownProfile is wrapped by Values and Render for a profile the chart lacks.
var ErrUnknownProfile = errors.New("unknown profile")

// Values returns the values of profile with the --set assignments applied
// (see ParseSet), as Helm computes them with -f values-PROFILE.yaml --set.
func (c *Chart) Values(profile string, set []string) (map[string]any, error) {
	overlay, ok := c.profiles[profile]
	if !ok {
		return nil, fmt.Errorf("%w %q: want one of %s", ErrUnknownProfile, profile, strings.Join(c.Profiles(), ", "))
	}
	vals := merge(deepCopy(c.defaults), overlay)
	for _, s := range set {
		if err := applySet(vals, c.defaults, s); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// Document is one rendered Kubernetes object.
type Document struct {
	// Source is the file it came from, as helm template prints it
	// (weft/templates/deployment.yaml).
	Source string
	// YAML is the object, without the leading "---".
	YAML []byte
	// APIVersion, Kind, Name and Namespace identify the object.
	APIVersion, Kind, Name, Namespace string
}

// Options are what Render renders for.
type Options struct {
	Profile string
	Set     []string
	Release Release
}

// Render renders the chart's CRDs and templates for opts, in the order
// they are installed (see Order).
func (c *Chart) Render(opts Options) ([]Document, error) {
	if opts.Profile == "" {
		opts.Profile = DefaultProfile
	}
	vals, err := c.Values(opts.Profile, opts.Set)
	if err != nil {
		return nil, err
	}
	var docs []Document
	crds, err := fs.Glob(c.fsys, path.Join(c.dir, "crds", "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range crds {
		raw, err := fs.ReadFile(c.fsys, f)
		if err != nil {
			return nil, err
		}
		if docs, err = appendDocs(docs, c.source(f), raw); err != nil {
			return nil, err
		}
	}
	tmpls, err := fs.Glob(c.fsys, path.Join(c.dir, "templates", "*.yaml"))
	if err != nil {
		return nil, err
	}
	data := map[string]any{"Values": vals, "Release": opts.Release, "Chart": c.meta, "Files": Files{fsys: c.fsys, dir: c.dir}}
	for _, f := range tmpls {
		raw, err := fs.ReadFile(c.fsys, f)
		if err != nil {
			return nil, err
		}
		t, err := template.New(c.source(f)).Option("missingkey=error").Funcs(funcs()).Parse(string(raw))
		if err != nil {
			return nil, fmt.Errorf("chart template: %w", err)
		}
		var out bytes.Buffer
		if err := t.Execute(&out, data); err != nil {
			return nil, fmt.Errorf("chart template: %w", err)
		}
		if docs, err = appendDocs(docs, c.source(f), out.Bytes()); err != nil {
			return nil, err
		}
	}
	Order(docs)
	return docs, nil
}

// Files is what templates see as .Files: the chart's other files, as
// Helm's .Files.Get reads them.
type Files struct {
	fsys fs.FS
	dir  string
}

// Get returns the content of the chart file at name (relative to the
// chart's root), or "" when there is none, as Helm does.
func (f Files) Get(name string) string {
	b, err := fs.ReadFile(f.fsys, path.Join(f.dir, name))
	if err != nil {
		return ""
	}
	return string(b)
}

// source names a chart file as helm template does: CHART/templates/x.yaml.
func (c *Chart) source(f string) string {
	return c.meta.Name + "/" + strings.TrimPrefix(f, c.dir+"/")
}

// appendDocs splits a multi-document YAML file and appends the non-empty
// documents.
func appendDocs(docs []Document, source string, raw []byte) ([]Document, error) {
	for i, part := range splitDocs(raw) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(part, &head); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i+1, err)
		}
		if head.Kind == "" && head.APIVersion == "" {
			continue // only comments
		}
		if head.Kind == "" || head.APIVersion == "" || head.Metadata.Name == "" {
			return nil, fmt.Errorf("%s: document %d: apiVersion, kind and metadata.name are required", source, i+1)
		}
		docs = append(docs, Document{Source: source, YAML: part, APIVersion: head.APIVersion, Kind: head.Kind,
			Name: head.Metadata.Name, Namespace: head.Metadata.Namespace})
	}
	return docs, nil
}

// splitDocs splits YAML at lines that are exactly "---".
func splitDocs(raw []byte) [][]byte {
	var out [][]byte
	var cur []string
	flush := func() {
		s := strings.TrimSpace(strings.Join(cur, "\n"))
		if s != "" {
			out = append(out, []byte(strings.Join(trimBlank(cur), "\n")+"\n"))
		}
		cur = nil
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.TrimRight(l, " ") == "---" {
			flush()
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return out
}

// trimBlank drops leading and trailing blank lines.
func trimBlank(lines []string) []string {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// YAML joins documents as helm template prints them: "---", a
// "# Source:" comment, the object.
func YAML(docs []Document) []byte {
	var b bytes.Buffer
	for _, d := range docs {
		fmt.Fprintf(&b, "---\n# Source: %s\n", d.Source)
		b.Write(d.YAML)
	}
	return b.Bytes()
}

// Package dashboards reads weft's Grafana dashboards: Grafana dashboard JSON
// on Istio's standard metrics (mesh, service, workload, control plane), kept
// in the Helm chart (manifests/charts/weft/dashboards) so that `weft
// install` ships them as ConfigMaps for Grafana's dashboard sidecar and
// `weft dashboards` prints them for any Grafana.
package dashboards

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/weft-mesh/weft/manifests"
)

// Dir is the dashboards' directory inside manifests.Chart.
const Dir = manifests.ChartDir + "/dashboards"

// Dashboard is one dashboard: its file's name (without .json), its JSON as
// Grafana imports it, and what weft reads of it.
type Dashboard struct {
	Name      string
	UID       string
	Title     string
	JSON      []byte
	Variables []string // template variables besides the data source, in order
	Panels    []Panel
}

// Panel is one panel and the PromQL of its targets, as written (with
// Grafana's variables).
type Panel struct {
	Title   string
	Queries []string
}

// grafana is the part of Grafana's dashboard model weft reads.
type grafana struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Load reads every dashboard, sorted by name.
func Load() ([]Dashboard, error) {
	files, err := fs.Glob(manifests.Chart, path.Join(Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	out := make([]Dashboard, 0, len(files))
	for _, f := range files {
		raw, err := fs.ReadFile(manifests.Chart, f)
		if err != nil {
			return nil, err
		}
		d, err := parse(strings.TrimSuffix(path.Base(f), ".json"), raw)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Get returns the dashboard called name ("weft-mesh"…).
func Get(name string) (Dashboard, error) {
	all, err := Load()
	if err != nil {
		return Dashboard{}, err
	}
	names := make([]string, 0, len(all))
	for _, d := range all {
		if d.Name == name || d.UID == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return Dashboard{}, fmt.Errorf("no dashboard %q: have %s", name, strings.Join(names, ", "))
}

func parse(name string, raw []byte) (Dashboard, error) {
	var g grafana
	if err := json.Unmarshal(raw, &g); err != nil {
		return Dashboard{}, fmt.Errorf("dashboard %s: %w", name, err)
	}
	d := Dashboard{Name: name, UID: g.UID, Title: g.Title, JSON: raw}
	for _, v := range g.Templating.List {
		if v.Type != "datasource" {
			d.Variables = append(d.Variables, v.Name)
		}
	}
	for _, p := range g.Panels {
		panel := Panel{Title: p.Title}
		for _, t := range p.Targets {
			panel.Queries = append(panel.Queries, t.Expr)
		}
		d.Panels = append(d.Panels, panel)
	}
	return d, nil
}

// Expand returns query with Grafana's variables replaced: $__rate_interval
// by rateInterval and $NAME by vars[NAME]. It fails on a variable it was
// not given, so a query never reaches Prometheus with a stray "$".
func Expand(query, rateInterval string, vars map[string]string) (string, error) {
	q := strings.ReplaceAll(query, "$__rate_interval", rateInterval)
	// Longest names first, so $workload is not taken for $work.
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	for _, k := range names {
		q = strings.ReplaceAll(q, "$"+k, vars[k])
	}
	if i := strings.IndexByte(q, '$'); i >= 0 {
		return "", fmt.Errorf("query %q: variable %q has no value", query, q[i:])
	}
	return q, nil
}

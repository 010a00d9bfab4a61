package dashboards

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
)

func TestDashboards(t *testing.T) {
	all, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	uids := map[string]bool{}
	for _, d := range all {
		names = append(names, d.Name)
		if d.UID == "" || uids[d.UID] || d.Title == "" {
			t.Errorf("%s: uid %q (unique, set) and title %q (set)", d.Name, d.UID, d.Title)
		}
		uids[d.UID] = true
		if !json.Valid(d.JSON) {
			t.Errorf("%s: invalid JSON", d.Name)
		}
		if len(d.Panels) < 5 {
			t.Errorf("%s: %d panels", d.Name, len(d.Panels))
		}
		vars := map[string]string{}
		for _, v := range d.Variables {
			vars[v] = "x"
		}
		used := map[string]bool{}
		for _, p := range d.Panels {
			if len(p.Queries) == 0 {
				t.Errorf("%s / %s: no query", d.Name, p.Title)
			}
			for _, q := range p.Queries {
				if _, err := Expand(q, "1m", vars); err != nil {
					t.Errorf("%s / %s: %v", d.Name, p.Title, err)
				}
				for _, m := range regexp.MustCompile(`\$([a-z]+)`).FindAllStringSubmatch(q, -1) {
					used[m[1]] = true
				}
			}
		}
		for _, v := range d.Variables {
			if !used[v] {
				t.Errorf("%s: variable %q is used by no panel", d.Name, v)
			}
		}
	}
	for _, want := range []string{"weft-control-plane", "weft-mesh", "weft-service", "weft-workload"} {
		if !slices.Contains(names, want) {
			t.Errorf("no dashboard %s among %v", want, names)
		}
	}
}

func TestExpand(t *testing.T) {
	tests := []struct {
		query string
		vars  map[string]string
		want  string
		bad   bool
	}{
		{`rate(x{a=~"$workload"}[$__rate_interval])`, map[string]string{"workload": "reviews-v1", "work": "no"}, `rate(x{a=~"reviews-v1"}[1m])`, false},
		{`rate(x{a=~"$service"}[1m])`, nil, "", true},
		{`sum(x)`, nil, `sum(x)`, false},
	}
	for _, tc := range tests {
		got, err := Expand(tc.query, "1m", tc.vars)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("Expand(%q) = %q, %v; want %q (error %v)", tc.query, got, err, tc.want, tc.bad)
		}
	}
	if _, err := Get("weft-nope"); err == nil {
		t.Error("Get of an unknown dashboard: no error")
	}
}

package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1alpha3"
)

// samplesDir is where the shared Istio samples live, beside the repository.
const samplesDir = "../../../shared/istio-samples"

// TestParseIstioSamples parses every Istio object of every sample file and
// round-trips it through Marshal.
func TestParseIstioSamples(t *testing.T) {
	if _, err := os.Stat(samplesDir); err != nil {
		t.Skipf("Istio samples not found at %s: %v", samplesDir, err)
	}
	var files []string
	err := filepath.WalkDir(samplesDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	total := 0
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := ParseWith(filepath.Base(f), data, ParseOptions{SkipForeign: true})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if strict, err := Parse(f, data); err != nil && !errors.Is(err, ErrUnsupportedKind) {
				t.Errorf("strict parse failed for another reason than foreign kinds: %v", err)
			} else if err == nil && len(strict) != len(objs) {
				t.Errorf("strict parse gave %d objects, lenient %d", len(strict), len(objs))
			}
			total += len(objs)
			assertRoundTrip(t, objs)
		})
	}
	if total < 30 {
		t.Errorf("only %d Istio objects in the samples; the walk is broken", total)
	}
}

// assertRoundTrip checks that objs marshal and parse back unchanged.
func assertRoundTrip(t *testing.T, objs []*Object) {
	t.Helper()
	out, err := Marshal(objs)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	back, err := Parse("roundtrip", out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	for _, o := range back {
		o.Source = "" // the source differs by design
	}
	want := make([]*Object, len(objs))
	for i, o := range objs {
		c := *o
		c.Source = ""
		want[i] = &c
	}
	if diff := cmp.Diff(want, back, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("round trip changed objects (-want +got):\n%s\nYAML:\n%s", diff, out)
	}
}

func TestParse(t *testing.T) {
	const vs = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: prod
  labels: {app: reviews}
spec:
  hosts: [reviews]
  http:
  - timeout: 2m
    route:
    - destination: {host: reviews, subset: v1}
      weight: 100
`
	objs, err := Parse("vs.yaml", []byte("\n---\n# only a comment\n---\n"+vs+"---\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 {
		t.Fatalf("want 1 object, got %d", len(objs))
	}
	got := objs[0]
	want := &Object{
		Kind: KindVirtualService, APIVersion: "networking.istio.io/v1beta1", Name: "reviews", Namespace: "prod",
		Labels: map[string]string{"app": "reviews"}, Source: "vs.yaml",
		Spec: &networking.VirtualService{
			Hosts: []string{"reviews"},
			Http: []*networking.HTTPRoute{{
				Timeout: durationOf(t, "120s"),
				Route: []*networking.HTTPRouteDestination{{
					Destination: &networking.Destination{Host: "reviews", Subset: "v1"}, Weight: 100,
				}},
			}},
		},
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	assertRoundTrip(t, objs)
}

func TestParseDefaultsNamespace(t *testing.T) {
	objs, err := Parse("dr.yaml", []byte("apiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\nmetadata: {name: r}\nspec: {host: reviews}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].Namespace != "default" {
		t.Errorf("namespace = %q, want default", objs[0].Namespace)
	}
}

func TestParseErrors(t *testing.T) {
	const head = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", head + "spec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {hosst: r}\n",
			`f.yaml: VirtualService default/r: spec.http[0].route[0].destination.hosst: unknown field "hosst" (did you mean "host"?)`},
		{"wrong type", head + "spec:\n  hosts: r\n",
			`f.yaml: VirtualService default/r: spec.hosts: want a list, got a string`},
		{"bad enum", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.com], resolution: MAGIC}\n",
			`f.yaml: ServiceEntry default/s: spec.resolution: unknown value MAGIC; want one of NONE, STATIC, DNS, DNS_ROUND_ROBIN, DYNAMIC_DNS`},
		{"int range", head + "spec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r, port: {number: -1}}\n",
			`f.yaml: VirtualService default/r: spec.http[0].route[0].destination.port.number: -1 is not a non-negative 32-bit integer`},
		{"oneof conflict", head + "spec:\n  hosts: [r]\n  http:\n  - match: [{uri: {exact: /a, prefix: /b}}]\n    route: [{destination: {host: r}}]\n",
			`f.yaml: VirtualService default/r: spec.http[0].match[0].uri.prefix: only one of "exact" and "prefix" may be set`},
		{"bad duration", head + "spec:\n  hosts: [r]\n  http:\n  - timeout: soon\n    route: [{destination: {host: r}}]\n",
			`f.yaml: VirtualService default/r: spec.http[0].timeout: invalid duration "soon" (want e.g. "5s", "1.5s", "2m")`},
		{"missing name", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {namespace: x}\nspec: {}\n",
			`f.yaml: Gateway document 1 (line 1): metadata.name: missing; every object needs a name`},
		{"no metadata", "apiVersion: networking.istio.io/v1\nkind: Gateway\n",
			`f.yaml: Gateway document 1 (line 1): metadata: missing or not an object (want metadata.name), got null`},
		{"unknown top level", head + "spec: {hosts: [r], http: [{route: [{destination: {host: r}}]}]}\nspecs: {}\n",
			`f.yaml: VirtualService default/r: specs: unknown field "specs" (want apiVersion, kind, metadata, spec)`},
		{"bad version", "---\napiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata: {name: g}\n",
			`f.yaml: Gateway default/g: apiVersion: unsupported apiVersion "networking.istio.io/v2" for Gateway; want one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3`},
		{"unknown kind", "apiVersion: networking.istio.io/v1\nkind: Router\nmetadata: {name: g}\n",
			`f.yaml: Router default/g: kind: unsupported kind "Router" (apiVersion "networking.istio.io/v1"); weft supports: ` + supportedList()},
		{"not a mapping", "- a\n- b\n",
			`f.yaml: document 1 (line 1): want an object with apiVersion, kind, metadata and spec, got a list`},
		{"label not a string", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, labels: {v: 1}}\nspec: {host: r}\n",
			`f.yaml: DestinationRule default/d: metadata.labels[v]: want a string (quote it), got a number`},
		{"duplicate", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: r}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: r}\n",
			`f.yaml: DestinationRule default/d: defined twice (documents 1 and 2)`},
		{"invalid name", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ../etc}\nspec: {host: r}\n",
			`f.yaml: DestinationRule default/../etc: metadata.name: "../etc" is not a valid name (lower-case letters, digits, '-' and '.', at most 253)`},
		{"validation", head + "spec:\n  hosts: [r]\n  http:\n  - route: [{destination: {host: r}, weight: -5}]\n",
			`f.yaml: VirtualService default/r: spec.http[0].route[0].weight: weight -5 must not be negative`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Parse("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; got %d objects", len(objs))
			}
			if objs != nil {
				t.Errorf("objects returned with an error: %v", objs)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.Source != "f.yaml" {
				t.Errorf("error is not a *config.Error with the source: %#v", err)
			}
		})
	}
}

func TestParseSkipForeign(t *testing.T) {
	data := []byte("apiVersion: v1\nkind: Service\nmetadata: {name: reviews}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: {host: r}\n")
	if _, err := Parse("f.yaml", data); !errors.Is(err, ErrUnsupportedKind) {
		t.Errorf("strict parse: want ErrUnsupportedKind, got %v", err)
	}
	objs, err := ParseWith("f.yaml", data, ParseOptions{SkipForeign: true})
	if err != nil || len(objs) != 1 || objs[0].Kind != KindDestinationRule {
		t.Errorf("lenient parse: got %v, %v", objs, err)
	}
	_, err = ParseWith("f.yaml", []byte("kind: DestinationRule\nmetadata: {name: d}\n"), ParseOptions{SkipForeign: true})
	if err == nil || !strings.Contains(err.Error(), "apiVersion: missing") {
		t.Errorf("a document without apiVersion must not be skipped silently: %v", err)
	}
}

func TestMarshalFormat(t *testing.T) {
	objs := []*Object{{Kind: KindDestinationRule, Name: "d", Namespace: "ns", Annotations: map[string]string{"a": "b"},
		Spec: &networking.DestinationRule{Host: "reviews", Subsets: []*networking.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}}}}
	out, err := Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  annotations:
    a: b
  name: d
  namespace: ns
spec:
  host: reviews
  subsets:
  - labels:
      version: v1
    name: v1
`
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func durationOf(t *testing.T, s string) *durationpb.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return durationpb.New(d)
}

func TestObjectJSON(t *testing.T) {
	objs, err := Parse("vs.yaml", []byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r, labels: {a: b}}\nspec: {hosts: [r], http: [{route: [{destination: {host: r, subset: v1}}]}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	objs[0].ResourceVersion = 7
	data, err := json.Marshal(objs)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"apiVersion":"networking.istio.io/v1","kind":"VirtualService","metadata":{"name":"r","namespace":"default","labels":{"a":"b"},"resourceVersion":"7"},"spec":{"hosts":["r"],"http":[{"route":[{"destination":{"host":"r","subset":"v1"}}]}]},"source":"vs.yaml"}]`
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		t.Fatal(err)
	}
	if compact.String() != want {
		t.Errorf("JSON:\n got %s\nwant %s", compact.String(), want)
	}
	var back []*Object
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(objs, back, protocmp.Transform()); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	var bad Object
	err = json.Unmarshal([]byte(`{"apiVersion":"networking.istio.io/v1","kind":"DestinationRule","metadata":{"name":"d"},"spec":{"hots":"r"},"source":"api"}`), &bad)
	if err == nil || err.Error() != `api: DestinationRule default/d: spec.hots: unknown field "hots" (did you mean "host"?)` {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestSplitDocuments(t *testing.T) {
	in := "a: 1\n---\nb: 2\n--- # comment\n--- {c: 3}\n...\n---\r\nd: 4\n---x: 5\n"
	var got []string
	for _, d := range splitDocuments([]byte(in)) {
		got = append(got, fmt.Sprintf("%d@%d:%q", d.index, d.line, d.data))
	}
	want := []string{`1@1:"a: 1\n"`, `2@3:"b: 2\n"`, `3@5:""`, `4@5:"{c: 3}\n"`, `5@7:""`, `6@8:"d: 4\n---x: 5\n"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

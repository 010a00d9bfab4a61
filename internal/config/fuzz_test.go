package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// marshals and parses back to the same objects.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(samplesDir, "*", "*.yaml"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], http: [{timeout: 1.5s, route: [{destination: {host: r}}]}]}\n"))
	f.Add([]byte("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec: {hosts: [a.b.c], ports: [{number: 80, name: http, protocol: HTTP}], resolution: STATIC, endpoints: [{address: 1.2.3.4}]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		out, err := Marshal(objs)
		if err != nil {
			t.Fatalf("Marshal of parsed objects: %v", err)
		}
		back, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if diff := cmp.Diff(objs, back, protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed objects (-first +second):\n%s\nYAML:\n%s", diff, out)
		}
	})
}

package webhook

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

// FuzzCreatePatch: for any two JSON documents, the patch turns the first
// into the second under an independent RFC 6902 implementation.
func FuzzCreatePatch(f *testing.F) {
	f.Add([]byte(`{"a":{"b/c":[1,2]},"d":"x"}`), []byte(`{"a":{"b/c":[1,2,3],"~":null},"e":false}`))
	f.Add([]byte(`{"l":[{"x":1}]}`), []byte(`{"l":[{"x":2}]}`))
	f.Fuzz(func(t *testing.T, from, to []byte) {
		var a, b map[string]any
		if json.Unmarshal(from, &a) != nil || json.Unmarshal(to, &b) != nil || a == nil || b == nil {
			return
		}
		patch, err := CreatePatch(from, to)
		if err != nil {
			t.Fatal(err)
		}
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatalf("%s: %v", patch, err)
		}
		out, err := p.Apply(from)
		if err != nil {
			t.Fatalf("applying %s to %s: %v", patch, from, err)
		}
		var got any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		var want any
		json.Unmarshal(to, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("patch %s turned %s into %s, want %s", patch, from, out, to)
		}
	})
}

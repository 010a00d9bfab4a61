package webhook

import (
	"encoding/json"
	"reflect"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
)

func TestCreatePatch(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"same", `{"a":1}`, `{"a":1}`, `[]`},
		{"add and escape", `{"m":{}}`, `{"m":{"a/b":"x","c~d":""}}`,
			`[{"op":"add","path":"/m/a~1b","value":"x"},{"op":"add","path":"/m/c~0d","value":""}]`},
		{"remove", `{"a":1,"b":2}`, `{"b":2}`, `[{"op":"remove","path":"/a"}]`},
		{"replace scalar with false", `{"a":true}`, `{"a":false}`, `[{"op":"replace","path":"/a","value":false}]`},
		{"append to array", `{"l":[1,2]}`, `{"l":[1,2,{"x":null}]}`, `[{"op":"add","path":"/l/-","value":{"x":null}}]`},
		{"prepend replaces", `{"l":[1]}`, `{"l":[0,1]}`, `[{"op":"replace","path":"/l","value":[0,1]}]`},
		{"big number kept", `{"n":12345678901234567890}`, `{"n":12345678901234567890,"m":1}`, `[{"op":"add","path":"/m","value":1}]`},
		{"object to array", `{"a":{"b":1}}`, `{"a":[1]}`, `[{"op":"replace","path":"/a","value":[1]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CreatePatch([]byte(tt.from), []byte(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("patch\n%s\nwant\n%s", got, tt.want)
			}
			// An independent RFC 6902 implementation turns from into to.
			p, err := jsonpatch.DecodePatch(got)
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Apply([]byte(tt.from))
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			json.Unmarshal(out, &a)
			json.Unmarshal([]byte(tt.to), &b)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("patched %s, want %s", out, tt.to)
			}
		})
	}
	if _, err := CreatePatch([]byte(`{`), []byte(`{}`)); err == nil {
		t.Error("no error for a bad source")
	}
}

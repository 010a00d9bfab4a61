package webhook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// operation is one RFC 6902 operation.
type operation struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
}

// CreatePatch returns the RFC 6902 JSON Patch that turns the JSON document
// from into to: objects are compared member by member; an array that only
// grew at its end gets "add …/-" operations, any other changed array is
// replaced whole.
func CreatePatch(from, to []byte) ([]byte, error) {
	a, err := decode(from)
	if err != nil {
		return nil, fmt.Errorf("patch source: %w", err)
	}
	b, err := decode(to)
	if err != nil {
		return nil, fmt.Errorf("patch target: %w", err)
	}
	ops := []operation{}
	if err := diff("", a, b, &ops); err != nil {
		return nil, err
	}
	return json.Marshal(ops)
}

func decode(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // keep numbers exactly as they were
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func diff(path string, a, b any, ops *[]operation) error {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	am, aObj := a.(map[string]any)
	bm, bObj := b.(map[string]any)
	if aObj && bObj {
		for _, k := range sortedKeys(am) {
			if _, ok := bm[k]; !ok {
				*ops = append(*ops, operation{Op: "remove", Path: path + "/" + escape(k)})
			}
		}
		for _, k := range sortedKeys(bm) {
			p := path + "/" + escape(k)
			av, ok := am[k]
			if !ok {
				if err := add(ops, "add", p, bm[k]); err != nil {
					return err
				}
				continue
			}
			if err := diff(p, av, bm[k], ops); err != nil {
				return err
			}
		}
		return nil
	}
	as, aArr := a.([]any)
	bs, bArr := b.([]any)
	if aArr && bArr && len(bs) > len(as) && reflect.DeepEqual(as, bs[:len(as)]) {
		for _, v := range bs[len(as):] {
			if err := add(ops, "add", path+"/-", v); err != nil {
				return err
			}
		}
		return nil
	}
	return add(ops, "replace", path, b)
}

func add(ops *[]operation, op, path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	*ops = append(*ops, operation{Op: op, Path: path, Value: raw})
	return nil
}

// escape escapes a member name for a JSON Pointer (RFC 6901).
func escape(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

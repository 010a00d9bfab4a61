package chart

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadSet is wrapped by Values for a --set assignment it cannot apply.
var ErrBadSet = errors.New("bad --set")

// merge merges overlay into base (maps recursively, anything else
// replaced; a null in overlay deletes the key, as Helm) and returns base.
func merge(base, overlay map[string]any) map[string]any {
	for k, v := range overlay {
		if v == nil {
			delete(base, k)
			continue
		}
		if om, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				base[k] = merge(bm, om)
				continue
			}
		}
		base[k] = deepCopyValue(v)
	}
	return base
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopy(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopyValue(e)
		}
		return out
	}
	return v
}

// applySet applies one KEY.PATH=VALUE assignment to vals. The path must
// name a value of the chart's values.yaml (defaults), or lie under a map
// that is empty there (free-form, like nodeSelector); VALUE is typed as by
// helm --set (integer, true/false, null, else string) and must have the
// type of the value it replaces.
func applySet(vals, defaults map[string]any, assignment string) error {
	key, raw, ok := strings.Cut(assignment, "=")
	if !ok || key == "" {
		return fmt.Errorf("%w %q: want KEY=VALUE, e.g. controlPlane.replicas=2", ErrBadSet, assignment)
	}
	if strings.ContainsAny(key, "[]{},\\") || strings.Contains(raw, ",") {
		return fmt.Errorf("%w %q: lists, several values and escapes are not supported; set one scalar per --set", ErrBadSet, assignment)
	}
	parts := strings.Split(key, ".")
	val := typed(raw)
	def := any(defaults)
	freeForm := false
	for i, p := range parts {
		if p == "" {
			return fmt.Errorf("%w %q: empty key segment", ErrBadSet, assignment)
		}
		if freeForm {
			break
		}
		m, isMap := def.(map[string]any)
		if !isMap {
			return fmt.Errorf("%w %q: %s is not a map in the chart's values", ErrBadSet, assignment, strings.Join(parts[:i], "."))
		}
		next, found := m[p]
		if !found {
			return fmt.Errorf("%w %q: the chart has no value %s (see manifests/charts/weft/values.yaml)", ErrBadSet, assignment, strings.Join(parts[:i+1], "."))
		}
		if nm, ok := next.(map[string]any); ok && len(nm) == 0 && i < len(parts)-1 {
			freeForm = true
		}
		def = next
	}
	if !freeForm {
		if err := sameType(def, val); err != nil {
			return fmt.Errorf("%w %q: %v", ErrBadSet, assignment, err)
		}
		if _, isString := def.(string); isString && val != nil {
			val = raw // "2" for a string value stays text, as helm --set-string
		}
	}
	cur := vals
	for _, p := range parts[:len(parts)-1] {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	last := parts[len(parts)-1]
	if val == nil {
		delete(cur, last)
		return nil
	}
	cur[last] = val
	return nil
}

// typed types a --set value as Helm does.
func typed(s string) any {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || !strings.HasPrefix(s, "0")) {
		return n
	}
	return s
}

// sameType checks that a --set value may replace a default.
func sameType(def, val any) error {
	if val == nil {
		return nil
	}
	switch def.(type) {
	case map[string]any, []any:
		return fmt.Errorf("the value is a %s; set its fields one by one", kindName(def))
	case float64, int64:
		if _, ok := val.(int64); !ok {
			return fmt.Errorf("want a number, not %q", val)
		}
	case bool:
		if _, ok := val.(bool); !ok {
			return fmt.Errorf("want true or false, not %q", val)
		}
	}
	return nil
}

func kindName(v any) string {
	if _, ok := v.(map[string]any); ok {
		return "map"
	}
	return "list"
}

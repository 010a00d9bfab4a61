package chart

import (
	"fmt"
	"reflect"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// funcs are the Helm (sprig) functions the chart's templates may use, with
// Helm's semantics. Besides text/template's built-ins (if, with, range,
// and, or, not, eq, printf...), only these:
//
//	quote ARGS...        each argument as a double-quoted string, space separated
//	default DEFAULT VAL  VAL unless it is empty (nil, "", 0, false, empty list or map)
//	toYaml VAL           VAL as YAML, without the final newline
//	indent N STR         STR with every line indented by N spaces
//	nindent N STR        a newline, then indent N STR
func funcs() template.FuncMap {
	return template.FuncMap{
		"quote":   quote,
		"default": dflt,
		"toYaml":  toYAML,
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
	}
}

func quote(args ...any) string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		if a != nil {
			out = append(out, fmt.Sprintf("%q", strval(a)))
		}
	}
	return strings.Join(out, " ")
}

func strval(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case error:
		return v.Error()
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprintf("%v", v)
}

func dflt(d any, given ...any) any {
	if len(given) == 0 || empty(given[0]) {
		return d
	}
	return given[0]
}

// empty is sprig's notion of an empty value.
func empty(v any) bool {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return true
	}
	switch rv.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Complex64, reflect.Complex128:
		return rv.Complex() == 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return rv.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return rv.Float() == 0
	case reflect.Struct:
		return false
	}
	return rv.IsNil()
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "" // as Helm
	}
	return strings.TrimSuffix(string(b), "\n")
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

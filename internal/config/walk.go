package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// walker checks a decoded JSON value against a message descriptor before
// protojson sees it, because protojson's errors carry no field path. It
// reports unknown fields, wrong types, bad enum values and conflicting oneof
// fields with their paths, and rewrites Go-style durations ("5m") into the
// protojson form ("300s") as Istio users write both.
type walker struct {
	fe *fieldErrors
}

// jsonType names the JSON type of v for error messages.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// message walks v as message md at path and returns v, possibly rewritten.
func (w *walker) message(path string, md protoreflect.MessageDescriptor, v any) any {
	if v == nil {
		return nil
	}
	if wk, ok := w.wellKnown(path, md, v); ok {
		return wk
	}
	obj, ok := v.(map[string]any)
	if !ok {
		w.fe.add(path, fmt.Sprintf("want an object, got %s", jsonType(v)))
		return v
	}
	fields := md.Fields()
	oneofSet := map[protoreflect.FullName]string{}
	seen := map[protoreflect.Name]string{}
	for _, key := range sortedKeys(obj) {
		fp := joinPath(path, key)
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			w.fe.add(fp, fmt.Sprintf("unknown field %q%s", key, suggest(key, fields)))
			continue
		}
		if prev, dup := seen[fd.Name()]; dup {
			w.fe.add(fp, fmt.Sprintf("field %q is also set as %q", key, prev))
			continue
		}
		seen[fd.Name()] = key
		val := obj[key]
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && val != nil {
			if prev, set := oneofSet[od.FullName()]; set {
				w.fe.add(fp, fmt.Sprintf("only one of %q and %q may be set", prev, key))
				continue
			}
			oneofSet[od.FullName()] = key
		}
		obj[key] = w.field(fp, fd, val)
	}
	return obj
}

// field walks the value of one field.
func (w *walker) field(path string, fd protoreflect.FieldDescriptor, v any) any {
	switch {
	case v == nil:
		return nil
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			w.fe.add(path, fmt.Sprintf("want an object (a map), got %s", jsonType(v)))
			return v
		}
		for _, k := range sortedKeys(obj) {
			kp := path + "[" + k + "]"
			w.mapKey(kp, fd.MapKey(), k)
			if obj[k] == nil && !isNullable(fd.MapValue()) {
				w.fe.add(kp, "null is not allowed as a map value")
				continue
			}
			obj[k] = w.single(kp, fd.MapValue(), obj[k])
		}
		return obj
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			w.fe.add(path, fmt.Sprintf("want a list, got %s", jsonType(v)))
			return v
		}
		for i := range list {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if list[i] == nil && !isNullable(fd) {
				w.fe.add(ip, "null is not allowed in a list")
				continue
			}
			list[i] = w.single(ip, fd, list[i])
		}
		return list
	}
	return w.single(path, fd, v)
}

// isNullable reports whether JSON null is a value of fd's type.
func isNullable(fd protoreflect.FieldDescriptor) bool {
	switch {
	case fd.Kind() == protoreflect.EnumKind:
		return fd.Enum().FullName() == "google.protobuf.NullValue"
	case fd.Message() != nil:
		return fd.Message().FullName() == "google.protobuf.Value"
	}
	return false
}

// mapKey checks a map key against the key's kind.
func (w *walker) mapKey(path string, fd protoreflect.FieldDescriptor, k string) {
	switch fd.Kind() {
	case protoreflect.StringKind:
	case protoreflect.BoolKind:
		if k != "true" && k != "false" {
			w.fe.add(path, fmt.Sprintf("map key %q is not a boolean", k))
		}
	default:
		w.scalar(path, fd, k)
	}
}

// single walks one non-repeated value of fd's type.
func (w *walker) single(path string, fd protoreflect.FieldDescriptor, v any) any {
	if fd.Message() != nil {
		return w.message(path, fd.Message(), v)
	}
	if v == nil {
		return nil
	}
	w.scalar(path, fd, v)
	return v
}

// scalar checks a scalar value against fd's kind, as protojson reads it.
func (w *walker) scalar(path string, fd protoreflect.FieldDescriptor, v any) {
	var reason string
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			reason = fmt.Sprintf("want a boolean (true or false), got %s", jsonType(v))
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			reason = fmt.Sprintf("want a string, got %s", jsonType(v))
		}
	case protoreflect.BytesKind:
		reason = checkBytes(v)
	case protoreflect.EnumKind:
		reason = checkEnum(fd.Enum(), v)
	case protoreflect.FloatKind:
		reason = checkFloat(v, 32)
	case protoreflect.DoubleKind:
		reason = checkFloat(v, 64)
	default:
		reason = checkInt(fd.Kind(), v)
	}
	if reason != "" {
		w.fe.add(path, reason)
	}
}

func checkBytes(v any) string {
	s, ok := v.(string)
	if !ok {
		return fmt.Sprintf("want a base64 string, got %s", jsonType(v))
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	if _, err := enc.DecodeString(s); err != nil {
		return "want a base64 string: " + err.Error()
	}
	return ""
}

func checkEnum(ed protoreflect.EnumDescriptor, v any) string {
	switch x := v.(type) {
	case string:
		if ed.Values().ByName(protoreflect.Name(x)) != nil {
			return ""
		}
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 32); err == nil && n >= math.MinInt32 {
			return ""
		}
	default:
		return fmt.Sprintf("want one of %s, got %s", enumNames(ed), jsonType(v))
	}
	return fmt.Sprintf("unknown value %v; want one of %s", v, enumNames(ed))
}

func enumNames(ed protoreflect.EnumDescriptor) string {
	names := make([]string, 0, ed.Values().Len())
	for i := 0; i < ed.Values().Len(); i++ {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

// numberText returns the text of a JSON number or numeric string.
func numberText(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return string(x), true
	case string:
		if x != strings.TrimSpace(x) || x == "" {
			return "", false
		}
		return x, true
	}
	return "", false
}

func checkFloat(v any, bits int) string {
	s, ok := numberText(v)
	if !ok {
		return fmt.Sprintf("want a number, got %s", jsonType(v))
	}
	f, err := strconv.ParseFloat(s, bits)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Sprintf("%s is not a finite %d-bit number", s, bits)
	}
	return ""
}

func checkInt(kind protoreflect.Kind, v any) string {
	s, ok := numberText(v)
	if !ok {
		return fmt.Sprintf("want an integer, got %s", jsonType(v))
	}
	bits, unsigned := intKind(kind)
	var err error
	if unsigned {
		_, err = strconv.ParseUint(s, 10, bits)
	} else {
		_, err = strconv.ParseInt(s, 10, bits)
	}
	if err == nil {
		return ""
	}
	// protojson also takes integral floats such as 1e3.
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr == nil && f == math.Trunc(f) && !strings.ContainsAny(s, "nN") {
		lo, hi := intRange(bits, unsigned)
		if f >= lo && f <= hi {
			return ""
		}
	}
	sign := "an"
	if unsigned {
		sign = "a non-negative"
	}
	return fmt.Sprintf("%s is not %s %d-bit integer", s, sign, bits)
}

func intKind(kind protoreflect.Kind) (bits int, unsigned bool) {
	switch kind {
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return 32, true
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return 64, true
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return 64, false
	}
	return 32, false
}

// intRange is the range of integers exactly representable for a float check;
// 64-bit bounds are kept inside float64 precision so protojson agrees.
func intRange(bits int, unsigned bool) (lo, hi float64) {
	switch {
	case bits == 32 && unsigned:
		return 0, math.MaxUint32
	case bits == 32:
		return math.MinInt32, math.MaxInt32
	case unsigned:
		return 0, 1 << 53
	}
	return -(1 << 53), 1 << 53
}

// wellKnown handles google.protobuf types whose JSON form is not an object of
// their fields. ok is false for ordinary messages.
func (w *walker) wellKnown(path string, md protoreflect.MessageDescriptor, v any) (any, bool) {
	switch md.FullName() {
	case "google.protobuf.Duration":
		return w.duration(path, v), true
	case "google.protobuf.Struct":
		if _, ok := v.(map[string]any); !ok {
			w.fe.add(path, fmt.Sprintf("want an object, got %s", jsonType(v)))
		}
		return v, true
	case "google.protobuf.ListValue":
		if _, ok := v.([]any); !ok {
			w.fe.add(path, fmt.Sprintf("want a list, got %s", jsonType(v)))
		}
		return v, true
	case "google.protobuf.Value", "google.protobuf.Any":
		return v, true
	case "google.protobuf.Timestamp", "google.protobuf.FieldMask":
		if _, ok := v.(string); !ok {
			w.fe.add(path, fmt.Sprintf("want a string, got %s", jsonType(v)))
		}
		return v, true
	}
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") && strings.HasSuffix(string(md.Name()), "Value") {
		if fd := md.Fields().ByName("value"); fd != nil { // wrappers: the bare value
			w.scalar(path, fd, v)
			return v, true
		}
	}
	return nil, false
}

// duration accepts protojson's "1.5s" and Go's "1m30s", returning protojson's form.
func (w *walker) duration(path string, v any) any {
	s, ok := v.(string)
	if !ok {
		w.fe.add(path, fmt.Sprintf("want a duration such as \"5s\", got %s", jsonType(v)))
		return v
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		w.fe.add(path, fmt.Sprintf("invalid duration %q (want e.g. \"5s\", \"1.5s\", \"2m\")", s))
		return v
	}
	return formatDuration(d)
}

// formatDuration writes d exactly in protojson's form: seconds with up to
// nine fractional digits.
func formatDuration(d time.Duration) string {
	sign := ""
	u := uint64(d)
	if d < 0 {
		sign, u = "-", uint64(-(d+1))+1
	}
	secs, nanos := u/1e9, u%1e9
	if nanos == 0 {
		return fmt.Sprintf("%s%ds", sign, secs)
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", nanos), "0")
	return fmt.Sprintf("%s%d.%ss", sign, secs, frac)
}

// suggest offers the closest known field name, for typos such as "hosst".
func suggest(key string, fields protoreflect.FieldDescriptors) string {
	best, bestDist := "", 3
	for i := 0; i < fields.Len(); i++ {
		name := fields.Get(i).JSONName()
		if d := editDistance(strings.ToLower(key), strings.ToLower(name)); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

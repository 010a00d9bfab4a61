package config

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// DefaultNamespace is the namespace of objects that name none.
const DefaultNamespace = "default"

// ParseOptions changes how ParseWith reads documents.
type ParseOptions struct {
	// SkipForeign skips documents whose apiVersion is not an Istio API group
	// (Kubernetes Services, Deployments, ...), so files that mix them with
	// Istio config can be applied. Unknown kinds in Istio groups and
	// documents without an apiVersion stay errors.
	SkipForeign bool
	// Context, when set, stops parsing when it is done (the request that
	// sent the YAML went away): ParseWith then returns its error.
	Context context.Context
}

// Parse reads Istio YAML (one or more documents separated by "---") and
// returns its objects, each validated. source names the input (a file name)
// in errors. On any error no objects are returned; the error lists every
// problem found, each naming source, object, field path and reason.
func Parse(source string, data []byte) ([]*Object, error) {
	return ParseWith(source, data, ParseOptions{})
}

// ParseWith is Parse with options.
func ParseWith(source string, data []byte, opts ParseOptions) ([]*Object, error) {
	var (
		objs []*Object
		errs []error
		seen = map[Key]int{}
	)
	for _, doc := range splitDocuments(data) {
		if opts.Context != nil && opts.Context.Err() != nil {
			return nil, fmt.Errorf("%s: parsing stopped: %w", source, context.Cause(opts.Context))
		}
		if err := checkDocumentSize(source, doc); err != nil {
			errs = append(errs, err)
			continue
		}
		obj, err := parseDocument(source, doc, opts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if obj == nil {
			continue
		}
		if prev, dup := seen[obj.Key()]; dup {
			errs = append(errs, &Error{Source: source, Object: obj.Key().String(),
				Reason: fmt.Sprintf("defined twice (documents %d and %d)", prev, doc.index)})
			continue
		}
		seen[obj.Key()] = doc.index
		if err := Validate(obj); err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, obj)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return objs, nil
}

// document is one YAML document of a stream.
type document struct {
	index int // 1-based position in the stream
	line  int // 1-based line where it starts
	data  []byte
}

// label names the document in errors when its object has no name.
func (d document) label() string {
	return fmt.Sprintf("document %d (line %d)", d.index, d.line)
}

// splitDocuments splits a YAML stream at "---" (and "...") marker lines. A
// "--- " line with content starts the next document with that content.
func splitDocuments(data []byte) []document {
	var (
		docs  []document
		cur   bytes.Buffer
		start = 1
	)
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, line := range lines {
		rest, ok := separator(line)
		if !ok {
			cur.Write(line)
			continue
		}
		docs = append(docs, document{index: len(docs) + 1, line: start, data: bytes.Clone(cur.Bytes())})
		cur.Reset()
		cur.Write(rest)
		start = i + 1
		if len(rest) == 0 {
			start = i + 2
		}
	}
	return append(docs, document{index: len(docs) + 1, line: start, data: cur.Bytes()})
}

// separator reports whether line is a document marker and returns the
// content that follows "--- " on the same line, if any.
func separator(line []byte) (rest []byte, ok bool) {
	t := bytes.TrimRight(line, "\r\n")
	for _, mark := range []string{"---", "..."} {
		after, found := bytes.CutPrefix(t, []byte(mark))
		if !found || (len(after) > 0 && after[0] != ' ' && after[0] != '\t') {
			continue
		}
		after = bytes.TrimSpace(after)
		if len(after) == 0 || after[0] == '#' {
			return nil, true
		}
		if mark == "---" {
			return append(after, '\n'), true
		}
	}
	return nil, false
}

// topLevelKeys are the fields a document may have; status is read and dropped,
// as output of kubectl get carries it.
var topLevelKeys = map[string]bool{"apiVersion": true, "kind": true, "metadata": true, "spec": true, "status": true}

// parseDocument parses one document; it returns nil, nil for an empty or
// skipped document.
func parseDocument(source string, doc document, opts ParseOptions) (*Object, error) {
	fail := func(object, path, reason string) error {
		return &Error{Source: source, Object: object, Path: path, Reason: reason}
	}
	js, err := yaml.YAMLToJSON(doc.data)
	if err != nil {
		return nil, fail(doc.label(), "", "invalid YAML: "+err.Error())
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fail(doc.label(), "", "invalid document: "+err.Error())
	}
	if raw == nil {
		return nil, nil
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, fail(doc.label(), "", fmt.Sprintf("want an object with apiVersion, kind, metadata and spec, got %s", jsonType(raw)))
	}
	apiVersion, _ := top["apiVersion"].(string)
	kind, _ := top["kind"].(string)
	if opts.SkipForeign && apiVersion != "" && !isIstioGroup(apiVersion) {
		return nil, nil
	}
	info, err := checkKind(source, objectLabel(doc, top, kind), top, apiVersion, kind)
	if err != nil {
		return nil, err
	}
	obj := &Object{Kind: kind, APIVersion: apiVersion, Source: source, Namespace: DefaultNamespace}
	fe := &fieldErrors{source: source, object: objectLabel(doc, top, kind)}
	parseMetadata(fe, obj, top["metadata"])
	for _, k := range sortedKeys(top) {
		if !topLevelKeys[k] {
			fe.add(k, fmt.Sprintf("unknown field %q (want apiVersion, kind, metadata, spec)", k))
		}
	}
	obj.Spec = parseSpec(fe, info, top["spec"])
	if err := fe.err(); err != nil {
		return nil, err
	}
	return obj, nil
}

// objectLabel names a document's object before its metadata is checked:
// "Kind namespace/name" when it has a name, else its position.
func objectLabel(doc document, top map[string]any, kind string) string {
	md, _ := top["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	switch {
	case kind == "":
		return doc.label()
	case name == "":
		return kind + " " + doc.label()
	}
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = DefaultNamespace
	}
	return Key{Kind: kind, Namespace: ns, Name: name}.String()
}

// checkKind finds the kind's table entry, or explains what is supported.
func checkKind(source, label string, top map[string]any, apiVersion, kind string) (*kindInfo, error) {
	fail := func(path, reason string) error {
		return &Error{Source: source, Object: label, Path: path, Reason: reason, Err: ErrUnsupportedKind}
	}
	if _, ok := top["kind"].(string); !ok || kind == "" {
		return nil, fail("kind", "missing or not a string; weft supports: "+supportedList())
	}
	if _, ok := top["apiVersion"].(string); !ok || apiVersion == "" {
		return nil, fail("apiVersion", "missing or not a string; weft supports: "+supportedList())
	}
	info, ok := lookupKindInfo(kind)
	if !ok {
		return nil, fail("kind", fmt.Sprintf("unsupported kind %q (apiVersion %q); weft supports: %s", kind, apiVersion, supportedList()))
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	if group == info.group {
		for _, v := range info.versions {
			if v == version {
				return info, nil
			}
		}
	}
	want := make([]string, len(info.versions))
	for i, v := range info.versions {
		want[i] = info.group + "/" + v
	}
	return nil, fail("apiVersion", fmt.Sprintf("unsupported apiVersion %q for %s; want one of %s", apiVersion, kind, strings.Join(want, ", ")))
}

// ignoredMetadata are Kubernetes metadata fields weft reads and drops.
var ignoredMetadata = map[string]bool{
	"uid": true, "resourceVersion": true, "generation": true, "creationTimestamp": true,
	"managedFields": true, "ownerReferences": true, "finalizers": true, "generateName": true,
	"deletionTimestamp": true, "deletionGracePeriodSeconds": true, "selfLink": true,
}

// parseMetadata fills obj's name, namespace, labels and annotations.
func parseMetadata(fe *fieldErrors, obj *Object, v any) {
	md, ok := v.(map[string]any)
	if !ok {
		fe.add("metadata", fmt.Sprintf("missing or not an object (want metadata.name), got %s", jsonType(v)))
		return
	}
	for _, k := range sortedKeys(md) {
		path := "metadata." + k
		switch k {
		case "name", "namespace":
			s, ok := md[k].(string)
			if !ok {
				fe.add(path, fmt.Sprintf("want a string, got %s", jsonType(md[k])))
				continue
			}
			if k == "name" {
				obj.Name = s
			} else if s != "" {
				obj.Namespace = s
			}
		case "labels", "annotations":
			m := stringMap(fe, path, md[k])
			if k == "labels" {
				obj.Labels = m
			} else {
				obj.Annotations = m
			}
		default:
			if !ignoredMetadata[k] {
				fe.add(path, fmt.Sprintf("unknown field %q", k))
			}
		}
	}
	if _, ok := md["name"]; !ok {
		fe.add("metadata.name", "missing; every object needs a name")
	}
}

// stringMap reads a map of strings (labels, annotations).
func stringMap(fe *fieldErrors, path string, v any) map[string]string {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		fe.add(path, fmt.Sprintf("want an object of strings, got %s", jsonType(v)))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, val := range m {
		s, ok := val.(string)
		if !ok {
			fe.add(path+"["+k+"]", fmt.Sprintf("want a string (quote it), got %s", jsonType(val)))
			continue
		}
		out[k] = s
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseSpec checks spec against the kind's message and decodes it.
func parseSpec(fe *fieldErrors, info *kindInfo, v any) (spec proto.Message) {
	spec = info.newSpec()
	if v == nil {
		return spec
	}
	before := len(fe.errs)
	w := &walker{fe: fe}
	v = w.message("spec", spec.ProtoReflect().Descriptor(), v)
	if len(fe.errs) > before {
		return spec
	}
	js, err := json.Marshal(v)
	if err != nil {
		fe.add("spec", "cannot re-encode: "+err.Error())
		return spec
	}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, spec); err != nil {
		fe.add("spec", strings.TrimPrefix(err.Error(), "proto: "))
	}
	return spec
}

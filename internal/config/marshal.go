package config

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"
)

// Marshal writes objects as Istio YAML documents (apiVersion, kind, metadata
// with name, namespace, labels and annotations, spec) separated by "---".
// The output parses back with Parse to the same objects.
func Marshal(objs []*Object) ([]byte, error) {
	var buf bytes.Buffer
	for i, obj := range objs {
		doc, err := marshalObject(obj)
		if err != nil {
			return nil, fmt.Errorf("marshalling %s: %w", obj.Key(), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(doc)
	}
	return buf.Bytes(), nil
}

// marshalObject writes one object as a YAML document.
func marshalObject(obj *Object) ([]byte, error) {
	apiVersion := obj.APIVersion
	if apiVersion == "" {
		apiVersion = DefaultAPIVersion(obj.Kind)
	}
	if apiVersion == "" {
		return nil, fmt.Errorf("unsupported kind %q: %w", obj.Kind, ErrUnsupportedKind)
	}
	meta := map[string]any{"name": obj.Name, "namespace": obj.Namespace}
	if len(obj.Labels) > 0 {
		meta["labels"] = obj.Labels
	}
	if len(obj.Annotations) > 0 {
		meta["annotations"] = obj.Annotations
	}
	doc := map[string]any{"apiVersion": apiVersion, "kind": obj.Kind, "metadata": meta}
	if obj.Spec != nil {
		js, err := protojson.Marshal(obj.Spec)
		if err != nil {
			return nil, fmt.Errorf("encoding spec: %w", err)
		}
		doc["spec"] = json.RawMessage(js)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	out, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("converting to YAML: %w", err)
	}
	return out, nil
}

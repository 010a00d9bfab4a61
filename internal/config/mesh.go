package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// implementedMeshFields are the MeshConfig fields weft acts on (JSON names).
var implementedMeshFields = map[string]bool{"outboundTrafficPolicy": true, "pathNormalization": true}

// ParseMeshConfig reads Istio's mesh config: the YAML of the istio
// ConfigMap's "mesh" key, or of an IstioOperator's spec.meshConfig, as an
// istio.io/api MeshConfig. A field Istio does not know, or a value of the
// wrong type, is an error naming the field; source names the file in it.
func ParseMeshConfig(source string, data []byte) (*meshconfig.MeshConfig, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	mc := &meshconfig.MeshConfig{}
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if v == nil {
		return mc, nil
	}
	fe := &fieldErrors{source: source, object: "MeshConfig"}
	v = (&walker{fe: fe}).message("", mc.ProtoReflect().Descriptor(), v)
	if len(fe.errs) > 0 {
		return nil, errors.Join(fe.errs...)
	}
	if js, err = json.Marshal(v); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := protojson.Unmarshal(js, mc); err != nil {
		return nil, &Error{Source: source, Object: "MeshConfig", Reason: strings.TrimPrefix(err.Error(), "proto: ")}
	}
	return mc, nil
}

// UnimplementedMeshFields lists the fields set in mc that weft does not act
// on, so that the control plane can say so when it starts.
func UnimplementedMeshFields(mc *meshconfig.MeshConfig) []Unimplemented {
	var out []Unimplemented
	mc.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !implementedMeshFields[fd.JSONName()] {
			out = append(out, Unimplemented{Path: fd.JSONName(), Reason: notImplemented})
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

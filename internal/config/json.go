package config

import (
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
)

// objectJSON is the JSON form of an Object: Istio's document shape plus the
// store's bookkeeping (metadata.resourceVersion as Kubernetes writes it, and
// the object's source).
type objectJSON struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   metadataJSON    `json:"metadata"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Source     string          `json:"source,omitempty"`
}

type metadataJSON struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	ResourceVersion string            `json:"resourceVersion,omitempty"`
}

// MarshalJSON writes the object as an Istio JSON document (spec in
// protojson's form) with metadata.resourceVersion and a top-level "source",
// for the control plane's HTTP API.
func (o *Object) MarshalJSON() ([]byte, error) {
	doc := objectJSON{
		APIVersion: o.APIVersion, Kind: o.Kind, Source: o.Source,
		Metadata: metadataJSON{Name: o.Name, Namespace: o.Namespace, Labels: o.Labels, Annotations: o.Annotations},
	}
	if doc.APIVersion == "" {
		doc.APIVersion = DefaultAPIVersion(o.Kind)
	}
	if o.ResourceVersion != 0 {
		doc.Metadata.ResourceVersion = strconv.FormatInt(o.ResourceVersion, 10)
	}
	if o.Spec != nil {
		spec, err := protojson.Marshal(o.Spec)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", o.Key(), err)
		}
		doc.Spec = spec
	}
	return json.Marshal(doc)
}

// UnmarshalJSON reads what MarshalJSON writes (or any single Istio JSON
// document), checking it as Parse does.
func (o *Object) UnmarshalJSON(data []byte) error {
	var doc objectJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("decoding config object: %w", err)
	}
	var rv int64
	if doc.Metadata.ResourceVersion != "" {
		n, err := strconv.ParseInt(doc.Metadata.ResourceVersion, 10, 64)
		if err != nil {
			return fmt.Errorf("decoding config object: metadata.resourceVersion %q: %w", doc.Metadata.ResourceVersion, err)
		}
		rv = n
	}
	source := doc.Source
	doc.Source = "" // Parse takes Istio's fields only
	plain, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("decoding config object: %w", err)
	}
	objs, err := Parse(source, plain)
	if err != nil {
		return err
	}
	if len(objs) != 1 {
		return fmt.Errorf("decoding config object: want one object, got %d", len(objs))
	}
	*o = *objs[0]
	o.ResourceVersion = rv
	return nil
}

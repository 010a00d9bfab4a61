package xdsserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/controlplane/translate"
)

// Type URLs of the resources weft serves, in the order a proxy should get them.
const (
	ClusterType  = resource.ClusterType
	EndpointType = resource.EndpointType
	ListenerType = resource.ListenerType
	RouteType    = resource.RouteType
)

// TypeURLs lists the served type URLs: CDS, EDS, LDS, RDS.
var TypeURLs = []string{ClusterType, EndpointType, ListenerType, RouteType}

// validator is what every generated Envoy message implements.
type validator interface{ Validate() error }

// newSnapshot turns translate's output into a snapshot whose version per
// type is a hash of that type's content (translate's Versions, else computed
// here), so that a change to one type bumps only that type's version. It
// validates every resource (unless validated says translate did) and the
// snapshot's consistency.
func newSnapshot(out *translate.Output, validated bool) (*cache.Snapshot, error) {
	byType := map[string][]types.Resource{
		ClusterType:  out.Clusters,
		EndpointType: out.Endpoints,
		ListenerType: out.Listeners,
		RouteType:    out.Routes,
	}
	snap := &cache.Snapshot{}
	for typeURL, res := range byType {
		if err := validateAll(typeURL, res, validated); err != nil {
			return nil, err
		}
		version := out.Versions[typeURL]
		if version == "" {
			var err error
			if version, err = contentHash(res); err != nil {
				return nil, fmt.Errorf("hashing %s: %w", typeURL, err)
			}
		}
		snap.Resources[cache.GetResponseType(typeURL)] = cache.NewResources(version, res)
	}
	if err := snap.Consistent(); err != nil {
		return nil, fmt.Errorf("inconsistent snapshot: %w", err)
	}
	return snap, nil
}

// validateAll checks every resource of one type: its name is unique and,
// unless validated, the resource valid.
func validateAll(typeURL string, res []types.Resource, validated bool) error {
	var errs []error
	seen := make(map[string]bool, len(res))
	for _, r := range res {
		name := cache.GetResourceName(r)
		if seen[name] {
			errs = append(errs, fmt.Errorf("%s %q: duplicate name", typeURL, name))
		}
		seen[name] = true
		if v, ok := r.(validator); ok && !validated {
			if err := v.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: %w", typeURL, name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// contentHash is a short hash of the resources, independent of their order.
func contentHash(res []types.Resource) (string, error) {
	type named struct {
		name string
		data []byte
	}
	items := make([]named, 0, len(res))
	opts := proto.MarshalOptions{Deterministic: true}
	for _, r := range res {
		b, err := opts.Marshal(r)
		if err != nil {
			return "", fmt.Errorf("resource %q: %w", cache.GetResourceName(r), err)
		}
		items = append(items, named{cache.GetResourceName(r), b})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	h := sha256.New()
	for _, it := range items {
		fmt.Fprintf(h, "%d:%s:%d:", len(it.name), it.name, len(it.data))
		h.Write(it.data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// snapshotVersions returns the version per type URL of a snapshot.
func snapshotVersions(s *cache.Snapshot) map[string]string {
	v := make(map[string]string, len(TypeURLs))
	for _, t := range TypeURLs {
		v[t] = s.GetVersion(t)
	}
	return v
}

package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/registry"
)

func TestAddServiceAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		addresses []string
		want      []any // nil: no metadata
	}{
		{"none", nil, nil},
		{"CIDRs only", []string{"10.0.0.0/16"}, nil},
		{"VIPs", []string{"240.240.0.1", "10.1.0.0/16", "FD00::1"}, []any{"240.240.0.1", "fd00::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &cluster.Cluster{Name: "outbound|3306||db.example.com"}
			addServiceAddresses(c, &registry.Service{Hostname: "db.example.com", Addresses: tt.addresses})
			got := c.GetMetadata().GetFilterMetadata()[config.MetadataServiceAddresses]
			if tt.want == nil {
				if got != nil {
					t.Fatalf("metadata %v, want none", got)
				}
				return
			}
			want, _ := structpb.NewStruct(map[string]any{"host": "db.example.com", "addresses": tt.want})
			if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
				t.Errorf("metadata (-want +got):\n%s", d)
			}
		})
	}
}

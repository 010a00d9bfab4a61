package dataplane

import (
	"net/netip"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"

	weftconfig "github.com/weft-mesh/weft/internal/config"
)

func TestDNSHosts(t *testing.T) {
	t.Parallel()
	withVIPs := func(name, host string, vips ...any) *cluster.Cluster {
		st, err := structpb.NewStruct(map[string]any{"host": host, "addresses": vips})
		if err != nil {
			t.Fatal(err)
		}
		return &cluster.Cluster{Name: name, Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{weftconfig.MetadataServiceAddresses: st}}}
	}
	clusters := map[string]*cluster.Cluster{
		"outbound|9080||reviews.default.svc.cluster.local": withVIPs("a", "reviews.default.svc.cluster.local", "10.96.0.20", "fd00::20"),
		"outbound|9081||reviews.default.svc.cluster.local": withVIPs("b", "reviews.default.svc.cluster.local", "10.96.0.20"),
		"outbound|3306||db.example.com":                    withVIPs("c", "DB.example.com.", "240.240.0.1", "not-an-ip"),
		"outbound|9080||ratings.default.svc.cluster.local": {Name: "ratings"},
		"outbound|80||nohost":                              withVIPs("d", "", "240.240.0.2"),
	}
	want := map[string][]netip.Addr{
		"reviews.default.svc.cluster.local": {netip.MustParseAddr("10.96.0.20"), netip.MustParseAddr("fd00::20")},
		"db.example.com":                    {netip.MustParseAddr("240.240.0.1")},
	}
	if d := cmp.Diff(want, dnsHosts(clusters), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("dnsHosts (-want +got):\n%s", d)
	}
}

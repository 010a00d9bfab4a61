package main

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
)

// TestEDSName: the wire reading of a cluster agrees with a full decode.
func TestEDSName(t *testing.T) {
	cases := []struct {
		name string
		c    *cluster.Cluster
		want string
		eds  bool
	}{
		{"EDS with a service name", &cluster.Cluster{Name: "a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{ServiceName: "svc-a"}}, "svc-a", true},
		{"EDS without one", &cluster.Cluster{Name: "b", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}}, "b", true},
		{"static", &cluster.Cluster{Name: "c", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC}}, "c", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			got, eds, err := edsName(b)
			if err != nil || got != tc.want || eds != tc.eds {
				t.Errorf("edsName = %q, %t, %v; want %q, %t", got, eds, err, tc.want, tc.eds)
			}
		})
	}
	if _, _, err := edsName([]byte{0x0a, 0x05, 'x'}); err == nil {
		t.Error("a truncated cluster decoded")
	}
}

package xdsclient

import (
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestDecodeSOTW(t *testing.T) {
	pack := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name    string
		typeURL string
		res     []*anypb.Any
		wantErr string
		want    int
	}{
		{"ok", ListenerType, []*anypb.Any{pack(&listener.Listener{Name: "a"}), pack(&listener.Listener{Name: "b"})}, "", 2},
		{"wrong type", ListenerType, []*anypb.Any{pack(&cluster.Cluster{Name: "a"})}, "where envoy.config.listener.v3.Listener was expected", 0},
		{"unnamed", ClusterType, []*anypb.Any{pack(&cluster.Cluster{})}, "has no name", 0},
		{"duplicate", ClusterType, []*anypb.Any{pack(&cluster.Cluster{Name: "a"}), pack(&cluster.Cluster{Name: "a"})}, "appears twice", 0},
		{"malformed", ClusterType, []*anypb.Any{{TypeUrl: ClusterType, Value: []byte{0xff, 0xff}}}, "decoding Cluster", 0},
	}
	for _, tt := range tests {
		u, err := decodeSOTW(decoders[tt.typeURL], &discovery.DiscoveryResponse{TypeUrl: tt.typeURL, Resources: tt.res})
		if tt.wantErr == "" {
			if err != nil || len(u.decoded) != tt.want {
				t.Errorf("%s: got %d resources, %v; want %d", tt.name, len(u.decoded), err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !IsKind(err, KindDecode) {
			t.Errorf("%s: error %v, want a decode error containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestDiffNames(t *testing.T) {
	add, rm := diffNames([]string{"a", "b"}, []string{"b", "c"})
	if strings.Join(add, ",") != "c" || strings.Join(rm, ",") != "a" {
		t.Errorf("diffNames = +%v -%v, want +[c] -[a]", add, rm)
	}
}

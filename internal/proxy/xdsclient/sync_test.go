package xdsclient

import (
	"errors"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/google/go-cmp/cmp"
)

var protocols = []string{StateOfTheWorld, Delta}

func all(v string) map[string]string {
	return map[string]string{"LDS": v, "RDS": v, "CDS": v, "EDS": v}
}

// TestSubscribe checks the client receives every type, subscribes RDS and
// EDS to exactly the referenced names, and follows changes.
func TestSubscribe(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			f := startServer(t, "127.0.0.1:0", cache.NewSnapshotCache(true, cache.IDHash{}, nil))
			f.set(t, "v1", mesh([]string{"l1", "l2"}, []string{"a", "b"}))
			rec := newRecorder()
			c := startClient(t, f.addr, p, rec)
			eventually(t, "v1 everywhere", func() bool { return cmp.Equal(ackedVersions(c), all("v1")) })
			want := map[string][]string{
				ListenerType: {"l1", "l2"}, RouteType: {"r-l1", "r-l2"},
				ClusterType: {"a", "b", "static"}, EndpointType: {"eds-a", "eds-b"},
			}
			for typ, names := range want {
				if diff := cmp.Diff(names, rec.names(typ)); diff != "" {
					t.Errorf("%s names (-want +got):\n%s", shortType(typ), diff)
				}
			}
			for typ, names := range map[string][]string{RouteType: {"r-l1", "r-l2"}, EndpointType: {"eds-a", "eds-b"}} {
				if got := f.subscribed(typ); !cmp.Equal(got, names) {
					t.Errorf("%s subscription = %v, want %v", shortType(typ), got, names)
				}
			}
			f.set(t, "v2", mesh([]string{"l2", "l3"}, []string{"b"}))
			eventually(t, "v2 routes and endpoints", func() bool {
				return cmp.Equal(rec.names(RouteType), []string{"r-l2", "r-l3"}) && cmp.Equal(rec.names(EndpointType), []string{"eds-b"}) &&
					cmp.Equal(rec.names(ClusterType), []string{"b", "static"})
			})
			eventually(t, "v2 subscriptions", func() bool {
				return cmp.Equal(f.subscribed(RouteType), []string{"r-l2", "r-l3"}) && cmp.Equal(f.subscribed(EndpointType), []string{"eds-b"})
			})
			if !c.Connected() {
				t.Error("Connected() = false while streaming")
			}
			dump := c.Snapshots()
			if got := len(dump[0].Resources); dump[0].TypeURL != ListenerType || got != 2 {
				t.Errorf("Snapshots()[0] = %s with %d resources, want 2 listeners", dump[0].TypeURL, got)
			}
		})
	}
}

// TestNACK checks a rejected update is NACKed with its reason and the last
// good version stays ACKed.
func TestNACK(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			f := startServer(t, "127.0.0.1:0", cache.NewSnapshotCache(true, cache.IDHash{}, nil))
			f.set(t, "v1", mesh([]string{"l1"}, []string{"a"}))
			rec := newRecorder()
			rec.reject[ClusterType] = "v2"
			c := startClient(t, f.addr, p, rec)
			eventually(t, "v1 clusters", func() bool { return rec.version(ClusterType) == "v1" })
			f.set(t, "v2", mesh([]string{"l1"}, []string{"a", "b"}))
			eventually(t, "the NACK", func() bool { return f.nackCount() > 0 })
			f.mu.Lock()
			msg := f.nacks[0]
			f.mu.Unlock()
			if !strings.Contains(msg, "refusing CDS version v2") {
				t.Errorf("error_detail = %q, want the handler's reason", msg)
			}
			var cds Snapshot
			for _, s := range c.Snapshots() {
				if s.TypeURL == ClusterType {
					cds = s
				}
			}
			if cds.Version != "v1" || len(cds.Resources) != 2 || !strings.Contains(cds.LastNACK, "refusing") {
				t.Errorf("CDS after NACK: version %q, %d resources, last NACK %q; want v1, 2, the reason", cds.Version, len(cds.Resources), cds.LastNACK)
			}
			if got := rec.names(ClusterType); !cmp.Equal(got, []string{"a", "static"}) {
				t.Errorf("handler clusters = %v, want the v1 set", got)
			}
		})
	}
}

// TestReconnect checks the client reconnects after the server restarts
// and receives the new server's config.
func TestReconnect(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			f := startServer(t, "127.0.0.1:0", cache.NewSnapshotCache(true, cache.IDHash{}, nil))
			f.set(t, "v1", mesh([]string{"l1"}, []string{"a"}))
			rec := newRecorder()
			c := startClient(t, f.addr, p, rec)
			eventually(t, "v1 endpoints", func() bool { return len(rec.names(EndpointType)) == 1 })
			f.grpc.Stop()
			eventually(t, "disconnect", func() bool { return !c.Connected() })
			if got := rec.names(ClusterType); len(got) != 2 {
				t.Errorf("handler lost its clusters while disconnected: %v", got)
			}
			g := startServer(t, f.addr, cache.NewSnapshotCache(true, cache.IDHash{}, nil))
			g.set(t, "v2", mesh([]string{"l1"}, []string{"a", "c"}))
			eventually(t, "v2 endpoints after reconnect", func() bool {
				return cmp.Equal(rec.names(EndpointType), []string{"eds-a", "eds-c"})
			})
		})
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no address", Options{Handler: newRecorder()}},
		{"bad protocol", Options{Address: "x:1", Handler: newRecorder(), Protocol: "rest"}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil {
			t.Errorf("%s: New succeeded", tt.name)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	err := error(newError(KindRejected, ClusterType, errors.New("boom")))
	if !IsKind(err, KindRejected) || IsKind(err, KindDecode) {
		t.Errorf("IsKind wrong for %v", err)
	}
	if got, want := err.Error(), "xds rejected CDS: boom"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

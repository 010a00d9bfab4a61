package cli

import (
	"net/http"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/explain"
)

func TestHeaderFlags(t *testing.T) {
	tests := []struct {
		in      string
		name    string
		value   string
		wantErr bool
	}{
		{"end-user: jason", "End-User", "jason", false},
		{"x-a:b:c", "X-A", "b:c", false},
		{"no colon", "", "", true},
		{": v", "", "", true},
	}
	for _, tt := range tests {
		h := headerFlags{}
		err := h.Set(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Set(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && http.Header(h).Get(tt.name) != tt.value {
			t.Errorf("Set(%q): %v, want %s=%q", tt.in, h, tt.name, tt.value)
		}
	}
}

func TestEntryPort(t *testing.T) {
	tests := []struct {
		e    explain.Entry
		want uint32
	}{
		{explain.Entry{Authority: "reviews:9080"}, 9080},
		{explain.Entry{Authority: "reviews", DownstreamLocal: "10.0.0.1:9081"}, 9081},
		{explain.Entry{Authority: "reviews"}, 0},
	}
	for _, tt := range tests {
		if got := entryPort(tt.e); got != tt.want {
			t.Errorf("entryPort(%+v) = %d, want %d", tt.e, got, tt.want)
		}
	}
}

func TestFindSource(t *testing.T) {
	ps := []xdsserver.ProxyStatus{
		{ID: "a", Name: "productpage-v1-1", Namespace: "default", Workload: "productpage-v1", AdminAddress: "127.0.0.1:1"},
		{ID: "b", Name: "reviews-v1-1", Namespace: "default", Workload: "reviews-v1", AdminAddress: "127.0.0.1:2"},
		{ID: "c", Name: "reviews-v1-2", Namespace: "default", Workload: "reviews-v1", AdminAddress: "127.0.0.1:3"},
		{ID: "d", Name: "bare", Namespace: "default"},
	}
	tests := []struct {
		source, want string
		wantErr      bool
	}{
		{"productpage-v1-1.default", "a", false},
		{"productpage-v1", "a", false}, // the workload's one proxy
		{"reviews-v1", "", true},       // two proxies: name one
		{"reviews-v1-2", "c", false},
		{"bare", "", true}, // no admin address
		{"nobody", "", true},
	}
	for _, tt := range tests {
		p, err := findSource(ps, tt.source)
		if (err != nil) != tt.wantErr || !tt.wantErr && p.ID != tt.want {
			t.Errorf("findSource(%q) = %q, %v; want %q (error %v)", tt.source, p.ID, err, tt.want, tt.wantErr)
		}
	}
}

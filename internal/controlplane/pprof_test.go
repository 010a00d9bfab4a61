package controlplane

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestPprof: profiles are served to loopback clients only; other paths
// reach the API as before.
func TestPprof(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := mountPprof(api)
	cases := []struct {
		name, path, remote string
		want               int
	}{
		{"heap from loopback", "/debug/pprof/heap", "127.0.0.1:4000", http.StatusOK},
		{"index from IPv6 loopback", "/debug/pprof/", "[::1]:4000", http.StatusOK},
		{"heap from the network", "/debug/pprof/heap", "10.1.2.3:4000", http.StatusForbidden},
		{"the API", "/api/v1/proxies", "10.1.2.3:4000", http.StatusTeapot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.RemoteAddr = tc.remote
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("GET %s from %s: %d, want %d", tc.path, tc.remote, rec.Code, tc.want)
			}
		})
	}
}

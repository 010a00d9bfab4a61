package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPprofLoopbackOnly(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.AdminHandler()
	tests := []struct {
		name, remote, path string
		wantCode           int
		want               string
	}{
		{"index from loopback", "127.0.0.1:40000", "/debug/pprof/", http.StatusOK, "goroutine"},
		{"heap from loopback v6", "[::1]:40000", "/debug/pprof/heap?debug=1", http.StatusOK, "heap profile"},
		{"goroutines from a pod IP on loopback", "127.0.9.1:40000", "/debug/pprof/goroutine?debug=1", http.StatusOK, "goroutine profile"},
		{"index from elsewhere", "10.0.0.7:40000", "/debug/pprof/", http.StatusForbidden, "loopback clients only"},
		{"profile from elsewhere", "192.168.1.2:40000", "/debug/pprof/profile?seconds=1", http.StatusForbidden, "loopback clients only"},
		{"unparsable remote", "somewhere", "/debug/pprof/", http.StatusForbidden, "loopback clients only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			req.RemoteAddr = tt.remote
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Result().Body)
			if rec.Code != tt.wantCode || !strings.Contains(string(body), tt.want) {
				t.Errorf("GET %s from %s = %d %.80q, want %d containing %q", tt.path, tt.remote, rec.Code, body, tt.wantCode, tt.want)
			}
		})
	}
}

package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/xdsserver"
	"github.com/weft-mesh/weft/internal/tap"
)

// The proxy accepts tap tokens of the identity only the admin gets.
func TestTapIdentityIsTheAdmins(t *testing.T) {
	if tap.Identity != authz.AdminIdentity {
		t.Fatalf("tap tokens need %s, the admin identity is %s", tap.Identity, authz.AdminIdentity)
	}
}

func TestTapRequest(t *testing.T) {
	proxies := []xdsserver.ProxyStatus{
		{ID: "a", Name: "reviews-v1-1", Workload: "reviews-v1", Namespace: "default", Labels: map[string]string{"app": "reviews"}, AdminAddress: "127.0.0.1:1"},
		{ID: "b", Name: "ratings-v1-1", Workload: "ratings-v1", Namespace: "default", Labels: map[string]string{"app": "ratings"}},
		{ID: "c", Name: "grpc-app", Namespace: "default", Type: xdsserver.TypeProxyless, Labels: map[string]string{"app": "reviews"}},
	}
	az := authz.New(authz.Options{AdminToken: "weft-admin.secret", Kube: editors{}})
	h := MountTap(http.NotFoundHandler(), TapOptions{Proxies: func() []xdsserver.ProxyStatus { return proxies }, Authorizer: az})
	tests := []struct {
		name, query, auth string
		want              int
	}{
		{"anonymous", "target=reviews", "", http.StatusUnauthorized},
		{"wrong token", "target=reviews", "Bearer weft-admin.guessed", http.StatusUnauthorized},
		{"no target", "", "Bearer weft-admin.secret", http.StatusBadRequest},
		{"bad max", "target=reviews&max=x", "Bearer weft-admin.secret", http.StatusBadRequest},
		{"unknown workload", "target=productpage", "Bearer weft-admin.secret", http.StatusNotFound},
		{"other namespace", "target=reviews&namespace=prod", "Bearer weft-admin.secret", http.StatusNotFound},
		{"no CA", "target=reviews", "Bearer weft-admin.secret", http.StatusServiceUnavailable},
		// A Kubernetes user taps where RBAC lets them create taps.weft.io
		// (503: past authorization, where this handler has no CA to sign with).
		{"kubernetes user in their namespace", "target=reviews&namespace=default", "Bearer jane", http.StatusServiceUnavailable},
		{"kubernetes user in another namespace", "target=reviews&namespace=prod", "Bearer jane", http.StatusForbidden},
		{"kubernetes user, every namespace", "target=reviews", "Bearer jane", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, TapPath+"?"+tt.query, nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Fatalf("GET %s?%s: %d %s, want %d", TapPath, tt.query, w.Code, w.Body, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		target string
		want   []string
	}{
		{"reviews", []string{"a"}}, {"reviews-v1", []string{"a"}}, {"ratings-v1-1", []string{"b"}}, {"details", nil},
	} {
		var got []string
		for _, p := range tapTargets(proxies, tt.target, "") {
			got = append(got, p.ID)
		}
		if len(got) != len(tt.want) || (len(got) == 1 && got[0] != tt.want[0]) {
			t.Errorf("tap %s taps %v, want %v (never a proxyless app)", tt.target, got, tt.want)
		}
	}
}

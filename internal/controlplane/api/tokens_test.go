package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/token"
)

func TestTokensEndpoint(t *testing.T) {
	iss := token.NewWithKey([]byte("0123456789abcdef0123456789abcdef"), nil)
	h := MountTokens(http.NotFoundHandler(), iss, authz.New(authz.Options{AdminToken: testAdminToken}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	admin := NewClientWith(srv.URL, ClientOptions{Token: testAdminToken})
	resp, err := admin.CreateToken(context.Background(), "default", "bookinfo-reviews", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ns, sa, err := iss.Verify(resp.Token); err != nil || ns != "default" || sa != "bookinfo-reviews" {
		t.Errorf("token: %q %q %v", ns, sa, err)
	}
	if d := time.Until(resp.ExpiresAt); d < time.Hour || d > 2*time.Hour {
		t.Errorf("expiresAt in %s, want about 2h", d)
	}
	if _, err := admin.CreateToken(context.Background(), "default", "", time.Hour); err == nil {
		t.Error("empty service account: want an error")
	}

	// Without the admin token: 401, and no token.
	for _, tok := range []string{"", "weft-admin.wrong", "some-kubernetes-token"} {
		_, err := NewClientWith(srv.URL, ClientOptions{Token: tok}).CreateToken(context.Background(), "default", "bookinfo-reviews", time.Hour)
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: err = %v, want 401", tok, err)
		}
	}
}

package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/token"
)

func TestTokensEndpoint(t *testing.T) {
	iss := token.NewWithKey([]byte("0123456789abcdef0123456789abcdef"), nil)
	h := MountTokens(http.NotFoundHandler(), iss)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := NewClient(srv.URL).CreateToken(context.Background(), "default", "bookinfo-reviews", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ns, sa, err := iss.Verify(resp.Token); err != nil || ns != "default" || sa != "bookinfo-reviews" {
		t.Errorf("token: %q %q %v", ns, sa, err)
	}
	if d := time.Until(resp.ExpiresAt); d < time.Hour || d > 2*time.Hour {
		t.Errorf("expiresAt in %s, want about 2h", d)
	}
	if _, err := NewClient(srv.URL).CreateToken(context.Background(), "default", "", time.Hour); err == nil {
		t.Error("empty service account: want an error")
	}

	// Non-loopback callers are refused.
	req := httptest.NewRequest(http.MethodPost, TokensPath, strings.NewReader(`{"namespace":"a","serviceAccount":"b"}`))
	req.RemoteAddr = "10.1.2.3:5555"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "loopback") {
		t.Errorf("non-loopback: %d %s", rec.Code, rec.Body.String())
	}
	req = httptest.NewRequest(http.MethodPost, TokensPath, strings.NewReader(`{"namespace":"a","serviceAccount":"b"}`))
	req.RemoteAddr = "[::1]:5555"
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("[::1]: %d %s", rec.Code, rec.Body.String())
	}
}

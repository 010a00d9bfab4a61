package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

const adminToken = "weft-admin.console-test"

// viewers is a Reviewer: token "viewer" is user viewer, who may change
// nothing; "editor" is user editor, who may change namespace default.
type viewers struct{}

func (viewers) User(_ context.Context, tok string) (*authz.User, error) {
	if tok != "viewer" && tok != "editor" {
		return nil, authz.ErrUnauthenticated
	}
	return &authz.User{Name: tok}, nil
}

func (viewers) Allowed(_ context.Context, u *authz.User, a authz.Action) (bool, string, error) {
	return u.Name == "editor" && a.Namespace == "default", "", nil
}

// whoAPI answers with the user the console passed it, as the real API
// authorizes them.
func whoAPI(az *authz.Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !az.Check(w, r, authz.ConfigAction(authz.VerbCreate, "VirtualService", "default", "x")) {
			return
		}
		u, _ := az.UserOf(r)
		io.WriteString(w, "api as "+u.Name)
	})
}

func TestAuth(t *testing.T) {
	az := authz.New(authz.Options{AdminToken: adminToken, Kube: viewers{}})
	assets := fstest.MapFS{"index.html": {Data: []byte("<title>weft console</title>")}}
	handlers := map[string]http.Handler{
		StrategyAnonymous: Handler(whoAPI(az), assets, Auth{Strategy: StrategyAnonymous, Authorizer: az}),
		StrategyToken:     Handler(whoAPI(az), assets, Auth{Strategy: StrategyToken, Authorizer: az}),
	}
	tests := []struct {
		name, strategy, remote, method, path, cookie string
		wantCode                                     int
		wantBody                                     string
	}{
		{"loopback anonymous reads", StrategyAnonymous, "127.0.0.1:4000", "GET", "/api/v1/config", "", 200, "api as anonymous"},
		{"loopback anonymous writes", StrategyAnonymous, "127.0.0.1:4000", "POST", "/api/v1/config", "", 200, "api as anonymous"},
		{"remote must log in to read", StrategyAnonymous, "10.0.0.7:4000", "GET", "/api/v1/config", "", 401, "log in"},
		{"remote must log in to write", StrategyAnonymous, "10.0.0.7:4000", "POST", "/api/v1/config", "", 401, "log in"},
		{"remote gets the login page", StrategyAnonymous, "10.0.0.7:4000", "GET", "/", "", 200, "weft console"},
		{"token strategy: loopback logs in too", StrategyToken, "127.0.0.1:4000", "GET", "/api/v1/config", "", 401, "log in"},
		{"remote admin", StrategyToken, "10.0.0.7:4000", "POST", "/api/v1/config", adminToken, 200, "api as weft-admin"},
		{"remote viewer reads", StrategyToken, "10.0.0.7:4000", "GET", "/api/v1/config", "viewer", 200, "api as viewer"},
		{"remote viewer cannot write", StrategyToken, "10.0.0.7:4000", "POST", "/api/v1/config", "viewer", 403,
			`user \"viewer\" cannot create virtualservices.networking.istio.io in namespace \"default\"`},
		{"stale cookie", StrategyAnonymous, "127.0.0.1:4000", "GET", "/api/v1/config", "weft-admin.old", 401, "log in again"},
		{"auth info: remote not logged in", StrategyAnonymous, "10.0.0.7:4000", "GET", AuthPath, "", 200, `"authenticated":false`},
		{"auth info: anonymous may write", StrategyAnonymous, "127.0.0.1:4000", "GET", AuthPath, "", 200, `"anonymous":true,"admin":true,"namespace":"default","write":true`},
		{"auth info: viewer may not", StrategyToken, "10.0.0.7:4000", "GET", AuthPath, "viewer", 200, `"user":"viewer","namespace":"default","write":false`},
		{"auth info: editor may in default", StrategyToken, "10.0.0.7:4000", "GET", AuthPath, "editor", 200, `"write":true`},
		{"auth info: editor may not in prod", StrategyToken, "10.0.0.7:4000", "GET", AuthPath + "?namespace=prod", "editor", 200, `"write":false`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader("x"))
			req.RemoteAddr = tt.remote
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: cookieName, Value: tt.cookie})
			}
			rec := httptest.NewRecorder()
			handlers[tt.strategy].ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("got %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	az := authz.New(authz.Options{AdminToken: adminToken, Kube: viewers{}})
	h := Handler(whoAPI(az), fstest.MapFS{}, Auth{Strategy: StrategyToken, Authorizer: az})
	login := func(body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", LoginPath, strings.NewReader(body))
		req.RemoteAddr = "10.0.0.7:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := login(`{"token":"weft-admin.wrong"}`); rec.Code != 401 || len(rec.Result().Cookies()) != 0 {
		t.Errorf("wrong token: %d %s, cookies %v", rec.Code, rec.Body, rec.Result().Cookies())
	}
	if rec := login(`{}`); rec.Code != 400 {
		t.Errorf("no token: %d", rec.Code)
	}
	rec := login(`{"token":"editor"}`)
	var info AuthInfo
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &info) != nil || info.User != "editor" || !info.Write {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookies %+v, want one HttpOnly SameSite=Strict", cookies)
	}
	req := httptest.NewRequest("POST", "/api/v1/config", nil)
	req.RemoteAddr = "10.0.0.7:4000"
	req.AddCookie(cookies[0])
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "api as editor" {
		t.Errorf("with the login's cookie: %d %s", rec.Code, rec.Body)
	}
}

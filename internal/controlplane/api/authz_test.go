package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

// editors is a Reviewer for the API's tests: token "jane" is user jane,
// who may change config in namespace default only.
type editors struct{}

func (editors) User(_ context.Context, tok string) (*authz.User, error) {
	if tok != "jane" {
		return nil, authz.ErrUnauthenticated
	}
	return &authz.User{Name: "jane"}, nil
}

func (editors) Allowed(_ context.Context, _ *authz.User, a authz.Action) (bool, string, error) {
	return a.Namespace == "default", "", nil
}

func TestWritesNeedPermission(t *testing.T) {
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(NewHandler(Options{Store: st, Authorizer: authz.New(authz.Options{AdminToken: testAdminToken, Kube: editors{}})}))
	defer srv.Close()
	ctx := context.Background()
	tests := []struct {
		name, token, yaml string
		status            int
		msg               string
	}{
		{"no credential", "", vsReviews, http.StatusUnauthorized, "needs a credential"},
		{"wrong admin token", "weft-admin.nope", vsReviews, http.StatusUnauthorized, "not this control plane's admin token"},
		{"unknown token", "bob", vsReviews, http.StatusUnauthorized, "not authenticated"},
		{"other namespace", "jane", drReviews, http.StatusForbidden,
			`user "jane" cannot create destinationrules.networking.istio.io in namespace "prod"`},
		{"one object of two in another namespace", "jane", vsReviews + "---\n" + drReviews, http.StatusForbidden, `namespace "prod"`},
	}
	for _, tt := range tests {
		c := NewClientWith(srv.URL, ClientOptions{Token: tt.token})
		for _, op := range []string{"apply", "delete"} {
			var err error
			if op == "apply" {
				_, err = c.Apply(ctx, "x.yaml", []byte(tt.yaml))
			} else {
				_, err = c.Delete(ctx, "x.yaml", []byte(tt.yaml))
			}
			msg := tt.msg
			if op == "delete" {
				msg = strings.Replace(msg, "cannot create", "cannot delete", 1)
			}
			var apiErr *Error
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status || !strings.Contains(err.Error(), msg) {
				t.Errorf("%s, %s: err = %v, want %d with %q", tt.name, op, err, tt.status, msg)
			}
			if _, objs := st.Snapshot(); len(objs) != 0 {
				t.Fatalf("%s, %s: a refused write changed the store: %d objects", tt.name, op, len(objs))
			}
		}
	}
	// jane may change her namespace; a second apply is an update.
	jane := NewClientWith(srv.URL, ClientOptions{Token: "jane"})
	for range 2 {
		if _, err := jane.Apply(ctx, "x.yaml", []byte(vsReviews)); err != nil {
			t.Fatalf("jane in default: %v", err)
		}
	}
	// Reads need no credential.
	if objs, err := NewClient(srv.URL).Get(ctx, Query{}); err != nil || len(objs) != 1 {
		t.Errorf("anonymous read: %d objects, %v", len(objs), err)
	}
}

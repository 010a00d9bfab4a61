package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

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

// TestKubernetesRBAC serves the API with the Kubernetes reviewer over a
// fake API server whose RBAC lets jane edit networking.istio.io in
// namespace a only: she applies and deletes in a, is refused in b with the
// missing permission, and cannot mint join tokens.
func TestKubernetesRBAC(t *testing.T) {
	kube := fake.NewClientset()
	kube.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authv1.TokenReview).DeepCopy()
		if tr.Spec.Token == "jane-token" {
			tr.Status = authv1.TokenReviewStatus{Authenticated: true, User: authv1.UserInfo{Username: "jane", Groups: []string{"system:authenticated"}}}
		}
		return true, tr, nil
	})
	var reviews []authzv1.ResourceAttributes
	kube.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		ra := *sar.Spec.ResourceAttributes
		reviews = append(reviews, ra)
		sar.Status.Allowed = sar.Spec.User == "jane" && ra.Group == "networking.istio.io" && ra.Namespace == "a"
		return true, sar, nil
	})
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	az := authz.New(authz.Options{Kube: authz.NewKubeReviewer(kube)})
	srv := httptest.NewServer(MountTokens(NewHandler(Options{Store: st, Authorizer: az}), nil, az))
	defer srv.Close()
	ctx := context.Background()
	jane := NewClientWith(srv.URL, ClientOptions{Token: "jane-token"})
	inA := strings.Replace(vsReviews, "name: reviews\n", "name: reviews\n  namespace: a\n", 1)
	inB := strings.Replace(vsReviews, "name: reviews\n", "name: reviews\n  namespace: b\n", 1)
	if _, err := jane.Apply(ctx, "a.yaml", []byte(inA)); err != nil {
		t.Fatalf("jane applies in a: %v", err)
	}
	if _, err := jane.Apply(ctx, "a.yaml", []byte(strings.Replace(inA, "subset: v1", "subset: v2", 1))); err != nil {
		t.Fatalf("jane updates in a: %v", err)
	}
	var apiErr *Error
	_, err = jane.Apply(ctx, "b.yaml", []byte(inB))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden ||
		err.Error() != `user "jane" cannot create virtualservices.networking.istio.io in namespace "b"` {
		t.Errorf("jane in b: %v, want 403 naming the permission", err)
	}
	_, err = jane.CreateToken(ctx, "a", "default", time.Hour)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || !strings.Contains(err.Error(), `cannot create serviceaccounts/token "default" in namespace "a"`) {
		t.Errorf("jane mints a token: %v, want 403", err)
	}
	if _, err := jane.Delete(ctx, "a.yaml", []byte(inA)); err != nil {
		t.Errorf("jane deletes in a: %v", err)
	}
	want := []authzv1.ResourceAttributes{
		{Verb: "create", Group: "networking.istio.io", Resource: "virtualservices", Namespace: "a", Name: "reviews"},
		{Verb: "update", Group: "networking.istio.io", Resource: "virtualservices", Namespace: "a", Name: "reviews"},
		{Verb: "create", Group: "networking.istio.io", Resource: "virtualservices", Namespace: "b", Name: "reviews"},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "a", Name: "default"},
		{Verb: "delete", Group: "networking.istio.io", Resource: "virtualservices", Namespace: "a", Name: "reviews"},
	}
	if len(reviews) != len(want) {
		t.Fatalf("SubjectAccessReviews %+v, want %+v", reviews, want)
	}
	for i := range want {
		if reviews[i] != want[i] {
			t.Errorf("SubjectAccessReview %d: %+v, want %+v", i, reviews[i], want[i])
		}
	}
	if _, objs := st.Snapshot(); len(objs) != 0 {
		t.Errorf("%d objects left", len(objs))
	}
}

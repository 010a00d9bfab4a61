package authz

import (
	"context"
	"errors"
	"strings"
	"testing"

	authv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// cluster is a fake API server: token "jane-token" is user jane (group
// team-a), who may create, update and delete networking.istio.io objects
// in namespace a only, as an RBAC RoleBinding would allow; the admin group
// may mint join tokens.
func cluster(t *testing.T) *fake.Clientset {
	c := fake.NewClientset()
	c.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authv1.TokenReview).DeepCopy()
		if len(tr.Spec.Audiences) != 0 {
			t.Errorf("TokenReview audiences %v, want the API server's", tr.Spec.Audiences)
		}
		switch tr.Spec.Token {
		case "jane-token":
			tr.Status = authv1.TokenReviewStatus{Authenticated: true, User: authv1.UserInfo{Username: "jane", UID: "u-1", Groups: []string{"team-a"}}}
		case "ops-token":
			tr.Status = authv1.TokenReviewStatus{Authenticated: true, User: authv1.UserInfo{Username: "ops", Groups: []string{"mesh-admins"}}}
		default:
			tr.Status = authv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, tr, nil
	})
	c.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sar := a.(k8stesting.CreateAction).GetObject().(*authzv1.SubjectAccessReview).DeepCopy()
		ra := sar.Spec.ResourceAttributes
		switch {
		case sar.Spec.User == "jane" && sar.Spec.UID == "u-1" && ra.Group == "networking.istio.io" && ra.Namespace == "a":
			sar.Status = authzv1.SubjectAccessReviewStatus{Allowed: true, Reason: `RBAC: allowed by RoleBinding "editors/a"`}
		case len(sar.Spec.Groups) == 1 && sar.Spec.Groups[0] == "mesh-admins" && ra.Resource == "serviceaccounts" && ra.Subresource == "token":
			sar.Status = authzv1.SubjectAccessReviewStatus{Allowed: true}
		}
		return true, sar, nil
	})
	return c
}

func TestKubeReviewer(t *testing.T) {
	az := New(Options{AdminToken: "weft-admin.x", Kube: NewKubeReviewer(cluster(t))})
	ctx := context.Background()
	vs := func(verb, ns string) Action { return ConfigAction(verb, "VirtualService", ns, "reviews") }
	tests := []struct {
		token   string
		act     Action
		wantErr string // "": allowed
	}{
		{"jane-token", vs(VerbCreate, "a"), ""},
		{"jane-token", vs(VerbUpdate, "a"), ""},
		{"jane-token", vs(VerbDelete, "a"), ""},
		{"jane-token", vs(VerbCreate, "b"), `user "jane" cannot create virtualservices.networking.istio.io in namespace "b"`},
		{"jane-token", ConfigAction(VerbCreate, "AuthorizationPolicy", "a", "x"),
			`user "jane" cannot create authorizationpolicies.security.istio.io in namespace "a"`},
		{"jane-token", TokenAction("a", "default"), `user "jane" cannot create serviceaccounts/token "default" in namespace "a"`},
		{"ops-token", TokenAction("a", "default"), ""},
		{"weft-admin.x", vs(VerbCreate, "b"), ""},
		{"forged", vs(VerbCreate, "a"), "invalid bearer token"},
		{"weft-admin.forged", vs(VerbCreate, "a"), "not this control plane's admin token"},
	}
	for _, tt := range tests {
		u, err := az.AuthenticateToken(ctx, tt.token)
		if err == nil {
			err = az.Authorize(ctx, u, tt.act)
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %s: %v, want allowed", tt.token, tt.act, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: %s: %v, want %q", tt.token, tt.act, err, tt.wantErr)
		}
		var forbidden *ForbiddenError
		if err != nil && !errors.Is(err, ErrUnauthenticated) && !errors.As(err, &forbidden) {
			t.Errorf("%s: %s: %v is neither 401 nor 403", tt.token, tt.act, err)
		}
	}
	if err := az.Authorize(ctx, nil, vs(VerbCreate, "a")); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("anonymous: %v, want ErrUnauthenticated", err)
	}
}

func TestConfigAction(t *testing.T) {
	for kind, want := range map[string]string{
		"VirtualService":      "create virtualservices.networking.istio.io in namespace \"a\"",
		"Telemetry":           "create telemetries.telemetry.istio.io in namespace \"a\"",
		"PeerAuthentication":  "create peerauthentications.security.istio.io in namespace \"a\"",
		"AuthorizationPolicy": "create authorizationpolicies.security.istio.io in namespace \"a\"",
	} {
		if got := ConfigAction(VerbCreate, kind, "a", "n").String(); got != want {
			t.Errorf("%s: %q, want %q", kind, got, want)
		}
	}
}

package controlplane

import (
	"errors"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weft-mesh/weft/internal/controlplane/casecret"
	"github.com/weft-mesh/weft/internal/controlplane/tokenreview"
)

// TestSecureOnKubernetes: with a cluster, the CA's root goes to the Secret
// weft-ca (two control planes share it), and both join tokens and
// service-account tokens authenticate callers.
func TestSecureOnKubernetes(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		tr := a.(k8stesting.CreateAction).GetObject().(*authv1.TokenReview).DeepCopy()
		if tr.Spec.Token == "sa-token" {
			tr.Status = authv1.TokenReviewStatus{Authenticated: true, Audiences: []string{tokenreview.Audience},
				User: authv1.UserInfo{Username: "system:serviceaccount:default:bookinfo-ratings"}}
		}
		return true, tr, nil
	})
	opts := Options{KubeClient: client, SecureXDSAddress: "127.0.0.1:0"}
	first, err := newSecure(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()
	second, err := newSecure(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.close()
	if !first.ca.Certificate().Equal(second.ca.Certificate()) {
		t.Error("two control planes on one cluster sign with different roots")
	}
	if _, err := client.CoreV1().Secrets("weft-system").Get(t.Context(), casecret.DefaultName, metav1.GetOptions{}); err != nil {
		t.Errorf("Secret weft-ca: %v", err)
	}
	join, err := first.tokens.Issue("default", "bookinfo-reviews", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	verifier := bearerTokens{join: first.tokens, serviceAccount: tokenreview.New(tokenreview.Options{Client: client})}
	tests := []struct {
		token, sa string
		err       error
	}{
		{join, "bookinfo-reviews", nil},
		{"sa-token", "bookinfo-ratings", nil},
		{"stolen-token", "", tokenreview.ErrUnauthenticated},
	}
	for _, tt := range tests {
		ns, sa, err := verifier.Verify(tt.token)
		if !errors.Is(err, tt.err) || sa != tt.sa || (err == nil && ns != "default") {
			t.Errorf("Verify(%.12s…) = %s/%s, %v; want default/%s, %v", tt.token, ns, sa, err, tt.sa, tt.err)
		}
	}
}

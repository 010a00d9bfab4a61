package authz

import (
	"context"
	"errors"
	"fmt"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weft-mesh/weft/internal/controlplane/tokenreview"
)

// KubeReviewer authenticates bearer tokens with TokenReview (the API
// server's audience, as kubectl's tokens) and authorizes actions with
// SubjectAccessReview. It is safe for concurrent use.
type KubeReviewer struct {
	client kubernetes.Interface
	tokens *tokenreview.Authenticator
}

var _ Reviewer = (*KubeReviewer)(nil)

// NewKubeReviewer returns a reviewer asking client's API server.
func NewKubeReviewer(client kubernetes.Interface) *KubeReviewer {
	return &KubeReviewer{client: client, tokens: tokenreview.New(tokenreview.Options{Client: client, APIServerAudience: true})}
}

// User implements Reviewer.
func (k *KubeReviewer) User(ctx context.Context, token string) (*User, error) {
	info, err := k.tokens.User(ctx, token)
	if errors.Is(err, tokenreview.ErrUnauthenticated) {
		return nil, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if err != nil {
		return nil, fmt.Errorf("authenticating the bearer token: %w", err)
	}
	u := &User{Name: info.Username, UID: info.UID, Groups: info.Groups}
	if len(info.Extra) > 0 {
		u.Extra = make(map[string][]string, len(info.Extra))
		for k, v := range info.Extra {
			u.Extra[k] = v
		}
	}
	return u, nil
}

// Allowed implements Reviewer.
func (k *KubeReviewer) Allowed(ctx context.Context, u *User, a Action) (bool, string, error) {
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User: u.Name, UID: u.UID, Groups: u.Groups,
		ResourceAttributes: &authzv1.ResourceAttributes{
			Verb: a.Verb, Group: a.Group, Resource: a.Resource, Subresource: a.Subresource,
			Namespace: a.Namespace, Name: a.Name,
		},
	}}
	if len(u.Extra) > 0 {
		sar.Spec.Extra = make(map[string]authzv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			sar.Spec.Extra[k] = v
		}
	}
	out, err := k.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("SubjectAccessReview: %w", err)
	}
	if out.Status.EvaluationError != "" && !out.Status.Allowed {
		return false, out.Status.EvaluationError, nil
	}
	return out.Status.Allowed && !out.Status.Denied, out.Status.Reason, nil
}

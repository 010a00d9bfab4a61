// Package tokenreview authenticates Kubernetes bearer tokens with the API
// server's TokenReview API: service-account tokens (the projected tokens the
// kubelet mounts in pods, audience "istio-ca"), mapped to the namespace and
// service account the CA then issues a certificate for, and users' tokens
// (the API server's own audience, as kubectl sends), mapped to the user the
// control plane's API authorizes.
package tokenreview

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Audience is the audience the proxies' tokens are issued for (Istio's).
const Audience = "istio-ca"

// Defaults for Options.
const (
	DefaultCacheTTL = time.Minute
	defaultTimeout  = 10 * time.Second
	maxCached       = 10000
)

// Errors of Verify, wrapped with details; check them with errors.Is.
var (
	ErrUnauthenticated   = errors.New("the API server did not authenticate the token")
	ErrAudience          = errors.New("the token is not for the audience " + Audience)
	ErrNotServiceAccount = errors.New("the token is not a service account's")
)

// Options configures an Authenticator.
type Options struct {
	// Client creates the TokenReviews. Required.
	Client kubernetes.Interface
	// Audience is the audience tokens must have (Audience when empty).
	Audience string
	// APIServerAudience reviews tokens for the API server's own audiences
	// (those kubectl and the console's users hold) instead of Audience.
	APIServerAudience bool
	// CacheTTL is how long an authenticated token's answer is reused
	// (DefaultCacheTTL when 0): a proxy renewing often, or many replicas of
	// one pod starting, cost one review.
	CacheTTL time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Authenticator verifies tokens with TokenReviews. It is safe for
// concurrent use; it implements ca.TokenVerifier.
type Authenticator struct {
	opts  Options
	mu    sync.Mutex
	cache map[[sha256.Size]byte]entry
}

type entry struct {
	user    authv1.UserInfo
	expires time.Time
}

// New returns an authenticator for opts.
func New(opts Options) *Authenticator {
	if opts.Audience == "" {
		opts.Audience = Audience
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Authenticator{opts: opts, cache: map[[sha256.Size]byte]entry{}}
}

// Verify authenticates token and returns the namespace and service account
// of the identity it proves: the API server must authenticate it for the
// audience, as user system:serviceaccount:NAMESPACE:NAME.
func (a *Authenticator) Verify(token string) (ns, sa string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultTimeout)
	defer cancel()
	u, err := a.User(ctx, token)
	if err != nil {
		return "", "", err
	}
	rest, ok := strings.CutPrefix(u.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" || strings.Contains(sa, ":") {
		return "", "", fmt.Errorf("%w: user %q", ErrNotServiceAccount, u.Username)
	}
	return ns, sa, nil
}

// User authenticates token and returns the user the API server says it
// proves (name, UID, groups, extra), for a SubjectAccessReview.
func (a *Authenticator) User(ctx context.Context, token string) (authv1.UserInfo, error) {
	key := sha256.Sum256([]byte(token))
	now := a.opts.Now()
	a.mu.Lock()
	e, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.user, nil
	}
	u, err := a.review(ctx, token)
	if err != nil {
		return authv1.UserInfo{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCached {
		for k, old := range a.cache {
			if !now.Before(old.expires) || len(a.cache) >= maxCached {
				delete(a.cache, k)
			}
		}
	}
	a.cache[key] = entry{user: u, expires: now.Add(a.opts.CacheTTL)}
	return u, nil
}

func (a *Authenticator) review(ctx context.Context, token string) (authv1.UserInfo, error) {
	spec := authv1.TokenReviewSpec{Token: token}
	if !a.opts.APIServerAudience {
		spec.Audiences = []string{a.opts.Audience}
	}
	tr, err := a.opts.Client.AuthenticationV1().TokenReviews().Create(ctx, &authv1.TokenReview{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		return authv1.UserInfo{}, fmt.Errorf("TokenReview: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		if st.Error != "" {
			return authv1.UserInfo{}, fmt.Errorf("%w: %s", ErrUnauthenticated, st.Error)
		}
		return authv1.UserInfo{}, ErrUnauthenticated
	}
	if !a.opts.APIServerAudience && !slices.Contains(st.Audiences, a.opts.Audience) {
		return authv1.UserInfo{}, fmt.Errorf("%w (it is for %q); mount a projected token with audience %s", ErrAudience, st.Audiences, a.opts.Audience)
	}
	if st.User.Username == "" {
		return authv1.UserInfo{}, fmt.Errorf("%w: the review names no user", ErrUnauthenticated)
	}
	return st.User, nil
}

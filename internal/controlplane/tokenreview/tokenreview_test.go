package tokenreview

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
	authv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weft-mesh/weft/internal/controlplane/ca"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// apiServer is a fake clientset whose TokenReviews answer from a table of
// tokens, as the API server would; reviews counts the calls.
type apiServer struct {
	*fake.Clientset
	reviews atomic.Int32
}

// tokens: token → (username, audiences); a token not listed is not authenticated.
var tokens = map[string]struct {
	user      string
	audiences []string
}{
	"reviews-token":  {"system:serviceaccount:default:bookinfo-reviews", []string{Audience}},
	"ratings-token":  {"system:serviceaccount:default:bookinfo-ratings", []string{Audience}},
	"kube-api-token": {"system:serviceaccount:default:bookinfo-reviews", []string{"https://kubernetes.default.svc"}},
	"user-token":     {"jane@example.com", []string{Audience}},
}

func newAPIServer(t *testing.T) *apiServer {
	s := &apiServer{Clientset: fake.NewClientset()}
	s.PrependReactor("create", "tokenreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.reviews.Add(1)
		tr := a.(k8stesting.CreateAction).GetObject().(*authv1.TokenReview)
		if len(tr.Spec.Audiences) != 1 || tr.Spec.Audiences[0] != Audience {
			t.Errorf("TokenReview audiences %v, want [%s]", tr.Spec.Audiences, Audience)
		}
		out := tr.DeepCopy()
		if tok, ok := tokens[tr.Spec.Token]; ok {
			out.Status = authv1.TokenReviewStatus{Authenticated: true, User: authv1.UserInfo{Username: tok.user}, Audiences: tok.audiences}
		} else {
			out.Status = authv1.TokenReviewStatus{Error: "invalid bearer token"}
		}
		return true, out, nil
	})
	return s
}

func TestVerify(t *testing.T) {
	a := New(Options{Client: newAPIServer(t)})
	tests := []struct {
		token, ns, sa string
		err           error
	}{
		{"reviews-token", "default", "bookinfo-reviews", nil},
		{"forged-token", "", "", ErrUnauthenticated},
		{"kube-api-token", "", "", ErrAudience},
		{"user-token", "", "", ErrNotServiceAccount},
	}
	for _, tt := range tests {
		ns, sa, err := a.Verify(tt.token)
		if !errors.Is(err, tt.err) || ns != tt.ns || sa != tt.sa {
			t.Errorf("Verify(%s) = %q, %q, %v; want %q, %q, %v", tt.token, ns, sa, err, tt.ns, tt.sa, tt.err)
		}
	}
}

func TestCache(t *testing.T) {
	api := newAPIServer(t)
	now := time.Unix(1000, 0)
	a := New(Options{Client: api, CacheTTL: time.Minute, Now: func() time.Time { return now }})
	for range 3 {
		if _, _, err := a.Verify("reviews-token"); err != nil {
			t.Fatal(err)
		}
	}
	if n := api.reviews.Load(); n != 1 {
		t.Errorf("%d TokenReviews for one token within the cache TTL, want 1", n)
	}
	for range 2 {
		a.Verify("forged-token")
	}
	if n := api.reviews.Load(); n != 3 {
		t.Errorf("%d TokenReviews, want a refused token reviewed each time (3)", n)
	}
	now = now.Add(time.Minute)
	a.Verify("reviews-token")
	if n := api.reviews.Load(); n != 4 {
		t.Errorf("%d TokenReviews, want a new review once the cached answer expired (4)", n)
	}
}

func TestAPIServerError(t *testing.T) {
	api := &apiServer{Clientset: fake.NewClientset()}
	api.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	if _, _, err := New(Options{Client: api}).Verify("reviews-token"); err == nil {
		t.Fatal("Verify succeeded without an API server")
	}
}

// TestCASignsForTheTokensIdentityOnly runs the CA's CreateCertificate with
// service-account tokens: a CSR for the token's own identity is signed, one
// for another identity is refused and counted, as with join tokens.
func TestCASignsForTheTokensIdentityOnly(t *testing.T) {
	authority, err := ca.New(ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.NewServer(ca.ServerOptions{CA: authority, Tokens: New(Options{Client: newAPIServer(t)})})
	if err != nil {
		t.Fatal(err)
	}
	reviews := spiffe.New("default", "bookinfo-reviews")
	ratings := spiffe.New("default", "bookinfo-ratings")
	tests := []struct {
		name, token string
		csrFor      spiffe.ID
		code        codes.Code
	}{
		{"own identity", "reviews-token", reviews, codes.OK},
		{"another identity", "reviews-token", ratings, codes.PermissionDenied},
		{"unauthenticated", "forged-token", reviews, codes.Unauthenticated},
		{"wrong audience", "kube-api-token", reviews, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			refused, authFailed := authority.RefusedCSRs(), srv.AuthenticationFailures()
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tt.token))
			resp, err := srv.CreateCertificate(ctx, &pb.IstioCertificateRequest{Csr: csr(t, tt.csrFor)})
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code %v (%v), want %v", got, err, tt.code)
			}
			switch tt.code {
			case codes.OK:
				certs, err := ca.ParseCerts([]byte(resp.GetCertChain()[0]))
				if err != nil {
					t.Fatal(err)
				}
				if id, err := spiffe.FromCert(certs[0]); err != nil || id != tt.csrFor {
					t.Errorf("issued for %v (%v), want %s", id, err, tt.csrFor)
				}
			case codes.PermissionDenied:
				if authority.RefusedCSRs() != refused+1 {
					t.Error("a refused CSR was not counted")
				}
			case codes.Unauthenticated:
				if srv.AuthenticationFailures() != authFailed+1 {
					t.Error("a refused token was not counted")
				}
			}
		})
	}
}

func csr(t *testing.T, id spiffe.ID) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id.URL()}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

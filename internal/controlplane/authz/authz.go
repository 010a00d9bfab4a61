// Package authz decides who may change the mesh through the control plane's
// API and console. It authenticates a caller (weft's admin token, a client
// certificate with the admin SPIFFE ID, or a Kubernetes bearer token checked
// with TokenReview) and authorizes each action: the weft admin may do
// everything; a Kubernetes user may do what a SubjectAccessReview on the
// Istio resource allows, so a namespace's editors change only their
// namespace. Both the API and the console use one Authorizer.
package authz

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/spiffe"
)

// AdminName is the user name of whoever holds the admin token.
const AdminName = "weft-admin"

// AdminIdentity is the SPIFFE ID of an admin client certificate issued by
// the mesh CA (`weft credentials create --cert`).
var AdminIdentity = spiffe.New("weft-system", "weft-admin")

// ErrUnauthenticated is wrapped by the errors of a credential that is not
// valid (401); check it with errors.Is.
var ErrUnauthenticated = errors.New("not authenticated")

// Verbs of actions, as Kubernetes names them.
const (
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbDelete = "delete"
)

// User is an authenticated caller.
type User struct {
	// Name is the user's name (AdminName, a Kubernetes user name, or the
	// admin certificate's SPIFFE ID).
	Name string
	// UID, Groups and Extra are the Kubernetes user's, for a SubjectAccessReview.
	UID    string
	Groups []string
	Extra  map[string][]string
	// Admin may do everything without asking Kubernetes.
	Admin bool
}

// Action is something a user wants to do, in Kubernetes' terms.
type Action struct {
	Verb        string
	Group       string // "" for the core group
	Resource    string // plural: virtualservices
	Subresource string // token
	Namespace   string
	Name        string
}

// String says the action as a refusal names it:
// `create virtualservices.networking.istio.io in namespace "b"`.
func (a Action) String() string {
	res := a.Resource
	if a.Subresource != "" {
		res += "/" + a.Subresource
	}
	if a.Group != "" {
		res += "." + a.Group
	}
	s := a.Verb + " " + res
	if a.Name != "" && a.Subresource != "" {
		s += fmt.Sprintf(" %q", a.Name)
	}
	if a.Namespace != "" {
		s += fmt.Sprintf(" in namespace %q", a.Namespace)
	}
	return s
}

// ConfigAction is the action of verb on an Istio config object of kind in
// namespace ns (its resource and group from config's kind table).
func ConfigAction(verb, kind, ns, name string) Action {
	a := Action{Verb: verb, Resource: strings.ToLower(kind) + "s", Namespace: ns, Name: name}
	for _, k := range config.KindSchemas() {
		if k.Kind == kind {
			a.Group, a.Resource = k.Group, k.Plural
		}
	}
	return a
}

// TokenAction is the action of minting a join token for service account sa
// of namespace ns: as Kubernetes' TokenRequest, create serviceaccounts/token.
func TokenAction(ns, sa string) Action {
	return Action{Verb: VerbCreate, Resource: "serviceaccounts", Subresource: "token", Namespace: ns, Name: sa}
}

// ForbiddenError is a refused action (403).
type ForbiddenError struct {
	User   string
	Action Action
	// Reason is the authorizer's explanation, if it gave one.
	Reason string
}

// Error implements error.
func (e *ForbiddenError) Error() string {
	s := fmt.Sprintf("user %q cannot %s", e.User, e.Action)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Reviewer asks Kubernetes about bearer tokens and permissions
// (TokenReview, SubjectAccessReview). It must be safe for concurrent use.
type Reviewer interface {
	// User authenticates a bearer token; errors wrap ErrUnauthenticated
	// when the token is not valid.
	User(ctx context.Context, token string) (*User, error)
	// Allowed reports whether u may do a, with the authorizer's reason.
	Allowed(ctx context.Context, u *User, a Action) (ok bool, reason string, err error)
}

// Options configures an Authorizer.
type Options struct {
	// AdminToken is the standalone admin credential; empty: none.
	AdminToken string
	// Kube, if set, authenticates other bearer tokens and authorizes their
	// users' actions (on Kubernetes).
	Kube Reviewer
}

// Authorizer authenticates callers and authorizes their actions. It is
// safe for concurrent use.
type Authorizer struct {
	opts Options
}

// New returns an authorizer for opts.
func New(opts Options) *Authorizer { return &Authorizer{opts: opts} }

// Authenticate returns the caller of r: the verified client certificate's
// admin identity, or the user of its bearer token. It returns nil and no
// error for a request with no credential, and an error wrapping
// ErrUnauthenticated for a credential that is not valid.
func (a *Authorizer) Authenticate(r *http.Request) (*User, error) {
	if u, err := certUser(r); u != nil || err != nil {
		return u, err
	}
	tok, ok := BearerToken(r)
	if !ok {
		return nil, nil
	}
	return a.AuthenticateToken(r.Context(), tok)
}

// AuthenticateToken returns the user of a bearer token.
func (a *Authorizer) AuthenticateToken(ctx context.Context, tok string) (*User, error) {
	if a.opts.AdminToken != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.opts.AdminToken)) == 1 {
		return &User{Name: AdminName, Admin: true}, nil
	}
	if IsAdminToken(tok) || a.opts.Kube == nil {
		return nil, fmt.Errorf("%w: the token is not this control plane's admin token (it is in the credentials file the control plane wrote: %s)", ErrUnauthenticated, credentialsHint)
	}
	u, err := a.opts.Kube.User(ctx, tok)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// credentialsHint says where the admin credential is.
const credentialsHint = "DATA_DIR/" + CredentialsFile + " or ~/.weft/credentials/IP_PORT.json"

// certUser returns the admin of a verified client certificate. A verified
// certificate with another identity is not a credential for the API.
func certUser(r *http.Request) (*User, error) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil, nil
	}
	id, err := spiffe.FromCert(r.TLS.VerifiedChains[0][0])
	if err != nil {
		return nil, fmt.Errorf("%w: client certificate: %v", ErrUnauthenticated, err)
	}
	if id.Namespace != AdminIdentity.Namespace || id.ServiceAccount != AdminIdentity.ServiceAccount {
		return nil, fmt.Errorf("%w: client certificate %s is not an admin's (%s)", ErrUnauthenticated, id, AdminIdentity)
	}
	return &User{Name: id.String(), Admin: true}, nil
}

// BearerToken returns the token of r's "Authorization: Bearer" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Authorize returns nil if u may do every action, else a *ForbiddenError
// for the first refused one (or the error that kept it from asking). A
// nil u is the anonymous caller, who may do none.
func (a *Authorizer) Authorize(ctx context.Context, u *User, acts ...Action) error {
	for _, act := range acts {
		if u == nil {
			return fmt.Errorf("%w: %s needs a credential: the admin token (`weft` finds it on the control plane's host), an admin client certificate, or a Kubernetes bearer token", ErrUnauthenticated, act)
		}
		if u.Admin {
			continue
		}
		if a.opts.Kube == nil {
			return &ForbiddenError{User: u.Name, Action: act}
		}
		ok, reason, err := a.opts.Kube.Allowed(ctx, u, act)
		if err != nil {
			return fmt.Errorf("asking Kubernetes whether %q may %s: %w", u.Name, act, err)
		}
		if !ok {
			return &ForbiddenError{User: u.Name, Action: act, Reason: reason}
		}
	}
	return nil
}

// Kubernetes reports whether the authorizer asks Kubernetes about tokens.
func (a *Authorizer) Kubernetes() bool { return a.opts.Kube != nil }

// Loopback reports whether a request's remote address (host:port) is a
// loopback address.
func Loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

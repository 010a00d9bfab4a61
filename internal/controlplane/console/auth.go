package console

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// Login strategies of the console (--console-auth), as Kiali's.
const (
	// StrategyAnonymous lets callers from loopback in with no login, with
	// the rights of whoever runs the control plane (the wizards work);
	// anyone else logs in with a token.
	StrategyAnonymous = "anonymous"
	// StrategyToken makes everyone log in with a token: the weft admin
	// token, or a Kubernetes token whose user's RBAC then applies.
	StrategyToken = "token"
)

// Paths of the console's own API.
const (
	AuthPath   = "/api/auth"
	LoginPath  = "/api/auth/login"
	LogoutPath = "/api/auth/logout"
)

// cookieName holds the token a user logged in with (HttpOnly, SameSite=Strict).
const cookieName = "weft-console-token"

// cookieTTL is how long a login lasts in the browser.
const cookieTTL = 8 * time.Hour

// Auth is who may use the console and how.
type Auth struct {
	// Strategy is StrategyAnonymous (the default) or StrategyToken.
	Strategy string
	// Authorizer authenticates tokens and authorizes writes, the same one
	// the control plane's API uses. Nil: only the anonymous loopback user.
	Authorizer *authz.Authorizer
}

// anonymous is the loopback caller under StrategyAnonymous.
var anonymous = &authz.User{Name: "anonymous (console on loopback)", Admin: true}

// AuthInfo is the answer of GET /api/auth and of a login: who the user
// is and what the console lets them do.
type AuthInfo struct {
	Strategy string `json:"strategy"`
	// Authenticated is false when the user must log in.
	Authenticated bool   `json:"authenticated"`
	User          string `json:"user,omitempty"`
	// Anonymous is true for the loopback user who did not log in.
	Anonymous bool `json:"anonymous,omitempty"`
	// Admin is true for a user who may change everything.
	Admin bool `json:"admin,omitempty"`
	// Namespace is the namespace Write is about (?namespace=, default "default").
	Namespace string `json:"namespace,omitempty"`
	// Write says whether the user may write what the wizards write (a
	// VirtualService and a DestinationRule) in Namespace; the console
	// hides the wizards when not.
	Write bool `json:"write"`
	// Error says why a token was refused.
	Error string `json:"error,omitempty"`
}

func (a Auth) authorizer() *authz.Authorizer {
	if a.Authorizer == nil {
		return authz.New(authz.Options{})
	}
	return a.Authorizer
}

// user returns the caller of r: the token of its cookie or Authorization
// header, else the anonymous loopback user if the strategy allows; nil
// when the caller must log in.
func (a Auth) user(r *http.Request) (*authz.User, error) {
	az := a.authorizer()
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		return az.AuthenticateToken(r.Context(), c.Value)
	}
	if u, err := az.Authenticate(r); u != nil || err != nil {
		return u, err
	}
	if a.Strategy != StrategyToken && authz.Loopback(r.RemoteAddr) {
		return anonymous, nil
	}
	return nil, nil
}

// serveAuth answers the console's own API: GET /api/auth, POST login and logout.
func (a Auth) serveAuth(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == AuthPath && r.Method == http.MethodGet:
		u, err := a.user(r)
		info := a.info(r, u)
		if err != nil {
			clearCookie(w, r)
			info.Error = err.Error()
		}
		writeJSON(w, http.StatusOK, info)
	case r.URL.Path == LoginPath && r.Method == http.MethodPost:
		a.login(w, r)
	case r.URL.Path == LogoutPath && r.Method == http.MethodPost:
		clearCookie(w, r)
		writeJSON(w, http.StatusOK, a.info(r, nil))
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such console endpoint", r.Method, r.URL.Path))
	}
}

func (a Auth) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.Token == "" {
		writeError(w, http.StatusBadRequest, "login: want {\"token\": \"...\"}: the weft admin token or a Kubernetes token")
		return
	}
	u, err := a.authorizer().AuthenticateToken(r.Context(), req.Token)
	if err != nil {
		authz.WriteError(w, fmt.Errorf("login refused: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: req.Token, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int(cookieTTL / time.Second)})
	writeJSON(w, http.StatusOK, a.info(r, u))
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// info says who u is and whether the wizards may write in ?namespace=.
func (a Auth) info(r *http.Request, u *authz.User) AuthInfo {
	strategy := a.Strategy
	if strategy == "" {
		strategy = StrategyAnonymous
	}
	info := AuthInfo{Strategy: strategy}
	if u == nil {
		return info
	}
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = "default"
	}
	info.Authenticated, info.User, info.Anonymous, info.Admin, info.Namespace = true, u.Name, u == anonymous, u.Admin, ns
	var acts []authz.Action
	for _, kind := range []string{"VirtualService", "DestinationRule"} {
		for _, verb := range []string{authz.VerbCreate, authz.VerbUpdate, authz.VerbDelete} {
			acts = append(acts, authz.ConfigAction(verb, kind, ns, ""))
		}
	}
	info.Write = a.authorizer().Authorize(r.Context(), u, acts...) == nil
	return info
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/internal/controlplane/authz"
)

// TokensPath is the join token endpoint: POST {namespace, serviceAccount,
// ttl} → {token, expiresAt}. Whoever can get a token can get that service
// account's certificate, so it asks for the permission Kubernetes' own
// TokenRequest does (create serviceaccounts/token): the admin has it.
const TokensPath = "/api/v1/tokens"

// TokenIssuer issues join tokens (token.Issuer). It must be safe for
// concurrent use.
type TokenIssuer interface {
	Issue(ns, sa string, ttl time.Duration) (string, error)
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Namespace      string `json:"namespace"`
	ServiceAccount string `json:"serviceAccount"`
	// TTL is a Go duration ("1h"); empty means DefaultTokenTTL.
	TTL string `json:"ttl,omitempty"`
}

// TokenResponse is the answer of POST /api/v1/tokens.
type TokenResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// DefaultTokenTTL is a join token's validity when the request names none.
const DefaultTokenTTL = time.Hour

// MountTokens serves POST /api/v1/tokens with issuer in front of next.
func MountTokens(next http.Handler, issuer TokenIssuer, az *authz.Authorizer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("POST "+TokensPath, TokensHandler(issuer, az))
	return mux
}

// TokensHandler answers POST /api/v1/tokens for the callers az allows
// (nil: nobody).
func TokensHandler(issuer TokenIssuer, az *authz.Authorizer) http.Handler {
	if az == nil {
		az = authz.New(authz.Options{})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("reading the token request: %w", err))
			return
		}
		if !az.Check(w, r, authz.TokenAction(req.Namespace, req.ServiceAccount)) {
			return
		}
		ttl, err := requestTTL(req.TTL, DefaultTokenTTL)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		tok, err := issuer.Issue(req.Namespace, req.ServiceAccount, ttl)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(TokenResponse{Token: tok, ExpiresAt: time.Now().Add(ttl).UTC().Truncate(time.Second)})
	})
}

// CreateToken asks the control plane for a join token for service account
// sa of namespace ns, valid for ttl.
func (c *Client) CreateToken(ctx context.Context, ns, sa string, ttl time.Duration) (TokenResponse, error) {
	body, err := json.Marshal(TokenRequest{Namespace: ns, ServiceAccount: sa, TTL: ttl.String()})
	if err != nil {
		return TokenResponse{}, err
	}
	var resp TokenResponse
	err = c.do(ctx, http.MethodPost, c.base+TokensPath, body, &resp)
	return resp, err
}

// requestTTL is a request's "ttl" field (a Go duration), or def when empty.
func requestTTL(ttl string, def time.Duration) (time.Duration, error) {
	if ttl == "" {
		return def, nil
	}
	d, err := time.ParseDuration(ttl)
	if err != nil {
		return 0, fmt.Errorf("ttl %q: %w", ttl, err)
	}
	return d, nil
}

package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// TokensPath is the join token endpoint: POST {namespace, serviceAccount,
// ttl} → {token, expiresAt}. It answers loopback callers only, as whoever
// can get a token can get that service account's certificate.
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
func MountTokens(next http.Handler, issuer TokenIssuer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", next)
	mux.Handle("POST "+TokensPath, TokensHandler(issuer))
	return mux
}

// TokensHandler answers POST /api/v1/tokens, for loopback callers only.
func TokensHandler(issuer TokenIssuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopback(r.RemoteAddr) {
			writeError(w, http.StatusForbidden, fmt.Errorf("join tokens are issued to loopback callers only, not %s: run `weft token create` on the control plane's host", r.RemoteAddr))
			return
		}
		var req TokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("reading the token request: %w", err))
			return
		}
		ttl := DefaultTokenTTL
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil {
				writeError(w, http.StatusBadRequest, fmt.Errorf("ttl %q: %w", req.TTL, err))
				return
			}
			ttl = d
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

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
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

package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	jose "github.com/go-jose/go-jose/v4"
)

// Envoy's answer to a request whose JWT fails verification (401).
const jwtFailedBody = "Jwt verification fails"

// jwtSkew is Envoy's default clock skew for exp and nbf.
const jwtSkew = 60 * time.Second

// Signature algorithms accepted in tokens.
var jwtAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// rjwt is a compiled JwtAuthentication (the shape Istio generates: one
// rule for every path requiring any provider, or none when missing).
type rjwt struct {
	providers    []*rjwtProvider
	allowMissing bool
}

type rjwtProvider struct {
	name, issuer  string
	audiences     []string
	forward       bool
	payloadHeader string
	headers       []jwtHeader
	params        []string
	keys          *jose.JSONWebKeySet // local JWKS
	remote        *jwksFetcher        // remote JWKS
}

type jwtHeader struct{ name, prefix string }

// jwksFetcher fetches a remote JWKS, caches it and refreshes it when old.
type jwksFetcher struct {
	uri     string
	ttl     time.Duration
	timeout time.Duration
	mu      sync.Mutex
	keys    *jose.JSONWebKeySet
	fetched time.Time
}

// jwksClient fetches keys directly, never through a proxy.
var jwksClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

func (f *jwksFetcher) get(ctx context.Context) (*jose.JSONWebKeySet, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys != nil && time.Since(f.fetched) < f.ttl {
		return f.keys, nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := jwksClient.Do(req)
	if err != nil {
		if f.keys != nil {
			return f.keys, nil // keep the last good keys
		}
		return nil, fmt.Errorf("fetching JWKS %s: %w", f.uri, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		if f.keys != nil {
			return f.keys, nil
		}
		return nil, fmt.Errorf("fetching JWKS %s: HTTP %d %v", f.uri, resp.StatusCode, err)
	}
	var ks jose.JSONWebKeySet
	if err := json.Unmarshal(body, &ks); err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", f.uri, err)
	}
	f.keys, f.fetched = &ks, time.Now()
	return f.keys, nil
}

func compileJWT(cfg *jwtauthn.JwtAuthentication) (*rjwt, error) {
	out := &rjwt{}
	rules := cfg.GetRules()
	if len(rules) != 1 || rules[0].GetMatch().GetPrefix() != "/" || rules[0].GetRequires().GetRequiresAny() == nil {
		return nil, fmt.Errorf("jwt_authn: only one rule for every path requiring any provider is supported (as Istio generates)")
	}
	for _, req := range rules[0].GetRequires().GetRequiresAny().GetRequirements() {
		switch {
		case req.GetAllowMissing() != nil:
			out.allowMissing = true
		case req.GetProviderName() != "":
			p := cfg.GetProviders()[req.GetProviderName()]
			if p == nil {
				return nil, fmt.Errorf("jwt_authn: no provider %q", req.GetProviderName())
			}
			rp, err := compileJWTProvider(req.GetProviderName(), p)
			if err != nil {
				return nil, err
			}
			out.providers = append(out.providers, rp)
		default:
			return nil, fmt.Errorf("jwt_authn: only provider names and allow_missing are supported in requires_any")
		}
	}
	return out, nil
}

func compileJWTProvider(name string, p *jwtauthn.JwtProvider) (*rjwtProvider, error) {
	out := &rjwtProvider{name: name, issuer: p.GetIssuer(), audiences: p.GetAudiences(), forward: p.GetForward(),
		payloadHeader: p.GetForwardPayloadHeader(), params: p.GetFromParams()}
	for _, h := range p.GetFromHeaders() {
		out.headers = append(out.headers, jwtHeader{name: strings.ToLower(h.GetName()), prefix: h.GetValuePrefix()})
	}
	if len(out.headers) == 0 && len(out.params) == 0 {
		out.headers = []jwtHeader{{name: "authorization", prefix: "Bearer "}}
		out.params = []string{"access_token"}
	}
	switch src := p.GetJwksSourceSpecifier().(type) {
	case *jwtauthn.JwtProvider_LocalJwks:
		data, err := readSource(src.LocalJwks)
		if err != nil {
			return nil, fmt.Errorf("provider %q: local_jwks: %w", name, err)
		}
		var ks jose.JSONWebKeySet
		if err := json.Unmarshal(data, &ks); err != nil {
			return nil, fmt.Errorf("provider %q: local_jwks: %w", name, err)
		}
		out.keys = &ks
	case *jwtauthn.JwtProvider_RemoteJwks:
		ttl := 5 * time.Minute
		if d := src.RemoteJwks.GetCacheDuration(); d != nil {
			ttl = d.AsDuration()
		}
		timeout := 5 * time.Second
		if d := src.RemoteJwks.GetHttpUri().GetTimeout(); d != nil && d.AsDuration() > 0 {
			timeout = d.AsDuration()
		}
		out.remote = &jwksFetcher{uri: src.RemoteJwks.GetHttpUri().GetUri(), ttl: ttl, timeout: timeout}
	default:
		return nil, fmt.Errorf("provider %q: local_jwks or remote_jwks is required", name)
	}
	return out, nil
}

// jwtResult is an authenticated request's JWT: "ISS/SUB" and its claims.
type jwtResult struct {
	principal string
	claims    map[string]any
}

// tokenHeaders lets authenticate read and edit the request's headers.
type tokenHeaders interface {
	Get(name string) string
	Del(name string)
	Set(name, value string)
}

// authenticate validates the request's JWT. ok is false when a token is
// present and fails (or, without allow_missing, is absent): answer 401.
func (j *rjwt) authenticate(ctx context.Context, h tokenHeaders, rawQuery string) (res *jwtResult, ok bool) {
	for _, p := range j.providers {
		tok, where := p.extract(h, rawQuery)
		if tok == "" {
			continue
		}
		r, err := p.verify(ctx, tok)
		if err != nil {
			// A token for another issuer may be another provider's.
			if err == errOtherIssuer {
				continue
			}
			return nil, false
		}
		if !p.forward && where != "" {
			h.Del(where)
		}
		if p.payloadHeader != "" {
			parts := strings.Split(tok, ".")
			if len(parts) == 3 {
				h.Set(p.payloadHeader, parts[1])
			}
		}
		return r, true
	}
	// A token nobody's issuer claims fails too (Envoy: "Jwt issuer is not configured").
	for _, p := range j.providers {
		if tok, _ := p.extract(h, rawQuery); tok != "" {
			return nil, false
		}
	}
	return nil, j.allowMissing
}

var errOtherIssuer = fmt.Errorf("token from another issuer")

func (p *rjwtProvider) extract(h tokenHeaders, rawQuery string) (token, header string) {
	for _, hd := range p.headers {
		if v := h.Get(hd.name); v != "" {
			if hd.prefix != "" {
				if !strings.HasPrefix(v, hd.prefix) {
					continue
				}
				v = strings.TrimPrefix(v, hd.prefix)
			}
			return strings.TrimSpace(v), hd.name
		}
	}
	if len(p.params) > 0 && rawQuery != "" {
		q, _ := url.ParseQuery(rawQuery)
		for _, name := range p.params {
			if v := q.Get(name); v != "" {
				return v, ""
			}
		}
	}
	return "", ""
}

func (p *rjwtProvider) verify(ctx context.Context, tok string) (*jwtResult, error) {
	jws, err := jose.ParseSigned(tok, jwtAlgorithms)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, err
	}
	if iss, _ := claims["iss"].(string); p.issuer != "" && iss != p.issuer {
		return nil, errOtherIssuer
	}
	keys := p.keys
	if p.remote != nil {
		if keys, err = p.remote.get(ctx); err != nil {
			return nil, err
		}
	}
	var payload []byte
	kid := ""
	if len(jws.Signatures) > 0 {
		kid = jws.Signatures[0].Header.KeyID
	}
	candidates := keys.Keys
	if kid != "" {
		candidates = keys.Key(kid)
	}
	for _, k := range candidates {
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if payload == nil {
		return nil, fmt.Errorf("no key verifies the token")
	}
	now := time.Now()
	if exp, ok := claims["exp"].(float64); ok && now.After(time.Unix(int64(exp), 0).Add(jwtSkew)) {
		return nil, fmt.Errorf("token expired")
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(jwtSkew).Before(time.Unix(int64(nbf), 0)) {
		return nil, fmt.Errorf("token not yet valid")
	}
	if len(p.audiences) > 0 && !audienceMatches(claims["aud"], p.audiences) {
		return nil, fmt.Errorf("audience not allowed")
	}
	iss, _ := claims["iss"].(string)
	sub, _ := claims["sub"].(string)
	return &jwtResult{principal: iss + "/" + sub, claims: claims}, nil
}

func audienceMatches(aud any, allowed []string) bool {
	var got []string
	switch a := aud.(type) {
	case string:
		got = []string{a}
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok {
				got = append(got, s)
			}
		}
	}
	for _, g := range got {
		for _, w := range allowed {
			if g == w {
				return true
			}
		}
	}
	return false
}

// claimValues are a claim's values as strings (a string, or a list of them).
func claimValues(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case float64, bool:
		return []string{fmt.Sprint(v)}
	}
	return nil
}

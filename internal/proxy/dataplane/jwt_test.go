package dataplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func testProvider(t testing.TB) (*rjwtProvider, func(claims map[string]any) string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	p := &rjwtProvider{name: "p", issuer: "https://issuer", audiences: []string{"bookinfo"},
		headers: []jwtHeader{{name: "authorization", prefix: "Bearer "}}, params: []string{"access_token"},
		keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}}}
	sign := func(claims map[string]any) string {
		b, _ := json.Marshal(claims)
		jws, err := signer.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		return s
	}
	return p, sign
}

func TestJWT(t *testing.T) {
	p, sign := testProvider(t)
	j := &rjwt{providers: []*rjwtProvider{p}, allowMissing: true}
	good := map[string]any{"iss": "https://issuer", "sub": "alice", "aud": "bookinfo", "exp": time.Now().Add(time.Hour).Unix()}
	tests := []struct {
		name  string
		token string
		query string
		ok    bool
		who   string
	}{
		{"valid", sign(good), "", true, "https://issuer/alice"},
		{"missing", "", "", true, ""},
		{"from the query", "", "access_token=" + sign(good), true, "https://issuer/alice"},
		{"expired", sign(map[string]any{"iss": "https://issuer", "sub": "alice", "aud": "bookinfo", "exp": time.Now().Add(-time.Hour).Unix()}), "", false, ""},
		{"wrong audience", sign(map[string]any{"iss": "https://issuer", "sub": "alice", "aud": "other"}), "", false, ""},
		{"unknown issuer", sign(map[string]any{"iss": "https://elsewhere", "sub": "alice"}), "", false, ""},
		{"garbage", "a.b.c", "", false, ""},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.token != "" {
			h.Set("Authorization", "Bearer "+tt.token)
		}
		res, ok := j.authenticate(context.Background(), h, tt.query)
		if ok != tt.ok || (res != nil) != (tt.who != "") || (res != nil && res.principal != tt.who) {
			t.Errorf("%s: ok=%v res=%+v, want ok=%v principal %q", tt.name, ok, res, tt.ok, tt.who)
		}
		if tt.ok && tt.token != "" && h.Get("Authorization") != "" {
			t.Errorf("%s: the token must be removed unless forwarded", tt.name)
		}
	}
}

func FuzzJWTVerify(f *testing.F) {
	p, sign := testProvider(f)
	f.Add(sign(map[string]any{"iss": "https://issuer", "sub": "x"}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("...")
	f.Fuzz(func(t *testing.T, tok string) {
		p.verify(context.Background(), tok)
	})
}

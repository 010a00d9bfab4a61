package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weft-mesh/weft/internal/config"
	"github.com/weft-mesh/weft/internal/controlplane/authz"
	"github.com/weft-mesh/weft/internal/controlplane/store"
)

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestLargeWrites: an anonymous write is refused before its body is read,
// an object over the limits is refused with the limit it broke, and the
// store keeps what it had.
func TestLargeWrites(t *testing.T) {
	st, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(NewHandler(Options{Store: st, Authorizer: authz.New(authz.Options{AdminToken: testAdminToken})}))
	defer srv.Close()

	var read atomic.Int64
	body := countingReader{bytes.NewReader(bytes.Repeat([]byte("# padding\n"), 1<<20)), &read}
	rec := httptest.NewRecorder()
	NewHandler(Options{Store: st, Authorizer: authz.New(authz.Options{AdminToken: testAdminToken})}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ConfigPath, body))
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "apply mesh config needs a credential") {
		t.Errorf("anonymous 10 MB POST: %d %s, want 401", rec.Code, rec.Body)
	}
	if n := read.Load(); n != 0 {
		t.Errorf("anonymous POST: the handler read %d bytes of the body before refusing it", n)
	}

	admin := NewClientWith(srv.URL, ClientOptions{Token: testAdminToken})
	ctx := context.Background()
	if _, err := admin.Apply(ctx, "vs.yaml", []byte(vsReviews)); err != nil {
		t.Fatalf("apply: %v", err)
	}
	_, objs := st.Snapshot()
	stored := objs[0]
	var routes strings.Builder
	routes.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n")
	for i := 0; routes.Len() < 5<<20; i++ {
		fmt.Fprintf(&routes, "  - name: r%d\n    match: [{uri: {prefix: /p%d}}]\n    route: [{destination: {host: reviews, subset: v1}}]\n", i, i)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"5 MB VirtualService", routes.String(), "one object may be at most 1572864 bytes"},
		{"too many rules", manyRules(config.MaxRules + 1), "4097 routing rules (http, tls and tcp); one object may have at most 4096"},
	}
	for _, tt := range tests {
		_, err := admin.Apply(ctx, "big.yaml", []byte(tt.yaml))
		var apiErr *Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want 400 with %q", tt.name, err, tt.want)
		}
		if _, objs := st.Snapshot(); len(objs) != 1 || objs[0].ResourceVersion != stored.ResourceVersion {
			t.Errorf("%s: the store changed: %d objects", tt.name, len(objs))
		}
	}
}

// manyRules is the reviews VirtualService with n http rules.
func manyRules(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - match: [{uri: {exact: /p%d}}]\n    route: [{destination: {host: reviews}}]\n", i)
	}
	return b.String()
}

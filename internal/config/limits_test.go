package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// bigVirtualService is a VirtualService with n http rules, each a prefix
// match padded to make the document about bytes long (0: no padding).
func bigVirtualService(n, bytes int) string {
	var b strings.Builder
	b.WriteString("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: big, namespace: default}\nspec:\n  hosts: [reviews]\n  http:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - match: [{uri: {prefix: /p%d}}]\n    route: [{destination: {host: reviews}}]\n", i)
	}
	if pad := bytes - b.Len() - 3; pad > 0 {
		fmt.Fprintf(&b, "# %s\n", strings.Repeat("x", pad))
	}
	return b.String()
}

func TestParseLimits(t *testing.T) {
	policy := func(n int) string {
		var b strings.Builder
		b.WriteString("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n  rules:\n")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "  - to: [{operation: {paths: [/p%d]}}]\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name string
		yaml string
		want string // "" for accepted
	}{
		{"rules at the limit", bigVirtualService(MaxRules, 0), ""},
		{"one rule too many", bigVirtualService(MaxRules+1, 0),
			"big: VirtualService default/big: spec: 4097 routing rules (http, tls and tcp); one object may have at most 4096"},
		{"policy rules at the limit", policy(MaxRules), ""},
		{"policy rules over", policy(MaxRules + 1), "AuthorizationPolicy default/p: spec: 4097 rules; one object may have at most 4096"},
		{"document at the limit", bigVirtualService(1, MaxObjectBytes), ""},
		{"document over the limit", bigVirtualService(1, 5<<20),
			"big: document 1 (line 1): the document is 5242880 bytes (5.0 MiB); one object may be at most 1572864 bytes (1.5 MiB)"},
		{"second document over the limit", "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec: {servers: [{port: {number: 80, protocol: HTTP, name: h}, hosts: ['*']}]}\n---\n" +
			bigVirtualService(1, 2<<20), "document 2 (line 6): the document is 2097152 bytes (2.0 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := Parse("big", []byte(tt.yaml))
			if tt.want == "" {
				if err != nil || len(objs) != 1 {
					t.Fatalf("Parse: %d objects, %v; want 1 and no error", len(objs), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse: %v; want an ErrTooLarge containing %q", err, tt.want)
			}
			if n := strings.Count(err.Error(), "\n"); n > 0 {
				t.Errorf("Parse: %d error lines, want one for the whole object:\n%.500s", n+1, err)
			}
		})
	}
}

func TestParseStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ParseWith("api", []byte(bigVirtualService(2, 0)), ParseOptions{Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ParseWith with a done context: %v; want context.Canceled", err)
	}
}

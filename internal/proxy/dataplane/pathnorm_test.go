package dataplane

import (
	"strings"
	"testing"

	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The HCM settings istiod writes for each meshConfig.pathNormalization.
var (
	normNone   = pathNorm{}
	normBase   = pathNorm{normalize: true}
	normMerge  = pathNorm{normalize: true, merge: true}
	normDecode = pathNorm{normalize: true, merge: true, slashes: slashesUnescape}
)

func TestPathNormIstioCases(t *testing.T) {
	// in, then what NONE, BASE, MERGE_SLASHES and DECODE_AND_MERGE_SLASHES
	// make of it (Istio's documented behaviour of each option).
	tests := []struct{ in, none, base, merge, decode string }{
		{"/", "/", "/", "/", "/"},
		{"/app/", "/app/", "/app/", "/app/", "/app/"},
		{"/app", "/app", "/app", "/app", "/app"},
		{"/app/../admin", "/app/../admin", "/admin", "/admin", "/admin"},
		{"/app//", "/app//", "/app//", "/app/", "/app/"},
		{"/app/%2f", "/app/%2f", "/app/%2f", "/app/%2f", "/app/"},
		{"/app%2f/", "/app%2f/", "/app%2f/", "/app%2f/", "/app/"},
		{"/xyz%30..//abc", "/xyz%30..//abc", "/xyz0..//abc", "/xyz0../abc", "/xyz0../abc"},
		{"/app/%2E./admin", "/app/%2E./admin", "/admin", "/admin", "/admin"},
		{`/app\admin`, `/app\admin`, "/app/admin", "/app/admin", "/app/admin"},
		{`/app/\/\/\admin`, `/app/\/\/\admin`, "/app//////admin", "/app/admin", "/app/admin"},
		{"/%2Fapp%5cadmin%5Cabc", "/%2Fapp%5cadmin%5Cabc", "/%2Fapp%5cadmin%5Cabc", "/%2Fapp%5cadmin%5Cabc", "/app/admin/abc"},
		{`/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc`, `/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\abc`,
			"/%5Capp%2f%5c%2F..%2fadmin%5c/abc", "/%5Capp%2f%5c%2F..%2fadmin%5c/abc", "/app/admin/abc"},
		{"/app//../admin", "/app//../admin", "/app/admin", "/app/admin", "/app/admin"},
		{"/app//../../admin", "/app//../../admin", "/admin", "/admin", "/admin"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			opt  string
			n    pathNorm
			want string
		}{{"NONE", normNone, tt.none}, {"BASE", normBase, tt.base}, {"MERGE_SLASHES", normMerge, tt.merge}, {"DECODE_AND_MERGE_SLASHES", normDecode, tt.decode}} {
			got, ok := c.n.apply(tt.in)
			if !ok || got != c.want {
				t.Errorf("%s %q = %q, %v; want %q", c.opt, tt.in, got, ok, c.want)
			}
		}
	}
}

func TestPathNormApply(t *testing.T) {
	reject := pathNorm{normalize: true, slashes: slashesReject}
	tests := []struct {
		name   string
		n      pathNorm
		in     string
		want   string
		refuse bool
	}{
		{"dot segment", normBase, "/a/./b", "/a/b", false},
		{"trailing dot", normBase, "/a/.", "/a/", false},
		{"trailing dot-dot", normBase, "/a/b/..", "/a/", false},
		{"dot-dot above root", normBase, "/../../etc/passwd", "/etc/passwd", false},
		{"dot-dot at root only", normBase, "/..", "/", false},
		{"encoded dots", normBase, "/static/%2e%2E/logout", "/logout", false},
		{"encoded unreserved decoded", normBase, "/%7Euser/%41", "/~user/A", false},
		{"reserved escape kept, case kept", normBase, "/a%3fb%3Bc", "/a%3fb%3Bc", false},
		{"dots inside a segment stay", normBase, "/a.b/..c/.d/e..", "/a.b/..c/.d/e..", false},
		{"invalid escape kept", normBase, "/a%zz/%4", "/a%zz/%4", false},
		{"query untouched", normMerge, "/a/../b?x=/../y&z=//%2e", "/b?x=/../y&z=//%2e", false},
		{"query untouched when path is normal", normMerge, "/a?b=//..", "/a?b=//..", false},
		{"empty query kept", normBase, "/a/../b?", "/b?", false},
		{"merge leading slashes", normMerge, "//logout", "/logout", false},
		{"asterisk form left alone", normMerge, "*", "*", false},
		{"none changes nothing", normNone, `/a/../b\c//d%2F`, `/a/../b\c//d%2F`, false},
		{"reject %2F", reject, "/a%2Fb", "", true},
		{"reject %5c", reject, "/a%5cb", "", true},
		{"reject leaves normal paths", reject, "/a/b", "/a/b", false},
		{"reject looks at the path only", reject, "/a?x=%2F", "/a?x=%2F", false},
		{"unescape without normalize keeps backslash", pathNorm{slashes: slashesUnescape}, "/a%5Cb%2f..", `/a\b/..`, false},
		{"unescaped slash then dot segment", normDecode, "/a%2F..%2Fb", "/b", false},
		{"no double decoding", normBase, "/%252e%252e/x", "/%252e%252e/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.n.apply(tt.in)
			if ok == tt.refuse {
				t.Fatalf("apply(%q) ok = %v, want %v", tt.in, ok, !tt.refuse)
			}
			if ok && got != tt.want {
				t.Errorf("apply(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestCompilePathNorm(t *testing.T) {
	tests := []struct {
		name    string
		m       *hcm.HttpConnectionManager
		want    pathNorm
		wantErr string
	}{
		{"unset: Envoy's defaults", &hcm.HttpConnectionManager{}, pathNorm{}, ""},
		{"normalize_path", &hcm.HttpConnectionManager{NormalizePath: wrapperspb.Bool(true),
			PathWithEscapedSlashesAction: hcm.HttpConnectionManager_KEEP_UNCHANGED}, normBase, ""},
		{"merge_slashes", &hcm.HttpConnectionManager{NormalizePath: wrapperspb.Bool(true), MergeSlashes: true}, normMerge, ""},
		{"unescape", &hcm.HttpConnectionManager{NormalizePath: wrapperspb.Bool(true), MergeSlashes: true,
			PathWithEscapedSlashesAction: hcm.HttpConnectionManager_UNESCAPE_AND_FORWARD}, normDecode, ""},
		{"reject", &hcm.HttpConnectionManager{PathWithEscapedSlashesAction: hcm.HttpConnectionManager_REJECT_REQUEST},
			pathNorm{slashes: slashesReject}, ""},
		{"redirect refused", &hcm.HttpConnectionManager{PathWithEscapedSlashesAction: hcm.HttpConnectionManager_UNESCAPE_AND_REDIRECT},
			pathNorm{}, "UNESCAPE_AND_REDIRECT is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compilePathNorm(tt.m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("compilePathNorm = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzNormalizePath checks the promises route matching and RBAC rely on:
// the query is kept, no dot segment, backslash or (merging) double slash
// is left, and a request REJECT_REQUEST lets through has no escaped slash.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/a/../b", "/static/%2e%2e/logout", `/a\b`, "//x//y", "/a%2Fb?q=/../", "/%5c%2F%2e.", "/..", "*"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, target string, opts uint8) {
		n := pathNorm{normalize: opts&1 != 0, merge: opts&2 != 0, slashes: escapedSlashes(opts >> 2 % 3)}
		got, ok := n.apply(target)
		if !ok {
			if n.slashes != slashesReject || !hasEscapedSlash(target[:strings.IndexByte(target+"?", '?')]) {
				t.Fatalf("%+v refused %q", n, target)
			}
			return
		}
		if !strings.HasPrefix(target, "/") {
			if got != target {
				t.Fatalf("%+v changed a non-path target %q to %q", n, target, got)
			}
			return
		}
		path, q, _ := strings.Cut(got, "?")
		_, wantQ, _ := strings.Cut(target, "?")
		if q != wantQ {
			t.Fatalf("%+v: query of %q became %q", n, target, q)
		}
		if !strings.HasPrefix(path, "/") {
			t.Fatalf("%+v: %q gave %q, not a path", n, target, got)
		}
		if n.normalize && (strings.Contains(path, `\`) || strings.Contains(path+"/", "/./") || strings.Contains(path+"/", "/../")) {
			t.Fatalf("%+v: %q gave %q, not normalized", n, target, got)
		}
		if n.merge && strings.Contains(path, "//") {
			t.Fatalf("%+v: %q gave %q with a double slash", n, target, got)
		}
		if n.slashes == slashesReject && hasEscapedSlash(path) {
			t.Fatalf("%+v let %q through with an escaped slash", n, target)
		}
	})
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, bb := range []struct{ name, target string }{
		{"normal", "/productpage/reviews/0?u=normal&x=%2F"},
		{"dot segments", "/static/../api/./v1//x?q=1"},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, ok := normMerge.apply(bb.target); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}

func TestNormalPathsDoNotAllocate(t *testing.T) {
	for _, tt := range []struct {
		n      pathNorm
		target string
	}{
		{normDecode, "/"},
		{normDecode, "/api/v1/reviews/0?u=jason&x=/../"},
		{normMerge, "/a%2Fb/c.d/..e%zz"},
		{pathNorm{normalize: true, slashes: slashesReject}, "/productpage"},
	} {
		if n := testing.AllocsPerRun(100, func() { _, _ = tt.n.apply(tt.target) }); n != 0 {
			t.Errorf("%+v apply(%q): %v allocations, want 0", tt.n, tt.target, n)
		}
	}
}

package console

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestHandler(t *testing.T) {
	assets := fstest.MapFS{
		"index.html":        {Data: []byte("<!doctype html><title>weft console</title>")},
		"assets/index-a.js": {Data: []byte("console.log(1)")},
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
	})
	srv := httptest.NewServer(Handler(api, assets, Auth{}))
	defer srv.Close()
	tests := []struct {
		name, method, path, origin string
		wantCode                   int
		wantBody                   string
	}{
		{"page", "GET", "/", "", 200, "weft console"},
		{"asset", "GET", "/assets/index-a.js", "", 200, "console.log"},
		{"unknown path serves the page", "GET", "/graph", "", 200, "weft console"},
		{"api get", "GET", "/api/v1/metrics/edges", "", 200, "api GET /api/v1/metrics/edges"},
		{"api post from the page", "POST", "/api/v1/config", srv.URL, 200, "api POST /api/v1/config"},
		{"api post without origin (curl)", "POST", "/api/v1/config", "", 200, "api POST"},
		{"api post from another site", "POST", "/api/v1/config", "http://evil.example", 403, "cross-origin"},
		{"api delete from another site", "DELETE", "/api/v1/config", "http://evil.example", 403, "cross-origin"},
		{"no tokens", "POST", "/api/v1/tokens", "", 403, "weft token create"},
		{"no post to pages", "POST", "/", "", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader("x"))
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("%s %s: got %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestAddress(t *testing.T) {
	tests := []struct{ flag, http, want string }{
		{"", "127.0.0.1:15014", "127.0.0.1:20001"},
		{"", "127.5.0.2:15014", "127.5.0.2:20001"},
		{"", "127.0.0.1:0", "127.0.0.1:0"},
		{"off", "127.0.0.1:15014", "off"},
		{"0.0.0.0:9000", "127.0.0.1:15014", "0.0.0.0:9000"},
	}
	for _, tt := range tests {
		if got := Address(tt.flag, tt.http); got != tt.want {
			t.Errorf("Address(%q, %q) = %q, want %q", tt.flag, tt.http, got, tt.want)
		}
	}
}

func TestEmbeddedAssets(t *testing.T) {
	// The real assets are embedded: index.html must be there.
	s, stop, err := Start(t.Context(), "127.0.0.1:0", http.NotFoundHandler(), Auth{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + s.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<div id=\"app\">") {
		t.Fatalf("GET /: %d %.200q", resp.StatusCode, body)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

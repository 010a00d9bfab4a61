package proxycli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenFile: --token-file takes a join token from a file only its
// owner can read (read once) and leaves a service-account token file to
// be re-read at each use.
func TestTokenFile(t *testing.T) {
	tests := []struct {
		name, content string
		mode          os.FileMode
		wantToken     bool   // the join token read into Options.Token
		wantErr       string // "" = no error
	}{
		{"join token, owner only", "weft.v1.abc.def\n", 0o600, true, ""},
		{"join token, readable by others", "weft.v1.abc.def\n", 0o644, false, "readable by others"},
		{"service-account token", "eyJhbGciOi.payload.sig", 0o644, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			f := &proxyFlags{logLevel: "error", logFormat: "text"}
			f.opts.TokenFile = path
			o, err := f.options(&Env{Stderr: os.Stderr, Getenv: func(string) string { return "" }})
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("options: %v, want an error with %q", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if tt.wantToken && (o.Token != strings.TrimSpace(tt.content) || o.TokenFile != "") {
				t.Errorf("Token %q, TokenFile %q: want the join token read once", o.Token, o.TokenFile)
			}
			if !tt.wantToken && (o.Token != "" || o.TokenFile != path) {
				t.Errorf("Token %q, TokenFile %q: want the file kept for each use", o.Token, o.TokenFile)
			}
		})
	}
}

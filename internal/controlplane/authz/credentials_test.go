package authz

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCredentialsFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	want := &Credentials{Server: "http://127.0.0.1:15014", Token: NewAdminToken()}
	name := filepath.Join(dir, CredentialsFile)
	if err := WriteCredentials(name, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(name)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, %v; want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("credentials dir mode %v, %v; want 0700", di.Mode(), err)
	}
	for _, n := range []string{name, dir} { // the file, or the data dir
		got, err := ReadCredentials(n)
		if err != nil || *got != *want {
			t.Errorf("ReadCredentials(%s) = %+v, %v; want %+v", n, got, err, want)
		}
	}
	if !IsAdminToken(want.Token) || IsAdminToken("eyJhbGciOi") {
		t.Error("IsAdminToken")
	}
	os.WriteFile(name, []byte(`{"server":"x"}`), 0o600)
	if _, err := ReadCredentials(name); err == nil {
		t.Error("credentials without a token: want an error")
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:15014", "h/credentials/127.0.0.1_15014.json"},
		{"http://127.3.0.2:15014", "h/credentials/127.3.0.2_15014.json"},
		{"http://localhost:15014/", "h/credentials/127.0.0.1_15014.json"},
		{"[::]:15014", "h/credentials/127.0.0.1_15014.json"},
		{"0.0.0.0:15014", "h/credentials/127.0.0.1_15014.json"},
		{"[::1]:15014", "h/credentials/--1_15014.json"},
		{"https://weft.example.com:15014", ""},
	}
	for _, tt := range tests {
		if got := LocalPath("h", tt.addr); got != tt.want {
			t.Errorf("LocalPath(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestHome(t *testing.T) {
	env := map[string]string{"HOME": "/home/jane"}
	if h, _ := Home(func(k string) string { return env[k] }); h != "/home/jane/.weft" {
		t.Errorf("Home = %q", h)
	}
	env[EnvHome] = "/tmp/w"
	if h, _ := Home(func(k string) string { return env[k] }); h != "/tmp/w" {
		t.Errorf("Home with %s = %q", EnvHome, h)
	}
}

package token

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	iss := NewWithKey([]byte("0123456789abcdef0123456789abcdef"), clock)
	tok, err := iss.Issue("default", "bookinfo-reviews", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "weft.v1.") || strings.Count(tok, ".") != 3 {
		t.Fatalf("token %q: want weft.v1.<payload>.<sig>", tok)
	}
	ns, sa, err := iss.Verify(tok)
	if err != nil || ns != "default" || sa != "bookinfo-reviews" {
		t.Fatalf("Verify = %q, %q, %v", ns, sa, err)
	}
	other := NewWithKey([]byte("another key, another control pl."), clock)
	body := strings.TrimPrefix(tok, "weft.v1.")
	payload, sig, _ := strings.Cut(body, ".")
	forged, _ := other.Issue("default", "bookinfo-reviews", time.Hour)
	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"no prefix", body, ErrMalformed},
		{"v2", "weft.v2." + body, ErrMalformed},
		{"no sig", "weft.v1." + payload, ErrMalformed},
		{"extra part", tok + ".x", ErrMalformed},
		{"sig not base64", "weft.v1." + payload + ".!!", ErrMalformed},
		{"other key", forged, ErrBadSignature},
		{"altered payload", "weft.v1." + payload + "x." + sig, ErrBadSignature},
	}
	for _, tc := range cases {
		if _, _, err := iss.Verify(tc.tok); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify error %v, want %v", tc.name, err, tc.want)
		}
	}
	now = now.Add(time.Hour)
	if _, _, err := iss.Verify(tok); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "default/bookinfo-reviews") {
		t.Errorf("expired: Verify error %v", err)
	}
	if _, err := iss.Issue("default", "a/b", time.Hour); err == nil {
		t.Error("Issue with a bad service account: want an error")
	}
	if _, err := iss.Issue("default", "a", 0); err == nil {
		t.Error("Issue with ttl 0: want an error")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	a, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ca", KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	tok, _ := a.Issue("ns", "sa", time.Minute)
	b, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Verify(tok); err != nil {
		t.Errorf("a token from the same data dir: %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	iss := NewWithKey([]byte("0123456789abcdef0123456789abcdef"), nil)
	good, _ := iss.Issue("default", "sa", time.Hour)
	for _, s := range []string{good, "", "weft.v1.", "weft.v1.e30.", "weft.v1.e30.AAAA", good + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, sa, err := iss.Verify(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrExpired) {
				t.Fatalf("Verify(%q): error %v is none of the sentinels", s, err)
			}
			return
		}
		if ns == "" || sa == "" {
			t.Fatalf("Verify(%q) accepted an empty identity", s)
		}
	})
}

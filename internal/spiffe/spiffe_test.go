package spiffe

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	good := []struct {
		in   string
		want ID
	}{
		{"spiffe://cluster.local/ns/default/sa/bookinfo-reviews", ID{"cluster.local", "default", "bookinfo-reviews"}},
		{"spiffe://example.org/ns/a_b/sa/A.b-c", ID{"example.org", "a_b", "A.b-c"}},
	}
	for _, tc := range good {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
		if got.String() != tc.in || got.URL().String() != tc.in {
			t.Errorf("String/URL of %q = %q / %q", tc.in, got.String(), got.URL())
		}
	}
	bad := []string{
		"", "spiffe://", "http://cluster.local/ns/a/sa/b", "SPIFFE://cluster.local/ns/a/sa/b",
		"spiffe://cluster.local", "spiffe://cluster.local/", "spiffe:///ns/a/sa/b",
		"spiffe://cluster.local/ns/a/sa/b/", "spiffe://cluster.local/ns//sa/b", "spiffe://cluster.local/ns/a/sa/",
		"spiffe://cluster.local/ns/a/sa/b?x=1", "spiffe://cluster.local/ns/a/sa/b#f",
		"spiffe://user@cluster.local/ns/a/sa/b", "spiffe://cluster.local:8080/ns/a/sa/b",
		"spiffe://Cluster.local/ns/a/sa/b", "spiffe://cluster.local/ns/a/sa/b/c", "spiffe://cluster.local/sa/b/ns/a",
		"spiffe://cluster.local/ns/../sa/b", "spiffe://cluster.local/ns/a%2f/sa/b", "spiffe://cluster.local//ns/a/sa/b",
	}
	for _, in := range bad {
		if id, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, id)
		} else if !strings.Contains(err.Error(), "SPIFFE ID") {
			t.Errorf("Parse(%q) error %q does not name the ID", in, err)
		}
	}
}

func TestFromCert(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	one := &x509.Certificate{URIs: []*url.URL{u("https://x"), u("spiffe://cluster.local/ns/a/sa/b")}}
	if id, err := FromCert(one); err != nil || id != New("a", "b") {
		t.Errorf("FromCert(one) = %v, %v", id, err)
	}
	for name, c := range map[string]*x509.Certificate{
		"none": {},
		"two":  {URIs: []*url.URL{u("spiffe://cluster.local/ns/a/sa/b"), u("spiffe://cluster.local/ns/a/sa/c")}},
		"bad":  {URIs: []*url.URL{u("spiffe://cluster.local/a/b")}},
		"nil":  nil,
	} {
		if _, err := FromCert(c); err == nil {
			t.Errorf("FromCert(%s): want an error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"spiffe://cluster.local/ns/default/sa/x", "spiffe://a/ns/b/sa/c?d", "spiffe://u@a/ns/b/sa/c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, id.String())
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid ID: %v", s, err)
		}
		if again, err := Parse(id.URL().String()); err != nil || again != id {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

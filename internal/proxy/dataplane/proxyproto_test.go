package dataplane

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestProxyHeaderRoundTrip(t *testing.T) {
	cases := []struct{ src, dst string }{
		{"127.0.1.7:40000", "127.0.1.8:9080"},
		{"[::1]:1", "[fd00::2]:9080"},
	}
	for _, tc := range cases {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		var b bytes.Buffer
		if err := writeProxyHeader(&b, src, dst); err != nil {
			t.Fatal(err)
		}
		b.WriteString("GET / HTTP/1.1\r\n")
		br := bufio.NewReader(&b)
		gs, gd, err := readProxyHeader(br)
		if err != nil || gs != src || gd != dst {
			t.Errorf("%s -> %s: got %s -> %s, %v", src, dst, gs, gd, err)
		}
		if rest, _ := br.ReadString('\n'); rest != "GET / HTTP/1.1\r\n" {
			t.Errorf("bytes after the header: %q", rest)
		}
	}
}

func TestProxyHeaderRejects(t *testing.T) {
	cases := map[string]string{
		"not PROXY":       "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"version 1":       string(proxySignature) + "\x11\x11\x00\x0c" + strings.Repeat("\x00", 12),
		"unknown family":  string(proxySignature) + "\x21\x31\x00\x00",
		"short v4 block":  string(proxySignature) + "\x21\x11\x00\x04\x00\x00\x00\x00",
		"truncated input": string(proxySignature) + "\x21\x11\x00\x0c\x00",
	}
	for name, in := range cases {
		if _, _, err := readProxyHeader(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzReadProxyHeader(f *testing.F) {
	var b bytes.Buffer
	_ = writeProxyHeader(&b, netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.2:2"))
	f.Add(b.Bytes())
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		src, dst, err := readProxyHeader(bufio.NewReader(bytes.NewReader(in)))
		if err == nil && (!src.IsValid() || !dst.IsValid()) {
			t.Fatalf("accepted %q with invalid addresses %s %s", in, src, dst)
		}
	})
}

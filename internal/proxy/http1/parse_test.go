package http1

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		method    string
		form      Form
		authority string
		path      string
		length    int64
		chunked   bool
		closeConn bool
		upgrade   string
		expect    bool
		body      string
		trailer   Header
	}{
		{name: "origin", in: "GET /a?b=1 HTTP/1.1\r\nHost: reviews:9080\r\n\r\n",
			method: "GET", form: OriginForm, authority: "reviews:9080", path: "/a?b=1"},
		{name: "absolute", in: "GET http://reviews:9080/p HTTP/1.1\r\nHost: other\r\n\r\n",
			method: "GET", form: AbsoluteForm, authority: "reviews:9080", path: "/p"},
		{name: "absolute without path", in: "GET http://reviews:9080 HTTP/1.1\r\n\r\n",
			method: "GET", form: AbsoluteForm, authority: "reviews:9080", path: "/"},
		{name: "absolute query only", in: "GET http://r?x=1 HTTP/1.1\r\n\r\n",
			method: "GET", form: AbsoluteForm, authority: "r", path: "/?x=1"},
		{name: "authority", in: "CONNECT db:5432 HTTP/1.1\r\n\r\n",
			method: "CONNECT", form: AuthorityForm, authority: "db:5432"},
		{name: "asterisk", in: "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
			method: "OPTIONS", form: AsteriskForm, authority: "a", path: "*"},
		{name: "http10 closes", in: "GET / HTTP/1.0\r\n\r\n", method: "GET", path: "/", closeConn: true},
		{name: "http10 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", method: "GET", path: "/"},
		{name: "close", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			method: "GET", authority: "a", path: "/", closeConn: true},
		{name: "leading empty lines and bare LF", in: "\r\n\nPOST /x HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc",
			method: "POST", authority: "a", path: "/x", length: 3, body: "abc"},
		{name: "chunked with trailers", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Sum: 42\r\n\r\n",
			method: "POST", authority: "a", path: "/", length: -1, chunked: true, body: "abc0123456789",
			trailer: Header{{"X-Sum", "42"}}},
		{name: "upgrade", in: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", authority: "a", path: "/ws", upgrade: "websocket"},
		{name: "expect", in: "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz",
			method: "PUT", authority: "a", path: "/", length: 1, expect: true, body: "z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.in))
			var req Request
			if err := ReadRequest(br, &req, 0); err != nil {
				t.Fatalf("ReadRequest: %v", err)
			}
			got := []any{req.Method, req.Form, req.Authority(), req.Path(), req.ContentLength, req.Chunked, req.Close, req.Upgrade, req.ExpectContinue}
			want := []any{tt.method, tt.form, tt.authority, tt.path, tt.length, tt.chunked, tt.closeConn, tt.upgrade, tt.expect}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			var b Body
			b.ResetRequest(br, &req)
			body, err := io.ReadAll(&b)
			if err != nil || string(body) != tt.body {
				t.Errorf("body = %q, %v; want %q", body, err, tt.body)
			}
			if diff := cmp.Diff(tt.trailer, req.Trailer, cmp.Comparer(func(a, b Header) bool { return len(a) == 0 && len(b) == 0 || cmp.Equal([]Field(a), []Field(b)) })); diff != "" {
				t.Errorf("trailer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", io.EOF},
		{"truncated head", "GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF},
		{"no version", "GET /\r\n\r\n", ErrMalformed},
		{"http2", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ErrMalformed},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrMalformed},
		{"no host", "GET / HTTP/1.1\r\n\r\n", ErrMalformed},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrMalformed},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", ErrMalformed},
		{"folding", "GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", ErrMalformed},
		{"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", ErrMalformed},
		{"control char", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", ErrMalformed},
		{"bad length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ErrMalformed},
		{"conflicting lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", ErrMalformed},
		{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", ErrMalformed},
		{"gzip te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", ErrMalformed},
		{"chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", ErrMalformed},
		{"bad target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", ErrMalformed},
		{"userinfo", "GET http://u@h/ HTTP/1.1\r\n\r\n", ErrMalformed},
		{"too large", "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", DefaultMaxHeaderBytes) + "\r\n\r\n", ErrHeaderTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			err := ReadRequest(bufio.NewReaderSize(strings.NewReader(tt.in), 64), &req, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ReadRequest error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestBodyErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		length  int64
		chunked bool
		want    error
	}{
		{"short length", "ab", 3, false, io.ErrUnexpectedEOF},
		{"bad chunk size", "zz\r\n", -1, true, ErrMalformed},
		{"missing chunk crlf", "1\r\naXX0\r\n\r\n", -1, true, ErrMalformed},
		{"truncated chunk", "5\r\nab", -1, true, io.ErrUnexpectedEOF},
		{"huge chunk", "fffffffffffffffff\r\n", -1, true, ErrMalformed},
		{"no last chunk", "1\r\na\r\n", -1, true, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Body
			b.Reset(bufio.NewReader(strings.NewReader(tt.in)), tt.length, tt.chunked, nil)
			_, err := io.ReadAll(&b)
			if !errors.Is(err, tt.want) {
				t.Fatalf("read error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		method string
		status int
		body   string
		close  bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "GET", 200, "hi", false},
		{"head ignores length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HEAD", 200, "", false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, "", false},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "GET", 304, "", false},
		{"100", "HTTP/1.1 100 Continue\r\n\r\n", "PUT", 100, "", false},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", "GET", 200, "all of it", true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "GET", 200, "hi", false},
		{"http10", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", "GET", 200, "x", true},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", "GET", 404, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tt.in))
			var resp Response
			if err := ReadResponse(br, &resp, tt.method, 0); err != nil {
				t.Fatalf("ReadResponse: %v", err)
			}
			var b Body
			b.ResetResponse(br, &resp)
			body, err := io.ReadAll(&b)
			if err != nil {
				t.Fatalf("body: %v", err)
			}
			got := []any{resp.Status, string(body), resp.Close}
			if diff := cmp.Diff([]any{tt.status, tt.body, tt.close}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	var h Header
	h.Add("Host", "a")
	h.Add("X-A", "1")
	h.Add("x-a", "2")
	if got := h.Values(nil, "X-a"); !cmp.Equal(got, []string{"1", "2"}) {
		t.Errorf("Values = %v", got)
	}
	h.Set("X-A", "3")
	if got := h.Values(nil, "x-a"); !cmp.Equal(got, []string{"3"}) {
		t.Errorf("after Set: %v", got)
	}
	h.Del("HOST")
	if h.Has("host") || len(h) != 1 {
		t.Errorf("after Del: %v", h)
	}
	h.Set("New", "v")
	if h.Get("new") != "v" {
		t.Errorf("Set appended nothing: %v", h)
	}
}

func TestRequestWriteHead(t *testing.T) {
	in := "POST http://reviews:9080/p?q HTTP/1.1\r\nHost: old\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n" +
		"Keep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nX-Keep: y\r\n\r\n"
	var req Request
	if err := ReadRequest(bufio.NewReader(strings.NewReader(in)), &req, 0); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	w := bufio.NewWriter(&sb)
	req.WriteHead(w)
	w.Flush()
	want := "POST /p?q HTTP/1.1\r\nhost: reviews:9080\r\nX-Keep: y\r\nTransfer-Encoding: chunked\r\n\r\n"
	if sb.String() != want {
		t.Errorf("WriteHead =\n%q\nwant\n%q", sb.String(), want)
	}
}

func TestRequestID(t *testing.T) {
	a, b := NewRequestID(), NewRequestID()
	if a == b || len(a) != 36 || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("ids %q %q are not distinct UUIDv4", a, b)
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add("GET http://a:1/p HTTP/1.1\r\nHost: a\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n")
	f.Add("CONNECT h:1 HTTP/1.1\r\n\r\n")
	f.Add("PUT / HTTP/1.0\r\nContent-Length: 4\r\n\r\nbody")
	f.Fuzz(func(t *testing.T, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		var req Request
		for i := 0; i < 4; i++ {
			if err := ReadRequest(br, &req, 1024); err != nil {
				return
			}
			_ = req.Host()
			var sb strings.Builder
			w := bufio.NewWriter(&sb)
			req.WriteHead(w)
			w.Flush()
			var b Body
			b.ResetRequest(br, &req)
			if _, err := io.Copy(io.Discard, &b); err != nil {
				return
			}
		}
	})
}

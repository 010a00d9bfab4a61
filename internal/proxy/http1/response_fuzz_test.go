package http1

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

// FuzzReadResponse feeds arbitrary upstream bytes to the response parser
// as the proxy reads them: no panic, a head it accepts writes back out, and
// its body reads to the end or fails cleanly.
func FuzzReadResponse(f *testing.F) {
	f.Add("GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	f.Add("GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n")
	f.Add("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
	f.Add("GET", "HTTP/1.0 200 OK\r\n\r\nuntil close")
	f.Add("GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
	f.Add("CONNECT", "HTTP/1.1 200 Connection established\r\n\r\n")
	f.Fuzz(func(t *testing.T, method, in string) {
		br := bufio.NewReaderSize(strings.NewReader(in), 16)
		var resp Response
		for i := 0; i < 4; i++ {
			if err := ReadResponse(br, &resp, method, 1024); err != nil {
				return
			}
			if resp.Status < 100 || resp.Status > 999 {
				t.Fatalf("accepted status %d from %q", resp.Status, in)
			}
			var sb strings.Builder
			w := bufio.NewWriter(&sb)
			if err := resp.WriteHead(w, 1, false); err != nil {
				t.Fatalf("WriteHead of an accepted response: %v", err)
			}
			_ = w.Flush()
			if resp.NoBody {
				continue
			}
			var b Body
			b.ResetResponse(br, &resp)
			if _, err := io.Copy(io.Discard, &b); err != nil {
				return
			}
		}
	})
}

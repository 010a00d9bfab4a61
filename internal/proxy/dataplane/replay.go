package dataplane

import (
	"context"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/weft-mesh/weft/internal/proxy/http1"
)

// next asks the retry policy about a failed attempt; it also moves the
// exchange's telemetry to the next endpoint. A nil rc never retries.
func (rc *retryCtx) next(attempt int, fl http1.Failure, body *replayBody) (*rendpoint, http1.Verdict) {
	if rc == nil {
		return nil, http1.Stop
	}
	if body != nil && !body.replayable(fl.Connect) {
		return nil, http1.Stop
	}
	ep, v := rc.policy.verdict(attempt, fl, rc.cl, rc.tried)
	if v == http1.Again && !rc.retrying {
		if !rc.cl.breaker.retry() {
			return nil, http1.Stop
		}
		rc.retrying = true
	}
	if v == http1.Again {
		rc.tried = append(rc.tried, ep)
		rc.o.upstream = ep.addr
	}
	return ep, v
}

// pause waits out the back-off before retry attempt+1; false if ctx ended.
func (f *forwarder) pause(ctx context.Context, attempt int) bool {
	t := time.NewTimer(backoff(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// replayBody keeps the first maxRetryBody bytes of a request body so a
// retry can send it again: when the body was read to its end within that
// bound, or not read at all (the attempt failed to connect).
type replayBody struct {
	mu   sync.Mutex
	src  io.ReadCloser
	buf  []byte
	eof  bool
	over bool
}

type replayReader struct {
	b   *replayBody
	off int
}

// attempt returns a reader for a new attempt: the kept bytes, then the rest.
func (b *replayBody) attempt() io.ReadCloser { return &replayReader{b: b} }

func (r *replayReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.off < len(b.buf) {
		n := copy(p, b.buf[r.off:])
		r.off += n
		return n, nil
	}
	if b.eof {
		return 0, io.EOF
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if !b.over && len(b.buf)+n <= maxRetryBody {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.over = true
		}
		r.off = len(b.buf)
		if b.over {
			r.off = math.MaxInt // past the kept bytes for good
		}
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close leaves the downstream body open: the server closes it.
func (r *replayReader) Close() error { return nil }

func (b *replayBody) replayable(connectFailure bool) bool {
	// The transport may still be reading the body's last bytes (a gRPC
	// unary request ends with its message): give it a moment to reach EOF.
	for range 20 {
		b.mu.Lock()
		over, eof, n := b.over, b.eof, len(b.buf)
		b.mu.Unlock()
		switch {
		case over:
			return false
		case eof:
			return true
		case connectFailure && n == 0:
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func copyResponse(w http.ResponseWriter, resp *http.Response, start time.Time, edits *headerEdits) {
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
	h.Set("X-Envoy-Upstream-Service-Time", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
	edits.apply(h)
	w.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	rc := http.NewResponseController(w)
	for {
		n, err := resp.Body.Read(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				return
			}
			if stream {
				_ = rc.Flush()
			}
		}
		if err != nil {
			break
		}
	}
	// Trailers are known only once the body is read (gRPC never announces
	// them), so they go out with TrailerPrefix.
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
}

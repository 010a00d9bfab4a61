package http1

import (
	"bufio"
	"bytes"
	"io"
)

// Body reads one message body from a bufio.Reader according to its framing:
// a content length, the chunked coding (trailers go to the message's
// Trailer), or until EOF. Its zero value is an empty body. A Body is not
// safe for concurrent use.
type Body struct {
	br       *bufio.Reader
	remain   int64 // bytes left: in the body, or in the current chunk
	chunked  bool
	eofEnds  bool // until close
	inChunk  bool // chunked: inside chunk data
	needCRLF bool // chunked: the CRLF after chunk data is still unread
	done     bool
	trailer  *Header
	maxTrail int
	scratch  []byte
}

// Reset prepares b to read a body framed by length (>= 0), chunked, or,
// when length < 0 and not chunked, until EOF. Trailers of a chunked body
// are appended to trailer when it is not nil.
func (b *Body) Reset(br *bufio.Reader, length int64, chunked bool, trailer *Header) {
	*b = Body{br: br, remain: length, chunked: chunked, trailer: trailer, scratch: b.scratch[:0]}
	b.eofEnds = !chunked && length < 0
	b.done = !chunked && length == 0
}

// ResetRequest prepares b to read the body of req.
func (b *Body) ResetRequest(br *bufio.Reader, req *Request) {
	b.Reset(br, req.ContentLength, req.Chunked, &req.Trailer)
}

// ResetResponse prepares b to read the body of resp.
func (b *Body) ResetResponse(br *bufio.Reader, resp *Response) {
	switch {
	case resp.NoBody:
		b.Reset(br, 0, false, nil)
	case resp.UntilClose:
		b.Reset(br, -1, false, nil)
	default:
		b.Reset(br, resp.ContentLength, resp.Chunked, &resp.Trailer)
	}
}

// Read implements io.Reader over the decoded body.
func (b *Body) Read(p []byte) (int, error) {
	chunk, err := b.next()
	if len(chunk) == 0 {
		return 0, err
	}
	n := copy(p, chunk)
	return n, b.consumed(n)
}

// Done reports whether the whole body, trailers included, has been read.
func (b *Body) Done() bool { return b.done }

// next returns the next decoded bytes buffered in br without consuming
// them, reading from the connection only when nothing is buffered. It
// returns io.EOF at the end of the body.
func (b *Body) next() ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	if b.chunked && !b.inChunk {
		if b.needCRLF {
			if err := b.chunkEnd(); err != nil {
				return nil, err
			}
			b.needCRLF = false
		}
		if err := b.chunkHeader(); err != nil {
			return nil, err
		}
		if b.done {
			return nil, io.EOF
		}
	}
	n := b.br.Buffered()
	if n == 0 {
		if _, err := b.br.Peek(1); err != nil {
			if b.eofEnds && err == io.EOF {
				b.done = true
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		n = b.br.Buffered()
	}
	if !b.eofEnds && int64(n) > b.remain {
		n = int(b.remain)
	}
	p, _ := b.br.Peek(n)
	return p, nil
}

// consumed records that n bytes returned by next were used.
func (b *Body) consumed(n int) error {
	if _, err := b.br.Discard(n); err != nil {
		return err
	}
	if b.eofEnds {
		return nil
	}
	b.remain -= int64(n)
	if b.remain > 0 {
		return nil
	}
	if !b.chunked {
		b.done = true
		return nil
	}
	b.inChunk, b.needCRLF = false, true
	return nil
}

// wouldBlock reports whether next may have to wait for the connection:
// nothing is buffered, or a chunked body lacks a complete framing line.
func (b *Body) wouldBlock() bool {
	n := b.br.Buffered()
	if n == 0 || !b.chunked || b.inChunk {
		return n == 0
	}
	p, _ := b.br.Peek(n)
	lines := 1
	if b.needCRLF {
		lines = 2
	}
	return bytes.Count(p, []byte{'\n'}) < lines
}

// chunkEnd consumes the CRLF after chunk data.
func (b *Body) chunkEnd() error {
	c, err := b.br.ReadByte()
	if err == nil && c == '\r' {
		c, err = b.br.ReadByte()
	}
	if err != nil {
		return unexpected(err)
	}
	if c != '\n' {
		return malformed("missing CRLF after chunk data")
	}
	return nil
}

// unexpected turns io.EOF inside a body into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// chunkHeader reads a chunk-size line, and the trailers after the last one.
func (b *Body) chunkHeader() error {
	line, err := b.readLine(maxChunkLine)
	if err != nil {
		return err
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return err
	}
	if size > 0 {
		b.remain, b.inChunk = size, true
		return nil
	}
	return b.readTrailers()
}

// readTrailers reads trailer fields up to the empty line.
func (b *Body) readTrailers() error {
	total := 0
	for {
		line, err := b.readLine(maxChunkLine)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			b.done = true
			return nil
		}
		total += len(line)
		if total > DefaultMaxHeaderBytes {
			return ErrHeaderTooLarge
		}
		if b.trailer == nil {
			continue
		}
		if err := parseFields(string(line)+"\n", b.trailer); err != nil {
			return err
		}
	}
}

// readLine reads one line, without its CRLF, into b.scratch.
func (b *Body) readLine(limit int) ([]byte, error) {
	s := b.scratch[:0]
	for {
		part, err := b.br.ReadSlice('\n')
		if len(s)+len(part) > limit {
			return nil, malformed("chunk line too long")
		}
		s = append(s, part...)
		if err == bufio.ErrBufferFull {
			continue
		}
		b.scratch = s
		if err != nil {
			return nil, unexpected(err)
		}
		s = s[:len(s)-1]
		if n := len(s); n > 0 && s[n-1] == '\r' {
			s = s[:n-1]
		}
		return s, nil
	}
}

// parseChunkSize parses the hexadecimal size before any chunk extension.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if i >= 15 {
			return 0, malformed("chunk size too large")
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 {
		return 0, malformed("invalid chunk size line %q", line)
	}
	for ; i < len(line); i++ { // only whitespace and extensions may follow
		if c := line[i]; c == ';' {
			break
		} else if c != ' ' && c != '\t' {
			return 0, malformed("invalid chunk size line %q", line)
		}
	}
	return n, nil
}

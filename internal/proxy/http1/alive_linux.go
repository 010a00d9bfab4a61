package http1

import (
	"errors"
	"net"
	"syscall"
)

// probe checks whether an idle connection is still open with a
// non-blocking MSG_PEEK: EOF, an error or unexpected bytes mean it is not.
// Its state is set up once per connection so a check does not allocate.
type probe struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	ok  bool
	buf [1]byte
}

// init prepares the probe for c.
func (p *probe) init(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	p.rc = rc
	p.fn = p.peek
}

// peek runs inside RawConn.Read; returning true never waits.
func (p *probe) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.ok = errors.Is(err, syscall.EAGAIN)
	return true
}

// alive reports whether the connection looks open and idle.
func (p *probe) alive() bool {
	if p.rc == nil {
		return true
	}
	p.ok = false
	err := p.rc.Read(p.fn)
	return err == nil && p.ok
}

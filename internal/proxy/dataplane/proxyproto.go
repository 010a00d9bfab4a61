package dataplane

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// proxySignature starts every PROXY protocol v2 header.
var proxySignature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// writeProxyHeader writes a PROXY v2 header for a TCP connection src → dst.
func writeProxyHeader(w io.Writer, src, dst netip.AddrPort) error {
	var b bytes.Buffer
	b.Write(proxySignature)
	b.WriteByte(0x21) // version 2, PROXY
	if src.Addr().Is4() && dst.Addr().Is4() {
		b.WriteByte(0x11) // TCP over IPv4
		binary.Write(&b, binary.BigEndian, uint16(12))
		s, d := src.Addr().As4(), dst.Addr().As4()
		b.Write(s[:])
		b.Write(d[:])
	} else {
		b.WriteByte(0x21) // TCP over IPv6
		binary.Write(&b, binary.BigEndian, uint16(36))
		s, d := src.Addr().As16(), dst.Addr().As16()
		b.Write(s[:])
		b.Write(d[:])
	}
	binary.Write(&b, binary.BigEndian, src.Port())
	binary.Write(&b, binary.BigEndian, dst.Port())
	_, err := w.Write(b.Bytes())
	return err
}

// errNoProxyHeader means the connection did not start with a PROXY v2 header.
var errNoProxyHeader = errors.New("no PROXY protocol v2 header")

// readProxyHeader reads a PROXY v2 header and returns the original source and destination.
func readProxyHeader(br *bufio.Reader) (src, dst netip.AddrPort, err error) {
	head, err := br.Peek(16)
	if err != nil {
		return src, dst, fmt.Errorf("reading PROXY header: %w", err)
	}
	if !bytes.Equal(head[:12], proxySignature) {
		return src, dst, errNoProxyHeader
	}
	if head[12]>>4 != 2 {
		return src, dst, fmt.Errorf("PROXY header version %d, want 2", head[12]>>4)
	}
	n := int(binary.BigEndian.Uint16(head[14:16]))
	if n > 512 {
		return src, dst, fmt.Errorf("PROXY header of %d bytes is too long", n)
	}
	buf := make([]byte, 16+n)
	if _, err := io.ReadFull(br, buf); err != nil {
		return src, dst, fmt.Errorf("reading PROXY header: %w", err)
	}
	body := buf[16:]
	switch head[13] {
	case 0x11:
		if len(body) < 12 {
			return src, dst, errors.New("short PROXY IPv4 address block")
		}
		s, d := netip.AddrFrom4([4]byte(body[0:4])), netip.AddrFrom4([4]byte(body[4:8]))
		return netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[8:10])), netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[10:12])), nil
	case 0x21:
		if len(body) < 36 {
			return src, dst, errors.New("short PROXY IPv6 address block")
		}
		s, d := netip.AddrFrom16([16]byte(body[0:16])), netip.AddrFrom16([16]byte(body[16:32]))
		return netip.AddrPortFrom(s, binary.BigEndian.Uint16(body[32:34])), netip.AddrPortFrom(d, binary.BigEndian.Uint16(body[34:36])), nil
	}
	return src, dst, fmt.Errorf("PROXY header family 0x%x not supported", head[13])
}

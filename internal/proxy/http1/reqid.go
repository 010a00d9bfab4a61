package http1

import "math/rand/v2"

// NewRequestID returns a random UUIDv4 for x-request-id. It uses the
// runtime's per-thread ChaCha8 generator: unique enough for tracing, and
// far cheaper than crypto/rand per request; the string is interned like
// message heads, so it costs no allocation of its own.
func NewRequestID() string {
	const hex = "0123456789abcdef"
	var b [36]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	hi = hi&^(0xf<<12) | 4<<12   // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // variant 10
	pos := 0
	for i := 0; i < 32; i++ {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b[pos] = '-'
			pos++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		b[pos] = hex[nib]
		pos++
	}
	return intern(b[:])
}

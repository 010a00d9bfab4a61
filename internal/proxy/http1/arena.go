package http1

import (
	"sync"
	"unsafe"
)

// arenaChunk is the size of the chunks heads are copied into.
const arenaChunk = 16 << 10

// arena is the unused tail of a chunk.
type arena struct{ free []byte }

// arenas hold partly used chunks, in practice one per P, so interning
// takes no lock.
var arenas = sync.Pool{New: func() any { return new(arena) }}

// intern returns b as a string carved from a shared chunk, so that reading
// a message head costs no allocation of its own: one chunk is allocated per
// arenaChunk bytes of heads. The bytes are never written again, so the
// string is as immutable and as long-lived as one from string(b); holding
// it keeps its whole chunk alive, which is why large heads get their own
// allocation.
func intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > arenaChunk/8 {
		return string(b)
	}
	a := arenas.Get().(*arena)
	if len(a.free) < len(b) {
		a.free = make([]byte, arenaChunk)
	}
	n := copy(a.free, b)
	s := unsafe.String(&a.free[0], n)
	a.free = a.free[n:]
	arenas.Put(a)
	return s
}

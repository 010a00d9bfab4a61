//go:build !linux

package memtrim

// Binary does nothing here: only Linux says which pages are the binary's.
func Binary() (Stats, error) { return Stats{}, nil }

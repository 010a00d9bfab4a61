//go:build race

package http1

// raceEnabled: the race detector allocates and sync.Pool drops items on purpose.
const raceEnabled = true

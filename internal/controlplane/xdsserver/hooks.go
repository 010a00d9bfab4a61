package xdsserver

import "time"

// Hooks are callbacks through which the server reports what it does, for
// the control plane's metrics: a struct of functions, as go-control-plane's
// callbacks. Every field may be nil. They are called synchronously from
// the server's goroutines, possibly concurrently, and must not block.
type Hooks struct {
	// Pushed is called for each xDS response sent to a proxy.
	Pushed func(typeURL string)
	// Rejected is called for each NACK a proxy sends.
	Rejected func(typeURL string)
	// SnapshotSet is called when a proxy gets a new snapshot: took is the
	// time spent translating and setting it, sinceChange the time since
	// the config change that caused it (0 for the first snapshot of a newly
	// connected proxy).
	SnapshotSet func(took, sinceChange time.Duration)
}

// Package store holds the control plane's Istio config: a versioned
// in-memory store, persisted under --data-dir and fed from --config-dir.
package store

import "github.com/weft-mesh/weft/internal/config"

// Store is the control plane's config store. Implementations are safe for
// concurrent use; listeners are called one at a time, never while a lock is held.
//
// The contract (owned by the store package; implementation to come):
//
//	Apply(objs []*config.Object) ([]*config.Object, error) // validates all first; all or nothing; returns stored objects
//	Delete(keys []config.Key) ([]config.Key, error)         // error names any key not found
//	Get(key config.Key) (*config.Object, bool)
//	List(kind, namespace string) []*config.Object           // "" = all; sorted by kind, namespace, name
//	Snapshot() (version int64, objs []*config.Object)       // a consistent view
//	Subscribe(func(version int64))                          // called after every change
type Store interface {
	Apply(objs []*config.Object) ([]*config.Object, error)
	Delete(keys []config.Key) ([]config.Key, error)
	Get(key config.Key) (*config.Object, bool)
	List(kind, namespace string) []*config.Object
	Snapshot() (version int64, objs []*config.Object)
	Subscribe(fn func(version int64))
}

// Package store holds the control plane's Istio config: a versioned
// in-memory store, persisted under --data-dir and fed from --config-dir.
package store

import (
	"errors"

	"github.com/weft-mesh/weft/internal/config"
)

// Store is the control plane's config store. Implementations are safe for
// concurrent use; listeners are called one at a time, never while a lock is held.
//
//	Apply(objs []*config.Object) ([]*config.Object, error) // validates all first; all or nothing; returns stored objects
//	Delete(keys []config.Key) ([]config.Key, error)         // deletes the keys found; error (ErrNotFound) names any key not found
//	Get(key config.Key) (*config.Object, bool)
//	List(kind, namespace string) []*config.Object           // "" = all; sorted by kind, namespace, name
//	Snapshot() (version int64, objs []*config.Object)       // a consistent view
//	Subscribe(func(version int64))                          // called after every change
//
// Objects returned are shared and must not be modified.
type Store interface {
	Apply(objs []*config.Object) ([]*config.Object, error)
	Delete(keys []config.Key) ([]config.Key, error)
	Get(key config.Key) (*config.Object, bool)
	List(kind, namespace string) []*config.Object
	Snapshot() (version int64, objs []*config.Object)
	Subscribe(fn func(version int64))
}

// ErrNotFound is wrapped by Delete's error for keys that are not stored.
var ErrNotFound = errors.New("not found")

// Sources the control plane stamps on objects it did not read from a file.
const (
	SourceAPI              = "api"
	SourceAutoRegistration = "auto-registration"
	// SourceKubernetes marks objects read from the Kubernetes API server;
	// the cluster is their truth, so they are not persisted.
	SourceKubernetes = "kubernetes"
)

//go:build !linux

package podnet

import (
	"errors"
	"fmt"
)

// Netns would be a network namespace of the app's; only Linux has them.
type Netns struct{}

// New fails: only Linux has network namespaces.
func New() (*Netns, error) {
	return nil, fmt.Errorf("a network namespace for the app: %w", errors.ErrUnsupported)
}

// Do would run fn in the namespace.
func (n *Netns) Do(fn func() error) error { return errors.ErrUnsupported }

// Close does nothing.
func (n *Netns) Close() error { return nil }

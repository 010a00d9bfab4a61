package cli

import (
	"context"
	"errors"
)

// runGet is being built; its owner replaces this file.
func runGet(_ context.Context, _ *Env) error { return errors.New("not built yet") }

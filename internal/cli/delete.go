package cli

import (
	"context"
	"errors"
)

// runDelete is being built; its owner replaces this file.
func runDelete(_ context.Context, _ *Env) error { return errors.New("not built yet") }

package cli

import (
	"context"
	"errors"
)

// runDemo is being built; its owner replaces this file.
func runDemo(_ context.Context, _ *Env) error { return errors.New("not built yet") }

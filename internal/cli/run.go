package cli

import (
	"context"
	"errors"
)

// runRun is being built; its owner replaces this file.
func runRun(_ context.Context, _ *Env) error { return errors.New("not built yet") }

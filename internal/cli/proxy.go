package cli

import (
	"context"
	"errors"
)

// runProxy is being built; its owner replaces this file.
func runProxy(_ context.Context, _ *Env) error { return errors.New("not built yet") }

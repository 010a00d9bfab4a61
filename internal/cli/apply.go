package cli

import (
	"context"
	"errors"
)

// runApply is being built; its owner replaces this file.
func runApply(_ context.Context, _ *Env) error { return errors.New("not built yet") }

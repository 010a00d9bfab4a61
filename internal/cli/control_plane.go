package cli

import (
	"context"
	"errors"
)

// runControlPlane is being built; its owner replaces this file.
func runControlPlane(_ context.Context, _ *Env) error { return errors.New("not built yet") }

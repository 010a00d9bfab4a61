package cli

import (
	"context"
	"errors"
)

// runGateway is being built; its owner replaces this file.
func runGateway(_ context.Context, _ *Env) error { return errors.New("not built yet") }

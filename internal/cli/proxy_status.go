package cli

import (
	"context"
	"errors"
)

// runProxyStatus is being built; its owner replaces this file.
func runProxyStatus(_ context.Context, _ *Env) error { return errors.New("not built yet") }

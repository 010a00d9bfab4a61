package cli

import (
	"context"

	"github.com/weft-mesh/weft/internal/controlplane/api"
)

func runDelete(ctx context.Context, env *Env) error {
	return runChange(ctx, env, "delete", func(c *api.Client, ctx context.Context, source string, data []byte) ([]api.Result, error) {
		return c.Delete(ctx, source, data)
	})
}

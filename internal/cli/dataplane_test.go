package cli

import (
	"strings"
	"testing"
)

// TestDataPlaneCommands checks weft still offers weft-proxy's commands (it
// execs weft-proxy for them, so they cannot run inside a test) and lists
// them in its usage.
func TestDataPlaneCommands(t *testing.T) {
	t.Parallel()
	cmds := commands()
	for _, name := range []string{"proxy", "gateway", "run", "iptables", "proxy-ready"} {
		c, ok := cmds[name]
		if !ok || c.Run == nil || c.Summary == "" {
			t.Errorf("weft %s: missing (%v) or without a summary", name, ok)
		}
	}
	_, errs, code := runCLI(t, "", "", "help")
	if code != 0 || !strings.Contains(errs, "  proxy ") || !strings.Contains(errs, "  gateway ") || !strings.Contains(errs, "  version ") {
		t.Errorf("weft help: exit %d, usage %q; want proxy, gateway and version listed", code, errs)
	}
}

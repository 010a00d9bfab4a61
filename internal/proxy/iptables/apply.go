package iptables

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
)

// Runner applies rules with iptables-save/iptables-restore (or their ip6
// variants) in the current network namespace.
type Runner struct {
	// Families to apply; default IPv4, plus IPv6 when the pod has a
	// global IPv6 address (as Istio, a pod without one needs no ip6tables,
	// whose nat table a node may lack).
	Families []Family
	// Wrap prefixes every command (e.g. ip netns exec NAME); empty: none.
	Wrap   []string
	Logger *slog.Logger
}

func (r Runner) families() []Family {
	if len(r.Families) > 0 {
		return r.Families
	}
	fs := []Family{IPv4}
	if hasGlobalIPv6() {
		fs = append(fs, IPv6)
	}
	return fs
}

// hasGlobalIPv6 reports whether an interface of this network namespace
// has an IPv6 address other than loopback and link-local.
func hasGlobalIPv6() bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() == nil && ipn.IP.IsGlobalUnicast() {
			return true
		}
	}
	return false
}

func (r Runner) log() *slog.Logger {
	if r.Logger == nil {
		return slog.Default()
	}
	return r.Logger
}

func tool(f Family, name string) string {
	if f == IPv6 {
		return "ip6tables-" + name
	}
	return "iptables-" + name
}

// Apply installs the capture for every family, replacing weft's chains if
// they are there already. Each family's table changes atomically.
func (r Runner) Apply(ctx context.Context, c Config) error {
	for _, f := range r.families() {
		existing, err := r.save(ctx, f)
		if err != nil {
			return err
		}
		input, err := Rules(c, f, existing)
		if err != nil {
			return err
		}
		if err := r.restore(ctx, f, input); err != nil {
			return err
		}
		r.log().Info("capture rules applied", "family", f.String())
	}
	return nil
}

// Cleanup removes weft's chains and the jumps to them for every family.
func (r Runner) Cleanup(ctx context.Context) error {
	for _, f := range r.families() {
		existing, err := r.save(ctx, f)
		if err != nil {
			return err
		}
		input := Cleanup(existing)
		if input == "" {
			continue
		}
		if err := r.restore(ctx, f, input); err != nil {
			return err
		}
		r.log().Info("capture rules removed", "family", f.String())
	}
	return nil
}

// Save returns the current nat table of a family as iptables-save prints it.
func (r Runner) Save(ctx context.Context, f Family) (string, error) { return r.save(ctx, f) }

func (r Runner) command(ctx context.Context, args ...string) *exec.Cmd {
	args = append(slices.Clone(r.Wrap), args...)
	return exec.CommandContext(ctx, args[0], args[1:]...)
}

func (r Runner) save(ctx context.Context, f Family) (string, error) {
	var out, errb bytes.Buffer
	cmd := r.command(ctx, tool(f, "save"), "-t", "nat")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s -t nat: %w: %s", tool(f, "save"), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (r Runner) restore(ctx context.Context, f Family, input string) error {
	var errb bytes.Buffer
	cmd := r.command(ctx, tool(f, "restore"), "--noflush")
	cmd.Stdin, cmd.Stderr = strings.NewReader(input), &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s --noflush: %w: %s\ninput:\n%s", tool(f, "restore"), err, strings.TrimSpace(errb.String()), input)
	}
	return nil
}

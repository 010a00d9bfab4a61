// Package cmdline holds what weft's two binaries (weft, the CLI and control
// plane, and weft-proxy, the data plane) share in running a subcommand: its
// environment, the subcommand table, flag parsing, logging and exit codes.
// It imports nothing of the mesh, so weft-proxy stays small.
package cmdline

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
)

// Version is weft's release version (both binaries').
const Version = "0.1.0"

// Env is what a subcommand gets: its arguments, output streams and the
// process environment lookup (injected so tests need not touch os.Environ).
type Env struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Command is one subcommand.
type Command struct {
	Summary string
	Run     func(ctx context.Context, env *Env) error
	Hidden  bool // left out of the usage message
}

// ErrUsage marks an error already explained by a usage message.
var ErrUsage = errors.New("usage")

// ExitCodeError makes the binary exit with Code without printing anything:
// a child process already said what went wrong.
type ExitCodeError struct{ Code int }

func (e *ExitCodeError) Error() string { return "exit status " + strconv.Itoa(e.Code) }

// Getenv is os.Getenv, for an Env of the real process.
func Getenv(k string) string { return os.Getenv(k) }

// Main runs the subcommand of program prog named by env.Args[0] and returns
// the process exit code.
func Main(ctx context.Context, prog string, cmds map[string]Command, env *Env) int {
	if len(env.Args) == 0 || env.Args[0] == "help" || env.Args[0] == "-h" || env.Args[0] == "--help" {
		usage(env.Stderr, prog, cmds)
		if len(env.Args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := cmds[env.Args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "%s: unknown command %q\n", prog, env.Args[0])
		usage(env.Stderr, prog, cmds)
		return 2
	}
	sub := *env
	sub.Args = env.Args[1:]
	if err := cmd.Run(ctx, &sub); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var exit *ExitCodeError
		if errors.As(err, &exit) {
			return exit.Code
		}
		if !errors.Is(err, ErrUsage) {
			fmt.Fprintf(env.Stderr, "%s %s: %v\n", prog, env.Args[0], err)
		}
		return 1
	}
	return 0
}

func usage(w io.Writer, prog string, cmds map[string]Command) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]\n\ncommands:\n", prog)
	names := make([]string, 0, len(cmds))
	for n, c := range cmds {
		if !c.Hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].Summary)
	}
}

// NewFlags returns a FlagSet named name (such as "weft proxy") that reports
// errors to env.Stderr instead of exiting.
func NewFlags(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// ParseFlags parses flags; the flag set has already explained a bad flag.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage
	}
	return nil
}

// ParseFlagsNoArgs parses flags and refuses positional arguments.
func ParseFlagsNoArgs(fs *flag.FlagSet, args []string) error {
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// NewLogger returns a slog logger writing to w at level (debug, info, warn,
// error) in format (text or json).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// VersionCommand is `PROG version`.
func VersionCommand(prog string) Command {
	return Command{Summary: "print " + prog + "'s version", Run: func(_ context.Context, env *Env) error {
		fs := NewFlags(env, prog+" version")
		if err := ParseFlagsNoArgs(fs, env.Args); err != nil {
			return err
		}
		rev := "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					rev = s.Value
				}
			}
		}
		fmt.Fprintf(env.Stdout, "%s %s (revision %s)\n", prog, Version, rev)
		return nil
	}}
}

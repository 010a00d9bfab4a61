package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// weftCommand finds the `go run ./cmd/weft …` commands of a text: indented
// command lines and inline `code`.
var weftCommand = regexp.MustCompile("(?m)(?:^[ \\t]+|`)go run \\./cmd/weft ([^`\\n]+)")

// tourCommands returns the weft commands a text tells the user to run, in order.
func tourCommands(text string) [][]string {
	var cmds [][]string
	for _, m := range weftCommand.FindAllStringSubmatch(text, -1) {
		cmds = append(cmds, strings.Fields(strings.TrimSpace(m[1])))
	}
	return cmds
}

// readmeTour returns the README's "A short tour" section.
func readmeTour(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "## A short tour")
	if i < 0 {
		t.Fatal(`README.md has no "## A short tour" section`)
	}
	s = s[i+len("## A short tour"):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// TestReadmeTour runs the README tour's commands, as written, and then the
// hints `weft demo` prints, against a running demo: a README or a hint that
// drifts from the CLI (a renamed proxy, a sample that moved, a flag that
// changed) fails here.
func TestReadmeTour(t *testing.T) {
	tour := tourCommands(readmeTour(t))
	if len(tour) < 8 {
		t.Fatalf("the README tour names only %d weft commands: %v", len(tour), tour)
	}
	m := startDemo(t)
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	run := func(where string, args []string) {
		t.Helper()
		for _, a := range args {
			if strings.ContainsAny(a, `'"$|<>;&`) {
				t.Fatalf("%s: %q needs a shell; keep tour commands plain", where, strings.Join(args, " "))
			}
		}
		switch args[0] {
		case "demo", "dashboard", "run":
			return // the demo is running; dashboard opens a browser; run needs an app (their own tests)
		}
		follow := args[len(args)-1] == "-f"
		bound := 30 * time.Second
		if follow {
			bound = 4 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		cmd := exec.CommandContext(ctx, weftBin, args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "WEFT_CONTROL_PLANE="+m.b.api())
		out, err := cmd.CombinedOutput()
		line := fmt.Sprintf("%s: weft %s", where, strings.Join(args, " "))
		switch {
		case follow && ctx.Err() != nil:
			if len(strings.TrimSpace(string(out))) == 0 {
				t.Errorf("%s printed nothing in %s", line, bound)
			}
		case err != nil && args[0] == "analyze" && strings.Contains(string(out), "[IST"):
			// As istioctl analyze: findings exit non-zero (the demo runs no
			// details v2 or ratings v2, which destination-rule-all.yaml names).
		case err != nil:
			t.Errorf("%s: %v\n%s", line, err, tail(string(out), 2000))
		case len(strings.TrimSpace(string(out))) == 0:
			t.Errorf("%s printed nothing", line)
		}
		ran++
	}
	for _, args := range tour {
		run("README", args)
	}
	// The tour routes everyone to v1: the page says so.
	eventually(t, 20*time.Second, func() error {
		counts := m.count(m.client, 6)
		if counts["v1"] != 6 {
			return fmt.Errorf("after the README tour reviews came from %v, want only v1", counts)
		}
		return nil
	})
	hints := tourCommands(m.demo.out.String())
	if len(hints) < 3 {
		t.Fatalf("weft demo printed only %d weft commands:\n%s", len(hints), tail(m.demo.out.String(), 3000))
	}
	for _, args := range hints {
		run("weft demo's hint", args)
	}
	if ran < 10 {
		t.Fatalf("ran only %d commands of the README and the demo's hints", ran)
	}
}

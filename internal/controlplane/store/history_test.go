package store

import (
	"errors"
	"strings"
	"testing"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/weft-mesh/weft/internal/config"
)

// TestHistoryDiffRollback: every change is a revision with its actor and
// objects; a diff shows what a revision changed; rolling back restores the
// exact objects as a new revision, which can itself be rolled back; the
// history survives a restart.
func TestHistoryDiffRollback(t *testing.T) {
	dir := t.TempDir()
	m := newStore(t, dir)
	if _, err := m.ApplyBy("admin", parse(t, drYAML("reviews", "reviews", "v1", "v2"))); err != nil { // 1
		t.Fatal(err)
	}
	if _, err := m.ApplyBy("jane", parse(t, drYAML("reviews", "reviews", "v1", "v2", "v3")+"---\n"+drYAML("ratings", "ratings", "v1"))); err != nil { // 2
		t.Fatal(err)
	}
	if _, err := m.DeleteBy("admin", []config.Key{key("DestinationRule", "ratings")}); err != nil { // 3
		t.Fatal(err)
	}
	// A change only the control plane makes (auto-registration) is not config history.
	we := parse(t, "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: w}\nspec: {address: 127.0.0.9}\n")
	we[0].Source = SourceAutoRegistration
	if _, err := m.Apply(we); err != nil { // 4
		t.Fatal(err)
	}

	hist := m.History("", "", "")
	var got []string
	for _, r := range hist {
		var cs []string
		for _, c := range r.Changes {
			cs = append(cs, c.Action+" "+c.Name)
		}
		got = append(got, r.Actor+": "+strings.Join(cs, ", "))
	}
	want := []string{"admin: deleted ratings", "jane: configured reviews, created ratings", "admin: created reviews"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("history = %q, want %q", got, want)
	}
	if n := len(m.History("DestinationRule", "default", "ratings")); n != 2 {
		t.Errorf("history of ratings: %d revisions, want 2", n)
	}

	d, err := m.Diff(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"--- DestinationRule/default/reviews (revision 1)", "+++ DestinationRule/default/reviews (revision 2)", "+  - labels:\n+      version: v3", "+++ DestinationRule/default/ratings (revision 2)"} {
		if !strings.Contains(d, w) {
			t.Errorf("diff 1 2 lacks %q:\n%s", w, d)
		}
	}

	// Back to revision 1: reviews loses v3; ratings stays absent.
	plan, err := m.PlanRollback(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Puts) != 1 || plan.Puts[0].Name != "reviews" || len(plan.Deletes) != 0 {
		t.Fatalf("plan to revision 1: %d puts, deletes %v", len(plan.Puts), plan.Deletes)
	}
	rev, err := m.Rollback(plan, "rollback to 1 by admin")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := m.Diff(1, rev); err != nil || d != "" {
		t.Errorf("after the rollback the config differs from revision 1: %v\n%s", err, d)
	}
	// The rollback is a revision: rolling back to 3 restores v3.
	plan, err = m.PlanRollback(3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rollback(plan, "admin"); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get(key("DestinationRule", "reviews"))
	if n := len(r.Spec.(*networking.DestinationRule).GetSubsets()); n != 3 {
		t.Errorf("subsets after undoing the rollback: %d, want 3", n)
	}
	if d, _ := m.Diff(3, 0); d != "" {
		t.Errorf("after undoing the rollback the config differs from revision 3:\n%s", d)
	}

	// Across a restart: the same history, numbers go on.
	m.Close()
	m2 := newStore(t, dir)
	if h := m2.History("", "", ""); len(h) != len(m.History("", "", "")) || h[0].Number != m.History("", "", "")[0].Number {
		t.Fatalf("history after restart: %d revisions, want %d", len(h), len(m.History("", "", "")))
	}
	if d, err := m2.Diff(1, 2); err != nil || !strings.Contains(d, "version: v3") {
		t.Errorf("diff after restart: %v\n%s", err, d)
	}
	if _, err := m2.PlanRollback(m2.Version() + 5); err == nil {
		t.Error("a rollback to a future revision was planned")
	}
	if _, err := m2.Diff(0, m2.Version()+1); !errors.Is(err, ErrRevision) {
		t.Errorf("diff to a revision not made yet: %v, want ErrRevision", err)
	}
}

// TestHistoryBounded: the history keeps MaxRevisions; older revisions can
// no longer be diffed or rolled back to.
func TestHistoryBounded(t *testing.T) {
	m := newStore(t, t.TempDir())
	for i := range MaxRevisions + 10 {
		v := "v" + strings.Repeat("x", i%7+1)
		if _, err := m.ApplyBy("admin", parse(t, drYAML("reviews", "reviews", v))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(m.History("", "", "")); n != MaxRevisions {
		t.Fatalf("%d revisions kept, want %d", n, MaxRevisions)
	}
	if _, err := m.PlanRollback(2); !errors.Is(err, ErrRevision) {
		t.Errorf("rollback to a dropped revision: %v, want ErrRevision", err)
	}
	if _, err := m.PlanRollback(m.Version() - 3); err != nil {
		t.Errorf("rollback to a kept revision: %v", err)
	}
}

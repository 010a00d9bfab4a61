package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestHistoryRollback: on the Bookinfo demo, every change is a revision
// with who made it; `weft diff` shows what a revision changed; `weft
// rollback` restores the exact objects of an earlier revision and its
// routing, and is itself undone by another rollback.
func TestHistoryRollback(t *testing.T) {
	m := startDemo(t)
	m.apply(sample(t, "destination-rule-all.yaml"))
	m.apply(sample(t, "virtual-service-all-v1.yaml"))
	waitOnly(t, m, "v1")
	revs := history(t, m)
	allV1 := revs[0].Revision
	yamlAtV1, err := m.weft("get", "virtualservices", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}

	m.apply(sample(t, "virtual-service-reviews-v3.yaml"))
	eventually(t, 10*time.Second, func() error {
		if v, err := m.reviewsVersion(m.client); err != nil || v != "v3" {
			return fmt.Errorf("after reviews-v3: served by %s, %v", v, err)
		}
		return nil
	})
	waitOnly(t, m, "v3")

	revs = history(t, m)
	toV3 := revs[0]
	if toV3.Revision <= allV1 || len(toV3.Changes) != 1 || toV3.Changes[0].Name != "reviews" || toV3.Changes[0].Action != "configured" ||
		toV3.Actor == "" {
		t.Fatalf("the newest revision %+v, want reviews configured after revision %d", toV3, allV1)
	}
	out, err := m.weft("history", "virtualservice/reviews")
	if err != nil || !strings.Contains(out, fmt.Sprint(toV3.Revision)) || !strings.Contains(out, "configured virtualservice default/reviews") {
		t.Errorf("weft history virtualservice/reviews: %v\n%s", err, out)
	}
	diff, err := m.weft("diff", fmt.Sprint(toV3.Revision))
	if err != nil || !strings.Contains(diff, "--- VirtualService/default/reviews") || !strings.Contains(diff, "-        subset: v1") ||
		!strings.Contains(diff, "+        subset: v3") {
		t.Errorf("weft diff %d: %v\n%s", toV3.Revision, err, diff)
	}

	// Back to all-v1: the exact objects, and the routing.
	out, err = m.weft("rollback", fmt.Sprint(allV1))
	if err != nil || !strings.Contains(out, "virtualservice.networking.istio.io/reviews configured") {
		t.Fatalf("weft rollback %d: %v\n%s", allV1, err, out)
	}
	waitOnly(t, m, "v1")
	if got, err := m.weft("get", "virtualservices", "-o", "yaml"); err != nil || stripVersions(got) != stripVersions(yamlAtV1) {
		t.Errorf("after the rollback the VirtualServices are\n%s\nwant as at revision %d\n%s", got, allV1, yamlAtV1)
	}
	if d, err := m.weft("diff", fmt.Sprint(allV1), "now"); err != nil || strings.TrimSpace(d) != "No differences." {
		t.Errorf("weft diff %d now after the rollback: %v\n%s", allV1, err, d)
	}
	rollback := history(t, m)[0]
	if !strings.Contains(rollback.Actor, fmt.Sprintf("rollback to %d", allV1)) {
		t.Errorf("the rollback's revision is by %q, want it to say what it rolled back to", rollback.Actor)
	}

	// The rollback is undone like any change.
	if out, err := m.weft("rollback", fmt.Sprint(rollback.Revision-1)); err != nil {
		t.Fatalf("undoing the rollback: %v\n%s", err, out)
	}
	eventually(t, 10*time.Second, func() error {
		if v, err := m.reviewsVersion(m.client); err != nil || v != "v3" {
			return fmt.Errorf("after undoing the rollback: served by %s, %v", v, err)
		}
		return nil
	})

	// Another user on the host may read the history but not roll back.
	if out, err := runWeftAs(t.TempDir(), m.b.api(), "rollback", fmt.Sprint(allV1)); err == nil || !strings.Contains(out, "needs a credential") {
		t.Errorf("another user's weft rollback: %v\n%s", err, out)
	}
	if out, err := m.weft("rollback", "999999"); err == nil || !strings.Contains(out, "no such revision") {
		t.Errorf("weft rollback to a revision not made: %v\n%s", err, out)
	}
}

// revision is a row of `weft history -o json`.
type revision struct {
	Revision int64
	Actor    string
	Changes  []struct{ Kind, Namespace, Name, Action string }
}

func history(t *testing.T, m *mesh) []revision {
	t.Helper()
	out, err := m.weft("history", "-o", "json")
	if err != nil {
		t.Fatalf("weft history: %v\n%s", err, out)
	}
	var revs []revision
	if err := json.Unmarshal([]byte(out), &revs); err != nil || len(revs) == 0 {
		t.Fatalf("weft history -o json: %v\n%s", err, out)
	}
	return revs
}

// stripVersions drops the resourceVersion lines, which a rollback renews.
func stripVersions(yaml string) string {
	var keep []string
	for _, l := range strings.Split(yaml, "\n") {
		if !strings.Contains(l, "resourceVersion:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

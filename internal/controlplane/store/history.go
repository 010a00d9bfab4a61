package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/weft-mesh/weft/internal/config"
)

// MaxRevisions is how many revisions the history keeps; older ones are
// dropped (and can no longer be diffed or rolled back to).
const MaxRevisions = 500

// historyFile holds the history under the data dir, a revision per line.
const historyFile = "history.jsonl"

// Actions of a change in a revision.
const (
	ActionCreated    = "created"
	ActionConfigured = "configured"
	ActionDeleted    = "deleted"
)

// Revision is one change of the store's config: what it changed, when and
// by whom. Its number is the store version it made.
type Revision struct {
	Number  int64     `json:"revision"`
	Time    time.Time `json:"time"`
	Actor   string    `json:"actor"`
	Changes []Change  `json:"changes"`
}

// Change is one object of a revision, as it was before (Old, nil when
// created) and after (New, nil when deleted).
type Change struct {
	Kind      string         `json:"kind"`
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
	Action    string         `json:"action"`
	Old       *config.Object `json:"old,omitempty"`
	New       *config.Object `json:"new,omitempty"`
}

// Key is the changed object's store key.
func (c Change) Key() config.Key {
	return config.Key{Kind: c.Kind, Namespace: c.Namespace, Name: c.Name}
}

// ErrRevision is wrapped by errors for revisions the history does not have.
var ErrRevision = errors.New("no such revision")

// recordLocked adds a revision for changed, unless it only touches
// objects the control plane registered itself; m.mu is held.
func (m *Mem) recordLocked(number int64, actor string, changed []change) {
	var cs []Change
	for _, c := range changed {
		if bookkeeping(c.old) || bookkeeping(c.new) {
			continue
		}
		action := ActionConfigured
		switch {
		case c.old == nil:
			action = ActionCreated
		case c.new == nil:
			action = ActionDeleted
		}
		cs = append(cs, Change{Kind: c.key.Kind, Namespace: c.key.Namespace, Name: c.key.Name, Action: action, Old: c.old, New: c.new})
	}
	if len(cs) == 0 {
		return
	}
	r := Revision{Number: number, Time: time.Now().UTC().Truncate(time.Millisecond), Actor: actor, Changes: cs}
	m.history = append(m.history, r)
	if len(m.history) > MaxRevisions {
		m.history = slices.Clone(m.history[len(m.history)-MaxRevisions:])
		m.historyFrom = m.history[0].Number - 1
	}
	if m.dataDir != "" {
		if err := m.appendHistory(r); err != nil {
			m.log.Warn("recording config history", "error", err)
		}
	}
}

// bookkeeping reports whether o is the control plane's own record (an
// auto-registered workload), not config anyone wrote.
func bookkeeping(o *config.Object) bool { return o != nil && o.Source == SourceAutoRegistration }

// appendHistory appends r to the history file, rewriting the file with the
// kept revisions only when it has grown to twice MaxRevisions.
func (m *Mem) appendHistory(r Revision) error {
	path := filepath.Join(m.dataDir, historyFile)
	m.historyLines++
	if m.historyLines > 2*MaxRevisions {
		var buf bytes.Buffer
		for _, h := range m.history {
			line, err := json.Marshal(h)
			if err != nil {
				return err
			}
			buf.Write(append(line, '\n'))
		}
		m.historyLines = len(m.history)
		return writeFileAtomic(path, buf.Bytes())
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// loadHistory reads the history file of dataDir (missing: none); a line
// that does not decode ends the history there, as a crash mid-append would.
func loadHistory(dataDir string) ([]Revision, int, error) {
	f, err := os.Open(filepath.Join(dataDir, historyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading config history: %w", err)
	}
	defer f.Close()
	var revs []Revision
	lines := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		lines++
		var r Revision
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break
		}
		revs = append(revs, r)
	}
	if len(revs) > MaxRevisions {
		revs = revs[len(revs)-MaxRevisions:]
	}
	return revs, lines, nil
}

// History returns the kept revisions, newest first; with a non-empty key
// part, only those changing a matching object (kind, namespace, name; ""
// matches any).
func (m *Mem) History(kind, namespace, name string) []Revision {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Revision
	for i := len(m.history) - 1; i >= 0; i-- {
		r := m.history[i]
		if slices.ContainsFunc(r.Changes, func(c Change) bool {
			return (kind == "" || strings.EqualFold(c.Kind, kind)) && (namespace == "" || c.Namespace == namespace) && (name == "" || c.Name == name)
		}) {
			out = append(out, r)
		}
	}
	return out
}

// Revision returns revision n.
func (m *Mem) Revision(n int64) (Revision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.history {
		if r.Number == n {
			return r, nil
		}
	}
	return Revision{}, m.noRevisionLocked(n)
}

func (m *Mem) noRevisionLocked(n int64) error {
	if len(m.history) == 0 {
		return fmt.Errorf("revision %d: %w (the history is empty)", n, ErrRevision)
	}
	return fmt.Errorf("revision %d: %w (kept: %d to %d)", n, ErrRevision, m.history[0].Number, m.history[len(m.history)-1].Number)
}

// stateLocked returns, for every object changed by the revisions after
// rev up to to (0: now), its value at rev (nil: absent) and at to. m.mu
// is held.
func (m *Mem) stateLocked(rev, to int64) (keys []config.Key, at, then map[config.Key]*config.Object, err error) {
	if to == 0 {
		to = m.version
	}
	switch {
	case to > m.version:
		return nil, nil, nil, fmt.Errorf("revision %d: %w (the newest is %d)", to, ErrRevision, m.version)
	case rev > m.version:
		return nil, nil, nil, fmt.Errorf("revision %d: %w (the newest is %d)", rev, ErrRevision, m.version)
	case rev > to:
		return nil, nil, nil, fmt.Errorf("revision %d is after revision %d", rev, to)
	case rev < m.historyFrom:
		return nil, nil, nil, fmt.Errorf("revision %d: %w: the history kept starts after revision %d", rev, ErrRevision, m.historyFrom)
	}
	at, then = map[config.Key]*config.Object{}, map[config.Key]*config.Object{}
	for _, r := range m.history {
		if r.Number <= rev || r.Number > to {
			continue
		}
		for _, c := range r.Changes {
			k := c.Key()
			if _, seen := at[k]; !seen {
				at[k] = c.Old
				keys = append(keys, k)
			}
			then[k] = c.New
		}
	}
	sortKeys(keys)
	return keys, at, then, nil
}

func sortKeys(keys []config.Key) {
	slices.SortFunc(keys, func(a, b config.Key) int {
		return strings.Compare(a.Kind+"\x00"+a.Namespace+"\x00"+a.Name, b.Kind+"\x00"+b.Namespace+"\x00"+b.Name)
	})
}

// Diff is a unified YAML diff of every object that changed from revision
// from to revision to (0: the current config).
func (m *Mem) Diff(from, to int64) (string, error) {
	m.mu.Lock()
	keys, at, then, err := m.stateLocked(from, to)
	m.mu.Unlock()
	if err != nil {
		return "", err
	}
	toName := fmt.Sprintf("revision %d", to)
	if to == 0 {
		toName = "now"
	}
	var out strings.Builder
	for _, k := range keys {
		a, err := yamlOf(at[k])
		if err != nil {
			return "", err
		}
		b, err := yamlOf(then[k])
		if err != nil {
			return "", err
		}
		if a == b {
			continue
		}
		name := k.Kind + "/" + k.Namespace + "/" + k.Name
		d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(a), B: difflib.SplitLines(b),
			FromFile: name + fmt.Sprintf(" (revision %d)", from), ToFile: name + " (" + toName + ")", Context: 3,
		})
		if err != nil {
			return "", fmt.Errorf("diffing %s: %w", k, err)
		}
		out.WriteString(d)
	}
	return out.String(), nil
}

// yamlOf is o as Istio YAML without the store's bookkeeping ("" for nil).
func yamlOf(o *config.Object) (string, error) {
	if o == nil {
		return "", nil
	}
	c := *o
	c.ResourceVersion = 0
	b, err := config.Marshal([]*config.Object{&c})
	if err != nil {
		return "", fmt.Errorf("writing %s as YAML: %w", o.Key(), err)
	}
	return string(b), nil
}

// RollbackPlan is what rolling back to a revision writes: the objects to
// put back and those to delete (created after it).
type RollbackPlan struct {
	Revision int64
	Puts     []*config.Object
	Deletes  []config.Key
}

// PlanRollback returns what brings every object changed after revision
// rev back to its state at rev.
func (m *Mem) PlanRollback(rev int64) (RollbackPlan, error) {
	m.mu.Lock()
	keys, at, _, err := m.stateLocked(rev, 0)
	m.mu.Unlock()
	if err != nil {
		return RollbackPlan{}, err
	}
	p := RollbackPlan{Revision: rev}
	for _, k := range keys {
		cur, exists := m.Get(k)
		switch old := at[k]; {
		case old == nil && exists:
			p.Deletes = append(p.Deletes, k)
		case old != nil && (!exists || !sameObject(cur, old)):
			c := copyObject(old)
			c.ResourceVersion = 0
			p.Puts = append(p.Puts, c)
		}
	}
	return p, nil
}

// Rollback carries out p as one revision by actor.
func (m *Mem) Rollback(p RollbackPlan, actor string) (int64, error) {
	for _, o := range p.Puts {
		if o.Source == SourceKubernetes {
			return 0, fmt.Errorf("%s comes from Kubernetes: roll it back there (kubectl apply), the control plane follows", o.Key())
		}
		if err := config.Validate(o); err != nil {
			return 0, err
		}
	}
	if len(p.Puts) == 0 && len(p.Deletes) == 0 {
		return m.Version(), nil
	}
	puts := make([]*config.Object, len(p.Puts))
	for i, o := range p.Puts {
		puts[i] = copyObject(o)
	}
	if _, _, err := m.commitBy(actor, puts, p.Deletes); err != nil {
		return 0, err
	}
	return m.Version(), nil
}

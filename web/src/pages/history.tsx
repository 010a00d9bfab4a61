// Config History: every revision of the config (who, when, what), its
// diff, and a rollback to any of them.

import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, type Revision } from '../api';
import { useAuth } from '../auth';
import { usePoll, type Route } from '../route';
import { ErrorBox } from './common';

function describe(r: Revision): string {
  return r.changes.map((c) => `${c.action} ${c.kind} ${c.namespace}/${c.name}`).join(', ');
}

export function HistoryPage({ route }: { route: Route }) {
  const h = usePoll(() => api.history(), [], 10000);
  const [open, setOpen] = useState<number | null>(Number(route.params.get('revision')) || null);
  const revs = h.data ?? [];
  return (
    <div class="page">
      <div class="toolbar">
        <h1>Config History</h1>
        <span class="muted">{h.data && `${revs.length} revisions, newest first`}</span>
      </div>
      {h.error && <ErrorBox error={h.error} />}
      {h.data && revs.length === 0 && <p class="muted">No change yet: every apply, delete, wizard and rollback appears here.</p>}
      <table class="list" data-testid="history">
        <thead>
          <tr><th>Revision</th><th>Time</th><th>By</th><th>Changes</th></tr>
        </thead>
        <tbody>
          {revs.map((r) => (
            // Keyed: a new revision on top must not hand this row's detail
            // (and its rollback message) to another revision.
            <Fragment key={r.revision}>
              <tr aria-label={`revision ${r.revision}`} class={open === r.revision ? 'open' : ''}>
                <td>
                  <button class="link" aria-expanded={open === r.revision} onClick={() => setOpen(open === r.revision ? null : r.revision)}>
                    {r.revision}
                  </button>
                </td>
                <td>{new Date(r.time).toLocaleString()}</td>
                <td>{r.actor}</td>
                <td>{describe(r)}</td>
              </tr>
              {open === r.revision && (
                <tr class="detail">
                  <td colSpan={4}>
                    <RevisionDetail r={r} newest={revs[0]?.revision ?? r.revision} onChanged={h.reload} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
    </div>
  );
}

// RevisionDetail shows what a revision changed and offers to roll the
// config back to it.
function RevisionDetail({ r, newest, onChanged }: { r: Revision; newest: number; onChanged: () => void }) {
  const d = usePoll(() => api.diff(r.revision - 1, r.revision), [r.revision]);
  const auth = useAuth();
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState('');
  const writer = auth?.admin || auth?.write;
  return (
    <div class="yaml-box">
      {d.error && <ErrorBox error={d.error} />}
      <pre class="yaml diff" aria-label={`diff of revision ${r.revision}`}>
        {(d.data ?? 'loading…').split('\n').map((l) => (
          <div class={l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : ''}>{l}</div>
        ))}
      </pre>
      {writer && r.revision !== newest && (
        <button
          class="danger"
          onClick={async () => {
            if (!confirm(`Roll the config back to revision ${r.revision}?`)) return;
            try {
              const res = await api.rollback(r.revision);
              setErr('');
              setMsg(`Rolled back to revision ${r.revision} as revision ${res.revision}.`);
              onChanged();
            } catch (e: any) {
              setErr(String(e.message ?? e));
            }
          }}
        >
          Roll back to revision {r.revision}
        </button>
      )}
      {msg && <p class="ok" role="status">{msg}</p>}
      {err && <ErrorBox error={err} />}
    </div>
  );
}

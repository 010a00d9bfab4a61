// Istio Config: every applied object, its YAML, and `weft analyze`'s
// messages beside it.

import { useState } from 'preact/hooks';
import { api, type AnalyzeMessage, type ConfigObject } from '../api';
import { useAuth } from '../auth';
import { usePoll, type Route } from '../route';
import { ErrorBox } from './common';

function keyOf(o: { kind: string; namespace: string; name: string }): string {
  return `${o.kind}/${o.namespace}/${o.name}`;
}

function objKey(o: ConfigObject): string {
  return keyOf({ kind: o.kind, namespace: o.metadata.namespace, name: o.metadata.name });
}

export function Messages({ messages }: { messages: AnalyzeMessage[] }) {
  if (!messages.length) return <span class="valid" aria-label="no validation issues">✔ valid</span>;
  return (
    <ul class="messages">
      {messages.map((m) => (
        <li class={`msg msg-${m.level.toLowerCase()}`}>
          <strong>{m.level}</strong>{' '}
          {m.documentationUrl ? <a href={m.documentationUrl} target="_blank" rel="noreferrer">{m.code}</a> : m.code} {m.message}
        </li>
      ))}
    </ul>
  );
}

export function ConfigPage({ route }: { route: Route }) {
  const [kind, setKind] = useState('');
  const [open, setOpen] = useState<string | null>(route.params.get('focus'));
  const d = usePoll(
    async () => {
      const [objects, messages] = await Promise.all([api.config(), api.analyze()]);
      return { objects, messages };
    },
    [],
    15000,
  );
  const kinds = [...new Set(d.data?.objects.map((o) => o.kind) ?? [])].sort();
  const objects = (d.data?.objects ?? [])
    .filter((o) => !kind || o.kind === kind)
    .sort((a, b) => a.kind.localeCompare(b.kind) || a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name));
  const byObject = new Map<string, AnalyzeMessage[]>();
  for (const m of d.data?.messages ?? []) {
    const k = keyOf({ kind: m.kind, namespace: m.namespace, name: m.objectName });
    byObject.set(k, [...(byObject.get(k) ?? []), m]);
  }
  return (
    <div class="page">
      <div class="toolbar">
        <h1>Istio Config</h1>
        <label>
          Kind{' '}
          <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            <option value="">All kinds</option>
            {kinds.map((k) => (
              <option value={k}>{k}</option>
            ))}
          </select>
        </label>
        <span class="muted">
          {d.data && `${d.data.objects.length} objects, ${d.data.messages.length} analysis messages`}
        </span>
      </div>
      {d.error && <ErrorBox error={d.error} />}
      <table class="list" data-testid="config">
        <thead>
          <tr><th>Kind</th><th>Namespace</th><th>Name</th><th>Source</th><th>Version</th><th>Analysis</th></tr>
        </thead>
        <tbody>
          {objects.map((o) => {
            const k = objKey(o);
            return (
              <>
                <tr aria-label={`${o.kind} ${o.metadata.namespace}/${o.metadata.name}`} class={open === k ? 'open' : ''}>
                  <td>{o.kind}</td>
                  <td>{o.metadata.namespace}</td>
                  <td>
                    <button class="link" aria-expanded={open === k} onClick={() => setOpen(open === k ? null : k)}>
                      {o.metadata.name}
                    </button>
                  </td>
                  <td>{o.source ?? ''}</td>
                  <td>{o.metadata.resourceVersion ?? ''}</td>
                  <td><Messages messages={byObject.get(k) ?? []} /></td>
                </tr>
                {open === k && (
                  <tr class="detail">
                    <td colSpan={6}>
                      <ObjectYAML o={o} onDeleted={d.reload} />
                    </td>
                  </tr>
                )}
              </>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function ObjectYAML({ o, onDeleted }: { o: ConfigObject; onDeleted: () => void }) {
  const y = usePoll(() => api.configYAML(o.kind, o.metadata.namespace, o.metadata.name), [objKey(o), o.metadata.resourceVersion]);
  const [msg, setMsg] = useState('');
  const auth = useAuth();
  const removable = o.source !== 'auto-registration' && (auth?.admin || auth?.write);
  return (
    <div class="yaml-box">
      <pre class="yaml" aria-label={`YAML of ${o.kind} ${o.metadata.name}`}>{y.data ?? 'loading…'}</pre>
      {removable && y.data && (
        <button
          class="danger"
          onClick={async () => {
            if (!confirm(`Delete ${o.kind} ${o.metadata.namespace}/${o.metadata.name}?`)) return;
            try {
              await api.remove(y.data!);
              onDeleted();
            } catch (e: any) {
              setMsg(String(e.message ?? e));
            }
          }}
        >
          Delete
        </button>
      )}
      {msg && <ErrorBox error={msg} />}
    </div>
  );
}

// Small pieces shared by the pages.

import type { Badge, Health } from '../model';

export function HealthDot({ health }: { health: Health }) {
  return <i class={`dot ${health}`} role="img" aria-label={health} title={health} />;
}

export function Lock() {
  return (
    <svg class="lock" viewBox="0 0 16 16" width="12" height="12" role="img" aria-label="mutual TLS">
      <title>mutual TLS</title>
      <path d="M4 7V5a4 4 0 1 1 8 0v2h1v8H3V7h1zm2 0h4V5a2 2 0 1 0-4 0v2z" fill="currentColor" />
    </svg>
  );
}

export function Badges({ badges }: { badges: Badge[] }) {
  if (!badges.length) return null;
  return (
    <span class="badges">
      {badges.map((b) => (
        <span class={`badge badge-${b.id}`} title={b.title} aria-label={b.title}>
          {b.short}
        </span>
      ))}
    </span>
  );
}

export function ErrorBox({ error }: { error: string }) {
  return (
    <div class="error" role="alert">
      {error}
    </div>
  );
}

export function NamespaceSelect(props: { value: string; namespaces: string[]; all?: boolean; onChange: (v: string) => void }) {
  return (
    <label>
      Namespace{' '}
      <select value={props.value} onChange={(e) => props.onChange((e.target as HTMLSelectElement).value)}>
        {props.all && <option value="all">All namespaces</option>}
        {props.namespaces.map((n) => (
          <option value={n}>{n}</option>
        ))}
      </select>
    </label>
  );
}

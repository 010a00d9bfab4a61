// Hash routing: #/page/a/b?k=v. The page keeps its state in the URL, so a
// link (from the graph to traces, say) is a complete query.

import { useEffect, useState } from 'preact/hooks';

export interface Route {
  parts: string[];
  params: URLSearchParams;
}

export function parse(hash: string): Route {
  const h = hash.replace(/^#\/?/, '');
  const [path, query] = h.split('?', 2);
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query ?? '') };
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return parse(hash);
}

export function href(parts: string[], params?: Record<string, string | undefined>): string {
  let h = '#/' + parts.map(encodeURIComponent).join('/');
  if (params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, v);
    const s = u.toString();
    if (s) h += '?' + s;
  }
  return h;
}

// setParams replaces the current route's query parameters without adding a
// history entry for every control change.
export function setParams(route: Route, changes: Record<string, string | undefined>) {
  const p = new URLSearchParams(route.params);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === '') p.delete(k);
    else p.set(k, v);
  }
  const s = p.toString();
  history.replaceState(null, '', '#/' + route.parts.map(encodeURIComponent).join('/') + (s ? '?' + s : ''));
  dispatchEvent(new HashChangeEvent('hashchange'));
}

// usePoll runs load now, whenever deps change, and every `every` ms when set.
export function usePoll<T>(load: () => Promise<T>, deps: unknown[], every?: number): {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
} {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (e) => live && setState((s) => ({ data: s.data, error: String(e?.message ?? e), loading: false })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (!every) return;
    const t = setInterval(() => setTick((x) => x + 1), every);
    return () => clearInterval(t);
  }, [every, ...deps]);
  return { ...state, reload: () => setTick((x) => x + 1) };
}

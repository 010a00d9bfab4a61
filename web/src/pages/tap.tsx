// The live tap of a workload (weft tap in the console): the requests
// through its proxies as they happen, filtered in the proxies. Only the
// admin (or a Kubernetes user allowed `create taps.weft.io`) may tap; the
// control plane answers 401/403 otherwise and the view says so.

import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorBox } from './common';

// TapEvent is one line of GET /api/v1/tap (internal/tap.Event).
export interface TapEvent {
  time: string;
  proxy?: string;
  direction: 'inbound' | 'outbound';
  source: string;
  destination: string;
  method?: string;
  authority?: string;
  path?: string;
  status: number;
  responseFlags?: string;
  latencyMs: number;
  route?: string;
  upstreamHost?: string;
  traceId?: string;
  requestId?: string;
  error?: string;
}

// maxRows bounds the rows kept on screen (newest first).
const maxRows = 200;

export function TapView({ namespace, workload }: { namespace: string; workload: string }) {
  const [path, setPath] = useState('');
  const [method, setMethod] = useState('');
  const [authority, setAuthority] = useState('');
  const [rows, setRows] = useState<TapEvent[]>([]);
  const [notes, setNotes] = useState<string[]>([]);
  const [error, setError] = useState<string>();
  const [running, setRunning] = useState(false);
  const abort = useRef<AbortController | undefined>(undefined);

  const stop = () => {
    abort.current?.abort();
    abort.current = undefined;
    setRunning(false);
  };
  useEffect(() => stop, [namespace, workload]);

  const start = async () => {
    stop();
    const ctl = new AbortController();
    abort.current = ctl;
    setRows([]);
    setNotes([]);
    setError(undefined);
    setRunning(true);
    const q = new URLSearchParams({ target: workload, namespace });
    if (path) q.set('path', path);
    if (method) q.set('method', method);
    if (authority) q.set('authority', authority);
    try {
      const resp = await fetch('/api/v1/tap?' + q.toString(), { signal: ctl.signal });
      if (!resp.ok || !resp.body) {
        const data = await resp.json().catch(() => ({}));
        throw new Error(`tap: HTTP ${resp.status}: ${data?.error ?? resp.statusText}`);
      }
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        const events = lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as TapEvent);
        const errs = events.filter((e) => e.error).map((e) => `${e.proxy}: ${e.error}`);
        if (errs.length) setNotes((n) => [...n, ...errs]);
        const ok = events.filter((e) => !e.error).reverse();
        if (ok.length) setRows((r) => [...ok, ...r].slice(0, maxRows));
      }
    } catch (e: any) {
      if (!ctl.signal.aborted) setError(String(e?.message ?? e));
    } finally {
      if (abort.current === ctl) {
        abort.current = undefined;
        setRunning(false);
      }
    }
  };

  return (
    <div class="tap" data-testid="tap">
      <div class="toolbar">
        <label>
          Path prefix <input value={path} onInput={(e) => setPath(e.currentTarget.value)} placeholder="/reviews" aria-label="Path prefix" />
        </label>
        <label>
          Method <input value={method} onInput={(e) => setMethod(e.currentTarget.value)} placeholder="GET" size={6} aria-label="Method" />
        </label>
        <label>
          Authority{' '}
          <input value={authority} onInput={(e) => setAuthority(e.currentTarget.value)} placeholder="reviews:9080" aria-label="Authority" />
        </label>
        {running ? (
          <button onClick={stop}>Stop tap</button>
        ) : (
          <button class="primary" onClick={start}>
            Start tap
          </button>
        )}
        <span class="muted" data-testid="tap-state">
          {running ? `tapping · ${rows.length} requests` : rows.length ? `stopped · ${rows.length} requests` : 'not tapping'}
        </span>
      </div>
      {error && <ErrorBox error={error} />}
      {notes.map((n) => (
        <div class="muted">{n}</div>
      ))}
      <table class="list" data-testid="tap-rows">
        <thead>
          <tr>
            <th>Time</th><th>Proxy</th><th>Dir</th><th>Source → Destination</th><th>Method</th><th>Authority</th><th>Path</th>
            <th>Status</th><th>Flags</th><th>Latency</th><th>Route</th><th>Upstream</th><th>Trace</th><th>Request id</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <tr data-request-id={e.requestId ?? ''}>
              <td class="mono">{new Date(e.time).toLocaleTimeString()}</td>
              <td>{e.proxy}</td>
              <td>{e.direction === 'inbound' ? 'in' : 'out'}</td>
              <td>
                {e.source || '–'} → {e.destination || '–'}
              </td>
              <td>{e.method}</td>
              <td>{e.authority}</td>
              <td class="mono">{e.path}</td>
              <td>{e.status}</td>
              <td>{e.responseFlags ?? ''}</td>
              <td>{e.latencyMs.toFixed(1)} ms</td>
              <td>{e.route ?? ''}</td>
              <td class="mono">{e.upstreamHost ?? ''}</td>
              <td class="mono">{e.traceId ? <a href={`#/traces/${e.traceId}`}>{e.traceId.slice(0, 8)}</a> : ''}</td>
              <td class="mono">{e.requestId ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

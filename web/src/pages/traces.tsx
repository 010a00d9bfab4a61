// Traces: a Jaeger-like search (service, operation, tags, durations,
// lookback, limit), a scatter of the results' durations, and one trace's
// waterfall with its spans' tags.

import { useEffect, useState } from 'preact/hooks';
import { api, fmtDurationUs, fmtMs, type Span, type Trace, type TraceSummary } from '../api';
import { href, setParams, usePoll, type Route } from '../route';
import { ErrorBox } from './common';

const lookbacks = ['5m', '15m', '1h', '6h', '24h'];

export function TracesPage({ route }: { route: Route }) {
  if (route.parts[1]) return <TraceView id={route.parts[1]} />;
  return <TraceSearch route={route} />;
}

// tagsParam turns `k=v k2="v 2"` or a JSON object into the API's tags JSON.
export function tagsParam(s: string): string | undefined {
  const t = s.trim();
  if (!t) return undefined;
  if (t.startsWith('{')) return t;
  const out: Record<string, string> = {};
  for (const m of t.matchAll(/([^\s=]+)=("([^"]*)"|\S*)/g)) out[m[1]] = m[3] ?? m[2];
  return JSON.stringify(out);
}

function TraceSearch({ route }: { route: Route }) {
  const p = route.params;
  const [form, setForm] = useState({
    service: p.get('service') ?? '',
    operation: p.get('operation') ?? '',
    tags: p.get('tags') ?? '',
    minDuration: p.get('minDuration') ?? '',
    maxDuration: p.get('maxDuration') ?? '',
    lookback: p.get('lookback') ?? '1h',
    limit: p.get('limit') ?? '20',
  });
  const services = usePoll(() => api.traceServices(), []);
  const ops = usePoll(() => (form.service ? api.operations(form.service) : Promise.resolve([])), [form.service]);
  // A link from the graph names the called service; pick its operation.
  const toService = p.get('toService');
  useEffect(() => {
    if (!toService || !ops.data || form.operation) return;
    const op = ops.data.find((o) => o.startsWith(toService + ':'));
    if (op) {
      setForm((f) => ({ ...f, operation: op }));
      setParams(route, { operation: op, toService: undefined });
    }
  }, [toService, ops.data]);
  const query = {
    service: p.get('service') ?? undefined,
    operation: p.get('operation') ?? undefined,
    tags: tagsParam(p.get('tags') ?? ''),
    minDuration: p.get('minDuration') ?? undefined,
    maxDuration: p.get('maxDuration') ?? undefined,
    lookback: p.get('lookback') ?? '1h',
    limit: p.get('limit') ?? '20',
  };
  const waiting = !!toService && !p.get('operation');
  const results = usePoll(
    () => (waiting ? Promise.resolve(undefined) : api.traces(query)),
    [JSON.stringify(query), waiting],
  );
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    setParams(route, { ...form, toService: undefined, limit: form.limit, lookback: form.lookback });
    results.reload();
  };
  const summaries = results.data?.summaries ?? [];
  return (
    <div class="page traces">
      <div class="toolbar">
        <h1>Traces</h1>
      </div>
      <div class="trace-layout">
        <form class="search" onSubmit={submit} aria-label="Search traces">
          <label>
            Service
            <select value={form.service} onChange={(e) => setForm({ ...form, service: (e.target as HTMLSelectElement).value, operation: '' })}>
              <option value="">any</option>
              {(services.data ?? []).map((s) => (
                <option value={s}>{s}</option>
              ))}
              {form.service && !(services.data ?? []).includes(form.service) && <option value={form.service}>{form.service}</option>}
            </select>
          </label>
          <label>
            Operation
            <select value={form.operation} onChange={set('operation')}>
              <option value="">all</option>
              {(ops.data ?? []).map((o) => (
                <option value={o}>{o}</option>
              ))}
              {form.operation && !(ops.data ?? []).includes(form.operation) && <option value={form.operation}>{form.operation}</option>}
            </select>
          </label>
          <label>
            Tags
            <input value={form.tags} onInput={set('tags')} placeholder='http.status_code=500 error=true' />
          </label>
          <div class="row">
            <label>
              Min duration
              <input value={form.minDuration} onInput={set('minDuration')} placeholder="e.g. 100ms" />
            </label>
            <label>
              Max duration
              <input value={form.maxDuration} onInput={set('maxDuration')} placeholder="e.g. 2s" />
            </label>
          </div>
          <div class="row">
            <label>
              Lookback
              <select value={form.lookback} onChange={set('lookback')}>
                {lookbacks.map((l) => (
                  <option value={l}>Last {l}</option>
                ))}
              </select>
            </label>
            <label>
              Limit
              <input type="number" min="1" max="1000" value={form.limit} onInput={set('limit')} />
            </label>
          </div>
          <button class="primary" type="submit">
            Find traces
          </button>
        </form>
        <div class="results">
          {results.error && <ErrorBox error={results.error} />}
          {results.data && (
            <>
              <Scatter summaries={summaries} />
              <div class="muted">
                {summaries.length} trace{summaries.length === 1 ? '' : 's'}
                {results.data.total > summaries.length ? ` of ${results.data.total}` : ''}
              </div>
              <table class="list" data-testid="trace-results">
                <thead>
                  <tr><th>Trace</th><th>Root</th><th>Start</th><th>Spans</th><th>Errors</th><th>Services</th><th>Duration</th></tr>
                </thead>
                <tbody>
                  {summaries.map((s) => (
                    <tr aria-label={`trace ${s.traceID}: ${s.spans} spans`}>
                      <td class="mono"><a href={href(['traces', s.traceID])}>{s.traceID.slice(0, 12)}</a></td>
                      <td>{s.rootService}: {s.rootOperation}</td>
                      <td>{new Date(s.start).toLocaleTimeString()}</td>
                      <td class="num">{s.spans}</td>
                      <td class="num">{s.errors ? <span class="err">{s.errors}</span> : 0}</td>
                      <td>{s.services.join(', ')}</td>
                      <td class="num">{fmtMs(s.duration / 1e6)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </div>
      </div>
    </div>
  );
}

// Scatter plots each result's duration at its start time; a click opens it.
function Scatter({ summaries }: { summaries: TraceSummary[] }) {
  const W = 760;
  const H = 180;
  const L = 60;
  const B = 24;
  if (summaries.length === 0) return <div class="muted scatter-empty">No traces match.</div>;
  const ts = summaries.map((s) => Date.parse(s.start));
  const t0 = Math.min(...ts);
  const t1 = Math.max(...ts, t0 + 1000);
  const dmax = Math.max(...summaries.map((s) => s.duration / 1e6), 0.001);
  const x = (t: number) => L + ((t - t0) / (t1 - t0)) * (W - L - 14);
  const y = (d: number) => H - B - (d / dmax) * (H - B - 14);
  return (
    <svg class="scatter" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`Durations of ${summaries.length} traces`}>
      <line x1={L} y1={H - B} x2={W - 6} y2={H - B} class="axis" />
      <line x1={L} y1={8} x2={L} y2={H - B} class="axis" />
      <text x={L - 4} y={16} class="tick" text-anchor="end">{fmtMs(dmax)}</text>
      <text x={L - 4} y={H - B} class="tick" text-anchor="end">0</text>
      <text x={L} y={H - 6} class="tick">{new Date(t0).toLocaleTimeString()}</text>
      <text x={W - 6} y={H - 6} class="tick" text-anchor="end">{new Date(t1).toLocaleTimeString()}</text>
      {summaries.map((s) => (
        <a href={href(['traces', s.traceID])}>
          <circle
            cx={x(Date.parse(s.start))}
            cy={y(s.duration / 1e6)}
            r={Math.min(10, 3 + s.spans / 2)}
            class={s.errors ? 'pt err' : 'pt'}
          >
            <title>{`${s.rootService} ${s.rootOperation}: ${fmtMs(s.duration / 1e6)}, ${s.spans} spans`}</title>
          </circle>
        </a>
      ))}
    </svg>
  );
}

interface Row {
  span: Span;
  depth: number;
}

// order lists spans depth first from the roots, children by start time.
export function order(t: Trace): Row[] {
  const ids = new Set(t.spans.map((s) => s.spanID));
  const parent = (s: Span) => s.parentSpanID ?? s.references?.find((r) => r.refType === 'CHILD_OF')?.spanID;
  const kids = new Map<string, Span[]>();
  const roots: Span[] = [];
  for (const s of t.spans) {
    const p = parent(s);
    if (p && ids.has(p)) kids.set(p, [...(kids.get(p) ?? []), s]);
    else roots.push(s);
  }
  const rows: Row[] = [];
  const walk = (s: Span, depth: number) => {
    rows.push({ span: s, depth });
    for (const k of (kids.get(s.spanID) ?? []).sort((a, b) => a.startTime - b.startTime)) walk(k, depth + 1);
  };
  for (const r of roots.sort((a, b) => a.startTime - b.startTime)) walk(r, 0);
  return rows;
}

function isError(s: Span): boolean {
  return s.tags.some((t) => t.key === 'error' && (t.value === true || t.value === 'true'));
}

function TraceView({ id }: { id: string }) {
  const t = usePoll(() => api.trace(id), [id]);
  const [open, setOpen] = useState<string | null>(null);
  if (t.error) return <div class="page"><ErrorBox error={t.error} /></div>;
  if (!t.data) return <div class="page muted">loading trace…</div>;
  const trace = t.data;
  const rows = order(trace);
  const start = Math.min(...trace.spans.map((s) => s.startTime));
  const end = Math.max(...trace.spans.map((s) => s.startTime + s.duration));
  const total = Math.max(1, end - start);
  const services = new Set(trace.spans.map((s) => trace.processes[s.processID]?.serviceName));
  const root = rows[0]?.span;
  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          {root ? `${trace.processes[root.processID]?.serviceName}: ${root.operationName}` : 'Trace'}
        </h1>
        <span class="mono muted">{trace.traceID}</span>
        <a href={href(['traces'])}>← Search</a>
      </div>
      <div class="trace-meta">
        Started {new Date(start / 1000).toLocaleString()} · Duration {fmtDurationUs(total)} · {services.size} services ·{' '}
        <span data-testid="span-count">{trace.spans.length} spans</span>
      </div>
      <div class="waterfall" role="table" aria-label="Spans">
        <div class="wf-head" role="row">
          <span role="columnheader">Service and operation</span>
          <span role="columnheader" class="wf-scale">
            <span>0</span>
            <span>{fmtDurationUs(total / 2)}</span>
            <span>{fmtDurationUs(total)}</span>
          </span>
        </div>
        {rows.map(({ span, depth }) => {
          const proc = trace.processes[span.processID];
          const left = ((span.startTime - start) / total) * 100;
          const width = Math.max(0.3, (span.duration / total) * 100);
          const kind = span.tags.find((x) => x.key === 'span.kind')?.value;
          return (
            <>
              <div
                class={`wf-row ${open === span.spanID ? 'open' : ''} ${isError(span) ? 'error' : ''}`}
                role="row"
                data-span={span.spanID}
                aria-label={`span ${proc?.serviceName} ${span.operationName} ${fmtDurationUs(span.duration)}`}
                onClick={() => setOpen(open === span.spanID ? null : span.spanID)}
              >
                <span class="wf-name" role="cell" style={{ paddingLeft: 8 + depth * 14 + 'px' }}>
                  <strong>{proc?.serviceName ?? span.processID}</strong> <span class="muted">{span.operationName}</span>
                  {kind && <span class="kind">{kind}</span>}
                </span>
                <span class="wf-bar" role="cell">
                  <i style={{ left: left + '%', width: width + '%' }} class={svcClass(proc?.serviceName)} />
                  {left + width > 85 ? (
                    <em class="inside" style={{ right: 100 - left - width + '%' }}>{fmtDurationUs(span.duration)}</em>
                  ) : (
                    <em style={{ left: left + width + '%' }}>{fmtDurationUs(span.duration)}</em>
                  )}
                </span>
              </div>
              {open === span.spanID && (
                <div class="wf-detail">
                  <table class="kv">
                    <tbody>
                      <tr><th>Span</th><td class="mono">{span.spanID}</td></tr>
                      <tr><th>Start</th><td>+{fmtDurationUs(span.startTime - start)}</td></tr>
                      <tr><th>Duration</th><td>{fmtDurationUs(span.duration)}</td></tr>
                      {span.tags.map((tag) => (
                        <tr><th>{tag.key}</th><td class="mono">{String(tag.value)}</td></tr>
                      ))}
                      {(proc?.tags ?? []).map((tag) => (
                        <tr><th>process {tag.key}</th><td class="mono">{String(tag.value)}</td></tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </>
          );
        })}
      </div>
    </div>
  );
}

function svcClass(name?: string): string {
  let h = 0;
  for (const c of name ?? '') h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `c${h % 6}`;
}

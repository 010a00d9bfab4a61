// Line charts of /api/v1/metrics/series, drawn as SVG.

import { api, fmtBytes, fmtMs, fmtRate, type Chart, type Revision } from '../api';
import { href, usePoll } from '../route';

const colors = ['#0066cc', '#f0ab00', '#c9190b', '#3e8635', '#8476d1'];

export const chartTitles: Record<string, string> = {
  request_rate: 'Request volume (req/s)',
  request_duration: 'Request duration (ms)',
  request_size: 'Request size (bytes)',
  response_size: 'Response size (bytes)',
  tcp_sent: 'TCP sent (bytes/s)',
  tcp_received: 'TCP received (bytes/s)',
};

function fmtValue(metric: string, v: number): string {
  if (metric === 'request_rate') return fmtRate(v);
  if (metric === 'request_duration') return fmtMs(v);
  return fmtBytes(v);
}

// LineChart draws a chart; revisions of the config in its window are
// marked with a dashed line (linking to the revision), so a jump lines up
// with the change that caused it.
export function LineChart({ chart, revisions }: { chart: Chart; revisions?: Revision[] }) {
  const W = 460;
  const H = 150;
  const L = 56;
  const B = 22;
  const all = chart.lines.flatMap((l) => l.points.map((p) => p[1]));
  const max = Math.max(1e-9, ...all);
  const x = (t: number) => L + ((t - chart.start) / Math.max(1, chart.end - chart.start)) * (W - L - 8);
  const y = (v: number) => H - B - (v / max) * (H - B - 10);
  const time = (t: number) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return (
    <figure class="chart">
      <figcaption>{chartTitles[chart.metric] ?? chart.metric}</figcaption>
      {all.length === 0 ? (
        <div class="muted chart-empty">no data in this window</div>
      ) : (
        <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${chartTitles[chart.metric]}: ${chart.lines.map((l) => `${l.name} up to ${fmtValue(chart.metric, Math.max(0, ...l.points.map((p) => p[1])))}`).join(', ')}`}>
          <line x1={L} y1={H - B} x2={W - 8} y2={H - B} class="axis" />
          <line x1={L} y1={10} x2={L} y2={H - B} class="axis" />
          <text x={L - 4} y={14} class="tick" text-anchor="end">{fmtValue(chart.metric, max)}</text>
          <text x={L - 4} y={H - B} class="tick" text-anchor="end">0</text>
          <text x={L} y={H - 6} class="tick">{time(chart.start)}</text>
          <text x={W - 8} y={H - 6} class="tick" text-anchor="end">{time(chart.end)}</text>
          {(revisions ?? [])
            .map((r) => ({ r, t: Date.parse(r.time) / 1000 }))
            .filter(({ t }) => t >= chart.start && t <= chart.end)
            .map(({ r, t }) => (
              <a href={href(['history'], { revision: String(r.revision) })} aria-label={`config revision ${r.revision}`}>
                <line x1={x(t)} y1={10} x2={x(t)} y2={H - B} class="revision">
                  <title>{`revision ${r.revision} by ${r.actor}: ${r.changes.map((c) => `${c.action} ${c.kind} ${c.name}`).join(', ')}`}</title>
                </line>
              </a>
            ))}
          {chart.lines.map((l, i) => (
            <polyline
              fill="none"
              stroke={colors[i % colors.length]}
              stroke-width="1.8"
              points={l.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ')}
            />
          ))}
        </svg>
      )}
      <div class="chart-legend">
        {chart.lines.map((l, i) => (
          <span>
            <i style={{ background: colors[i % colors.length] }} /> {l.name}
          </span>
        ))}
      </div>
    </figure>
  );
}

// Charts draws every metric of a service or workload over the window.
export function Charts(props: { service?: string; workload?: string; namespace: string; direction?: string; window: string }) {
  const metrics = ['request_rate', 'request_duration', 'request_size', 'response_size', 'tcp_sent', 'tcp_received'];
  const revisions = usePoll(() => api.history().catch(() => []), [], 30000);
  const data = usePoll(
    () =>
      Promise.all(
        metrics.map((metric) =>
          api.series({
            service: props.service,
            workload: props.workload,
            namespace: props.namespace,
            direction: props.direction,
            metric,
            window: props.window,
          }),
        ),
      ),
    [props.service, props.workload, props.namespace, props.direction, props.window],
    30000,
  );
  if (data.error) return <div class="error">{data.error}</div>;
  if (!data.data) return <div class="muted">loading charts…</div>;
  return (
    <div class="charts">
      {data.data.map((c) => (
        <LineChart chart={c} revisions={revisions.data} />
      ))}
    </div>
  );
}

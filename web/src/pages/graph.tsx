// The graph page: the mesh's traffic as a Cytoscape graph, a side panel for
// the selected node or edge, and the same nodes and edges as tables, so the
// page can be read without the picture.

import cytoscape from 'cytoscape';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, fmtMs, fmtPct, fmtRate, fmtBytes } from '../api';
import { build, graphTypes, type GEdge, type GNode, type Graph, type GraphType } from '../model';
import { href, setParams, usePoll, type Route } from '../route';
import { HealthDot, Badges, Lock, ErrorBox, NamespaceSelect } from './common';

const windows = ['1m', '5m', '15m', '1h'];
const refreshes: [string, number][] = [
  ['off', 0],
  ['5s', 5000],
  ['10s', 10000],
  ['15s', 15000],
  ['30s', 30000],
  ['1m', 60000],
];

type EdgeLabel = 'traffic' | 'latency' | 'none';

const healthColor: Record<string, string> = {
  healthy: '#3e8635',
  degraded: '#f0ab00',
  failure: '#c9190b',
  idle: '#8a8d90',
};

export function nodeName(n: GNode): string {
  if (n.kind === 'service') return `${n.label} (service)`;
  if (n.kind === 'box') return `${n.label} (app box)`;
  return n.label;
}

function edgeHealth(e: GEdge): string {
  return e.rate > 0 ? ({ failure: 'failure', degraded: 'degraded' } as any)[errClass(e)] ?? 'healthy' : 'idle';
}

function errClass(e: GEdge): string {
  const p5 = (100 * e.e5xx) / (e.rate || 1);
  const p4 = (100 * e.e4xx) / (e.rate || 1);
  if (p5 >= 10 || p4 >= 20) return 'failure';
  if (p5 > 0.0001 || p4 >= 10) return 'degraded';
  return 'healthy';
}

export function errPct(e: { rate: number; e4xx: number; e5xx: number }): number {
  return e.rate > 0 ? (100 * (e.e4xx + e.e5xx)) / e.rate : 0;
}

function edgeText(e: GEdge, mode: EdgeLabel): string {
  const lock = e.mtls >= 0.5 ? ' · mTLS' : '';
  if (mode === 'none') return '';
  if (mode === 'latency') {
    if (e.p50 === null) return e.tcp > 0 ? fmtBytes(e.tcp) + '/s' + lock : '';
    return `${fmtMs(e.p50)} / ${fmtMs(e.p95)} / ${fmtMs(e.p99)}${lock}`;
  }
  if (e.rate === 0 && e.tcp > 0) return fmtBytes(e.tcp) + '/s' + lock;
  const err = errPct(e);
  return `${fmtRate(e.rate)} rps · ${fmtPct(e.pct)}${err > 0 ? ` · ${fmtPct(err)} err` : ''}${lock}`;
}

// positions places nodes in columns by rank; within a column, nodes follow
// the mean position of their callers (fewer crossings), and the versions of
// one app stay together in their box.
function positions(g: Graph): Map<string, { x: number; y: number }> {
  const cols = new Map<number, GNode[]>();
  for (const n of g.nodes) {
    if (n.kind === 'box') continue;
    cols.set(n.rank, [...(cols.get(n.rank) ?? []), n]);
  }
  const callers = new Map<string, string[]>();
  for (const e of g.edges) callers.set(e.target, [...(callers.get(e.target) ?? []), e.source]);
  const pos = new Map<string, { x: number; y: number }>();
  for (const r of [...cols.keys()].sort((a, b) => a - b)) {
    const ns = cols.get(r)!;
    const bary = (n: GNode) => {
      const ys = (callers.get(n.id) ?? []).map((c) => pos.get(c)?.y).filter((y): y is number => y !== undefined);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : 0;
    };
    const group = new Map<string, number[]>();
    for (const n of ns) group.set(n.parent ?? n.id, [...(group.get(n.parent ?? n.id) ?? []), bary(n)]);
    const gkey = (n: GNode) => {
      const ys = group.get(n.parent ?? n.id)!;
      return ys.reduce((a, b) => a + b, 0) / ys.length;
    };
    ns.sort((a, b) => gkey(a) - gkey(b) || (a.parent ?? a.id).localeCompare(b.parent ?? b.id) || a.id.localeCompare(b.id));
    ns.forEach((n, i) => pos.set(n.id, { x: r * 210, y: (i - (ns.length - 1) / 2) * 105 }));
  }
  return pos;
}

function elements(g: Graph, mode: EdgeLabel): cytoscape.ElementDefinition[] {
  const pos = positions(g);
  const els: cytoscape.ElementDefinition[] = [];
  for (const n of g.nodes) {
    const badges = n.badges.map((b) => b.short).join(' · ');
    els.push({
      group: 'nodes',
      data: {
        id: n.id,
        parent: n.parent,
        label: n.kind === 'box' ? n.label : badges ? `${n.label}\n[${badges}]` : n.label,
        kind: n.gateway ? 'gateway' : n.kind,
        color: healthColor[n.health],
      },
      position: pos.get(n.id),
    });
  }
  for (const e of g.edges) {
    els.push({
      group: 'edges',
      data: {
        id: e.id,
        source: e.source,
        target: e.target,
        label: edgeText(e, mode),
        color: healthColor[edgeHealth(e)],
        width: e.rate > 0 ? Math.min(6, 1.5 + Math.log10(1 + e.rate * 10)) : 1.5,
      },
    });
  }
  return els;
}

const style: any[] = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'text-wrap': 'wrap',
      'text-valign': 'bottom',
      'text-margin-y': 5,
      'font-size': 12,
      'font-family': 'system-ui, sans-serif',
      color: '#151515',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.85,
      'text-background-padding': '2px',
      'background-color': '#ffffff',
      'border-width': 3,
      'border-color': 'data(color)',
      width: 34,
      height: 34,
    },
  },
  { selector: 'node[kind = "service"]', style: { shape: 'triangle', 'background-color': '#e7f1fa' } },
  { selector: 'node[kind = "app"]', style: { shape: 'round-rectangle' } },
  { selector: 'node[kind = "versionedApp"], node[kind = "workload"]', style: { shape: 'ellipse' } },
  { selector: 'node[kind = "gateway"]', style: { shape: 'diamond', 'background-color': '#f2f0fc', width: 40, height: 40 } },
  { selector: 'node[kind = "unknown"]', style: { shape: 'ellipse', 'border-style': 'dashed' } },
  {
    selector: 'node[kind = "box"]',
    style: {
      'background-color': '#f5f7fa',
      'border-width': 1,
      'border-color': '#b8bbbe',
      'border-style': 'dashed',
      'text-valign': 'top',
      'text-margin-y': -4,
      'font-weight': 'bold',
      padding: '14px',
      shape: 'round-rectangle',
    },
  },
  {
    selector: 'edge',
    style: {
      'curve-style': 'bezier',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.9,
      width: 'data(width)',
      'line-color': 'data(color)',
      'target-arrow-color': 'data(color)',
      label: 'data(label)',
      'font-size': 10,
      'font-family': 'system-ui, sans-serif',
      color: '#3c3f42',
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.9,
      'text-background-padding': '2px',
    },
  },
  { selector: ':selected', style: { 'overlay-color': '#0066cc', 'overlay-opacity': 0.15, 'overlay-padding': 6 } },
];

export function GraphPage({ route }: { route: Route }) {
  const p = route.params;
  const ns = p.get('namespace') ?? 'default';
  const type = (p.get('type') as GraphType) ?? 'versionedApp';
  const win = p.get('window') ?? '1m';
  const refresh = Number(p.get('refresh') ?? 15000);
  const [labels, setLabels] = useState<EdgeLabel>('traffic');
  const [selected, setSelected] = useState<string | null>(null);

  const data = usePoll(
    async () => {
      const [edges, config, proxies] = await Promise.all([
        api.edges(win, ns === 'all' ? undefined : ns),
        api.config(),
        api.proxies(),
      ]);
      return { edges, config, proxies, at: new Date() };
    },
    [ns, win],
    refresh || undefined,
  );
  const graph = useMemo(
    () => (data.data ? build(type, data.data.edges, data.data.config, data.data.proxies) : undefined),
    [data.data, type],
  );
  const namespaces = useMemo(() => {
    const s = new Set<string>(['default']);
    for (const o of data.data?.config ?? []) s.add(o.metadata.namespace);
    for (const x of data.data?.proxies ?? []) s.add(x.namespace);
    return [...s].sort();
  }, [data.data]);

  return (
    <div class="graph-page">
      <div class="toolbar" role="toolbar" aria-label="Graph options">
        <NamespaceSelect value={ns} namespaces={namespaces} all onChange={(v) => setParams(route, { namespace: v })} />
        <label>
          Graph{' '}
          <select value={type} onChange={(e) => setParams(route, { type: (e.target as HTMLSelectElement).value })}>
            {graphTypes.map((t) => (
              <option value={t.id}>{t.label}</option>
            ))}
          </select>
        </label>
        <label>
          Window{' '}
          <select value={win} onChange={(e) => setParams(route, { window: (e.target as HTMLSelectElement).value })}>
            {(windows.includes(win) ? windows : [win, ...windows]).map((w) => (
              <option value={w}>Last {w}</option>
            ))}
          </select>
        </label>
        <label>
          Refresh{' '}
          <select value={String(refresh)} onChange={(e) => setParams(route, { refresh: (e.target as HTMLSelectElement).value })}>
            {refreshes.map(([l, v]) => (
              <option value={String(v)}>{l}</option>
            ))}
          </select>
        </label>
        <label>
          Edge labels{' '}
          <select value={labels} onChange={(e) => setLabels((e.target as HTMLSelectElement).value as EdgeLabel)}>
            <option value="traffic">Traffic (rps, %, errors)</option>
            <option value="latency">Latency p50/p95/p99</option>
            <option value="none">None</option>
          </select>
        </label>
        <button onClick={data.reload} aria-label="Refresh now">
          ⟳
        </button>
      </div>
      {data.error && <ErrorBox error={data.error} />}
      <div class="graph-area">
        {graph && graph.edges.length === 0 && !data.loading && (
          <div class="empty">No traffic in namespace {ns} over the last {win}. Send some requests, or pick another namespace.</div>
        )}
        {graph && <Canvas graph={graph} labels={labels} selected={selected} onSelect={setSelected} />}
        {graph && selected && <SidePanel graph={graph} id={selected} ns={ns} onClose={() => setSelected(null)} />}
        <Legend status={data.loading ? 'loading…' : data.data ? `updated ${data.data.at.toLocaleTimeString()}` : ''} />
      </div>
      {graph && (
        <GraphTables
          graph={graph}
          onSelect={(id) => {
            setSelected(id);
            document.querySelector('main')?.scrollTo({ top: 0 });
          }}
        />
      )}
    </div>
  );
}

function Canvas(props: { graph: Graph; labels: EdgeLabel; selected: string | null; onSelect: (id: string | null) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  const cy = useRef<cytoscape.Core | null>(null);
  const shape = useRef('');
  const onSelect = useRef(props.onSelect);
  onSelect.current = props.onSelect;
  useEffect(() => {
    const c = cytoscape({
      container: ref.current!,
      style,
      layout: { name: 'preset' },
            minZoom: 0.2,
      maxZoom: 3,
      boxSelectionEnabled: false,
    });
    c.on('tap', (ev) => {
      if (ev.target === c) onSelect.current(null);
      else if (ev.target.data('kind') !== 'box') onSelect.current(ev.target.id());
    });
    cy.current = c;
    return () => c.destroy();
  }, []);
  useEffect(() => {
    const c = cy.current!;
    const els = elements(props.graph, props.labels);
    const ids = els.map((e) => e.data.id).sort().join(',');
    c.batch(() => {
      if (ids !== shape.current) {
        c.elements().remove();
        c.add(els);
      } else {
        for (const e of els) c.getElementById(e.data.id!).data(e.data);
      }
    });
    if (ids !== shape.current) {
      c.fit(undefined, 40);
      if (c.zoom() > 1.3) {
        c.zoom(1.3);
        c.center();
      }
      shape.current = ids;
    }
  }, [props.graph, props.labels]);
  useEffect(() => {
    const c = cy.current!;
    c.elements().unselect();
    if (props.selected) c.getElementById(props.selected).select();
  }, [props.selected, props.graph]);
  return <div ref={ref} class="cy" role="img" aria-label="Traffic graph; the tables below list its nodes and edges" />;
}

function Legend({ status }: { status: string }) {
  return (
    <div class="legend">
      <span aria-live="polite">{status}</span>
      <span><i class="dot healthy" /> healthy</span>
      <span><i class="dot degraded" /> degraded</span>
      <span><i class="dot failure" /> failure</span>
      <span><i class="dot idle" /> no traffic</span>
      <span>△ service ○ workload ▢ app ◇ gateway</span>
    </div>
  );
}

function detailLink(n: GNode): string | undefined {
  if (n.kind === 'service') return href(['services', n.namespace, n.service!]);
  if (n.kind === 'workload') return href(['workloads', n.namespace, n.workload!]);
  if (n.kind === 'app' || n.kind === 'versionedApp' || n.kind === 'box') return href(['services', n.namespace, n.app!]);
  return undefined;
}

function SidePanel({ graph, id, ns, onClose }: { graph: Graph; id: string; ns: string; onClose: () => void }) {
  const node = graph.nodes.find((n) => n.id === id);
  const edge = graph.edges.find((e) => e.id === id);
  const name = (nid: string) => {
    const n = graph.nodes.find((x) => x.id === nid);
    return n ? nodeName(n) : nid;
  };
  if (!node && !edge) return null;
  return (
    <aside class="side-panel" aria-label="Selection details">
      <button class="close" onClick={onClose} aria-label="Close details">
        ×
      </button>
      {node && (
        <>
          <h2>
            <HealthDot health={node.health} /> {nodeName(node)}
          </h2>
          <div class="muted">
            {node.kind === 'versionedApp' ? 'versioned app' : node.kind}
            {node.namespace && ` · namespace ${node.namespace}`}
          </div>
          <Badges badges={node.badges} />
          <table class="kv">
            <tbody>
              <tr><th>Inbound</th><td>{fmtRate(node.inbound.rate)} rps, {fmtPct(errPct(node.inbound))} errors</td></tr>
              <tr><th>Outbound</th><td>{fmtRate(node.outbound.rate)} rps, {fmtPct(errPct(node.outbound))} errors</td></tr>
            </tbody>
          </table>
          <h3>Inbound edges</h3>
          <EdgeList edges={graph.edges.filter((e) => e.target === id)} name={name} side="source" />
          <h3>Outbound edges</h3>
          <EdgeList edges={graph.edges.filter((e) => e.source === id)} name={name} side="target" />
          <div class="links">
            {detailLink(node) && <a href={detailLink(node)}>Details and charts →</a>}
            {node.app && node.kind !== 'unknown' && (
              <a href={href(['traces'], { service: `${node.app}.${node.namespace}` })}>Traces of {node.app} →</a>
            )}
          </div>
        </>
      )}
      {edge && (
        <>
          <h2>
            {name(edge.source)} → {name(edge.target)}
          </h2>
          <table class="kv">
            <tbody>
              <tr><th>Request rate</th><td>{fmtRate(edge.rate)} rps</td></tr>
              <tr><th>Share of source</th><td>{fmtPct(edge.pct)}</td></tr>
              <tr><th>Errors</th><td>{fmtPct(errPct(edge))} (4xx {fmtRate(edge.e4xx)} rps, 5xx {fmtRate(edge.e5xx)} rps)</td></tr>
              <tr><th>Latency p50</th><td>{fmtMs(edge.p50)}</td></tr>
              <tr><th>Latency p95</th><td>{fmtMs(edge.p95)}</td></tr>
              <tr><th>Latency p99</th><td>{fmtMs(edge.p99)}</td></tr>
              <tr><th>Mutual TLS</th><td>{edge.mtls >= 0.5 ? <><Lock /> {fmtPct(edge.mtls * 100)} of requests</> : 'no'}</td></tr>
              {edge.tcp > 0 && <tr><th>TCP</th><td>{fmtBytes(edge.tcp)}/s</td></tr>}
            </tbody>
          </table>
          <div class="links">
            {edge.traceService && (
              <a href={href(['traces'], { service: edge.traceService, toService: edge.destService, ns })}>
                Traces of these requests →
              </a>
            )}
          </div>
        </>
      )}
    </aside>
  );
}

function EdgeList({ edges, name, side }: { edges: GEdge[]; name: (id: string) => string; side: 'source' | 'target' }) {
  if (edges.length === 0) return <div class="muted">none</div>;
  return (
    <ul class="edge-list">
      {edges.map((e) => (
        <li>
          {name(e[side])}: {fmtRate(e.rate)} rps ({fmtPct(e.pct)} of source){e.mtls >= 0.5 && <> <Lock /></>}
        </li>
      ))}
    </ul>
  );
}

function GraphTables({ graph, onSelect }: { graph: Graph; onSelect: (id: string) => void }) {
  const nodes = graph.nodes.filter((n) => n.kind !== 'box').sort((a, b) => a.rank - b.rank || a.id.localeCompare(b.id));
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const edges = [...graph.edges].sort(
    (a, b) => byId.get(a.source)!.rank - byId.get(b.source)!.rank || a.id.localeCompare(b.id),
  );
  return (
    <div class="graph-tables">
      <section>
        <h2 id="nodes-title">Nodes ({nodes.length})</h2>
        <table class="list" aria-labelledby="nodes-title" data-testid="graph-nodes">
          <thead>
            <tr><th>Node</th><th>Kind</th><th>Namespace</th><th>Health</th><th>In rps</th><th>Out rps</th><th>Badges</th></tr>
          </thead>
          <tbody>
            {nodes.map((n) => (
              <tr
                data-node={n.id}
                data-rate={n.inbound.rate + n.outbound.rate}
                aria-label={`${nodeName(n)}: ${n.health}, ${fmtRate(n.inbound.rate)} requests per second in, ${fmtRate(n.outbound.rate)} out`}
              >
                <td><button class="link" onClick={() => onSelect(n.id)}>{nodeName(n)}</button></td>
                <td>{n.kind === 'versionedApp' ? 'versioned app' : n.kind}</td>
                <td>{n.namespace}</td>
                <td><HealthDot health={n.health} /> {n.health}</td>
                <td class="num">{fmtRate(n.inbound.rate)}</td>
                <td class="num">{fmtRate(n.outbound.rate)}</td>
                <td><Badges badges={n.badges} /></td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section>
        <h2 id="edges-title">Edges ({edges.length})</h2>
        <table class="list" aria-labelledby="edges-title" data-testid="graph-edges">
          <thead>
            <tr><th>From</th><th>To</th><th>rps</th><th>% of source</th><th>p50 / p95 / p99</th><th>Errors</th><th>mTLS</th></tr>
          </thead>
          <tbody>
            {edges.map((e) => {
              const from = nodeName(byId.get(e.source)!);
              const to = nodeName(byId.get(e.target)!);
              return (
                <tr
                  data-edge={e.id}
                  data-from={from}
                  data-to={to}
                  data-rate={e.rate}
                  data-pct={e.pct}
                  aria-label={`${from} to ${to}: ${fmtRate(e.rate)} requests per second, ${fmtPct(e.pct)} of ${from}'s requests, ${fmtPct(errPct(e))} errors${e.mtls >= 0.5 ? ', mutual TLS' : ''}`}
                >
                  <td><button class="link" onClick={() => onSelect(e.id)}>{from}</button></td>
                  <td>{to}</td>
                  <td class="num">{fmtRate(e.rate)}</td>
                  <td class="num">{fmtPct(e.pct)}</td>
                  <td class="num">{fmtMs(e.p50)} / {fmtMs(e.p95)} / {fmtMs(e.p99)}</td>
                  <td class="num">{fmtPct(errPct(e))}</td>
                  <td>{e.mtls >= 0.5 ? <Lock /> : '–'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </div>
  );
}

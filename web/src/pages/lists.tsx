// Services and workloads: lists and detail pages.

import { useState } from 'preact/hooks';
import { api, fmtPct, fmtRate, type ConfigObject, type MetricNode, type ProxyStatus } from '../api';
import { badgeInfo, configBadges, health, serviceKey } from '../model';
import { href, usePoll, type Route } from '../route';
import { Charts } from './charts';
import { Badges, ErrorBox, HealthDot } from './common';
import { errPct } from './graph';
import { TapView } from './tap';

function traffic(n?: MetricNode, dir: 'inbound' | 'outbound' = 'inbound') {
  const t = n?.[dir];
  return { rate: t?.requestRate ?? 0, e4xx: t?.errorRate4xx ?? 0, e5xx: t?.errorRate5xx ?? 0 };
}

// proxySync summarises a proxy's per-type status: synced when every
// subscribed type's last response is ACKed.
export function proxySync(p: ProxyStatus): string {
  const st = Object.values(p.types ?? {}).filter((t) => t.subscribed);
  if (st.some((t) => t.nacked)) return 'NACKED';
  if (st.length && st.every((t) => t.status === 'SYNCED' || t.status === 'synced')) return 'SYNCED';
  const s = new Set(st.map((t) => t.status));
  return [...s].join(', ') || 'NOT SENT';
}

function useMesh(window: string) {
  return usePoll(
    async () => {
      const [config, proxies, nodes] = await Promise.all([api.config(), api.proxies(), api.nodes(window)]);
      return { config, proxies, nodes };
    },
    [window],
    15000,
  );
}

interface Service {
  name: string;
  namespace: string;
  hosts: string[];
  ports: string[];
  entry: ConfigObject;
}

function services(config: ConfigObject[]): Service[] {
  return config
    .filter((o) => o.kind === 'ServiceEntry')
    .map((o) => ({
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      hosts: o.spec?.hosts ?? [],
      ports: (o.spec?.ports ?? []).map((p: any) => `${p.name ?? ''} ${p.number}/${p.protocol ?? ''}`.trim()),
      entry: o,
    }))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

function WindowSelect({ value, onChange }: { value: string; onChange: (v: string) => void }) {
  return (
    <label>
      Window{' '}
      <select value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {['1m', '5m', '15m', '1h'].map((w) => (
          <option value={w}>Last {w}</option>
        ))}
      </select>
    </label>
  );
}

export function ServicesPage() {
  const [win, setWin] = useState('5m');
  const d = useMesh(win);
  return (
    <div class="page">
      <div class="toolbar">
        <h1>Services</h1>
        <WindowSelect value={win} onChange={setWin} />
      </div>
      {d.error && <ErrorBox error={d.error} />}
      {d.data && (
        <table class="list" data-testid="services">
          <thead>
            <tr><th>Service</th><th>Namespace</th><th>Health</th><th>Hosts</th><th>Ports</th><th>Workloads</th><th>In rps</th><th>Errors</th><th>Config</th></tr>
          </thead>
          <tbody>
            {services(d.data.config).map((s) => {
              const node = d.data!.nodes.find((n) => n.kind === 'service' && n.name === s.name && n.namespace === s.namespace);
              const t = traffic(node);
              const wls = d.data!.proxies.filter((p) => p.namespace === s.namespace && (p.service?.name === s.name || p.labels?.app === s.name));
              const badges = [...(configBadges(d.data!.config).get(`${s.namespace}/${s.name}`) ?? [])].map((b) => badgeInfo[b]);
              return (
                <tr aria-label={`service ${s.name}`}>
                  <td><a href={href(['services', s.namespace, s.name])}>{s.name}</a></td>
                  <td>{s.namespace}</td>
                  <td><HealthDot health={health(t)} /></td>
                  <td>{s.hosts.join(', ')}</td>
                  <td>{s.ports.join(', ')}</td>
                  <td>{wls.map((w) => w.name).join(', ') || <span class="muted">none</span>}</td>
                  <td class="num">{fmtRate(t.rate)}</td>
                  <td class="num">{fmtPct(errPct(t))}</td>
                  <td><Badges badges={badges} /></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function ServiceDetail({ route }: { route: Route }) {
  const [, ns, name] = route.parts;
  const [win, setWin] = useState('15m');
  const d = useMesh(win);
  const svc = d.data && services(d.data.config).find((s) => s.name === name && s.namespace === ns);
  const related =
    d.data?.config.filter(
      (o) =>
        (o.kind === 'VirtualService' && (o.spec?.hosts ?? []).some((h: string) => serviceKey(h, o.metadata.namespace) === `${ns}/${name}`)) ||
        (o.kind === 'DestinationRule' && serviceKey(o.spec?.host ?? '', o.metadata.namespace) === `${ns}/${name}`),
    ) ?? [];
  const wls = d.data?.proxies.filter((p) => p.namespace === ns && (p.service?.name === name || p.labels?.app === name)) ?? [];
  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          Service {name} <span class="muted">({ns})</span>
        </h1>
        <WindowSelect value={win} onChange={setWin} />
        <a href={href(['traces'], { service: `${name}.${ns}` })}>Traces →</a>
        <a href={href(['wizards'], { service: name, namespace: ns })}>Routing wizards →</a>
      </div>
      {d.error && <ErrorBox error={d.error} />}
      {svc && (
        <table class="kv">
          <tbody>
            <tr><th>Hosts</th><td>{svc.hosts.join(', ')}</td></tr>
            <tr><th>Ports</th><td>{svc.ports.join(', ')}</td></tr>
            <tr><th>Workloads</th><td>{[...new Set(wls.map((w) => w.workload || w.name))].map((w) => <a href={href(['workloads', ns, w])}>{w} </a>)}</td></tr>
            <tr><th>Config</th><td>{related.map((o) => <a href={href(['config'], { focus: `${o.kind}/${o.metadata.namespace}/${o.metadata.name}` })}>{o.kind} {o.metadata.name} </a>)}{related.length === 0 && <span class="muted">no VirtualService or DestinationRule</span>}</td></tr>
          </tbody>
        </table>
      )}
      {d.data && !svc && <div class="muted">No ServiceEntry {ns}/{name} in the registry; showing its metrics.</div>}
      <h2>Inbound metrics</h2>
      <Charts service={name} namespace={ns} window={win} />
    </div>
  );
}

export function WorkloadsPage() {
  const [win, setWin] = useState('5m');
  const d = useMesh(win);
  // One row per workload (reviews-v2), its instances (reviews-v2-1, -2…)
  // beside it: metrics and the graph name workloads, not instances.
  const groups = new Map<string, ProxyStatus[]>();
  for (const p of d.data?.proxies ?? []) {
    const key = `${p.namespace}/${p.workload || p.name}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  return (
    <div class="page">
      <div class="toolbar">
        <h1>Workloads</h1>
        <WindowSelect value={win} onChange={setWin} />
      </div>
      {d.error && <ErrorBox error={d.error} />}
      {d.data && (
        <table class="list" data-testid="workloads">
          <thead>
            <tr><th>Workload</th><th>Namespace</th><th>Type</th><th>App</th><th>Version</th><th>Instances</th><th>Proxy sync</th><th>Config version</th><th>In rps</th><th>Out rps</th></tr>
          </thead>
          <tbody>
            {[...groups.values()]
              .map((ps) => ps.sort((a, b) => a.name.localeCompare(b.name)))
              .sort((a, b) => a[0].namespace.localeCompare(b[0].namespace) || (a[0].workload || a[0].name).localeCompare(b[0].workload || b[0].name))
              .map((ps) => {
                const p = ps[0];
                const name = p.workload || p.name;
                const node = d.data!.nodes.find((n) => n.kind === 'workload' && n.name === name && n.namespace === p.namespace);
                const syncs = ps.map(proxySync);
                const sync = syncs.find((s) => s !== 'SYNCED') ?? 'SYNCED';
                return (
                  <tr aria-label={`workload ${name}`}>
                    <td><a href={href(['workloads', p.namespace, name])}>{name}</a></td>
                    <td>{p.namespace}</td>
                    <td><ProxyType p={p} /></td>
                    <td>{p.labels?.app ?? '–'}</td>
                    <td>{p.labels?.version ?? '–'}</td>
                    <td>{ps.map((x) => `${x.name} (${x.ip})`).join(', ')}</td>
                    <td><span class={`sync sync-${sync === 'SYNCED' ? 'ok' : 'bad'}`}>{sync}</span></td>
                    <td class="mono">{[...new Set(ps.map(configVersion))].join(' ')}</td>
                    <td class="num">{fmtRate(traffic(node).rate)}</td>
                    <td class="num">{fmtRate(traffic(node, 'outbound').rate)}</td>
                  </tr>
                );
              })}
          </tbody>
        </table>
      )}
    </div>
  );
}

// PROXYLESS is the type of a proxyless gRPC app: grpc-go's own xDS client
// on the control plane (GENERATOR=grpc), with no sidecar beside it.
const PROXYLESS = 'proxyless';

// ProxyType names a workload's data plane: a proxyless gRPC app is marked
// as one, since it has no proxy metrics and no config dump.
function ProxyType({ p }: { p: ProxyStatus }) {
  if (p.type !== PROXYLESS) return <>{p.type}</>;
  return (
    <span class="label" data-testid="proxyless" title="a gRPC app with its own xDS client (grpc-go), no sidecar: no proxy metrics">
      proxyless gRPC
    </span>
  );
}

// configVersion is the version of the proxy's last acknowledged listeners
// (content hashes: equal versions mean equal config).
function configVersion(p: ProxyStatus): string {
  const lds = Object.entries(p.types ?? {}).find(([k]) => k.endsWith('Listener'));
  const v = lds?.[1].acked ?? lds?.[1].sent ?? '';
  return v.length > 12 ? v.slice(0, 12) : v || '–';
}

export function WorkloadDetail({ route }: { route: Route }) {
  const [, ns, name] = route.parts;
  const [win, setWin] = useState('15m');
  const d = useMesh(win);
  // The workload's instances; an instance's own name finds it too.
  const instances = d.data?.proxies.filter((x) => x.namespace === ns && ((x.workload || x.name) === name || x.name === name)) ?? [];
  const p = instances.find((x) => x.name === name) ?? instances[0];
  const app = p?.labels?.app ?? p?.service?.name;
  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          Workload {name} <span class="muted">({ns})</span>
        </h1>
        <WindowSelect value={win} onChange={setWin} />
        {app && <a href={href(['traces'], { service: `${app}.${ns}` })}>Traces →</a>}
        {app && <a href={href(['services', ns, app])}>Service {app} →</a>}
      </div>
      {d.error && <ErrorBox error={d.error} />}
      {d.data && !p && <div class="muted">No proxy {name}.{ns} is connected.</div>}
      {p && (
        <>
          <table class="kv">
            <tbody>
              <tr><th>Instances</th><td>{instances.map((x) => x.name).join(', ')}</td></tr>
              <tr><th>Proxy</th><td class="mono">{p.id}</td></tr>
              {p.type === PROXYLESS && (
                <tr>
                  <th>Data plane</th>
                  <td>
                    <ProxyType p={p} /> none beside the app: grpc-go's xDS client takes the config below; its calls have no proxy
                    metrics
                  </td>
                </tr>
              )}
              <tr><th>IP</th><td>{p.ip}</td></tr>
              <tr><th>Labels</th><td>{Object.entries(p.labels ?? {}).map(([k, v]) => <span class="label">{k}={v}</span>)}</td></tr>
              <tr><th>Service account</th><td>{p.serviceAccount ?? '–'}</td></tr>
              <tr><th>Connected since</th><td>{new Date(p.connectedSince).toLocaleString()}</td></tr>
              <tr><th>Sync</th><td>{proxySync(p)}</td></tr>
            </tbody>
          </table>
          <h2>Proxy configuration (xDS)</h2>
          <table class="list" data-testid="proxy-sync">
            <thead>
              <tr><th>Type</th><th>Status</th><th>Sent</th><th>Acked</th><th>NACK</th></tr>
            </thead>
            <tbody>
              {Object.entries(p.types ?? {})
                .filter(([, t]) => t.subscribed)
                .map(([k, t]) => (
                  <tr>
                    <td>{k.split('.').pop()}</td>
                    <td>{t.status}</td>
                    <td class="mono">{t.sent ?? '–'}</td>
                    <td class="mono">{t.acked ?? '–'}</td>
                    <td>{t.nacked ?? ''}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </>
      )}
      <h2>Inbound metrics</h2>
      <Charts workload={name} namespace={ns} window={win} />
      <h2>Outbound metrics</h2>
      <Charts workload={name} namespace={ns} direction="outbound" window={win} />
      <h2>Live requests (tap)</h2>
      <TapView namespace={ns} workload={p?.workload || name} />
    </div>
  );
}

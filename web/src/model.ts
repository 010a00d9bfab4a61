// The graph model: metric edges and the applied config in, nodes and edges
// with health, percentages and badges out. Pure, so it is easy to check.

import type { ConfigObject, MetricEdge, ProxyStatus } from './api';

export type GraphType = 'app' | 'versionedApp' | 'workload' | 'service';

export const graphTypes: { id: GraphType; label: string }[] = [
  { id: 'versionedApp', label: 'Versioned app graph' },
  { id: 'app', label: 'App graph' },
  { id: 'workload', label: 'Workload graph' },
  { id: 'service', label: 'Service graph' },
];

export type Health = 'healthy' | 'degraded' | 'failure' | 'idle';

export type NodeKind = 'app' | 'versionedApp' | 'workload' | 'service' | 'unknown' | 'box';

export interface Badge {
  id: 'vs' | 'shift' | 'fault' | 'cb' | 'timeout' | 'mirror' | 'gateway' | 'nosidecar' | 'retry';
  short: string;
  title: string;
}

export const badgeInfo: Record<Badge['id'], Badge> = {
  vs: { id: 'vs', short: 'VS', title: 'virtual service' },
  shift: { id: 'shift', short: 'split', title: 'traffic shifting (weighted routes)' },
  fault: { id: 'fault', short: 'fault', title: 'fault injection' },
  cb: { id: 'cb', short: 'CB', title: 'circuit breaker (connection pool or outlier detection)' },
  timeout: { id: 'timeout', short: 'timeout', title: 'request timeout' },
  retry: { id: 'retry', short: 'retry', title: 'retries configured' },
  mirror: { id: 'mirror', short: 'mirror', title: 'traffic mirroring' },
  gateway: { id: 'gateway', short: 'GW', title: 'gateway' },
  nosidecar: { id: 'nosidecar', short: 'no sidecar', title: 'missing sidecar' },
};

export interface Totals {
  rate: number;
  e4xx: number;
  e5xx: number;
}

export interface GNode {
  id: string;
  kind: NodeKind;
  label: string;
  namespace: string;
  app?: string;
  version?: string;
  workload?: string;
  service?: string; // short name, for service nodes
  parent?: string;
  gateway: boolean;
  badges: Badge[];
  inbound: Totals;
  outbound: Totals;
  health: Health;
  rank: number;
}

export interface GEdge {
  id: string;
  source: string;
  target: string;
  rate: number;
  e4xx: number;
  e5xx: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mtls: number; // share 0..1
  tcp: number; // bytes/s both ways
  pct: number; // % of the source node's outbound requests
  // For trace links: the calling workload's trace service and the called service FQDN.
  traceService?: string;
  destService?: string;
}

export interface Graph {
  nodes: GNode[];
  edges: GEdge[];
}

// health applies Kiali's rules to a node's inbound requests (or outbound,
// for a node that only sends): any 5xx is degraded, 10% failure; 4xx from
// 10% degraded, from 20% failure.
export function health(t: Totals): Health {
  if (t.rate <= 0) return 'idle';
  const p5 = (100 * t.e5xx) / t.rate;
  const p4 = (100 * t.e4xx) / t.rate;
  if (p5 >= 10 || p4 >= 20) return 'failure';
  if (p5 > 0.0001 || p4 >= 10) return 'degraded';
  return 'healthy';
}

function unknownPeer(p: { workload: string; app: string }): boolean {
  return !p.workload || p.workload === 'unknown';
}

function appOf(p: { workload: string; app: string }): string {
  return p.app && p.app !== 'unknown' ? p.app : p.workload;
}

// isGatewayWorkload recognises an ingress/egress gateway by its name, as the
// demo and Istio's install name them.
export function isGatewayWorkload(workload: string, proxies: ProxyStatus[]): boolean {
  const px = proxies.find((p) => p.name === workload);
  if (px) return px.type === 'router' || px.type === 'gateway';
  return /gateway/.test(workload);
}

interface Acc {
  rate: number;
  e4xx: number;
  e5xx: number;
  lat: [number, number, number, number]; // weighted sums p50, p95, p99, and weight
  mtls: number;
  tcp: number;
  traceService?: string;
  destService?: string;
}

function newAcc(): Acc {
  return { rate: 0, e4xx: 0, e5xx: 0, lat: [0, 0, 0, 0], mtls: 0, tcp: 0 };
}

function add(a: Acc, e: MetricEdge) {
  a.rate += e.requestRate;
  a.e4xx += e.errorRate4xx;
  a.e5xx += e.errorRate5xx;
  a.mtls += e.mtlsShare * (e.requestRate || e.tcpSentBytesRate + e.tcpReceivedBytesRate);
  a.tcp += e.tcpSentBytesRate + e.tcpReceivedBytesRate;
  if (e.latencyP50 !== null && e.requestRate > 0) {
    // Quantiles do not add up; a rate-weighted mean is a fair summary of
    // several edges folded into one.
    a.lat[0] += e.latencyP50 * e.requestRate;
    a.lat[1] += (e.latencyP95 ?? e.latencyP50) * e.requestRate;
    a.lat[2] += (e.latencyP99 ?? e.latencyP50) * e.requestRate;
    a.lat[3] += e.requestRate;
  }
}

// build turns metric edges into the graph of the given type.
export function build(
  type: GraphType,
  edges: MetricEdge[],
  config: ConfigObject[],
  proxies: ProxyStatus[],
): Graph {
  const nodes = new Map<string, GNode>();
  const acc = new Map<string, { source: string; target: string; a: Acc }>();
  const services = knownServices(config);

  const node = (id: string, init: () => Omit<GNode, 'id' | 'badges' | 'inbound' | 'outbound' | 'health' | 'rank'>) => {
    let n = nodes.get(id);
    if (!n) {
      n = { id, badges: [], inbound: zero(), outbound: zero(), health: 'idle', rank: 0, ...init() };
      nodes.set(id, n);
    }
    return n;
  };

  // peerNode maps one end of a metric edge to its node in this graph type.
  const peerNode = (p: MetricEdge['source'], dest: boolean): GNode => {
    const ns = p.namespace || 'unknown';
    if (unknownPeer(p)) {
      return node('unknown', () => ({ kind: 'unknown', label: 'unknown', namespace: '', gateway: false }));
    }
    const gw = isGatewayWorkload(p.workload, proxies);
    const app = appOf(p);
    switch (type) {
      case 'workload':
        return node(`wl:${ns}/${p.workload}`, () => ({
          kind: 'workload', label: p.workload, namespace: ns, app, version: p.version, workload: p.workload, gateway: gw,
        }));
      case 'app':
        return node(`app:${ns}/${app}`, () => ({ kind: 'app', label: app, namespace: ns, app, gateway: gw }));
      case 'versionedApp':
        if (!p.version || gw) {
          return node(`app:${ns}/${app}`, () => ({ kind: 'app', label: app, namespace: ns, app, gateway: gw }));
        }
        return node(`va:${ns}/${app}/${p.version}`, () => ({
          kind: 'versionedApp', label: `${app} ${p.version}`, namespace: ns, app, version: p.version, gateway: gw,
        }));
      case 'service': {
        const name = dest ? p.serviceName || app : app;
        const sns = dest ? p.serviceNamespace || ns : ns;
        if (!gw && (dest || services.has(`${sns}/${name}`))) {
          return node(`svc:${sns}/${name}`, () => ({ kind: 'service', label: name, namespace: sns, service: name, app, gateway: false }));
        }
        return node(`wl:${ns}/${p.workload}`, () => ({
          kind: 'workload', label: p.workload, namespace: ns, app, workload: p.workload, gateway: gw,
        }));
      }
    }
  };

  const link = (s: GNode, t: GNode, e: MetricEdge, traceService?: string) => {
    const id = `${s.id}->${t.id}`;
    let x = acc.get(id);
    if (!x) {
      x = { source: s.id, target: t.id, a: newAcc() };
      acc.set(id, x);
    }
    add(x.a, e);
    if (traceService) x.a.traceService = traceService;
    if (e.destination.service) x.a.destService = e.destination.service;
  };

  const injectServices = type === 'versionedApp' || type === 'workload';
  for (const e of edges) {
    if (e.requestRate <= 0 && e.tcpSentBytesRate + e.tcpReceivedBytesRate <= 0) continue;
    const s = peerNode(e.source, false);
    const t = peerNode(e.destination, true);
    const traceService = unknownPeer(e.source) ? undefined : `${appOf(e.source)}.${e.source.namespace}`;
    const svcName = e.destination.serviceName;
    if (injectServices && svcName) {
      const sns = e.destination.serviceNamespace || e.destination.namespace;
      const svc = node(`svc:${sns}/${svcName}`, () => ({
        kind: 'service', label: svcName, namespace: sns, service: svcName, app: svcName, gateway: false,
      }));
      link(s, svc, e, traceService);
      link(svc, t, e, `${appOf(e.destination)}.${e.destination.namespace}`);
    } else {
      link(s, t, e, traceService);
    }
    if (e.reporter === 'source' && !unknownPeer(e.destination)) {
      // Only the caller reported it: the destination has no sidecar.
      addBadge(t, 'nosidecar');
    }
  }

  const out: GEdge[] = [];
  for (const [id, { source, target, a }] of acc) {
    const l = a.lat[3] > 0 ? a.lat : null;
    out.push({
      id, source, target, rate: a.rate, e4xx: a.e4xx, e5xx: a.e5xx,
      p50: l ? l[0] / l[3] : null, p95: l ? l[1] / l[3] : null, p99: l ? l[2] / l[3] : null,
      mtls: a.rate > 0 ? a.mtls / a.rate : a.tcp > 0 ? a.mtls / a.tcp : 0,
      tcp: a.tcp, pct: 0, traceService: a.traceService, destService: a.destService,
    });
  }
  // Totals and the share of each edge in its source's outbound requests.
  for (const e of out) {
    const s = nodes.get(e.source)!;
    const t = nodes.get(e.target)!;
    s.outbound.rate += e.rate;
    s.outbound.e4xx += e.e4xx;
    s.outbound.e5xx += e.e5xx;
    t.inbound.rate += e.rate;
    t.inbound.e4xx += e.e4xx;
    t.inbound.e5xx += e.e5xx;
  }
  for (const e of out) {
    const s = nodes.get(e.source)!;
    e.pct = s.outbound.rate > 0 ? (100 * e.rate) / s.outbound.rate : 0;
  }
  for (const n of nodes.values()) {
    n.health = health(n.inbound.rate > 0 ? n.inbound : n.outbound);
    if (n.gateway) addBadge(n, 'gateway');
  }
  applyConfigBadges([...nodes.values()], config, type);
  // Boxes: the versions of one app share a box.
  if (type === 'versionedApp') {
    const versions = new Map<string, GNode[]>();
    for (const n of nodes.values()) {
      if (n.kind !== 'versionedApp') continue;
      const k = `${n.namespace}/${n.app}`;
      versions.set(k, [...(versions.get(k) ?? []), n]);
    }
    for (const [k, vs] of versions) {
      if (vs.length < 2) continue;
      const box = `box:${k}`;
      nodes.set(box, {
        id: box, kind: 'box', label: vs[0].app!, namespace: vs[0].namespace, app: vs[0].app, gateway: false,
        badges: [], inbound: zero(), outbound: zero(), health: 'idle', rank: 0,
      });
      for (const v of vs) v.parent = box;
    }
  }
  rank([...nodes.values()], out);
  return { nodes: [...nodes.values()], edges: out };
}

function zero(): Totals {
  return { rate: 0, e4xx: 0, e5xx: 0 };
}

function addBadge(n: GNode, id: Badge['id']) {
  if (!n.badges.some((b) => b.id === id)) n.badges.push(badgeInfo[id]);
}

// knownServices are the services of the registry (ServiceEntries), as ns/name.
function knownServices(config: ConfigObject[]): Set<string> {
  const s = new Set<string>();
  for (const o of config) {
    if (o.kind !== 'ServiceEntry') continue;
    for (const h of o.spec?.hosts ?? []) {
      const parts = String(h).split('.');
      s.add(`${parts[1] ?? o.metadata.namespace}/${parts[0]}`);
    }
  }
  return s;
}

// serviceKey resolves an Istio host as Istio does (short names in the
// object's namespace) to ns/name.
export function serviceKey(host: string, ns: string): string {
  const parts = host.split('.');
  if (parts.length === 1) return `${ns}/${host}`;
  return `${parts[1]}/${parts[0]}`;
}

// configBadges lists, per service (ns/name), the badges its VirtualServices
// and DestinationRules earn.
export function configBadges(config: ConfigObject[]): Map<string, Set<Badge['id']>> {
  const m = new Map<string, Set<Badge['id']>>();
  const put = (k: string, b: Badge['id']) => {
    let s = m.get(k);
    if (!s) m.set(k, (s = new Set()));
    s.add(b);
  };
  for (const o of config) {
    const ns = o.metadata.namespace;
    if (o.kind === 'VirtualService') {
      const gws: string[] = o.spec?.gateways ?? [];
      const mesh = gws.length === 0 || gws.includes('mesh');
      for (const h of o.spec?.hosts ?? []) {
        if (h === '*' || !mesh) continue;
        const k = serviceKey(h, ns);
        put(k, 'vs');
        for (const r of o.spec?.http ?? []) {
          const weighted = (r.route ?? []).filter((d: any) => d.weight !== undefined && d.weight > 0);
          if (weighted.length > 1) put(k, 'shift');
          if (r.fault) put(k, 'fault');
          if (r.timeout) put(k, 'timeout');
          if (r.retries && r.retries.attempts !== 0) put(k, 'retry');
          if (r.mirror || (r.mirrors && r.mirrors.length)) put(k, 'mirror');
        }
      }
    }
    if (o.kind === 'DestinationRule' && o.spec?.host) {
      const policies = [o.spec.trafficPolicy, ...(o.spec.subsets ?? []).map((s: any) => s.trafficPolicy)];
      for (const p of policies) {
        if (!p) continue;
        const port = (p.portLevelSettings ?? []).some((x: any) => x.connectionPool || x.outlierDetection);
        if (p.connectionPool || p.outlierDetection || port) put(serviceKey(o.spec.host, ns), 'cb');
      }
    }
  }
  return m;
}

function applyConfigBadges(nodes: GNode[], config: ConfigObject[], type: GraphType) {
  const m = configBadges(config);
  for (const n of nodes) {
    let key: string | undefined;
    if (n.kind === 'service') key = `${n.namespace}/${n.service}`;
    // Graphs without service nodes show a service's config on its app.
    else if (n.kind === 'app' && (type === 'app' || type === 'service')) key = `${n.namespace}/${n.app}`;
    if (!key) continue;
    for (const b of m.get(key) ?? []) addBadge(n, b);
  }
}

// rank lays nodes out in columns by their distance from the graph's entry
// points (nodes nothing calls), so traffic reads left to right.
function rank(nodes: GNode[], edges: GEdge[]) {
  const incoming = new Map<string, number>();
  const out = new Map<string, string[]>();
  for (const e of edges) {
    if (e.source === e.target) continue;
    incoming.set(e.target, (incoming.get(e.target) ?? 0) + 1);
    out.set(e.source, [...(out.get(e.source) ?? []), e.target]);
  }
  const real = nodes.filter((n) => n.kind !== 'box');
  let frontier = real.filter((n) => !incoming.get(n.id)).map((n) => n.id);
  if (frontier.length === 0 && real.length) frontier = [real[0].id];
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  // Longest path from an entry, bounded so that cycles end.
  for (let depth = 0; frontier.length && depth < real.length; depth++) {
    const next: string[] = [];
    for (const id of frontier) {
      const n = byId.get(id)!;
      n.rank = Math.max(n.rank, depth);
      seen.add(id);
      for (const t of out.get(id) ?? []) next.push(t);
    }
    frontier = [...new Set(next)];
  }
  for (const n of real) if (!seen.has(n.id)) n.rank = 0;
}

// The control plane's documented JSON API (docs/architecture.md), as the
// console uses it. The console is served on the same origin, so paths are
// relative.

import { loggedOut } from './auth';
export interface Peer {
  namespace: string;
  workload: string;
  app: string;
  version: string;
  service?: string;
  serviceName?: string;
  serviceNamespace?: string;
}

export interface Traffic {
  requestRate: number;
  errorRate4xx: number;
  errorRate5xx: number;
  latencyP50: number | null;
  latencyP95: number | null;
  latencyP99: number | null;
  mtlsShare: number;
  tcpSentBytesRate: number;
  tcpReceivedBytesRate: number;
}

export interface MetricEdge extends Traffic {
  source: Peer;
  destination: Peer;
  reporter: 'source' | 'destination';
}

export interface MetricNode {
  kind: 'workload' | 'service';
  namespace: string;
  name: string;
  app?: string;
  version?: string;
  service?: string;
  inbound: Traffic;
  outbound: Traffic;
}

export interface ChartLine {
  name: string;
  points: [number, number][];
}

export interface Chart {
  metric: string;
  unit: string;
  start: number;
  end: number;
  step: number;
  lines: ChartLine[];
}

export interface ConfigObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec?: any;
  source?: string;
}

export interface RevisionChange {
  kind: string;
  namespace: string;
  name: string;
  action: 'created' | 'configured' | 'deleted';
}

export interface Revision {
  revision: number;
  time: string;
  actor: string;
  changes: RevisionChange[];
}

export interface TypeStatus {
  subscribed: boolean;
  sent?: string;
  acked?: string;
  nacked?: string;
  status: string;
}

export interface ProxyStatus {
  id: string;
  name: string;
  /** The workload this proxy is an instance of (reviews-v2 for reviews-v2-1), as metrics name it. */
  workload: string;
  namespace: string;
  type: string;
  ip: string;
  adminAddress?: string;
  version?: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  service?: { name: string; ports?: { name: string; number: number; protocol: string }[] };
  connectedSince: string;
  streams: number;
  types: Record<string, TypeStatus>;
}

export interface AnalyzeMessage {
  code: string;
  name: string;
  level: string;
  message: string;
  origin: string;
  documentationUrl?: string;
  kind: string;
  namespace: string;
  objectName: string;
}

export interface Tag {
  key: string;
  type: string;
  value: any;
}

export interface Span {
  traceID: string;
  spanID: string;
  parentSpanID?: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  startTime: number; // µs
  duration: number; // µs
  tags: Tag[];
  processID: string;
  warnings: string[] | null;
}

export interface Trace {
  traceID: string;
  spans: Span[];
  processes: Record<string, { serviceName: string; tags: Tag[] }>;
}

export interface TraceSummary {
  traceID: string;
  rootService: string;
  rootOperation: string;
  start: string;
  duration: number; // ns
  spans: number;
  errors: number;
  services: string[];
}

export interface ChangeResponse {
  results: { kind: string; namespace: string; name: string; action: string }[];
  warnings?: string[];
  error?: string;
}

export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: string): Promise<T> {
  const resp = await fetch(path, {
    method,
    body,
    headers: body !== undefined ? { 'Content-Type': 'application/yaml' } : undefined,
  });
  const text = await resp.text();
  let data: any = undefined;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!resp.ok) {
    if (resp.status === 401) loggedOut();
    const msg = data?.error ?? (text || resp.statusText);
    throw new APIError(`${method} ${path}: HTTP ${resp.status}: ${msg}`, resp.status);
  }
  return data as T;
}

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export const api = {
  edges: (window: string, namespace?: string) =>
    request<{ window: string; edges: MetricEdge[] | null }>('GET', '/api/v1/metrics/edges' + qs({ window, namespace })).then(
      (r) => r.edges ?? [],
    ),
  nodes: (window: string, namespace?: string) =>
    request<{ window: string; nodes: MetricNode[] | null }>('GET', '/api/v1/metrics/nodes' + qs({ window, namespace })).then(
      (r) => r.nodes ?? [],
    ),
  series: (p: { workload?: string; service?: string; namespace?: string; direction?: string; metric: string; window: string }) =>
    request<Chart>('GET', '/api/v1/metrics/series' + qs(p)),
  config: (kind?: string) =>
    request<{ objects: ConfigObject[] }>('GET', '/api/v1/config' + qs({ kind })).then((r) => r.objects ?? []),
  configYAML: (kind: string, namespace: string, name: string) =>
    fetch('/api/v1/config' + qs({ kind, namespace, name, format: 'yaml' })).then((r) => r.text()),
  apply: (yaml: string) => request<ChangeResponse>('POST', '/api/v1/config?source=console', yaml),
  remove: (yaml: string) => request<ChangeResponse>('DELETE', '/api/v1/config?source=console', yaml),
  history: () => request<{ revisions: Revision[] | null }>('GET', '/api/v1/history').then((r) => r.revisions ?? []),
  diff: (from: number, to: number) => request<{ diff: string }>('GET', '/api/v1/diff' + qs({ from, to })).then((r) => r.diff),
  rollback: (revision: number) =>
    request<{ revision: number; results: ChangeResponse["results"] | null }>('POST', '/api/v1/rollback' + qs({ revision })),
  proxies: () => request<{ proxies: ProxyStatus[] | null }>('GET', '/api/v1/proxies').then((r) => r.proxies ?? []),
  analyze: () => request<{ messages: AnalyzeMessage[] }>('GET', '/api/v1/analyze').then((r) => r.messages ?? []),
  traceServices: () => request<{ data: string[] | null }>('GET', '/api/v1/services').then((r) => r.data ?? []),
  operations: (service: string) =>
    request<{ data: string[] | null }>('GET', `/api/v1/services/${encodeURIComponent(service)}/operations`).then(
      (r) => r.data ?? [],
    ),
  traces: (p: Record<string, string | number | undefined>) =>
    request<{ data: Trace[] | null; summaries: TraceSummary[] | null; total: number }>('GET', '/api/v1/traces' + qs(p)),
  trace: (id: string) =>
    request<{ data: Trace[] }>('GET', `/api/v1/traces/${encodeURIComponent(id)}`).then((r) => r.data[0]),
};

// Formatting shared by the pages.
export function fmtRate(r: number): string {
  if (r === 0) return '0';
  if (r < 0.01) return r.toFixed(3);
  if (r < 10) return r.toFixed(2);
  return r.toFixed(1);
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 10) return ms.toFixed(1) + ' ms';
  if (ms < 1000) return Math.round(ms) + ' ms';
  return (ms / 1000).toFixed(2) + ' s';
}

export function fmtPct(p: number): string {
  if (p === 0) return '0%';
  if (p < 1) return p.toFixed(1) + '%';
  return Math.round(p) + '%';
}

export function fmtBytes(b: number): string {
  if (b < 1024) return Math.round(b) + ' B';
  if (b < 1024 * 1024) return (b / 1024).toFixed(1) + ' KiB';
  return (b / 1024 / 1024).toFixed(1) + ' MiB';
}

export function fmtDurationUs(us: number): string {
  return fmtMs(us / 1000);
}

// Wizards: write routing config for a service through the control plane's
// API, showing the YAML before it is applied, and remove it again.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type ChangeResponse } from '../api';
import { authFor } from '../auth';
import { href, setParams, usePoll, type Route } from '../route';
import { check, wizardTitles, wizardYAML, type WizardInput, type WizardKind } from '../wizard';
import { ErrorBox } from './common';

const kinds = Object.keys(wizardTitles) as WizardKind[];

function defaults(service: string, namespace: string, versions: string[]): WizardInput {
  const weights: Record<string, number> = {};
  versions.forEach((v, i) => (weights[v] = Math.floor(100 / versions.length) + (i < 100 % versions.length ? 1 : 0)));
  return {
    service, namespace, versions, weights,
    header: 'end-user', matchType: 'exact', headerValue: 'jason', matchVersion: versions[1] ?? versions[0] ?? '', defaultVersion: versions[0] ?? '',
    delayPercent: 0, delay: '5s', abortPercent: 0, abortStatus: 503,
    timeout: '2s', attempts: 2, perTryTimeout: '1s', retryOn: 'gateway-error,connect-failure,refused-stream',
  };
}

export function WizardsPage({ route }: { route: Route }) {
  const ns = route.params.get('namespace') ?? 'default';
  const service = route.params.get('service') ?? '';
  const kind = (route.params.get('wizard') as WizardKind) ?? 'traffic-shifting';
  const d = usePoll(async () => {
    const [config, proxies] = await Promise.all([api.config(), api.proxies()]);
    return { config, proxies };
  }, []);
  const services = useMemo(
    () =>
      (d.data?.config ?? [])
        .filter((o) => o.kind === 'ServiceEntry' && o.metadata.namespace === ns)
        .map((o) => o.metadata.name)
        .sort(),
    [d.data, ns],
  );
  const versions = useMemo(
    () =>
      [...new Set((d.data?.proxies ?? []).filter((p) => p.namespace === ns && (p.labels?.app === service || p.service?.name === service)).map((p) => p.labels?.version).filter((v): v is string => !!v))].sort(),
    [d.data, ns, service],
  );
  const [input, setInput] = useState<WizardInput>(defaults(service, ns, versions));
  useEffect(() => setInput(defaults(service, ns, versions)), [service, ns, versions.join(',')]);
  // What the user may write here: the buttons go for a read-only user.
  const access = usePoll(() => authFor(ns), [ns]);
  const readOnly = access.data !== undefined && !access.data.write;
  const [result, setResult] = useState<{ ok?: ChangeResponse; error?: string; removed?: boolean }>({});
  useEffect(() => setResult({}), [service, kind]);
  const yaml = wizardYAML(input, kind);
  const problem = check(input, kind);
  const existing = (d.data?.config ?? []).filter(
    (o) => (o.kind === 'VirtualService' || o.kind === 'DestinationRule') && o.metadata.namespace === ns && o.metadata.name === service,
  );
  const set = <K extends keyof WizardInput>(k: K, v: WizardInput[K]) => setInput({ ...input, [k]: v });
  const num = (e: Event) => Number((e.target as HTMLInputElement).value);
  const str = (e: Event) => (e.target as HTMLInputElement).value;

  const apply = async () => {
    try {
      setResult({ ok: await api.apply(yaml) });
      d.reload();
    } catch (e: any) {
      setResult({ error: String(e.message ?? e) });
    }
  };
  const remove = async () => {
    try {
      // Delete what exists of the VirtualService and DestinationRule of this service.
      // DELETE takes the objects as YAML: send them as they are stored.
      const docs = await Promise.all(existing.map((o) => api.configYAML(o.kind, o.metadata.namespace, o.metadata.name)));
      const r = await api.remove(docs.map((d) => d.replace(/\n?$/, '\n')).join('---\n'));
      setResult({ ok: r, removed: true });
      d.reload();
    } catch (e: any) {
      setResult({ error: String(e.message ?? e) });
    }
  };

  return (
    <div class="page wizards">
      <div class="toolbar">
        <h1>Wizards</h1>
        <label>
          Service{' '}
          <select aria-label="Service" value={service} onChange={(e) => setParams(route, { service: str(e), namespace: ns })}>
            <option value="">pick a service</option>
            {services.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <span class="muted">namespace {ns}</span>
        {service && <a href={href(['services', ns, service])}>Service details →</a>}
      </div>
      <div class="tabs" role="tablist">
        {kinds.map((k) => (
          <button role="tab" aria-selected={k === kind} class={k === kind ? 'tab active' : 'tab'} onClick={() => setParams(route, { wizard: k })}>
            {wizardTitles[k]}
          </button>
        ))}
      </div>
      {d.error && <ErrorBox error={d.error} />}
      {!service && <div class="muted">Pick a service to route.</div>}
      {service && (
        <div class="wizard">
          <form class="wizard-form" aria-label={wizardTitles[kind]} onSubmit={(e) => e.preventDefault()}>
            <h2>{wizardTitles[kind]}: {service}</h2>
            <div class="muted">Versions: {versions.join(', ') || 'none found (no workloads with a version label)'}</div>
            {kind === 'traffic-shifting' &&
              versions.map((v) => (
                <label class="weight">
                  <span>Weight of {v}</span>
                  <input type="range" min="0" max="100" value={input.weights[v] ?? 0} aria-hidden="true" tabIndex={-1}
                    onInput={(e) => set('weights', { ...input.weights, [v]: num(e) })} />
                  <input type="number" min="0" max="100" aria-label={`Weight of ${v}`} value={input.weights[v] ?? 0}
                    onInput={(e) => set('weights', { ...input.weights, [v]: num(e) })} />
                  <span>%</span>
                </label>
              ))}
            {kind === 'request-routing' && (
              <>
                <label>Header <input value={input.header} onInput={(e) => set('header', str(e))} /></label>
                <label>
                  Match{' '}
                  <select value={input.matchType} onChange={(e) => set('matchType', str(e) as WizardInput['matchType'])}>
                    <option value="exact">exact</option>
                    <option value="prefix">prefix</option>
                    <option value="regex">regex</option>
                  </select>
                </label>
                <label>Value <input value={input.headerValue} onInput={(e) => set('headerValue', str(e))} /></label>
                <label>
                  Matching requests go to{' '}
                  <select value={input.matchVersion} onChange={(e) => set('matchVersion', str(e))}>
                    {versions.map((v) => <option value={v}>{v}</option>)}
                  </select>
                </label>
                <label>
                  Other requests go to{' '}
                  <select value={input.defaultVersion} onChange={(e) => set('defaultVersion', str(e))}>
                    <option value="">any version</option>
                    {versions.map((v) => <option value={v}>{v}</option>)}
                  </select>
                </label>
              </>
            )}
            {kind === 'fault-injection' && (
              <>
                <fieldset>
                  <legend>Delay</legend>
                  <label>Percentage <input type="number" min="0" max="100" value={input.delayPercent} onInput={(e) => set('delayPercent', num(e))} /></label>
                  <label>Fixed delay <input value={input.delay} onInput={(e) => set('delay', str(e))} /></label>
                </fieldset>
                <fieldset>
                  <legend>Abort</legend>
                  <label>Percentage <input type="number" min="0" max="100" value={input.abortPercent} onInput={(e) => set('abortPercent', num(e))} /></label>
                  <label>HTTP status <input type="number" min="200" max="599" value={input.abortStatus} onInput={(e) => set('abortStatus', num(e))} /></label>
                </fieldset>
              </>
            )}
            {kind === 'timeouts' && (
              <>
                <label>Request timeout <input value={input.timeout} placeholder="none" onInput={(e) => set('timeout', str(e))} /></label>
                <label>Retry attempts <input type="number" min="0" value={input.attempts} onInput={(e) => set('attempts', num(e))} /></label>
                <label>Per-try timeout <input value={input.perTryTimeout} onInput={(e) => set('perTryTimeout', str(e))} /></label>
                <label>Retry on <input value={input.retryOn} onInput={(e) => set('retryOn', str(e))} /></label>
              </>
            )}
            {problem && <div class="warn" role="status">{problem}</div>}
            {existing.length > 0 && (
              <div class="muted">
                Exists now: {existing.map((o) => `${o.kind} ${o.metadata.name}${o.metadata.labels?.['weft.io/wizard'] ? ` (${o.metadata.labels['weft.io/wizard']} wizard)` : ''}`).join(', ')}. Applying replaces it.
              </div>
            )}
            {readOnly ? (
              <div class="warn" role="status">
                Read-only: {access.data?.user} may not change VirtualServices and DestinationRules in namespace {ns}.
              </div>
            ) : (
              <div class="buttons">
                <button class="primary" type="button" disabled={!!problem || !access.data} onClick={apply}>Apply</button>
                <button class="danger" type="button" disabled={existing.length === 0 || !access.data} onClick={remove}>
                  Remove {service}'s routing config
                </button>
              </div>
            )}
            {result.error && <ErrorBox error={result.error} />}
            {result.ok && (
              <div class="ok" role="status">
                {result.ok.results.map((r) => `${r.kind} ${r.namespace}/${r.name} ${r.action}`).join('\n')}
                {result.ok.warnings?.length ? '\n\nAnalysis:\n' + result.ok.warnings.join('\n') : ''}
              </div>
            )}
          </form>
          <div class="wizard-yaml">
            <h2>YAML to apply</h2>
            <pre class="yaml" aria-label="Generated YAML">{yaml}</pre>
          </div>
        </div>
      )}
    </div>
  );
}

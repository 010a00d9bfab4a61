// The wizards' Istio YAML: a DestinationRule with a subset per version and
// a VirtualService, both named after the service and labelled with the
// wizard that wrote them (as Kiali's wizards do).

export type WizardKind = 'request-routing' | 'traffic-shifting' | 'fault-injection' | 'timeouts';

export const wizardTitles: Record<WizardKind, string> = {
  'request-routing': 'Request routing',
  'traffic-shifting': 'Traffic shifting',
  'fault-injection': 'Fault injection',
  timeouts: 'Timeouts and retries',
};

export interface WizardInput {
  service: string;
  namespace: string;
  versions: string[];
  // traffic shifting: version -> weight (percent)
  weights: Record<string, number>;
  // request routing
  header: string;
  matchType: 'exact' | 'prefix' | 'regex';
  headerValue: string;
  matchVersion: string;
  defaultVersion: string;
  // fault injection
  delayPercent: number;
  delay: string;
  abortPercent: number;
  abortStatus: number;
  // timeouts and retries
  timeout: string;
  attempts: number;
  perTryTimeout: string;
  retryOn: string;
}

// quote writes a YAML double-quoted string.
function quote(s: string): string {
  return JSON.stringify(s);
}

function meta(kind: string, w: WizardInput, wizard: WizardKind): string {
  return `apiVersion: networking.istio.io/v1
kind: ${kind}
metadata:
  name: ${w.service}
  namespace: ${w.namespace}
  labels:
    weft.io/wizard: ${wizard}
`;
}

export function destinationRule(w: WizardInput, wizard: WizardKind): string {
  return (
    meta('DestinationRule', w, wizard) +
    `spec:
  host: ${w.service}
  subsets:
${w.versions.map((v) => `  - name: ${v}\n    labels:\n      version: ${quote(v)}\n`).join('')}`
  );
}

function dest(w: WizardInput, version?: string, weight?: number): string {
  let s = `    - destination:\n        host: ${w.service}\n`;
  if (version) s += `        subset: ${version}\n`;
  if (weight !== undefined) s += `      weight: ${weight}\n`;
  return s;
}

export function virtualService(w: WizardInput, wizard: WizardKind): string {
  let http = '';
  switch (wizard) {
    case 'traffic-shifting': {
      const ws = w.versions.filter((v) => (w.weights[v] ?? 0) > 0);
      http = `  - route:\n${ws.map((v) => dest(w, v, w.weights[v])).join('')}`;
      break;
    }
    case 'request-routing':
      http =
        `  - match:\n    - headers:\n        ${quote(w.header)}:\n          ${w.matchType}: ${quote(w.headerValue)}\n    route:\n${dest(w, w.matchVersion)}` +
        `  - route:\n${dest(w, w.defaultVersion || undefined)}`;
      break;
    case 'fault-injection': {
      let fault = '';
      if (w.delayPercent > 0) fault += `      delay:\n        percentage:\n          value: ${w.delayPercent}\n        fixedDelay: ${w.delay}\n`;
      if (w.abortPercent > 0) fault += `      abort:\n        percentage:\n          value: ${w.abortPercent}\n        httpStatus: ${w.abortStatus}\n`;
      http = `  - fault:\n${fault}    route:\n${dest(w)}`;
      break;
    }
    case 'timeouts': {
      let extra = '';
      if (w.timeout) extra += `    timeout: ${w.timeout}\n`;
      extra += `    retries:\n      attempts: ${w.attempts}\n`;
      if (w.attempts > 0 && w.perTryTimeout) extra += `      perTryTimeout: ${w.perTryTimeout}\n`;
      if (w.attempts > 0 && w.retryOn) extra += `      retryOn: ${w.retryOn}\n`;
      http = `  - route:\n${dest(w)}${extra}`;
      break;
    }
  }
  return meta('VirtualService', w, wizard) + `spec:\n  hosts:\n  - ${w.service}\n  http:\n${http}`;
}

// yaml is the whole config a wizard writes: the subsets only when routes use them.
export function wizardYAML(w: WizardInput, wizard: WizardKind): string {
  const needsSubsets = wizard === 'traffic-shifting' || wizard === 'request-routing';
  return (needsSubsets ? destinationRule(w, wizard) + '---\n' : '') + virtualService(w, wizard);
}

// check returns what is wrong with the input, or '' when it can be applied.
export function check(w: WizardInput, wizard: WizardKind): string {
  if (!w.service) return 'Pick a service.';
  switch (wizard) {
    case 'traffic-shifting': {
      const sum = w.versions.reduce((a, v) => a + (w.weights[v] ?? 0), 0);
      if (w.versions.some((v) => (w.weights[v] ?? 0) < 0 || !Number.isInteger(w.weights[v] ?? 0))) return 'Weights are whole numbers from 0.';
      if (sum !== 100) return `Weights add up to ${sum}; they must add up to 100.`;
      return '';
    }
    case 'request-routing':
      if (!w.header || !w.headerValue) return 'Give the header and the value to match.';
      if (!w.matchVersion) return 'Pick the version matching requests go to.';
      return '';
    case 'fault-injection':
      if (w.delayPercent <= 0 && w.abortPercent <= 0) return 'Give a delay or an abort percentage.';
      if (w.delayPercent > 100 || w.abortPercent > 100) return 'Percentages are at most 100.';
      if (w.delayPercent > 0 && !/^\d+(\.\d+)?(ms|s|m|h)$/.test(w.delay)) return 'Delay is a duration such as 5s or 500ms.';
      if (w.abortPercent > 0 && (w.abortStatus < 200 || w.abortStatus > 599)) return 'Abort status is an HTTP status (200-599).';
      return '';
    case 'timeouts':
      if (w.timeout && !/^\d+(\.\d+)?(ms|s|m|h)$/.test(w.timeout)) return 'Timeout is a duration such as 2s.';
      if (w.attempts < 0) return 'Attempts are 0 or more.';
      return '';
  }
}

// Browser test of the console, in real headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core. test/e2e/console_test.go
// starts the demo with load and runs it:
//
//   WEFT_CONSOLE_URL=http://127.0.0.1:20001/ WEFT_SCREENSHOTS=DIR node web/tests/console.test.mjs
//
// It checks the graph (every Bookinfo workload with traffic), the traffic
// shifting wizard (50/50 v1/v3 moves the edges to about half each), a
// trace of a productpage request (at least four spans), and keeps a
// screenshot of each page at 1280x800. Exit code 0: passed; 1: failed.
// A step whose API is missing is skipped with a SKIP line naming it.

import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.WEFT_CONSOLE_URL ?? 'http://127.0.0.1:20001/').replace(/\/?$/, '/');
const shots = process.env.WEFT_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'weft-console-shots-'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(shots, { recursive: true });

// Bound of the traffic-shifting check: with 50/50 weights, each of
// reviews v1 and v3 gets 50% ± 12 points of the reviews service's requests
// over the 1-minute window, and v2 (weight 0) at most 3%.
const SHIFT_TOLERANCE = 12;
const V2_MAX = 3;

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
let failed = false;

async function poll(what, bound, fn) {
  const deadline = Date.now() + bound;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`waiting ${bound / 1000}s for ${what}: ${last?.message ?? 'condition not met'}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function shot(page, name) {
  const path = join(shots, name);
  await page.screenshot({ path });
  log('screenshot', path);
}

async function step(name, fn) {
  log('STEP', name);
  try {
    await fn();
    log('PASS', name);
  } catch (e) {
    failed = true;
    log('FAIL', name + ':', e.stack ?? e);
  }
}

// edgeRows reads the graph's edge table (the same data the canvas draws).
async function edgeRows(page) {
  return page.$$eval('[data-testid=graph-edges] tbody tr', (rows) =>
    rows.map((r) => ({ from: r.dataset.from, to: r.dataset.to, rate: Number(r.dataset.rate), pct: Number(r.dataset.pct) })),
  );
}

async function nodeRows(page) {
  return page.$$eval('[data-testid=graph-nodes] tbody tr', (rows) =>
    rows.map((r) => ({ label: r.getAttribute('aria-label'), rate: Number(r.dataset.rate) })),
  );
}

const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'weft-chromium-')), {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
const page = await ctx.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
page.on('dialog', (d) => d.accept());

const graphURL = base + '#/graph?namespace=default&type=versionedApp&window=1m&refresh=5000';
const bookinfo = ['productpage v1', 'details v1', 'reviews v1', 'reviews v2', 'reviews v3', 'ratings v1'];

await step('graph shows every Bookinfo workload with traffic', async () => {
  await page.goto(graphURL);
  const nodes = await poll('the six Bookinfo workloads with non-zero rates', 120_000, async () => {
    const ns = await nodeRows(page);
    const ok = bookinfo.every((b) => ns.some((n) => n.label?.startsWith(b + ':') && n.rate > 0));
    return ok && ns;
  });
  for (const b of bookinfo) log('  node', nodes.find((n) => n.label.startsWith(b + ':')).label);
  const edges = await edgeRows(page);
  for (const e of edges) log(`  edge ${e.from} -> ${e.to}: ${e.rate.toFixed(2)} rps, ${e.pct.toFixed(0)}%`);
  // The canvas is drawn too.
  if ((await page.locator('.cy canvas').count()) === 0) throw new Error('no graph canvas');
  await shot(page, 'graph.png');
  await page.getByRole('button', { name: 'reviews (service)', exact: true }).first().click();
  await page.locator('.side-panel').waitFor();
  await shot(page, 'graph-side-panel.png');
});

await step('lists: services, workloads and config with analysis', async () => {
  await page.goto(base + '#/services');
  await page.locator('[data-testid=services] tbody tr').first().waitFor();
  for (const s of ['productpage', 'details', 'reviews', 'ratings']) {
    await page.getByRole('row', { name: `service ${s}`, exact: true }).waitFor();
  }
  await shot(page, 'services.png');
  await page.goto(base + '#/workloads');
  // Workloads as metrics name them (reviews-v2), their instances beside them.
  await page.getByRole('row', { name: 'workload reviews-v2', exact: true }).waitFor();
  await shot(page, 'workloads.png');
  await page.goto(base + '#/services/default/reviews');
  await page.locator('.chart').first().waitFor();
  await poll('the request volume chart', 30_000, async () => (await page.locator('.chart svg polyline').count()) > 0);
  await shot(page, 'service-reviews.png');
  await page.goto(base + '#/config');
  await page.locator('[data-testid=config] tbody tr').first().waitFor();
  await page.getByRole('button', { name: 'bookinfo-gateway' }).click();
  await page.locator('pre.yaml').waitFor();
  await poll('the YAML', 10_000, async () => (await page.locator('pre.yaml').textContent()).includes('kind: Gateway'));
  await shot(page, 'config.png');
});

await step('traffic shifting wizard: 50/50 v1/v3', async () => {
  await page.goto(base + '#/wizards?service=reviews&namespace=default&wizard=traffic-shifting');
  await page.getByLabel('Weight of v3', { exact: true }).waitFor();
  await page.getByLabel('Weight of v1', { exact: true }).fill('50');
  await page.getByLabel('Weight of v2', { exact: true }).fill('0');
  await page.getByLabel('Weight of v3', { exact: true }).fill('50');
  const yaml = await page.getByLabel('Generated YAML').textContent();
  for (const want of ['kind: DestinationRule', 'kind: VirtualService', 'subset: v1', 'weight: 50', 'subset: v3']) {
    if (!yaml.includes(want)) throw new Error(`generated YAML lacks ${want}:\n${yaml}`);
  }
  if (yaml.includes('subset: v2\n')) throw new Error('weight 0 should leave v2 out of the routes');
  await shot(page, 'wizard-traffic-shifting.png');
  await page.getByRole('button', { name: 'Apply' }).click();
  const status = await page.locator('.ok[role=status]').textContent({ timeout: 15_000 });
  log('  applied:', status.replace(/\n/g, '; '));
  if (!/VirtualService default\/reviews (created|configured)/.test(status)) throw new Error('apply did not create the VirtualService: ' + status);

  await page.goto(graphURL);
  const split = await poll(`reviews v1 and v3 at 50% ± ${SHIFT_TOLERANCE} and v2 under ${V2_MAX}% over the last minute`, 180_000, async () => {
    const es = (await edgeRows(page)).filter((e) => e.from === 'reviews (service)');
    const pct = (v) => es.find((e) => e.to === `reviews ${v}`)?.pct ?? 0;
    const [v1, v2, v3] = [pct('v1'), pct('v2'), pct('v3')];
    log(`  reviews -> v1 ${v1.toFixed(1)}%, v2 ${v2.toFixed(1)}%, v3 ${v3.toFixed(1)}%`);
    return Math.abs(v1 - 50) <= SHIFT_TOLERANCE && Math.abs(v3 - 50) <= SHIFT_TOLERANCE && v2 <= V2_MAX && { v1, v2, v3 };
  });
  log(`  settled: v1 ${split.v1.toFixed(1)}%, v3 ${split.v3.toFixed(1)}%`);
  await shot(page, 'graph-after-shift.png');
  // The service shows its VirtualService and traffic shifting badges.
  const badges = await page.locator('[data-node="svc:default/reviews"] .badge').allTextContents();
  if (!badges.includes('VS') || !badges.includes('split')) throw new Error('reviews lacks the VS/split badges: ' + badges);

  // And the wizard removes it again.
  await page.goto(base + '#/wizards?service=reviews&namespace=default&wizard=traffic-shifting');
  await page.getByRole('button', { name: "Remove reviews's routing config" }).click();
  const removed = await page.locator('.ok[role=status]').textContent({ timeout: 15_000 });
  if (!removed.includes('VirtualService default/reviews deleted')) throw new Error('remove: ' + removed);
});

await step('config history: the wizard changes, their diff, a rollback and its undo', async () => {
  await page.goto(base + '#/history');
  await page.locator('[data-testid=history] tbody tr').first().waitFor();
  // Newest first: the wizard's removal, then its apply.
  let rows = [];
  await poll('the wizard\'s removal as the newest revision', 20_000, async () => {
    rows = await page.locator('[data-testid=history] tbody tr').allTextContents();
    return rows[0]?.includes('deleted VirtualService default/reviews');
  }).catch((e) => {
    throw new Error(`${e.message}; history: ${rows.join(' | ')}`);
  });
  const revs = await page
    .locator('[data-testid=history] tbody tr')
    .evaluateAll((trs) => trs.map((tr) => ({ rev: tr.cells[0].textContent.trim(), changes: tr.cells[3].textContent })));
  const applied = revs.find((r) => r.changes.includes('created VirtualService default/reviews'));
  if (!applied) throw new Error('no revision of the wizard\'s apply in ' + rows.join(' | '));
  const rev = applied.rev;
  log(`  the wizard's apply is revision ${rev}`);
  await page.getByRole('button', { name: rev, exact: true }).click();
  const diff = page.getByLabel(`diff of revision ${rev}`);
  await poll('the diff of the wizard\'s apply', 10_000, async () => (await diff.textContent()).includes('+      weight: 50'));
  await shot(page, 'history.png');
  log('  diff shown');
  // Roll back to it: the 50/50 VirtualService is back; roll back the rollback.
  await page.getByRole('button', { name: `Roll back to revision ${rev}` }).click();
  const done = await page.locator('.ok[role=status]').textContent({ timeout: 15_000 });
  const made = done.match(/as revision (\d+)/);
  if (!made) throw new Error('rollback: ' + done);
  log('  ' + done);
  await page.goto(base + '#/config');
  await page.getByRole('row', { name: 'VirtualService default/reviews' }).waitFor({ timeout: 15_000 });
  log('  the VirtualService is back');
  // The request volume chart marks the revisions it spans.
  await page.goto(base + '#/services/default/reviews');
  await poll('a revision marked on the charts', 60_000, async () => (await page.locator('.chart svg line.revision').count()) > 0);
  await page.goto(base + '#/history?revision=' + (Number(made[1]) - 1));
  await page.getByRole('button', { name: `Roll back to revision ${Number(made[1]) - 1}` }).click();
  await page.locator('.ok[role=status]').waitFor({ timeout: 15_000 });
  const cfg = await (await fetch(base + 'api/v1/config?kind=VirtualService&namespace=default&name=reviews')).json();
  if ((cfg.objects ?? []).length !== 0) throw new Error('undoing the rollback left the VirtualService: ' + JSON.stringify(cfg));
});

await step('a trace of a productpage request has at least four spans', async () => {
  const probe = await page.request.get(base + 'api/v1/services');
  if (probe.status() === 404) {
    log('SKIP traces: GET /api/v1/services answers 404 (the trace query API of internal/controlplane/telemetry/traces is missing)');
    return;
  }
  await page.goto(base + '#/traces?service=productpage.default&lookback=15m&limit=20');
  const link = page.locator('[data-testid=trace-results] tbody tr a').first();
  await link.waitFor({ timeout: 30_000 });
  await shot(page, 'traces.png');
  await link.click();
  const count = await page.getByTestId('span-count').textContent({ timeout: 15_000 });
  const n = parseInt(count, 10);
  log('  trace:', count);
  if (!(n >= 4)) throw new Error(`want at least 4 spans, got ${count}`);
  await page.locator('.wf-row').nth(1).click();
  await page.locator('.wf-detail').waitFor();
  await shot(page, 'trace.png');
});

await ctx.close();
const real = pageErrors.filter((e) => !/favicon/.test(e));
if (real.length) {
  failed = true;
  log('FAIL page errors:', real.join('\n'));
}
log(failed ? 'FAILED' : 'PASSED', '— screenshots in', shots);
process.exit(failed ? 1 : 0);

// Browser test of the console with proxyless gRPC workloads, in headless
// Chromium driven by playwright-core. test/e2e/console_test.go starts
// `weft demo --app temperature --proxyless` and runs it:
//
//   WEFT_CONSOLE_URL=http://127.0.0.1:20001/ WEFT_SCREENSHOTS=DIR node web/tests/proxyless.test.mjs
//
// The workload list shows the temperature API and both converters, each
// marked "proxyless gRPC" and synced, and their pages say they have no
// data plane beside them and list the xDS types their clients subscribed to.
// Exit code 0: passed; 1: failed.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.WEFT_CONSOLE_URL ?? 'http://127.0.0.1:20001/').replace(/\/?$/, '/');
const shots = process.env.WEFT_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'weft-proxyless-shots-'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(shots, { recursive: true });

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
const ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'weft-chromium-')), {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
const page = await ctx.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
let failed = false;
try {
  await page.goto(base + '#/workloads');
  for (const w of ['temperature-v1', 'converter-v1', 'converter-v2']) {
    const row = page.getByRole('row', { name: `workload ${w}`, exact: true });
    await row.waitFor({ timeout: 30_000 });
    const type = await row.getByTestId('proxyless').textContent({ timeout: 5_000 });
    if (type.trim() !== 'proxyless gRPC') throw new Error(`${w}: type ${JSON.stringify(type)}, want proxyless gRPC`);
    await row.locator('.sync-ok').waitFor({ timeout: 30_000 });
    log('PASS', w, 'listed as proxyless gRPC, synced');
  }
  await page.screenshot({ path: join(shots, 'workloads-proxyless.png') });
  // The API's client asks for its listener, routes, clusters and
  // endpoints; a converter (a server) for its inbound listener only.
  for (const [w, want] of [['temperature-v1', ['Listener', 'RouteConfiguration', 'Cluster', 'ClusterLoadAssignment']], ['converter-v2', ['Listener']]]) {
    await page.goto(base + `#/workloads/default/${w}`);
    await page.getByRole('row', { name: /Data plane/ }).waitFor({ timeout: 15_000 });
    const types = await page.locator('[data-testid=proxy-sync] tbody tr td:first-child').allTextContents();
    if (want.some((t) => !types.includes(t))) throw new Error(`${w} subscribed types ${JSON.stringify(types)}, want ${want}`);
    await page.screenshot({ path: join(shots, `workload-${w}.png`) });
    log('PASS', w, 'page: no data plane beside the app, types', types.join(' '));
  }
  if (pageErrors.length) throw new Error('page errors: ' + pageErrors.join('\n'));
} catch (e) {
  failed = true;
  log('FAIL', e.stack ?? e);
}
await ctx.close();
log(failed ? 'FAILED' : 'PASSED', '— screenshots in', shots);
process.exit(failed ? 1 : 0);

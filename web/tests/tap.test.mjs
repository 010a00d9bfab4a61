// Browser test of the console's live tap view, in headless Chromium
// driven by playwright-core. test/e2e/console_tap_test.go starts the demo
// with no load, sends product pages whose x-request-id start with
// WEFT_TAP_PREFIX (and credentials WEFT_TAP_SECRETS in authorization and
// cookie), and runs:
//
//   WEFT_CONSOLE_URL=… WEFT_TAP_PREFIX=… WEFT_TAP_SECRETS=a,b WEFT_SCREENSHOTS=DIR node web/tests/tap.test.mjs
//
// On productpage-v1's workload page it starts a tap filtered to
// /productpage and checks the rows are the test's requests and only them,
// inbound GET /productpage 200, with no credential shown; then it stops
// the tap. Exit code 0: passed; 1: failed.

import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.WEFT_CONSOLE_URL ?? 'http://127.0.0.1:20001/').replace(/\/?$/, '/');
const prefix = process.env.WEFT_TAP_PREFIX ?? 'tap-console-';
const secrets = (process.env.WEFT_TAP_SECRETS ?? '').split(',').filter(Boolean);
const shots = process.env.WEFT_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'weft-tap-shots-'));
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(shots, { recursive: true });

const log = (...a) => console.log(new Date().toISOString().slice(11, 19), ...a);
let failed = false;

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

try {
  log('STEP live tap of productpage-v1');
  await page.goto(base + '#/workloads/default/productpage-v1');
  await page.getByTestId('tap').waitFor({ timeout: 30_000 });
  await page.getByLabel('Path prefix').fill('/productpage');
  await page.getByRole('button', { name: 'Start tap' }).click();
  await page.getByTestId('tap-state').filter({ hasText: 'tapping' }).waitFor({ timeout: 10_000 });
  const rows = page.locator('[data-testid=tap-rows] tbody tr');
  const deadline = Date.now() + 30_000;
  while ((await rows.count()) < 5) {
    if (Date.now() > deadline) throw new Error(`want 5 tapped requests within 30s, got ${await rows.count()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await page.getByRole('button', { name: 'Stop tap' }).click();
  await page.getByTestId('tap-state').filter({ hasText: 'stopped' }).waitFor({ timeout: 10_000 });
  const got = await rows.evaluateAll((trs) =>
    trs.map((tr) => ({ id: tr.dataset.requestId, cells: [...tr.querySelectorAll('td')].map((td) => td.textContent) })),
  );
  for (const r of got) {
    log('  row', r.cells.join(' | '));
    const [, proxy, dir, srcDst, method, , path, status] = r.cells;
    if (!r.id.startsWith(prefix)) throw new Error(`the tap showed a request the test did not make: ${r.cells.join(' | ')}`);
    if (!proxy.startsWith('productpage-v1') || dir !== 'in' || !srcDst.endsWith('→ productpage-v1') || method !== 'GET' ||
        path !== '/productpage' || status !== '200') {
      throw new Error(`want an inbound GET /productpage 200 to productpage-v1, got ${r.cells.join(' | ')}`);
    }
  }
  const text = await page.locator('body').innerText();
  for (const s of secrets) if (text.includes(s)) throw new Error(`the tap view shows a credential: ${s}`);
  // Stopped means stopped: no row arrives after Stop.
  const n = await rows.count();
  await new Promise((r) => setTimeout(r, 1500));
  if ((await rows.count()) !== n) throw new Error('rows kept arriving after Stop tap');
  await page.screenshot({ path: join(shots, 'tap.png'), fullPage: true });
  log('PASS live tap of productpage-v1:', got.length, 'requests');
} catch (e) {
  failed = true;
  log('FAIL live tap:', e.stack ?? e);
  await page.screenshot({ path: join(shots, 'tap-failed.png'), fullPage: true }).catch(() => {});
}

await ctx.close();
const real = pageErrors.filter((e) => !/favicon/.test(e));
if (real.length) {
  failed = true;
  log('FAIL page errors:', real.join('\n'));
}
log(failed ? 'FAILED' : 'PASSED', '— screenshots in', shots);
process.exit(failed ? 1 : 0);

// Browser test of the console's login (the token strategy), in headless
// Chromium driven by playwright-core. test/e2e/console_test.go starts a
// control plane with --console-auth token and runs it:
//
//   WEFT_CONSOLE_URL=http://127.0.0.1:20001/ WEFT_ADMIN_TOKEN=weft-admin.… node web/tests/login.test.mjs
//
// Before a login the page shows only the login form; a wrong token is
// refused with a message; the admin token opens the console with its
// wizards; "Log out" brings the form back. Exit code 0: passed; 1: failed.

import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = (process.env.WEFT_CONSOLE_URL ?? 'http://127.0.0.1:20001/').replace(/\/?$/, '/');
const token = process.env.WEFT_ADMIN_TOKEN ?? '';
const shots = process.env.WEFT_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'weft-login-shots-'));
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
let failed = false;
try {
  await page.goto(base);
  const form = page.getByRole('form', { name: 'Log in' });
  await form.waitFor({ timeout: 15_000 });
  if (await page.getByRole('navigation', { name: 'Pages' }).count()) throw new Error('the pages are shown before a login');
  await page.screenshot({ path: join(shots, 'login.png') });
  log('PASS login form shown');

  await page.getByLabel('Token').fill('weft-admin.wrong');
  await page.getByRole('button', { name: 'Log in' }).click();
  const alert = await page.getByRole('alert').textContent({ timeout: 10_000 });
  if (!/login refused/.test(alert)) throw new Error(`wrong token: alert ${JSON.stringify(alert)}, want "login refused"`);
  log('PASS wrong token refused:', alert);

  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  const nav = page.getByRole('navigation', { name: 'Pages' });
  await nav.waitFor({ timeout: 15_000 });
  await nav.getByRole('link', { name: 'Wizards' }).waitFor({ timeout: 10_000 });
  const who = await page.locator('.whoami').textContent();
  if (!who.includes('weft-admin')) throw new Error(`masthead says ${JSON.stringify(who)}, want weft-admin`);
  await page.screenshot({ path: join(shots, 'logged-in.png') });
  log('PASS the admin token opens the console with its wizards');

  // A reload keeps the login (the cookie); logging out forgets it.
  await page.reload();
  await nav.waitFor({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Log out' }).click();
  await form.waitFor({ timeout: 10_000 });
  await page.reload();
  await form.waitFor({ timeout: 10_000 });
  log('PASS log out');
} catch (e) {
  failed = true;
  log('FAIL', e.stack ?? e);
}
await ctx.close();
log(failed ? 'FAILED' : 'PASSED', '— screenshots in', shots);
process.exit(failed ? 1 : 0);

// Browser test of the dashboard: starts the real `longrun serve` (demo config, then a config
// with two tokens), drives Debian's chromium with playwright-core, and fails on any failure.
//
//   LONGRUN_BIN=target/debug/longrun node dashboard.test.mjs
//
// Saves a screenshot of the list with running tasks to docs/dashboard.png.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const bin = path.resolve(root, process.env.LONGRUN_BIN || 'target/debug/longrun');
const browserPath = process.env.CHROMIUM || '/usr/bin/chromium';
const servers = [];
const temps = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `longrun serve` and waits for /healthz. */
async function serve(config) {
  const port = await freePort();
  const data = mkdtempSync(path.join(os.tmpdir(), 'longrun-dashboard-'));
  temps.push(data);
  const child = spawn(bin, ['serve', '--config', config, '--data', data, '--listen', `127.0.0.1:${port}`], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' },
  });
  let log = '';
  child.stderr.on('data', (chunk) => { log += chunk; });
  servers.push(child);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i += 1) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(base + '/healthz')).ok) return base;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not come up:\n${log}`);
}

async function start(base, body, tok) {
  const headers = { 'content-type': 'application/json' };
  if (tok) headers.authorization = 'Bearer ' + tok;
  const response = await fetch(base + '/v1/tasks', { method: 'POST', headers, body: JSON.stringify(body) });
  assert.equal(response.status, 201, await response.clone().text());
  return response.json();
}

/** Waits until the list shows `n` rows; says how many it shows if it never does. */
async function rows(page, n) {
  try {
    await page.waitForFunction((k) => document.querySelectorAll('tbody tr').length === k, n, { timeout: 10000 });
  } catch (e) {
    const shown = await page.locator('tbody tr').allInnerTexts();
    throw new Error(`expected ${n} rows, the list shows ${shown.length}:\n${shown.join('\n')}`);
  }
}

function step(name) {
  console.log('· ' + name);
}

async function main() {
  const browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
  try {
    const pageErrors = [];
    const base = await serve(path.join(root, 'examples/demo/longrun.toml'));
    const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));

    step('assets are served with their content types');
    const index = await fetch(base + '/');
    assert.equal(index.headers.get('content-type'), 'text/html; charset=utf-8');
    const js = await fetch(base + '/assets/app.js');
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal((await fetch(base + '/no-such-page')).status, 404);

    step('start countdown with confirm from the generated form');
    await page.goto(base + '/#/start');
    await page.getByTestId('kind').selectOption('countdown');
    await page.locator('[data-field="seconds"] input').fill('4');
    await page.locator('[data-field="confirm"] input[type=checkbox]').check();
    await page.getByTestId('start').click();
    await page.waitForURL(/#\/task\/task_/);
    const taskId = page.url().split('#/task/')[1];

    step('its bar moves');
    const bar = page.locator('.card .bar').first();
    await page.waitForFunction(() => {
      const b = document.querySelector('.card .bar');
      return b && b.dataset.percent !== '' && Number(b.dataset.percent) > 0;
    }, null, { timeout: 15000 });
    assert.ok(Number(await bar.getAttribute('data-percent')) > 0);

    step('answer the question in the generated form');
    const question = page.locator('form[data-question="confirm"]');
    await question.waitFor({ timeout: 15000 });
    await question.getByLabel('Yes').check();
    await question.getByTestId('answer').click();
    await page.locator('.meta [data-testid=status]', { hasText: 'completed' }).waitFor({ timeout: 15000 });
    const outcome = await page.getByTestId('outcome').innerText();
    assert.match(outcome, /counted down 4 s/);
    const timeline = await page.getByTestId('timeline').innerText();
    assert.match(timeline, /answered confirm: true/);
    assert.match(timeline, /ended completed/);

    step('the list shows running tasks live');
    const running = [];
    for (const seconds of [20, 60, 120]) {
      running.push(await start(base, { kind: 'countdown', input: { seconds }, session: 'demo', labels: { batch: 'b1' } }));
    }
    await start(base, { kind: 'echo', input: { hello: 'world' } });
    await start(base, { kind: 'fail', input: {} });
    await page.goto(base + '/#/');
    for (const t of running) {
      await page.locator(`tr[data-task="${t.id}"][data-status="working"]`).waitFor({ timeout: 15000 });
    }
    // A task started after the page loaded arrives over /v1/events.
    const late = await start(base, { kind: 'countdown', input: { seconds: 120 }, session: 'late' });
    await page.locator(`tr[data-task="${late.id}"]`).waitFor({ timeout: 10000 });
    running.push(late);
    await page.waitForFunction((id) => {
      const b = document.querySelector(`tr[data-task="${id}"] .bar`);
      return b && Number(b.dataset.percent) > 0;
    }, running[0].id, { timeout: 15000 });
    assert.equal(await page.locator(`tr[data-task="${taskId}"][data-status="completed"]`).count(), 1);

    step('filters');
    await page.getByTestId('filter-status').selectOption('working');
    await rows(page, 4);
    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('filter-label').fill('batch:b1');
    await rows(page, 3);
    await page.getByTestId('filter-label').fill('');
    await page.getByTestId('filter-kind').selectOption('echo');
    await rows(page, 1);
    await page.getByTestId('filter-kind').selectOption('');
    await page.getByTestId('filter-session').fill('late');
    await rows(page, 1);
    await page.getByTestId('filter-session').fill('');
    await rows(page, 7);

    step('screenshot of the list → docs/dashboard.png');
    await page.locator('h1').click(); // no focus ring in the picture
    await page.waitForTimeout(3000);
    assert.equal(await page.getByTestId('token-form').isVisible(), false, 'anonymous server: no token field');
    await page.screenshot({ path: path.join(root, 'docs/dashboard.png') });

    step('cancel a running task from its page');
    await page.locator(`tr[data-task="${running[1].id}"] a`).click();
    await page.getByTestId('cancel').waitFor();
    await page.getByTestId('cancel').click();
    await page.locator('.meta [data-testid=status]', { hasText: 'cancelled' }).waitFor({ timeout: 15000 });
    assert.match(await page.getByTestId('outcome').innerText(), /requested/);
    assert.equal(await page.getByTestId('cancel').isHidden(), true);
    const after = await (await fetch(`${base}/v1/tasks/${running[1].id}`)).json();
    assert.equal(after.status, 'cancelled');

    step('a saved step is one collapsed line in the timeline, its value shown when opened');
    const agent = await start(base, { kind: 'agent', input: { calls: 2, pause_ms: 0 } });
    await page.goto(`${base}/#/task/${agent.id}`);
    await page.locator('.meta [data-testid=status]', { hasText: 'completed' }).waitFor({ timeout: 15000 });
    const saved = page.locator('[data-testid=timeline] li[data-type=step_saved]');
    await saved.nth(1).waitFor({ timeout: 10000 });
    const first = saved.filter({ has: page.locator('details[data-key="call-1"]') });
    const summaryLine = await first.locator('summary').innerText();
    assert.match(summaryLine, /^step call-1 saved \(\d+ B\)$/);
    assert.equal(await first.locator('details').getAttribute('open'), null, 'collapsed at first');
    assert.equal(await first.getByTestId('step-value').count(), 0, 'the value is not on the page until asked for');
    assert.doesNotMatch(await page.getByTestId('timeline').innerText(), /answer 1/);
    await first.locator('summary').click();
    const value = first.getByTestId('step-value');
    await value.waitFor({ timeout: 5000 });
    assert.deepEqual(JSON.parse(await value.innerText()), { reply: 'answer 1', seen: 0 });

    step('API errors are shown plainly');
    await page.goto(base + '/#/task/task_00000000000000000000000000000000');
    await page.getByTestId('error').waitFor();
    assert.match(await page.getByTestId('error').innerText(), /404/);

    assert.deepEqual(pageErrors, []);
    await context.close();

    step('a second principal does not see the first one\'s tasks');
    const authBase = await serve(path.join(here, 'longrun.toml'));
    const mine = await start(authBase, { kind: 'countdown', input: { seconds: 60 } }, 'alice-secret-token');
    const bobContext = await browser.newContext();
    const bob = await bobContext.newPage();
    bob.on('pageerror', (e) => pageErrors.push(e.message));
    await bob.goto(authBase + '/');
    await bob.getByTestId('token-input').waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await bob.getByTestId('error').innerText(), /401/);
    await bob.getByTestId('token-input').fill('bob-secret-token');
    await bob.getByTestId('token-save').click();
    await bob.getByTestId('count').filter({ hasText: '0 of 0 tasks' }).waitFor({ timeout: 10000 });
    await bob.goto(`${authBase}/#/task/${mine.id}`);
    await bob.getByTestId('error').waitFor();
    assert.match(await bob.getByTestId('error').innerText(), /404/);
    // The same page with alice's token (kept in localStorage) shows her task.
    await bob.goto(authBase + '/#/');
    await bob.getByTestId('token-toggle').click().catch(() => {});
    await bob.evaluate(() => localStorage.setItem('longrun.token', 'alice-secret-token'));
    await bob.reload();
    await bob.locator(`tr[data-task="${mine.id}"]`).waitFor({ timeout: 10000 });

    step('workers: the list and the task page show the worker running a task');
    const asAlice = { 'content-type': 'application/json', authorization: 'Bearer alice-secret-token' };
    const registered = await fetch(authBase + '/v1/workers', {
      method: 'POST', headers: asAlice,
      body: JSON.stringify({ name: 'browser-test-worker', capacity: 2, kinds: [{ name: 'research' }] }),
    });
    assert.equal(registered.status, 201, await registered.clone().text());
    const { worker } = await registered.json();
    const job = await start(authBase, { kind: 'research', input: { topic: 'tides' } }, 'alice-secret-token');
    await bob.goto(authBase + '/#/workers');
    await bob.locator(`tr[data-worker="${worker}"]`).filter({ hasText: job.id }).waitFor({ timeout: 10000 });
    await bob.goto(`${authBase}/#/task/${job.id}`);
    await bob.getByTestId('task-worker').filter({ hasText: worker }).waitFor({ timeout: 10000 });
    assert.deepEqual(pageErrors, []);
    await bobContext.close();
    console.log('ok: dashboard browser test passed');
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  console.error('FAILED:', e);
  process.exitCode = 1;
} finally {
  for (const child of servers) child.kill('SIGKILL');
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
}

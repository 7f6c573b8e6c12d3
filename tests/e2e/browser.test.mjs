// browser.test.mjs - the web pages in Debian's headless Chromium, driven by playwright-core:
// the dashboard follows queue-status live, the customer page follows its topic document
// (waiting -> assigned -> completed), and a stream cut by a server restart heals without a
// reload. Screenshots of both pages go to test-output/ at the repository root.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startServerAnyPort as startServer, tassa, postForm } from './lib/server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, '../../test-output');
const skip = existsSync(CHROMIUM) ? false
  : `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`;

const sid = (prefix) => prefix + randomBytes(16).toString('hex');

describe('web pages in Chromium', { skip }, () => {
  let server;
  let context;
  let profile;

  // Writes queue-status through the Sync REST API (create, then update).
  async function writeQueueStatus(data) {
    const headers = { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' };
    const body = new URLSearchParams({ Data: JSON.stringify(data) }).toString();
    let r = await fetch(`${server.url}/v1/Services/default/Documents/queue-status`, { method: 'POST', headers, body });
    if (r.status === 404) {
      r = await fetch(`${server.url}/v1/Services/default/Documents`, {
        method: 'POST', headers, body: `${body}&UniqueName=queue-status`,
      });
    }
    assert.ok(r.ok, `queue-status write: ${r.status} ${await r.text()}`);
  }

  // Posts a TaskRouter event to /general/router (the server runs without signature checks).
  async function routerEvent(type, params) {
    const res = await postForm(`${server.url}/general/router`, {
      EventType: type, Sid: sid('EV'), Timestamp: String(Math.floor(Date.now() / 1000)),
      AccountSid: server.creds.accountSid, ...params,
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  const userToken = (id) =>
    tassa(['user-token', id, '--data', server.dataFile], { cwd: server.dataDir }).trim();

  const status = (data) => ({
    pendingTasks: [], eligibleTellers: [], pendingCount: 0, tellerCount: 0, byQueue: {},
    lastUpdated: new Date().toISOString(), ...data,
  });

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    server = await startServer({ env: { TASSA_VERIFY_SIGNATURE: 'false' } });
    const { chromium } = await import('playwright-core');
    profile = mkdtempSync(join(tmpdir(), 'tassa-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
  });

  after(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await server?.stop();
    server?.cleanup();
  });

  test('dashboard: a new task shows within one second, ticks, and goes when assigned', async () => {
    const ann = { sid: sid('WK'), name: 'Teller Ann', activity: 'available' };
    const bob = { sid: sid('WK'), name: 'Teller Bob', activity: 'in-call' };
    await writeQueueStatus(status({ eligibleTellers: [ann, bob], tellerCount: 2 }));
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/?token=${encodeURIComponent(userToken('supervisor'))}&identity=supervisor`);
    await page.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 5000 });
    assert.ok(!page.url().includes('token='), 'the token is removed from the address bar');
    assert.equal(await page.locator('#teller-count').textContent(), '2');
    assert.match(await page.locator('#tellers').textContent(), /Available \(1\).*Teller Ann.*In call \(1\).*Teller Bob/s);

    const task = { sid: sid('WT'), topic: 'cust-1', priority: 5, age: 42, queue: 'Support', status: 'pending' };
    const t0 = Date.now();
    await writeQueueStatus(status({
      pendingTasks: [task], pendingCount: 1, eligibleTellers: [ann, bob], tellerCount: 2,
      byQueue: { Support: { pending: 1, longestWaitSeconds: 42 } },
    }));
    const row = page.locator(`#tasks-body tr[data-sid="${task.sid}"]`);
    await row.waitFor({ timeout: 1000 });
    const shownAfter = Date.now() - t0;
    assert.ok(shownAfter < 1000, `shown after ${shownAfter} ms`);
    assert.match(await row.textContent(), /5.*Support.*cust-1/s);
    assert.equal(await page.locator('#pending-count').textContent(), '1');

    // The wait ticks: age 42 s plus the time since lastUpdated.
    const wait = row.locator('.wait');
    const w1 = await wait.textContent();
    assert.match(w1, /^0:4[2-9]$/);
    await page.waitForTimeout(2100);
    const w2 = await wait.textContent();
    assert.notEqual(w2, w1, 'the wait time ticks');

    await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(OUT, 'dashboard-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Assigned: the task leaves the pending list.
    const t1 = Date.now();
    await writeQueueStatus(status({
      eligibleTellers: [{ ...ann, activity: 'in-call' }, bob], tellerCount: 2,
    }));
    await row.waitFor({ state: 'detached', timeout: 1000 });
    assert.ok(Date.now() - t1 < 1000);
    assert.equal(await page.locator('#pending-count').textContent(), '0');
    assert.equal(await page.locator('#tasks-empty').isVisible(), true);
    assert.match(await page.locator('#tellers').textContent(), /In call \(2\)/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('customer page: waiting -> assigned -> completed as the task moves', async () => {
    const topic = `cust-${randomBytes(4).toString('hex')}`;
    const taskSid = sid('WT');
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${server.url}/customer.html?token=${encodeURIComponent(userToken('carol'))}` +
      `&identity=carol&topic=${topic}`);
    // Before the task exists the page says so, and keeps trying.
    await page.locator('#status-text', { hasText: 'not received your request yet' }).waitFor({ timeout: 5000 });

    await routerEvent('task.created', {
      TaskSid: taskSid, TaskAttributes: JSON.stringify({ topic, identity: 'carol' }),
      TaskQueueName: 'Support', TaskPriority: '0',
    });
    await page.locator('#status-text', { hasText: 'You are in the queue.' }).waitFor({ timeout: 15000 });
    // Position comes from /queue/get-queue-position; without a TaskRouter task behind it the
    // page says it is unavailable instead of failing.
    await page.locator('#facts:visible, #position-note:visible').first().waitFor({ timeout: 5000 });
    await page.screenshot({ path: join(OUT, 'customer-waiting.png'), fullPage: true });

    await routerEvent('reservation.accepted', {
      TaskSid: taskSid, TaskAttributes: JSON.stringify({ topic, identity: 'carol' }),
      WorkerSid: sid('WK'), WorkerName: 'Teller Ann', ReservationSid: sid('WR'),
    });
    await page.locator('#status-text', { hasText: 'Teller Ann is now helping you.' }).waitFor({ timeout: 3000 });
    assert.equal(await page.locator('#facts').isVisible(), false);
    await page.screenshot({ path: join(OUT, 'customer-assigned.png'), fullPage: true });

    await routerEvent('reservation.completed', {
      TaskSid: taskSid, TaskAttributes: JSON.stringify({ topic, identity: 'carol' }),
      WorkerSid: sid('WK'), WorkerName: 'Teller Ann', ReservationSid: sid('WR'),
    });
    await page.locator('#status-text', { hasText: 'Your request is complete.' }).waitFor({ timeout: 3000 });
    await page.screenshot({ path: join(OUT, 'customer.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(OUT, 'customer-phone.png'), fullPage: true });
    // The status region is announced to screen readers.
    assert.equal(await page.locator('#status-live').getAttribute('aria-live'), 'polite');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a stream cut by a server restart comes back without a reload', async () => {
    await writeQueueStatus(status({}));
    const page = await context.newPage();
    await page.goto(`${server.url}/?token=${encodeURIComponent(userToken('night-shift'))}&identity=night-shift`);
    await page.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 5000 });
    await page.evaluate(() => { window.__sameDocument = true; });

    const banner = page.locator('#banner', { hasText: 'Reconnecting' });
    const bannerSeen = banner.waitFor({ state: 'visible', timeout: 15000 });
    server = await server.restart({ port: server.port });
    await bannerSeen;
    await page.screenshot({ path: join(OUT, 'dashboard-reconnecting.png'), fullPage: true });

    await page.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 15000 });
    await banner.waitFor({ state: 'hidden', timeout: 5000 });
    const task = { sid: sid('WT'), topic: 'after-restart', priority: 1, age: 0, queue: 'Support' };
    await writeQueueStatus(status({ pendingTasks: [task], pendingCount: 1 }));
    await page.locator(`#tasks-body tr[data-sid="${task.sid}"]`).waitFor({ timeout: 2000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
    await page.close();
  });
});

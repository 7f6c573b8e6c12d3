// browser_teller.test.mjs - one customer served end to end in Debian's headless Chromium
// (playwright-core), on real routing: the customer page (twilio-sync over twilsock) and the
// teller console (the official twilio-taskrouter Worker over tassa's event bridge), both
// vendored browser builds, both pointed at tassa by /config.json.
//   1. the customer page shows waiting, with its place and estimated wait;
//   2. the teller console receives the offer (topic, queue, priority, wait) and accepts it;
//   3. the customer page shows assigned, with the teller's name;
//   4. the teller wraps up and completes the task;
//   5. the customer page shows completed.
// Then: an activity change made elsewhere shows live, a rejected offer goes, and a connection
// cut by a server restart shows the banner and comes back without a reload.
// Screenshots of both pages go to test-output/ at the repository root.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startServerAnyPort as startServer, tassa, twilioClient, eventually, decode } from './lib/server.mjs';

const CHROMIUM = '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const OUT = join(here, '../../test-output');
const skip = existsSync(CHROMIUM) ? false
  : `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`;

const hex = (n = 4) => randomBytes(n).toString('hex');
const duration = (s) => {
  const two = (n) => String(n).padStart(2, '0');
  const h = Math.floor(s / 3600); const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
};
const TELLER = 'Teller Ann';
const IDENTITY = 'ann';
const QUEUE = 'Branch';

describe('a customer served from the teller console, in Chromium', { skip }, () => {
  let server;
  let context;
  let profile;
  let ws;
  let act;
  let workflow;
  let ann;
  let teller;     // the console page, open across the tests
  let tellerSeen; // its errors and sockets

  const userToken = (id) =>
    tassa(['user-token', id, '--data', server.store], { cwd: server.dataDir }).trim();

  async function connect() {
    const tr = await twilioClient(server);
    ws = tr.taskrouter.v1.workspaces(server.workspaceSid);
  }

  const createTask = (attrs, priority = 0) =>
    ws.tasks.create({ attributes: JSON.stringify(attrs), workflowSid: workflow.sid, priority });

  async function textIs(page, selector, value, timeout = 5000) {
    try {
      await page.waitForFunction(([s, v]) => document.querySelector(s)?.textContent.trim() === v,
        [selector, String(value)], { timeout, polling: 25 });
    } catch {
      const shown = await page.locator(selector).textContent().catch(() => '(missing)');
      assert.fail(`${selector} never showed ${JSON.stringify(String(value))} in ${timeout} ms; shows ${JSON.stringify(shown)}`);
    }
  }

  async function newPage() {
    const page = await context.newPage();
    const errors = [];
    const sockets = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('websocket', (w) => sockets.push(w.url()));
    return { page, errors, sockets };
  }

  const shoot = (page, name) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

  before(async () => {
    mkdirSync(OUT, { recursive: true });
    server = await startServer();
    await connect();
    act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
    const queue = await ws.taskQueues.create({
      friendlyName: QUEUE, targetWorkers: '1==1', assignmentActivitySid: act['in-call'],
    });
    workflow = await ws.workflows.create({
      friendlyName: `Everything to ${QUEUE}`,
      taskReservationTimeout: 120,
      configuration: JSON.stringify({
        task_routing: { filters: [], default_filter: { queue: queue.sid } },
      }),
    });
    ann = await ws.workers.create({
      friendlyName: TELLER, activitySid: act.Offline,
      attributes: JSON.stringify({ identity: IDENTITY, name: TELLER }),
    });
    // One customer served over REST first, so that the queue has a history and the customer
    // page's estimate is a number.
    const warm = await createTask({ topic: `warm-${hex()}`, identity: 'cust-warm' });
    await ws.workers(ann.sid).update({ activitySid: act.Available });
    const r = await eventually(async () =>
      (await ws.tasks(warm.sid).reservations.list()).find((x) => x.reservationStatus === 'pending'));
    await ws.tasks(warm.sid).reservations(r.sid).update({ reservationStatus: 'accepted' });
    await ws.tasks(warm.sid).update({ assignmentStatus: 'completed', reason: 'warm-up' });
    await ws.workers(ann.sid).update({ activitySid: act.Offline });

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

  test('one customer: waiting -> offered and accepted -> assigned -> completed', async () => {
    const identity = 'cust-7';
    const topic = `cust-${hex()}`;
    const task = await createTask({ topic, identity, name: 'Customer Seven' }, 3);
    assert.equal(task.assignmentStatus, 'pending', 'the teller is Offline');

    // 1. The customer page: waiting, first in line, with the estimate the API gives.
    const token = userToken(identity);
    const pos = await decode(await fetch(`${server.url}/queue/get-queue-position?` +
      new URLSearchParams({ token, identity, topic })));
    assert.equal(pos.status, 200, JSON.stringify(pos.body));
    assert.equal(pos.body.position, 1);
    assert.ok(Number.isInteger(pos.body.estimatedWaitSeconds), `estimate ${pos.body.estimatedWaitSeconds}`);
    const cust = await newPage();
    await cust.page.goto(`${server.url}/customer.html?token=${encodeURIComponent(token)}&identity=${identity}&topic=${topic}`);
    await cust.page.locator('#status-text', { hasText: 'You are in the queue.' }).waitFor({ timeout: 5000 });
    await cust.page.locator('#facts').waitFor({ state: 'visible', timeout: 5000 });
    await textIs(cust.page, '#position', '1');
    await textIs(cust.page, '#ahead', '0');
    await textIs(cust.page, '#queue-name', QUEUE);
    await textIs(cust.page, '#estimate', `≈ ${duration(pos.body.estimatedWaitSeconds)}`);
    await shoot(cust.page, 'teller-flow-customer-waiting');

    // 2. The teller signs in, goes Available through the console and gets the offer.
    tellerSeen = await newPage();
    teller = tellerSeen.page;
    await teller.goto(`${server.url}/teller.html?identity=${IDENTITY}&token=${encodeURIComponent(userToken(IDENTITY))}`);
    await teller.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 10000 });
    assert.ok(!teller.url().includes('token='), 'the token is removed from the address bar');
    await textIs(teller, '#who', TELLER);
    await textIs(teller, '#activity-name', 'Offline');
    const options = await teller.locator('#activity option').allTextContents();
    for (const n of ['Available (takes customers)', 'Offline', 'in-call']) assert.ok(options.includes(n), `${n} in ${options}`);
    await teller.selectOption('#activity', act.Available);
    await textIs(teller, '#activity-name', 'Available');
    assert.equal((await ws.workers(ann.sid).fetch()).activityName, 'Available');

    await teller.locator('#offer-text', { hasText: 'Customer Seven is offered to you.' }).waitFor({ timeout: 10000 });
    await textIs(teller, '#offer-topic', topic);
    await textIs(teller, '#offer-queue', QUEUE);
    await textIs(teller, '#offer-priority', '3');
    assert.match(await teller.locator('#offer-wait').textContent(), /^\d+:\d\d$/);
    const [res] = await ws.tasks(task.sid).reservations.list();
    assert.equal(res.reservationStatus, 'pending');
    assert.equal(res.workerSid, ann.sid);
    assert.equal(await cust.page.locator('#status-text').textContent(), 'You are in the queue.',
      'an offer alone does not assign the customer');
    await shoot(teller, 'teller-offer');
    await teller.click('#accept');
    await teller.locator('#offer-text', { hasText: 'You are serving Customer Seven.' }).waitFor({ timeout: 5000 });
    assert.equal((await ws.tasks(task.sid).reservations(res.sid).fetch()).reservationStatus, 'accepted');

    // 3. The customer sees the teller's name.
    await cust.page.locator('#status-text', { hasText: `${TELLER} is now helping you.` }).waitFor({ timeout: 5000 });
    assert.equal(await cust.page.locator('#status').getAttribute('class'), 'panel status-card assigned');
    await shoot(cust.page, 'teller-flow-customer-assigned');
    await shoot(teller, 'teller-serving');
    // The queue's assignment activity moved the teller in-call, live.
    await textIs(teller, '#activity-name', 'in-call');

    // 4. Wrap up, then complete.
    await teller.click('#wrapup');
    await teller.locator('#offer-text', { hasText: 'Wrapping up with Customer Seven.' }).waitFor({ timeout: 5000 });
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'wrapping');
    await teller.click('#complete');
    await teller.locator('#offer-text', { hasText: 'No customer is offered to you.' }).waitFor({ timeout: 5000 });
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'completed');

    // 5. The customer page shows completed.
    await cust.page.locator('#status-text', { hasText: 'Your request is complete.' }).waitFor({ timeout: 5000 });
    assert.equal(await cust.page.locator('#status').getAttribute('class'), 'panel status-card completed');
    await shoot(cust.page, 'teller-flow-customer-completed');
    await shoot(teller, 'teller');

    // Both pages ran on the official SDKs at /config.json's endpoints.
    const config = await (await fetch(`${server.url}/config.json`)).json();
    assert.ok(cust.sockets.some((u) => u.startsWith(config.sync.twilsockUri)), `customer sockets: ${cust.sockets}`);
    assert.ok(tellerSeen.sockets.some((u) => u.startsWith(config.taskrouter.wsServer)), `teller sockets: ${tellerSeen.sockets}`);
    assert.deepEqual(cust.errors, []);
    assert.deepEqual(tellerSeen.errors, []);
    await cust.page.close();
  });

  test('an activity change made elsewhere shows live; a rejected offer goes', async () => {
    await ws.workers(ann.sid).update({ activitySid: act.Unavailable });
    await textIs(teller, '#activity-name', 'Unavailable');
    await teller.selectOption('#activity', act.Available);
    await textIs(teller, '#activity-name', 'Available');
    const task = await createTask({ topic: `rej-${hex()}`, identity: 'cust-8', name: 'Customer Eight' });
    await teller.locator('#offer-text', { hasText: 'Customer Eight is offered to you.' }).waitFor({ timeout: 10000 });
    const [res] = await ws.tasks(task.sid).reservations.list();
    await teller.click('#reject');
    await teller.locator('#offer-text', { hasText: 'No customer is offered to you.' }).waitFor({ timeout: 5000 });
    assert.equal((await ws.tasks(task.sid).reservations(res.sid).fetch()).reservationStatus, 'rejected');
    await ws.workers(ann.sid).update({ activitySid: act.Offline });
    await textIs(teller, '#activity-name', 'Offline');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
    assert.deepEqual(tellerSeen.errors, []);
  });

  test('a connection cut by a server restart shows the banner and comes back', async () => {
    await teller.evaluate(() => { window.__sameDocument = true; });
    const banner = teller.locator('#banner', { hasText: 'Connection lost' });
    const bannerSeen = banner.waitFor({ state: 'visible', timeout: 15000 });
    server = await server.restart({ port: server.port });
    await bannerSeen;
    await shoot(teller, 'teller-reconnecting');
    await teller.locator('#conn', { hasText: 'Live' }).waitFor({ timeout: 20000 });
    await banner.waitFor({ state: 'hidden', timeout: 5000 });
    await connect();
    // Live again: an activity change made over REST reaches the console.
    await ws.workers(ann.sid).update({ activitySid: act.Unavailable });
    await textIs(teller, '#activity-name', 'Unavailable', 10000);
    assert.equal(await teller.evaluate(() => window.__sameDocument), true, 'no reload happened');
    assert.deepEqual(tellerSeen.errors, []);
  });
});

// sdk_worker.test.mjs - the official twilio-taskrouter Worker (2.x) against tassa's event
// bridge at /v1/wschannels, and raw requests against the bridge's envelope.
//
// The SDK is used unchanged: globalThis.WebSocket is the `ws` package, set before the SDK is
// required (it reads the constructor once); ebServer and wsServer point at the server. The
// token is twilio-node's AccessToken with a TaskRouterGrant signed with the server's API key.
// Spec: docs/protocols/sdk-protocols.md sections 3 to 5.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { startServerAnyPort as startServer, twilioClient, eventually, decode } from './lib/server.mjs';

const require = createRequire(import.meta.url);
globalThis.WebSocket = WebSocket;
const { Worker } = require('twilio-taskrouter');

const hex = (n = 4) => crypto.randomBytes(n).toString('hex');

let server;
let rest; // twilio-node against the server
let ws; // the workspace context
let act; // activity name -> sid
let queue;
let workflow;
const workers = []; // SDK workers to disconnect at the end

// A worker token minted as twilio-node's AccessToken + TaskRouterGrant does.
async function workerToken(workerSid, { secret = server.creds.apiSecret, ttl = 3600, workspaceSid = server.workspaceSid, identity } = {}) {
  const twilio = (await import('twilio')).default;
  const { AccessToken } = twilio.jwt;
  const t = new AccessToken(server.creds.accountSid, server.creds.apiKey, secret, { identity: identity || `teller-${hex()}`, ttl });
  t.addGrant(new AccessToken.TaskRouterGrant({ workspaceSid, workerSid, role: 'worker' }));
  return t.toJwt();
}

function newWorker(token, opts = {}) {
  const w = new Worker(token, {
    ebServer: `http://127.0.0.1:${server.port}/v1/wschannels`,
    wsServer: `ws://127.0.0.1:${server.port}/v1/wschannels`,
    logLevel: 'silent',
    ...opts,
  });
  w.errors = [];
  w.on('error', (e) => w.errors.push(e)); // an unheard `error` throws (spec 3.2)
  workers.push(w);
  return w;
}

// Resolves with the next `event` of emitter that pred accepts.
function next(emitter, event, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const on = (...args) => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      emitter.removeListener(event, on);
      resolve(args[0]);
    };
    emitter.on(event, on);
  });
}

// The envelope the SDK POSTs, sent by hand: { status, body }.
async function envelope(token, url, method = 'GET', params = {}, { apiVersion = 'v1', raw } = {}) {
  const r = await fetch(`${server.url}/v1/wschannels`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', apiVersion, clientVersion: '2.1.1' },
    body: raw !== undefined ? raw : JSON.stringify({ url, method, params, token }),
  });
  return decode(r);
}

async function fetchDoc(name) {
  const r = await fetch(`${server.url}/v1/Services/default/Documents/${encodeURIComponent(name)}`,
    { headers: { Authorization: server.basic() } });
  const res = await decode(r);
  return res.status === 200 ? res.body.data : null;
}

async function newTeller(activity = 'Offline') {
  return ws.workers.create({ friendlyName: `teller-${hex()}`, activitySid: act[activity], attributes: JSON.stringify({ skills: ['general'] }) });
}

before(async () => {
  server = await startServer({ env: { TASSA_SYNC_ACL: 'false' } });
  rest = await twilioClient(server);
  ws = rest.taskrouter.v1.workspaces(server.workspaceSid);
  act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
  queue = await ws.taskQueues.create({ friendlyName: 'General', targetWorkers: '1==1' });
  workflow = await ws.workflows.create({
    friendlyName: 'Everything to General',
    taskReservationTimeout: 30,
    configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
  });
});

// Disconnects w. The SDK's disconnect() leaves its token-expiry timer and its heartbeat
// interval running (they would hold the test process for an hour): stop those too.
function release(w) {
  try { w.disconnect(); } catch { /* already gone */ }
  const s = w._signaling;
  clearTimeout(s?.tokenTimer);
  const hb = s?._heartbeat;
  if (hb?.pintvl) { hb.stop(hb.pintvl); hb.pintvl = null; }
}

after(async () => {
  for (const w of workers) release(w);
  await new Promise((r) => setTimeout(r, 100));
  await server?.stop();
  server?.cleanup();
});

describe('the official Worker', () => {
  let teller;
  let worker;

  test('becomes ready: init, the Worker, Activities, WorkerChannels, Reservations', async () => {
    teller = await newTeller('Offline');
    worker = newWorker(await workerToken(teller.sid));
    await next(worker, 'ready');
    assert.equal(worker.sid, teller.sid);
    assert.equal(worker.workspaceSid, server.workspaceSid);
    assert.equal(worker.accountSid, server.creds.accountSid);
    assert.equal(worker.activity.name, 'Offline');
    assert.equal(worker.name, teller.friendlyName);
    assert.deepEqual(worker.attributes, { skills: ['general'] });
    assert.ok(worker.activities.size >= 3, 'the workspace activities');
    assert.equal(worker.channels.size, 1);
    const [ch] = [...worker.channels.values()];
    assert.equal(ch.taskChannelUniqueName, 'default');
    assert.equal(ch.capacity, 1);
    assert.equal(worker.reservations.size, 0);
    assert.deepEqual(worker.errors, []);
  });

  test('goes Available through activity.setAsCurrent() (activityUpdated)', async () => {
    const available = [...worker.activities.values()].find((a) => a.name === 'Available');
    const updated = next(worker, 'activityUpdated');
    await available.setAsCurrent();
    const w = await updated;
    assert.equal(w.activity.name, 'Available');
    assert.equal(worker.available, true);
    const fetched = await ws.workers(teller.sid).fetch();
    assert.equal(fetched.activityName, 'Available');
  });

  test('setAttributes: attributesUpdated and the REST API reads them back', async () => {
    const updated = next(worker, 'attributesUpdated');
    await worker.setAttributes({ skills: ['general'], languages: ['en'] });
    await updated;
    const fetched = await ws.workers(teller.sid).fetch();
    assert.deepEqual(JSON.parse(fetched.attributes), { skills: ['general'], languages: ['en'] });
  });

  test('a new task: reservationCreated, accepted, task completed, the topic document completed', async () => {
    const topic = `sdk-${hex()}`;
    const created = next(worker, 'reservationCreated');
    const task = await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic, identity: `cust-${hex()}` }) });
    const reservation = await created;
    assert.equal(reservation.task.sid, task.sid);
    assert.equal(reservation.status, 'pending');
    assert.equal(reservation.task.attributes.topic, topic);
    assert.equal(reservation.task.queueName, 'General');
    assert.equal(reservation.workerSid, teller.sid);
    assert.equal(reservation.timeout, 30);

    const accepted = next(reservation, 'accepted');
    await reservation.accept();
    await accepted;
    assert.equal(reservation.status, 'accepted');
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'assigned');
    const doc = await eventually(async () => { const d = await fetchDoc(topic); return d?.status === 'assigned' && d; });
    assert.equal(doc.worker.sid, teller.sid);

    const completed = next(reservation, 'completed');
    await reservation.task.complete('served');
    await completed;
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'completed');
    const done = await eventually(async () => { const d = await fetchDoc(topic); return d?.status === 'completed' && d; });
    assert.equal(done.taskSid, task.sid);
    await eventually(() => !worker.reservations.has(reservation.sid) || worker.reservations.get(reservation.sid).status === 'completed');
    assert.deepEqual(worker.errors, []);
  });

  test('reject: reservation rejected, the task offered again', async () => {
    const created = next(worker, 'reservationCreated');
    const task = await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic: `rej-${hex()}` }) });
    const reservation = await created;
    assert.equal(reservation.task.sid, task.sid);
    const rejected = next(reservation, 'rejected');
    const offline = [...worker.activities.values()].find((a) => a.name === 'Offline');
    await reservation.reject({ activitySid: offline.sid });
    await rejected;
    assert.equal(reservation.status, 'rejected');
    const list = await ws.tasks(task.sid).reservations.list();
    assert.equal(list.find((r) => r.sid === reservation.sid).reservationStatus, 'rejected');
    await eventually(() => worker.activity.name === 'Offline');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
  });

  test('wrap up then complete: reservation wrapup and completed, task wrapup', async () => {
    const available = [...worker.activities.values()].find((a) => a.name === 'Available');
    await available.setAsCurrent();
    const created = next(worker, 'reservationCreated');
    const task = await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic: `wrap-${hex()}` }) });
    const reservation = await created;
    await reservation.accept();
    const wrapup = next(reservation, 'wrapup');
    const taskWrapup = next(reservation.task, 'wrapup');
    const t = await reservation.task.wrapUp({ reason: 'notes' });
    assert.equal(t.status, 'wrapping');
    await wrapup;
    await taskWrapup;
    assert.equal(reservation.status, 'wrapping');
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'wrapping');
    const completed = next(reservation, 'completed');
    await reservation.task.complete('done');
    await completed;
    assert.equal((await ws.tasks(task.sid).fetch()).assignmentStatus, 'completed');
  });

  test('a reservation nobody answers: reservation timeout, the worker moved Offline', async () => {
    const quick = await ws.workflows.create({
      friendlyName: `Quick ${hex()}`,
      taskReservationTimeout: 1,
      configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
    });
    const available = [...worker.activities.values()].find((a) => a.name === 'Available');
    await available.setAsCurrent();
    const created = next(worker, 'reservationCreated');
    const task = await ws.tasks.create({ workflowSid: quick.sid, attributes: '{}' });
    const reservation = await created;
    assert.equal(reservation.timeout, 1);
    const offline = next(worker, 'activityUpdated', (w) => w.activity.name === 'Offline');
    await next(reservation, 'timeout');
    assert.equal(reservation.status, 'timeout');
    await offline;
    assert.equal((await ws.tasks(task.sid).reservations(reservation.sid).fetch()).reservationStatus, 'timeout');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
    await ws.workflows(quick.sid).remove();
  });

  test('a task canceled while offered: reservation canceled', async () => {
    const available = [...worker.activities.values()].find((a) => a.name === 'Available');
    await available.setAsCurrent();
    const created = next(worker, 'reservationCreated');
    const task = await ws.tasks.create({ workflowSid: workflow.sid, attributes: '{}' });
    const reservation = await created;
    const canceled = next(reservation, 'canceled');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'caller hung up' });
    await canceled;
    assert.equal(reservation.status, 'canceled');
  });

  test('a worker token acting on another worker gets 403', async () => {
    const other = await newTeller('Offline');
    const token = await workerToken(teller.sid);
    const base = `Workspaces/${server.workspaceSid}`;
    let res = await envelope(token, `${base}/Workers/${other.sid}`, 'POST', { ActivitySid: act.Available });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.equal(res.body.status, 403);
    assert.match(res.body.message, /another worker/);
    assert.equal((await ws.workers(other.sid).fetch()).activityName, 'Offline', 'nothing changed');
    res = await envelope(token, `${base}/Workers/${other.sid}`);
    assert.equal(res.status, 403);
    res = await envelope(token, `${base}/Workers/${other.sid}/Reservations`, 'GET', {}, { apiVersion: 'v2' });
    assert.equal(res.status, 403);
    res = await envelope(token, `${base}/Workers`);
    assert.equal(res.status, 403);
    res = await envelope(token, `${base}/TaskQueues`);
    assert.equal(res.status, 403);
    // the hand-written form of the URL, naming another worker
    const r2 = await fetch(`${server.url}/v1/wschannels/${server.creds.accountSid}/${other.sid}`, {
      method: 'POST', headers: { apiVersion: 'v1' },
      body: JSON.stringify({ url: `${base}/Workers/${teller.sid}`, method: 'GET', params: {}, token }),
    });
    assert.equal(r2.status, 403);
    const r3 = await fetch(`${server.url}/v1/wschannels/${server.creds.accountSid}/${teller.sid}`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', apiVersion: 'v1' },
      body: JSON.stringify({ url: `${base}/Workers/${teller.sid}`, method: 'GET', params: {}, token }),
    });
    assert.equal(r3.status, 200);
    assert.equal((await r3.json()).payload.sid, teller.sid);
    // its own worker: 200 with the payload
    res = await envelope(token, `${base}/Workers/${teller.sid}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.payload.sid, teller.sid);
    assert.equal(typeof res.body.payload.date_created, 'number');
    assert.equal(typeof res.body.payload.attributes, 'string');
    // a task it holds no reservation for (offline, it is offered none)
    await ws.workers(teller.sid).update({ activitySid: act.Offline });
    const t = await ws.tasks.create({ workflowSid: workflow.sid, attributes: '{}' });
    res = await envelope(token, `${base}/Tasks/${t.sid}`, 'POST', { AssignmentStatus: 'canceled' });
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.notEqual((await ws.tasks(t.sid).fetch()).assignmentStatus, 'canceled');
    await ws.tasks(t.sid).update({ assignmentStatus: 'canceled' });
    // a token of another workspace
    const foreign = await workerToken(teller.sid, { workspaceSid: 'WS' + '0'.repeat(32) });
    res = await envelope(foreign, `Workspaces/WS${'0'.repeat(32)}/Workers/${teller.sid}`);
    assert.equal(res.status, 403);
  });
});

describe('envelope payload shapes (spec 3.6: every key present, epoch seconds, JSON text)', () => {
  const KEYS = {
    worker: ['account_sid', 'activity_name', 'activity_sid', 'attributes', 'available', 'date_created', 'date_status_changed', 'date_updated', 'friendly_name', 'sid', 'workspace_sid', 'version'],
    activity: ['account_sid', 'available', 'date_created', 'date_updated', 'friendly_name', 'sid', 'workspace_sid'],
    channel: ['account_sid', 'assigned_tasks', 'available', 'available_capacity_percentage', 'configured_capacity', 'date_created', 'date_updated', 'last_reserved_time', 'sid', 'task_channel_sid', 'task_channel_unique_name', 'worker_sid', 'workspace_sid'],
    reservation: ['account_sid', 'date_created', 'date_updated', 'reservation_status', 'sid', 'task', 'reservation_timeout', 'worker_sid', 'workspace_sid', 'version'],
    task: ['addons', 'age', 'attributes', 'date_created', 'date_updated', 'priority', 'queue_name', 'queue_sid', 'reason', 'routing_target', 'sid', 'assignment_status', 'task_channel_unique_name', 'task_channel_sid', 'timeout', 'workflow_name', 'workflow_sid', 'version', 'virtual_start_time'],
  };
  const has = (obj, kind) => {
    for (const k of KEYS[kind]) assert.ok(k in obj, `${kind} lacks ${k}`);
    for (const [k, v] of Object.entries(obj)) if (k.startsWith('date_') && v !== null) assert.equal(typeof v, 'number', `${kind}.${k} in seconds`);
    if ('date_created' in obj) assert.ok(obj.date_created > 1.5e9 && obj.date_created < 1e11, `${kind}.date_created is seconds`);
    assert.ok(!('url' in obj) && !('links' in obj));
  };

  test('Worker, Activities, WorkerChannels, Reservations v2 with the task', async () => {
    const teller = await newTeller('Available');
    const token = await workerToken(teller.sid);
    const base = `Workspaces/${server.workspaceSid}`;
    const task = await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic: `shape-${hex()}` }) });
    let res = await envelope(token, `${base}/Workers/${teller.sid}`);
    has(res.body.payload, 'worker');
    assert.equal(typeof res.body.payload.attributes, 'string');
    assert.deepEqual(JSON.parse(res.body.payload.attributes), { skills: ['general'] });
    res = await envelope(token, `${base}/Activities`, 'GET', { PageSize: 1000 });
    assert.equal(res.body.payload.after_sid, null);
    assert.ok(res.body.payload.contents.length >= 3);
    for (const a of res.body.payload.contents) has(a, 'activity');
    res = await envelope(token, `${base}/Activities`, 'GET', { PageSize: 2 });
    assert.equal(res.body.payload.contents.length, 2);
    assert.equal(res.body.payload.after_sid, res.body.payload.contents[1].sid);
    const rest = await envelope(token, `${base}/Activities`, 'GET', { PageSize: 1000, AfterSid: res.body.payload.after_sid });
    assert.ok(rest.body.payload.contents.every((a) => !res.body.payload.contents.some((b) => b.sid === a.sid)), 'the next page');
    res = await envelope(token, `${base}/Workers/${teller.sid}/WorkerChannels`, 'GET', { PageSize: 1000 });
    assert.equal(res.body.payload.contents.length, 1);
    has(res.body.payload.contents[0], 'channel');
    assert.equal(res.body.payload.contents[0].configured_capacity, 1);
    res = await eventually(async () => {
      const r = await envelope(token, `${base}/Workers/${teller.sid}/Reservations`, 'GET', { Active: 'true', PageSize: 1000 }, { apiVersion: 'v2' });
      return r.body.payload.contents.length === 1 && r;
    });
    const [r] = res.body.payload.contents;
    has(r, 'reservation');
    has(r.task, 'task');
    assert.equal(r.task.sid, task.sid);
    assert.equal(r.reservation_status, 'pending');
    assert.equal(typeof r.task.attributes, 'string');
    assert.equal(r.task.addons, '{}');
    assert.equal(r.task.queue_name, 'General');
    // accepted: the channel counts the task
    res = await envelope(token, `${base}/Workers/${teller.sid}/Reservations/${r.sid}`, 'POST', { ReservationStatus: 'accepted' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    has(res.body.payload, 'reservation');
    assert.equal(res.body.payload.reservation_status, 'accepted');
    res = await envelope(token, `${base}/Workers/${teller.sid}/WorkerChannels`);
    assert.equal(res.body.payload.contents[0].assigned_tasks, 1);
    assert.equal(res.body.payload.contents[0].available_capacity_percentage, 0);
    // the task, as the worker completes it
    res = await envelope(token, `${base}/Tasks/${task.sid}`, 'POST', { AssignmentStatus: 'completed', Reason: 'done' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    has(res.body.payload, 'task');
    assert.equal(res.body.payload.assignment_status, 'completed');
    // and the REST API's Channels of the worker
    const ch = await decode(await fetch(`${server.url}/v1/Workspaces/${server.workspaceSid}/Workers/${teller.sid}/Channels`, { headers: { Authorization: server.basic() } }));
    assert.equal(ch.status, 200);
    assert.equal(ch.body.channels[0].task_channel_unique_name, 'default');
    assert.equal(ch.body.channels[0].assigned_tasks, 0);
  });
});

describe('refused tokens', () => {
  test('a token signed with the wrong secret: the socket is closed, no ready', async () => {
    const teller = await newTeller();
    const worker = newWorker(await workerToken(teller.sid, { secret: 'not-the-secret' }));
    let ready = false;
    worker.on('ready', () => { ready = true; });
    const msg = await next(worker, 'disconnected');
    assert.match(String(msg?.message ?? msg), /signature/);
    assert.equal(ready, false);
    release(worker);
    // the envelope refuses it too
    const res = await envelope(await workerToken(teller.sid, { secret: 'not-the-secret' }), `Workspaces/${server.workspaceSid}/Workers/${teller.sid}`);
    assert.equal(res.status, 401);
    assert.match(res.body.message, /signature/);
  });

  test('an expired token is refused with 401', async () => {
    const teller = await newTeller();
    const token = await workerToken(teller.sid, { ttl: -10 });
    const res = await envelope(token, `Workspaces/${server.workspaceSid}/Workers/${teller.sid}`);
    assert.equal(res.status, 401);
    assert.match(res.body.message, /expired/);
  });
});

describe('sessions', () => {
  test('closeExistingSessions closes the older socket of the same worker', async () => {
    const teller = await newTeller();
    const token = await workerToken(teller.sid);
    const first = newWorker(token);
    await next(first, 'ready');
    const gone = next(first, 'disconnected');
    const second = newWorker(token, { closeExistingSessions: true });
    await next(second, 'ready');
    const msg = await gone;
    assert.match(String(msg?.message), /newer session/);
    release(first);
    release(second);
  });

  test('setWorkerOfflineIfDisconnected: the last socket gone, the worker goes Offline', async () => {
    const teller = await newTeller('Available');
    const w = newWorker(await workerToken(teller.sid), { setWorkerOfflineIfDisconnected: true });
    await next(w, 'ready');
    assert.equal(w.activity.name, 'Available');
    release(w);
    await eventually(async () => (await ws.workers(teller.sid).fetch()).activityName === 'Offline');
  });

  test('raw socket: init first (TEXT, token_lifetime in ms), heartbeats, a close at the token expiry', async () => {
    const teller = await newTeller();
    const token = await workerToken(teller.sid, { ttl: 12 });
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/v1/wschannels/${server.creds.accountSid}/${teller.sid}?token=${token}&closeExistingSessions=false&clientVersion=2.1.1`);
    const frames = [];
    const closed = new Promise((resolve) => sock.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
    sock.on('message', (data, isBinary) => frames.push({ text: String(data), isBinary, at: Date.now() }));
    await eventually(() => frames.length >= 1);
    const init = JSON.parse(frames[0].text);
    assert.equal(frames[0].isBinary, false);
    assert.equal(init.event_type, 'init');
    assert.equal(init.payload.channel_id, teller.sid);
    assert.equal(init.payload.workspace_sid, server.workspaceSid);
    assert.equal(init.payload.account_sid, server.creds.accountSid);
    assert.ok(init.payload.token_lifetime > 9000 && init.payload.token_lifetime <= 12000, String(init.payload.token_lifetime));
    const { code, reason } = await closed;
    assert.equal(code, 4003);
    assert.match(reason, /expired/);
    assert.ok(frames.some((f) => f.text === ' ' && !f.isBinary), 'a heartbeat before the expiry');
  });

  test('raw socket: a bad token or another worker in the path is closed with 4001 and the reason', async () => {
    const teller = await newTeller();
    const other = await newTeller();
    const cases = [
      [`?token=not-a-token`, /token/],
      [`?token=${await workerToken(teller.sid, { secret: 'nope' })}`, /signature/],
      [`/${server.creds.accountSid}/${other.sid}?token=${await workerToken(teller.sid)}`, /another worker/],
      ['', /missing/],
    ];
    for (const [tail, re] of cases) {
      const sock = new WebSocket(`ws://127.0.0.1:${server.port}/v1/wschannels${tail}`);
      const got = [];
      sock.on('message', (d) => got.push(String(d)));
      const { code, reason } = await new Promise((resolve) => sock.on('close', (c, r) => resolve({ code: c, reason: String(r) })));
      assert.equal(code, 4001, tail);
      assert.match(reason, re);
      assert.deepEqual(got, [], 'no init for a refused socket');
    }
    const good = await workerToken(teller.sid);
    const sig = good.split('.')[2];
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/v1/wschannels?token=${good}`);
    await new Promise((resolve) => sock.once('message', resolve));
    sock.close();
    await eventually(() => /event=eventbridge_open/.test(server.log));
    assert.ok(!server.log.includes(sig), 'no token in the log');
  });
});

describe('bad input to the envelope: 4xx, never 500', () => {
  test('malformed, non-object, wrong types, huge, wrong method', async () => {
    const teller = await newTeller();
    const token = await workerToken(teller.sid);
    for (const raw of ['', '{', 'null', '[]', '"x"', '{"url":1}', JSON.stringify({ url: 'x', method: 'DELETE', token }),
      JSON.stringify({ url: 'Workspaces', method: 'GET', params: [], token }),
      JSON.stringify({ url: '', method: 'GET', token }), JSON.stringify({ url: 'a'.repeat(600), method: 'GET', token }),
      JSON.stringify({ url: `Workspaces/${server.workspaceSid}/Workers/${teller.sid}`, method: 'POST', token, params: { Attributes: 'not json' } }),
      JSON.stringify({ url: `Workspaces/${server.workspaceSid}/Workers/${teller.sid}`, method: 'POST', token, params: { ActivitySid: 'WAnope' } }),
      '{"url":"a","url":"b","method":"GET","token":"x"}']) {
      const res = await envelope(null, null, null, null, { raw });
      assert.ok(res.status >= 400 && res.status < 500, `${raw.slice(0, 80)} -> ${res.status}`);
      assert.equal(typeof res.body.message, 'string');
    }
    const huge = await envelope(null, null, null, null, { raw: JSON.stringify({ url: 'x', method: 'GET', token, params: { a: 'x'.repeat(2 << 20) } }) });
    assert.equal(huge.status, 413);
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const r = await fetch(`${server.url}/v1/wschannels`, { method, body: '{}' });
      assert.ok(r.status >= 400 && r.status < 500, `${method} -> ${r.status}`);
    }
    const get = await fetch(`${server.url}/v1/wschannels`);
    assert.ok(get.status >= 400 && get.status < 500, `plain GET -> ${get.status}`);
    assert.equal((await ws.workers(teller.sid).fetch()).activityName, 'Offline', 'nothing changed');
  });

  test('CORS preflight names the SDK headers', async () => {
    const r = await fetch(`${server.url}/v1/wschannels`, { method: 'OPTIONS', headers: { Origin: 'http://example.test', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(r.status, 204);
    assert.match(r.headers.get('access-control-allow-headers'), /apiVersion/);
    assert.match(r.headers.get('access-control-allow-headers'), /If-Match/);
    assert.ok(r.headers.get('access-control-allow-origin'));
  });
});

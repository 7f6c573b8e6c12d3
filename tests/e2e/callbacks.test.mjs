// callbacks.test.mjs - the workspace's EventCallbackUrl: every TaskRouter event of a task is
// POSTed (form-encoded, signed with X-Twilio-Signature) to the URL set through the official
// twilio client; EventsFilter limits the types; failed deliveries are retried with back-off
// and survive a restart of tassa (the outbox is durable).
//
// A local receiver (node:http on 127.0.0.1) records every POST; twilio.validateRequest, the
// check Twilio's own webhook consumers use, judges each signature.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';
import { startServerAnyPort as startServer, twilioClient, eventually, freePort } from './lib/server.mjs';
import { startReceiver } from './lib/backends.mjs';

const hex = (n = 6) => randomBytes(n).toString('hex');

let server; // the tassa under test (replaced by its restart)
let client;
let ws;
let receiver;
let port; // the receiver's port, kept across its own restart
let callbackUrl; // exactly as set on the workspace
let authToken;
let act; let workflow; let worker;
// Per-Sid answer plan of the receiver: Sid -> statuses still to give before 204.
const failFirst = new Map();
const failMarker = { value: null }; // TaskAttributes containing it: its events fail twice

function respond(record) {
  const { Sid: sid, TaskAttributes: attrs } = record.params;
  if (failMarker.value && attrs?.includes(failMarker.value) && !failFirst.has(sid)) failFirst.set(sid, [500, 500]);
  const plan = failFirst.get(sid);
  if (plan?.length) return plan.shift();
  return 204;
}

before(async () => {
  server = await startServer();
  authToken = server.creds.authToken;
  client = await twilioClient(server);
  ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  port = await freePort();
  receiver = await startReceiver({ port, respond });
  callbackUrl = `http://127.0.0.1:${port}/taskrouter/events?site=e2e`;
  const updated = await ws.update({ eventCallbackUrl: callbackUrl });
  assert.equal(updated.eventCallbackUrl, callbackUrl);
  act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
  const queue = await ws.taskQueues.create({ friendlyName: 'General', targetWorkers: '1==1' });
  workflow = await ws.workflows.create({
    friendlyName: 'All', taskReservationTimeout: 30,
    configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
  });
  worker = await ws.workers.create({ friendlyName: 'Teller', activitySid: act.Available });
});

after(async () => {
  try {
    await server?.stop();
  } finally {
    server?.cleanup();
    await receiver?.close();
  }
});

const received = () => receiver.requests;
const delivered = (sid) => received().filter((r) => r.params.Sid === sid && r.status === 204);
const ofTask = (taskSid) => received().filter((r) => r.params.TaskSid === taskSid);

// Creates a task (routed to the free worker), accepts its reservation and completes it.
async function lifecycle(attrs) {
  const task = await ws.tasks.create({ attributes: JSON.stringify(attrs), workflowSid: workflow.sid });
  const reservation = await eventually(async () =>
    (await ws.tasks(task.sid).reservations.list()).find((r) => r.reservationStatus === 'pending'));
  assert.equal(reservation.workerSid, worker.sid);
  await ws.tasks(task.sid).reservations(reservation.sid).update({ reservationStatus: 'accepted' });
  await ws.tasks(task.sid).update({ assignmentStatus: 'wrapping' });
  await ws.tasks(task.sid).update({ assignmentStatus: 'completed', reason: 'served' });
  return task;
}

// The signature check of a recorded POST, as a Twilio webhook consumer does it.
const signatureOk = (r, params = r.params) =>
  twilio.validateRequest(authToken, r.headers['x-twilio-signature'], callbackUrl, params);

describe('EventCallbackUrl', () => {
  test('every event of a task lifecycle arrives, form-encoded and signed', async () => {
    const attrs = { topic: `cb-${hex()}`, identity: 'cust-1', note: 'a & b = c?' };
    const task = await lifecycle(attrs);
    const listed = await ws.events.list({ taskSid: task.sid });
    const types = listed.map((e) => e.eventType);
    for (const t of ['task.created', 'reservation.created', 'reservation.accepted', 'task.completed'])
      assert.ok(types.includes(t), `the Events API lists ${t}: ${types.join(',')}`);
    // Each is found by its Sid, as listed (a creation's four events share one stored row).
    for (const e of listed) {
      const got = await ws.events(e.sid).fetch();
      assert.equal(got.eventType, e.eventType);
      assert.equal(got.resourceSid, e.resourceSid);
      assert.deepEqual(got.eventData, e.eventData);
    }
    // All of them reach the receiver (the outbox may still be at work).
    await eventually(() => listed.every((e) => delivered(e.sid).length > 0), { timeout: 8000 })
      .catch(() => assert.fail(`missing: ${listed.filter((e) => !delivered(e.sid).length).map((e) => e.eventType)}`));
    // And nothing about the task arrives that the Events API does not list.
    const bySid = new Map(listed.map((e) => [e.sid, e]));
    const mine = ofTask(task.sid);
    assert.deepEqual([...new Set(mine.map((r) => r.params.Sid))].sort(), [...bySid.keys()].sort());
    for (const r of mine) {
      const ev = bySid.get(r.params.Sid);
      assert.equal(r.method, 'POST');
      assert.equal(r.url, '/taskrouter/events?site=e2e');
      assert.match(r.headers['content-type'], /^application\/x-www-form-urlencoded\b/);
      assert.equal(r.params.EventType, ev.eventType);
      assert.match(r.params.Sid, /^EV[0-9a-f]{32}$/);
      assert.equal(r.params.TaskSid, task.sid);
      assert.deepEqual(JSON.parse(r.params.TaskAttributes), attrs);
      assert.equal(r.params.WorkspaceSid, server.workspaceSid);
      assert.equal(r.params.AccountSid, server.creds.accountSid);
      assert.ok(r.headers['x-twilio-signature'], 'signed');
      assert.equal(signatureOk(r), true, `signature of ${ev.eventType}`);
      // Sanity: the check does fail for a changed parameter or another token.
      assert.equal(signatureOk(r, { ...r.params, TaskAttributes: '{"topic":"forged"}' }), false);
      assert.equal(twilio.validateRequest('0'.repeat(32), r.headers['x-twilio-signature'], callbackUrl, r.params), false);
    }
    const accepted = mine.find((r) => r.params.EventType === 'reservation.accepted');
    assert.equal(accepted.params.WorkerSid, worker.sid);
    assert.equal(accepted.params.WorkerName, 'Teller');
  });

  test('EventsFilter: only the listed types are posted', async () => {
    const updated = await ws.update({ eventsFilter: 'task.created,task.completed' });
    assert.equal(updated.eventsFilter, 'task.created,task.completed');
    const since = received().length;
    const task = await lifecycle({ topic: `filter-${hex()}` });
    const [completed] = await ws.events.list({ taskSid: task.sid, eventType: 'task.completed' });
    const [created] = await ws.events.list({ taskSid: task.sid, eventType: 'task.created' });
    // task.completed is the last event enqueued for the task; the outbox posts in order.
    await eventually(() => delivered(completed.sid).length > 0, { timeout: 8000 });
    assert.ok(delivered(created.sid).length > 0, 'task.created arrived');
    const types = received().slice(since).map((r) => r.params.EventType);
    assert.ok(types.every((t) => t === 'task.created' || t === 'task.completed'), types.join(','));
    assert.deepEqual([...new Set(ofTask(task.sid).map((r) => r.params.EventType))].sort(), ['task.completed', 'task.created']);
  });

  test('a 500 is retried with back-off until the receiver takes the event', async () => {
    failMarker.value = `retry-${hex()}`;
    const task = await ws.tasks.create({ attributes: JSON.stringify({ topic: failMarker.value }), workflowSid: workflow.sid });
    const [created] = await ws.events.list({ taskSid: task.sid, eventType: 'task.created' });
    await eventually(() => delivered(created.sid).length > 0, { timeout: 8000 });
    const attempts = received().filter((r) => r.params.Sid === created.sid);
    assert.deepEqual(attempts.map((r) => r.status), [500, 500, 204]);
    // Back-off: about 1 s, then about 2 s (with jitter down to half).
    const gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at];
    assert.ok(gaps[0] >= 450, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1] >= 950, `second retry after ${gaps[1]} ms`);
    for (const r of attempts) {
      assert.equal(r.raw, attempts[0].raw, 'the same body each time');
      assert.equal(signatureOk(r), true);
    }
    failMarker.value = null;
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
  });

  test('an event that could not be delivered is delivered after tassa restarts', async () => {
    // Nobody listens: the first attempt meets a refused connection.
    await receiver.close();
    const failures = () => server.log.split('\n').filter((l) => l.includes('event=callback_failed')).length;
    const failedBefore = failures();
    await ws.workers(worker.sid).update({ activitySid: act.Offline }); // the task stays pending
    const task = await ws.tasks.create({ attributes: JSON.stringify({ topic: `restart-${hex()}` }), workflowSid: workflow.sid });
    const [created] = await ws.events.list({ taskSid: task.sid, eventType: 'task.created' });
    await eventually(() => failures() > failedBefore, { timeout: 5000 });
    server = await server.restart();
    client = await twilioClient(server);
    ws = client.taskrouter.v1.workspaces(server.workspaceSid);
    receiver = await startReceiver({ port, respond });
    await eventually(() => delivered(created.sid).length > 0, { timeout: 8000 });
    const r = delivered(created.sid)[0];
    assert.equal(r.params.TaskSid, task.sid);
    assert.equal(r.params.EventType, 'task.created');
    assert.equal(signatureOk(r), true);
    // The workspace kept its callback settings across the restart.
    const w = await ws.fetch();
    assert.equal(w.eventCallbackUrl, callbackUrl);
    assert.equal(w.eventsFilter, 'task.created,task.completed');
  });
});

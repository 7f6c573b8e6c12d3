// taskrouter.test.mjs - the official twilio npm client (v5), used exactly as users use it,
// against the embedded TaskRouter engine over real HTTP: only its base URL differs
// (lib/server.mjs twilioClient). Covers workers, activities, queues, workflows, tasks and
// reservations (create, list with paging, update), statistics, events and Twilio errors.
//
// TR_E2E_URL, TR_E2E_ACCOUNT and TR_E2E_TOKEN point the test at a server already running
// (for developing the engine before it is wired into `tassa serve`).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import twilio from 'twilio';
import { startServerAnyPort as startServer, twilioClient, eventually } from './lib/server.mjs';

const { RestException } = twilio;

let server;
let client;
let ws; // client.taskrouter.v1.workspaces(WS)

before(async () => {
  if (process.env.TR_E2E_URL) {
    const url = process.env.TR_E2E_URL;
    const accountSid = process.env.TR_E2E_ACCOUNT;
    const authToken = process.env.TR_E2E_TOKEN;
    const basic = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    const r = await fetch(`${url}/v1/Workspaces`, { headers: { Authorization: basic } });
    server = { url, creds: { accountSid, authToken }, workspaceSid: (await r.json()).workspaces[0].sid };
    client = await twilioClient(server, { useAuthToken: true });
  } else {
    server = await startServer();
    client = await twilioClient(server);
  }
  assert.match(server.workspaceSid || '', /^WS[0-9a-f]{32}$/,
    'the server answers GET /v1/Workspaces with the embedded workspace (tr_api_register wired)');
  ws = client.taskrouter.v1.workspaces(server.workspaceSid);
});

after(async () => {
  if (server?.stop) {
    await server.stop();
    server.cleanup();
  }
});

// Asserts that promise rejects with a RestException of the given status and code.
async function rejectsWith(promise, status, code, messagePart) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof RestException, `RestException, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    assert.equal(e.moreInfo, `https://www.twilio.com/docs/errors/${code}`);
    if (messagePart) assert.match(e.message, messagePart);
    return true;
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('taskrouter over the twilio client', () => {
  let activities; // name -> sid
  let general; let loans; let workflow;

  test('workspace fetch and update', async () => {
    const w = await ws.fetch();
    assert.equal(w.sid, server.workspaceSid);
    assert.equal(w.accountSid, server.creds.accountSid);
    assert.equal(w.defaultActivityName, 'Offline');
    assert.equal(w.multiTaskEnabled, false);
    const u = await ws.update({ friendlyName: 'Bank', eventsFilter: 'task.created,task.canceled' });
    assert.equal(u.friendlyName, 'Bank');
    assert.equal(u.eventsFilter, 'task.created,task.canceled');
    const list = await client.taskrouter.v1.workspaces.list();
    assert.equal(list.length, 1);
    assert.equal(list[0].sid, server.workspaceSid);
  });

  test('activities: the five of a new workspace, create, fetch, delete', async () => {
    const list = await ws.activities.list();
    activities = Object.fromEntries(list.map((a) => [a.friendlyName, a.sid]));
    for (const name of ['Offline', 'Available', 'Unavailable', 'in-call', 'post-call'])
      assert.match(activities[name] || '', /^WA[0-9a-f]{32}$/, name);
    assert.equal(list.find((a) => a.friendlyName === 'Available').available, true);
    const a = await ws.activities.create({ friendlyName: 'Lunch', available: false });
    assert.equal(a.available, false);
    assert.equal((await ws.activities(a.sid).fetch()).friendlyName, 'Lunch');
    assert.equal(await ws.activities(a.sid).remove(), true);
    await rejectsWith(ws.activities(a.sid).fetch(), 404, 20404);
  });

  test('task queues and a workflow', async () => {
    general = await ws.taskQueues.create({ friendlyName: 'General', targetWorkers: "skills HAS 'general'" });
    loans = await ws.taskQueues.create({
      friendlyName: 'Loans', targetWorkers: "skills HAS 'loans'", assignmentActivitySid: activities['in-call'],
    });
    assert.match(general.sid, /^WQ[0-9a-f]{32}$/);
    assert.equal(general.taskOrder, 'FIFO');
    assert.equal(loans.assignmentActivityName, 'in-call');
    const byName = await ws.taskQueues.list({ friendlyName: 'Loans' });
    assert.deepEqual(byName.map((q) => q.sid), [loans.sid]);
    const forAttrs = await ws.taskQueues.list({ evaluateWorkerAttributes: '{"skills":["loans"]}' });
    assert.deepEqual(forAttrs.map((q) => q.sid), [loans.sid]);
    workflow = await ws.workflows.create({
      friendlyName: 'Router',
      taskReservationTimeout: 2,
      configuration: JSON.stringify({
        task_routing: {
          filters: [{ filter_friendly_name: 'Loans', expression: "type == 'loan'", targets: [{ queue: loans.sid }] }],
          default_filter: { queue: general.sid },
        },
      }),
    });
    assert.match(workflow.sid, /^WW[0-9a-f]{32}$/);
    assert.equal(workflow.taskReservationTimeout, 2);
    assert.equal(JSON.parse(workflow.configuration).task_routing.default_filter.queue, general.sid);
  });

  test('a bad expression is a 400 with its position; unknown SIDs are 404', async () => {
    await rejectsWith(ws.taskQueues.create({ friendlyName: 'Bad', targetWorkers: 'skills HAS (' }),
      400, 20001, /position \d+/);
    await rejectsWith(ws.workers.create({ friendlyName: 'X', attributes: '{not json' }), 400, 20001, /Attributes/);
    await rejectsWith(ws.tasks.create({ attributes: '{}', priority: -3, workflowSid: workflow.sid }), 400, 20001, /Priority/);
    await rejectsWith(ws.tasks('WT00000000000000000000000000000000').fetch(), 404, 20404);
    await rejectsWith(ws.workers('WK00000000000000000000000000000000').update({ friendlyName: 'y' }), 404, 20404);
    await rejectsWith(client.taskrouter.v1.workspaces('WS00000000000000000000000000000000').fetch(), 404, 20404);
  });

  test('workers: create, list with filters, update', async () => {
    const alice = await ws.workers.create({
      friendlyName: 'Alice', attributes: JSON.stringify({ skills: ['general', 'loans'] }),
    });
    assert.equal(alice.activityName, 'Offline');
    assert.equal(alice.available, false);
    assert.equal(typeof alice.attributes, 'string');
    assert.deepEqual(JSON.parse(alice.attributes).skills, ['general', 'loans']);
    const bob = await ws.workers.create({
      friendlyName: 'Bob', attributes: JSON.stringify({ skills: ['general'] }), activitySid: activities.Available,
    });
    assert.equal(bob.available, true);
    const avail = await ws.workers.list({ available: 'true' });
    assert.deepEqual(avail.map((w) => w.friendlyName), ['Bob']);
    const inLoans = await ws.workers.list({ taskQueueSid: loans.sid });
    assert.deepEqual(inLoans.map((w) => w.friendlyName), ['Alice']);
    const expr = await ws.workers.list({ targetWorkersExpression: "skills HAS 'general'" });
    assert.equal(expr.length, 2);
    await rejectsWith(ws.workers.list({ targetWorkersExpression: 'skills HAS' }), 400, 20001, /position/);
    const upd = await ws.workers(alice.sid).update({ activitySid: activities.Available });
    assert.equal(upd.activityName, 'Available');
  });

  test('tasks: routing, reservation accept, wrap-up and complete', async () => {
    const t = await ws.tasks.create({
      attributes: JSON.stringify({ type: 'loan', topic: 'c1' }), workflowSid: workflow.sid, priority: 3,
    });
    assert.match(t.sid, /^WT[0-9a-f]{32}$/);
    assert.equal(t.taskQueueSid, loans.sid);
    assert.equal(t.taskQueueFriendlyName, 'Loans');
    assert.equal(t.assignmentStatus, 'reserved'); // Alice is free and has the loans skill
    assert.equal(t.priority, 3);
    assert.equal(typeof t.age, 'number');
    const res = await ws.tasks(t.sid).reservations.list();
    assert.equal(res.length, 1);
    assert.equal(res[0].workerName, 'Alice');
    assert.equal(res[0].reservationStatus, 'pending');
    const acc = await ws.tasks(t.sid).reservations(res[0].sid).update({ reservationStatus: 'accepted' });
    assert.equal(acc.reservationStatus, 'accepted');
    assert.equal((await ws.tasks(t.sid).fetch()).assignmentStatus, 'assigned');
    const alice = await ws.workers(res[0].workerSid).fetch();
    assert.equal(alice.activityName, 'in-call'); // the queue's AssignmentActivitySid
    const viaWorker = await ws.workers(alice.sid).reservations(res[0].sid).fetch();
    assert.equal(viaWorker.taskSid, t.sid);
    const wrap = await ws.tasks(t.sid).update({ assignmentStatus: 'wrapping' });
    assert.equal(wrap.assignmentStatus, 'wrapping');
    const done = await ws.tasks(t.sid).update({ assignmentStatus: 'completed', reason: 'served' });
    assert.equal(done.assignmentStatus, 'completed');
    assert.equal(done.reason, 'served');
    await rejectsWith(ws.tasks(t.sid).update({ assignmentStatus: 'canceled' }), 400, 20001);
    const cum = await ws.taskQueues(loans.sid).cumulativeStatistics().fetch();
    assert.equal(cum.tasksCompleted, 1);
    assert.equal(cum.reservationsAccepted, 1);
    assert.equal(typeof cum.waitDurationUntilAccepted.avg, 'number');
  });

  test('a reservation that times out sends the worker Offline and the task back to pending', async () => {
    const t = await ws.tasks.create({ attributes: '{"type":"general"}', workflowSid: workflow.sid });
    const first = (await ws.tasks(t.sid).reservations.list())[0];
    assert.equal(first.workerName, 'Bob');
    const timedOut = await eventually(async () => {
      const r = await ws.tasks(t.sid).reservations(first.sid).fetch();
      return r.reservationStatus === 'timeout' && r;
    }, { timeout: 6000 });
    assert.ok(timedOut);
    assert.equal((await ws.workers(first.workerSid).fetch()).activityName, 'Offline');
    assert.equal((await ws.tasks(t.sid).fetch()).assignmentStatus, 'pending'); // nobody else free
    const events = await ws.events.list({ taskSid: t.sid, eventType: 'reservation.timeout' });
    assert.equal(events.length, 1);
    assert.equal(events[0].resourceSid, first.sid);
    await ws.tasks(t.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
  });

  test('tasks list: paging across pages, page(), each(), filters, ordering', async () => {
    for (let i = 0; i < 7; i++)
      await ws.tasks.create({ attributes: JSON.stringify({ n: i }), workflowSid: workflow.sid, priority: i % 3 });
    const all = await ws.tasks.list({ assignmentStatus: ['pending', 'reserved'], pageSize: 2 });
    assert.equal(all.length, 7);
    const limited = await ws.tasks.list({ limit: 5, pageSize: 2 });
    assert.equal(limited.length, 5);
    const page = await ws.tasks.page({ pageSize: 3, assignmentStatus: 'pending' });
    assert.equal(page.instances.length, 3);
    const next = await page.nextPage();
    assert.ok(next && next.instances.length >= 1);
    assert.notEqual(next.instances[0].sid, page.instances[0].sid);
    const seen = [];
    await new Promise((resolve, reject) => ws.tasks.each({
      pageSize: 4, assignmentStatus: ['pending'], callback: (t) => seen.push(t.sid),
      done: (err) => (err ? reject(err) : resolve()),
    }));
    assert.equal(new Set(seen).size, seen.length);
    assert.ok(seen.length >= 6);
    const ordered = await ws.tasks.list({ assignmentStatus: ['pending'], ordering: 'Priority:desc,DateCreated:asc' });
    for (let i = 1; i < ordered.length; i++) assert.ok(ordered[i - 1].priority >= ordered[i].priority);
    const evaluated = await ws.tasks.list({ evaluateTaskAttributes: 'n == 4' });
    assert.equal(evaluated.length, 1);
    await rejectsWith(ws.tasks.list({ assignmentStatus: ['bogus'] }), 400, 20001);
    const rt = await ws.taskQueues(general.sid).realTimeStatistics().fetch();
    assert.equal(rt.totalTasks, 7);
    assert.equal(rt.tasksByStatus.pending, 7);
    assert.equal(typeof rt.longestTaskWaitingAge, 'number');
    assert.equal(rt.totalEligibleWorkers, 2);
  });

  test('events are listed with Twilio fields', async () => {
    const evs = await ws.events.list({ eventType: 'task.created', limit: 3 });
    assert.ok(evs.length > 0);
    assert.match(evs[0].sid, /^EV[0-9a-f]{32}$/);
    assert.equal(evs[0].eventType, 'task.created');
    assert.equal(evs[0].resourceType, 'Task');
    assert.match(evs[0].eventData.task_sid, /^WT/);
    await sleep(1);
  });
});

// Partial updates keep what they leave out, and list filters by name: on PostgreSQL these
// statements bind parameters whose type only a CAST tells (docs/store.md), so they run in both
// suites.
describe('partial updates and filters by name', () => {
  test('a queue update keeps, sets and clears its activities', async () => {
    const acts = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
    const q = await ws.taskQueues.create({ friendlyName: 'Partial', targetWorkers: "skills HAS 'partial'",
      reservationActivitySid: acts['in-call'] });
    let u = await ws.taskQueues(q.sid).update({ friendlyName: 'Partial 2' });
    assert.equal(u.friendlyName, 'Partial 2');
    assert.equal(u.reservationActivitySid, acts['in-call'], 'an update without ReservationActivitySid keeps it');
    u = await ws.taskQueues(q.sid).update({ assignmentActivitySid: acts['post-call'] });
    assert.equal(u.assignmentActivitySid, acts['post-call']);
    assert.equal(u.reservationActivitySid, acts['in-call']);
    u = await ws.taskQueues(q.sid).update({ reservationActivitySid: '' });
    assert.equal(u.reservationActivitySid, null, 'an empty ReservationActivitySid clears it');
    assert.equal(u.assignmentActivitySid, acts['post-call']);
    assert.equal(await ws.taskQueues(q.sid).remove(), true);
  });

  test('a workflow update keeps the callback URLs it leaves out', async () => {
    const q = await ws.taskQueues.create({ friendlyName: 'PartialWf', targetWorkers: '1==1' });
    const wf = await ws.workflows.create({ friendlyName: 'Partial', assignmentCallbackUrl: 'http://127.0.0.1:9/assign',
      configuration: JSON.stringify({ task_routing: { default_filter: { queue: q.sid } } }) });
    let w = await ws.workflows(wf.sid).update({ friendlyName: 'Partial 2' });
    assert.equal(w.friendlyName, 'Partial 2');
    assert.equal(w.assignmentCallbackUrl, 'http://127.0.0.1:9/assign');
    w = await ws.workflows(wf.sid).update({ fallbackAssignmentCallbackUrl: 'http://127.0.0.1:9/fallback' });
    assert.equal(w.fallbackAssignmentCallbackUrl, 'http://127.0.0.1:9/fallback');
    assert.equal(w.assignmentCallbackUrl, 'http://127.0.0.1:9/assign');
    assert.equal(await ws.workflows(wf.sid).remove(), true);
    assert.equal(await ws.taskQueues(q.sid).remove(), true);
  });

  test('workers listed by TaskQueueName are the queue\'s eligible workers', async () => {
    const q = await ws.taskQueues.create({ friendlyName: 'ByName', targetWorkers: "skills HAS 'byname'" });
    const yes = await ws.workers.create({ friendlyName: 'byname-yes', attributes: '{"skills":["byname"]}' });
    const no = await ws.workers.create({ friendlyName: 'byname-no', attributes: '{"skills":["other"]}' });
    const byName = await ws.workers.list({ taskQueueName: 'ByName' });
    assert.deepEqual(byName.map((w) => w.sid), [yes.sid]);
    const bySid = await ws.workers.list({ taskQueueSid: q.sid });
    assert.deepEqual(bySid.map((w) => w.sid), [yes.sid]);
    await rejectsWith(ws.workers.list({ taskQueueName: 'NoSuchQueue' }), 400, 20001, /NoSuchQueue not found/);
    for (const w of [yes, no]) assert.equal(await ws.workers(w.sid).remove(), true);
    assert.equal(await ws.taskQueues(q.sid).remove(), true);
  });
});

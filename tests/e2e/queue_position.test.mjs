// queue_position.test.mjs - /queue/get-queue-position tells a caller only about its own task.
//
// The rule (issue 9, defect 4): a caller learns about a task only when the task's `identity`
// attribute equals the caller's verified identity. Every other question - someone else's
// task, a task without an identity, a topic document that names no task (queue-status) or
// is not shaped like a topic - gets one and the same 404, whether or not the task exists, and
// never a 500. Tasks are made through the official twilio client on the real server; nobody
// is available, so they wait.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServerAnyPort as startServer, twilioClient, tassa, decode, eventually } from './lib/server.mjs';

const hex = (n = 6) => randomBytes(n).toString('hex');

let server;
let ws; // client.taskrouter.v1.workspaces(WS)
let workflow;
const tokens = new Map();

before(async () => {
  server = await startServer();
  const client = await twilioClient(server);
  ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  const queue = await ws.taskQueues.create({ friendlyName: `Q-${hex()}`, targetWorkers: '1==1' });
  workflow = await ws.workflows.create({
    friendlyName: 'all to Q',
    configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
  });
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

// A caller JWT from `tassa user-token` (cached per identity).
function token(identity) {
  if (!tokens.has(identity)) {
    tokens.set(identity, tassa(['user-token', identity, '--data', server.store], { cwd: server.dataDir }).trim());
  }
  return tokens.get(identity);
}

async function position(identity, params) {
  const q = new URLSearchParams({ identity, token: token(identity), ...params });
  return decode(await fetch(`${server.url}/queue/get-queue-position?${q}`));
}

async function doc(name) {
  const r = await fetch(`${server.url}/v1/Services/default/Documents/${encodeURIComponent(name)}`,
    { headers: { Authorization: server.basic() } });
  return decode(r);
}

async function topicStatus(topic, status) {
  return eventually(async () => {
    const d = await doc(topic);
    return d.status === 200 && d.body.data.status === status && d.body.data;
  }, { timeout: 8000 });
}

const createTask = (attrs) => ws.tasks.create({ attributes: JSON.stringify(attrs), workflowSid: workflow.sid });

// What a caller is told about a task that does not exist at all: the reference answer that
// every refused question must equal, so that a refusal says nothing about existence.
async function unknownAnswer(identity, by) {
  const res = await position(identity, by === 'taskSid' ? { taskSid: `WT${hex(16)}` } : { topic: `nobody-${hex()}` });
  assert.ok(res.status === 403 || res.status === 404, JSON.stringify(res.body));
  return res;
}

// Asserts res is a refusal identical to the answer for a task that does not exist, and
// that it carries nothing of the task asked about.
async function assertRefused(res, identity, by, secrets = []) {
  const ref = await unknownAnswer(identity, by);
  assert.equal(res.status, ref.status, JSON.stringify(res.body));
  assert.deepEqual(res.body, ref.body);
  const text = JSON.stringify(res.body);
  for (const s of secrets) assert.ok(!text.includes(s), `the answer reveals ${s}: ${text}`);
}

describe('get-queue-position answers only about the caller\'s own task', () => {
  test('a customer\'s own task still answers, waiting and after it left the queue', async () => {
    const identity = `own-${hex(3)}`;
    const topic = `own-${hex()}`;
    const task = await createTask({ topic, identity });
    await topicStatus(topic, 'waiting');
    let res = await position(identity, { topic });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.taskSid, task.sid);
    assert.equal(res.body.status, 'pending');
    assert.equal(res.body.position, 1);
    res = await position(identity, { taskSid: task.sid });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.taskSid, task.sid);

    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test' });
    await topicStatus(topic, 'completed');
    for (const by of [{ topic }, { taskSid: task.sid }]) {
      res = await position(identity, by);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.taskSid, task.sid);
      assert.equal(res.body.status, 'canceled');
      assert.equal(res.body.position, null);
    }
  });

  test('once customer B\'s task has left the queue, customer A cannot learn it by topic', async () => {
    const a = `cust-a-${hex(3)}`;
    const b = `cust-b-${hex(3)}`;
    const topic = `customer-b-${hex()}`;
    const task = await createTask({ topic, identity: b });
    await topicStatus(topic, 'waiting');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test' });
    // The topic document still names B's task, with its status.
    const data = await topicStatus(topic, 'completed');
    assert.equal(data.taskSid, task.sid);
    await assertRefused(await position(a, { topic }), a, 'topic', [task.sid, 'completed', 'canceled']);
    await assertRefused(await position(a, { taskSid: task.sid }), a, 'taskSid', [task.sid, 'canceled']);
    // B itself still learns what became of it.
    const own = await position(b, { topic });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.equal(own.body.taskSid, task.sid);
  });

  test('customer A cannot learn customer B\'s waiting task, not even that it exists', async () => {
    const a = `cust-a-${hex(3)}`;
    const b = `cust-b-${hex(3)}`;
    const topic = `customer-b-${hex()}`;
    const task = await createTask({ topic, identity: b });
    await topicStatus(topic, 'waiting');
    await assertRefused(await position(a, { topic }), a, 'topic', [task.sid]);
    await assertRefused(await position(a, { taskSid: task.sid }), a, 'taskSid', [task.sid]);
    const own = await position(b, { taskSid: task.sid });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.equal(own.body.status, 'pending');
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test' });
  });

  test('a task without an identity attribute answers nobody', async () => {
    const caller = `anyone-${hex(3)}`;
    const topic = `anon-${hex()}`;
    const task = await createTask({ topic });
    await topicStatus(topic, 'waiting');
    await assertRefused(await position(caller, { topic }), caller, 'topic', [task.sid]);
    await assertRefused(await position(caller, { taskSid: task.sid }), caller, 'taskSid', [task.sid]);
    // Nor one whose identity is not a string, nor one that only starts like the caller's.
    const odd = [{ identity: 42 }, { identity: [caller] }, { identity: `${caller}x` }];
    for (const extra of odd) {
      const t = await createTask({ topic: `odd-${hex()}`, ...extra });
      await assertRefused(await position(caller, { taskSid: t.sid }), caller, 'taskSid', [t.sid]);
    }
    await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test' });
    await topicStatus(topic, 'completed');
    await assertRefused(await position(caller, { topic }), caller, 'topic', [task.sid]);
  });

  test('topic=queue-status and documents that are not topic documents: a refusal, never a 500', async () => {
    const caller = `curious-${hex(3)}`;
    await createTask({ topic: `qs-${hex()}`, identity: `someone-${hex(3)}` });
    await eventually(async () => (await doc('queue-status')).status === 200, { timeout: 8000 });
    await assertRefused(await position(caller, { topic: 'queue-status' }), caller, 'topic');

    // Documents of every odd shape, made over the REST API with account credentials.
    const shapes = [{}, { status: 7 }, { status: null, taskSid: 5 }, { taskSid: `WT${hex(16)}` },
      { taskSid: ['x'], status: 'waiting' }, { status: { nested: true } }, { taskSid: '' }];
    for (const data of shapes) {
      const name = `shape-${hex()}`;
      const r = await fetch(`${server.url}/v1/Services/default/Documents`, {
        method: 'POST',
        headers: { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ UniqueName: name, Data: JSON.stringify(data) }).toString(),
      });
      assert.equal(r.status, 201);
      const res = await position(caller, { topic: name });
      assert.notEqual(res.status, 500, `${JSON.stringify(data)}: ${JSON.stringify(res.body)}`);
      await assertRefused(res, caller, 'topic');
    }
  });
});

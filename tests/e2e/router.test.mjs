// router.test.mjs - /general/router: X-Twilio-Signature, idempotency, topic documents.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';
import { startServerAnyPort as startServer, tassa, postForm, decode } from './lib/server.mjs';

let server;
let routerUrl;

before(async () => {
  server = await startServer();
  routerUrl = `${server.url}/general/router`;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

const hex = (n = 16) => randomBytes(n).toString('hex');
const newSid = (prefix) => `${prefix}${hex()}`;
const newTopic = (label = 'topic') => `${label}-${hex(6)}`;

// A TaskRouter-shaped event callback.
function event(type, { taskSid, topic, attributes, ...extra } = {}) {
  const p = {
    EventType: type,
    Sid: newSid('EV'),
    Timestamp: String(Math.floor(Date.now() / 1000)),
    AccountSid: server.creds.accountSid,
  };
  if (taskSid) p.TaskSid = taskSid;
  if (attributes !== undefined) p.TaskAttributes = attributes;
  else if (topic !== undefined) p.TaskAttributes = JSON.stringify({ topic, type: 'support' });
  return { ...p, ...extra };
}

const sign = (params, url = routerUrl, token = server.creds.authToken) =>
  twilio.getExpectedTwilioSignature(token, url, params);

async function post(params, { signature = sign(params), url = routerUrl } = {}) {
  const headers = signature === null ? {} : { 'X-Twilio-Signature': signature };
  return postForm(url, params, headers);
}

async function getDoc(topic, srv = server) {
  const r = await fetch(`${srv.url}/v1/Services/default/Documents/${encodeURIComponent(topic)}`,
    { headers: { Authorization: srv.basic() } });
  return decode(r);
}

// Posts and asserts a 200 that changed the topic.
async function postOk(params) {
  const res = await post(params);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

describe('the answer', () => {
  test('has exactly the handler\'s fields, with the reader and the reason when set', async () => {
    const taskSid = newSid('WT');
    const topic = newTopic('answer');
    const quoted = `${topic}-"q"\\-\u00e9`; // a topic the answer must escape
    const created = await post(event('task.created', {
      taskSid, attributes: JSON.stringify({ topic: quoted, identity: 'ann' }),
    }));
    assert.equal(created.status, 200);
    assert.equal(created.headers.get('content-type'), 'application/json');
    assert.deepEqual(created.body,
      { handler: 'reservation', topic: quoted, status: 'waiting', changed: true, reader: 'ann' });
    assert.deepEqual(Object.keys(created.body), ['handler', 'topic', 'status', 'changed', 'reader']);
    const stale = await post(event('task.created', {
      taskSid, attributes: JSON.stringify({ topic: quoted }),
    }));
    assert.equal(stale.status, 200);
    assert.deepEqual(Object.keys(stale.body), ['handler', 'topic', 'status', 'changed', 'reason']);
    assert.equal(stale.body.changed, false);
    assert.match(stale.body.reason, /already waiting/);
    const none = await post(event('task.created', { taskSid, attributes: '{}' }));
    assert.deepEqual(none.body, { ignored: true, reason: 'task has no topic attribute' });
  });
});

describe('reservation flow', () => {
  const topic = newTopic('flow');
  const taskSid = newSid('WT');
  const workerSid = newSid('WK');
  let completedRevision;

  test('task.created -> waiting', async () => {
    const body = await postOk(event('task.created', { taskSid, topic }));
    assert.equal(body.handler, 'reservation');
    assert.equal(body.topic, topic);
    assert.equal(body.status, 'waiting');
    assert.equal(body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.unique_name, topic);
    assert.equal(doc.body.revision, '0');
    assert.equal(doc.body.data.status, 'waiting');
    assert.equal(doc.body.data.taskSid, taskSid);
    assert.equal(doc.body.data.worker, null);
    assert.equal(doc.body.data.event, 'task.created');
    assert.match(doc.body.data.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  test('reservation.accepted -> assigned with the worker', async () => {
    const body = await postOk(event('reservation.accepted', {
      taskSid, topic, WorkerSid: workerSid, WorkerName: 'Teller Ann', ReservationSid: newSid('WR'),
    }));
    assert.equal(body.status, 'assigned');
    assert.equal(body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, '1');
    assert.equal(doc.body.data.status, 'assigned');
    assert.equal(doc.body.data.taskSid, taskSid);
    assert.deepEqual(doc.body.data.worker, { sid: workerSid, name: 'Teller Ann' });
  });

  test('reservation.completed -> completed, keeping the worker', async () => {
    const body = await postOk(event('reservation.completed', { taskSid, topic }));
    assert.equal(body.status, 'completed');
    assert.equal(body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, '2');
    assert.equal(doc.body.data.status, 'completed');
    assert.deepEqual(doc.body.data.worker, { sid: workerSid, name: 'Teller Ann' });
    completedRevision = doc.body.revision;
  });

  test('a replayed event (same Sid) is ignored as a duplicate', async () => {
    const p = event('task.created', { taskSid: newSid('WT'), topic: newTopic('replay') });
    const first = await postOk(p);
    assert.equal(first.changed, true);
    const before = await getDoc(JSON.parse(p.TaskAttributes).topic);
    const again = await post(p);
    assert.equal(again.status, 200);
    assert.equal(again.body.ignored, true);
    assert.match(again.body.reason, /duplicate/i);
    const after = await getDoc(JSON.parse(p.TaskAttributes).topic);
    assert.equal(after.body.revision, before.body.revision);
    assert.deepEqual(after.body.data, before.body.data);
  });

  test('a replay of the completed topic\'s accepted event changes nothing', async () => {
    const p = event('reservation.accepted', { taskSid, topic, WorkerSid: newSid('WK'), WorkerName: 'Late' });
    await post(p); // first delivery: late, so it does not move the topic
    const again = await post(p);
    assert.equal(again.status, 200);
    assert.equal(again.body.ignored, true);
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, completedRevision);
  });

  test('a late reservation.accepted (new Sid) after completed changes nothing', async () => {
    const res = await post(event('reservation.accepted', {
      taskSid, topic, WorkerSid: newSid('WK'), WorkerName: 'Teller Late',
    }));
    assert.equal(res.status, 200);
    assert.equal(res.body.changed, false);
    assert.equal(typeof res.body.reason, 'string');
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, completedRevision);
    assert.equal(doc.body.data.status, 'completed');
    assert.deepEqual(doc.body.data.worker, { sid: workerSid, name: 'Teller Ann' });
  });

  test('a late task.created for the same task does not reopen the topic', async () => {
    const res = await post(event('task.created', { taskSid, topic }));
    assert.equal(res.status, 200);
    assert.notEqual(res.body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, completedRevision);
    assert.equal(doc.body.data.status, 'completed');
  });

  test('task.canceled, task.deleted and reservation.canceled complete a topic', async () => {
    for (const type of ['task.canceled', 'task.deleted', 'reservation.canceled']) {
      const t = newTopic(type);
      const ts = newSid('WT');
      await postOk(event('task.created', { taskSid: ts, topic: t }));
      const body = await postOk(event(type, { taskSid: ts, topic: t }));
      assert.equal(body.status, 'completed', type);
      const doc = await getDoc(t);
      assert.equal(doc.body.data.status, 'completed', type);
      assert.equal(doc.body.revision, '1', type);
    }
  });
});

describe('ignored events', () => {
  test('an unknown event type -> 200 ignored with a reason', async () => {
    const res = await post(event('workspace.exploded', { taskSid: newSid('WT'), topic: newTopic() }));
    assert.equal(res.status, 200);
    assert.equal(res.body.ignored, true);
    assert.equal(typeof res.body.reason, 'string');
    assert.ok(res.body.reason.length > 0);
  });

  test('a worker.* event is answered 200 (ignored or handled)', async () => {
    const res = await post(event('worker.activity.update', { WorkerSid: newSid('WK'),
      WorkerActivityName: 'Available' }));
    assert.equal(res.status, 200);
    assert.ok(res.body.ignored === true || typeof res.body.handler === 'string', JSON.stringify(res.body));
    if (res.body.ignored) assert.equal(typeof res.body.reason, 'string');
  });

  test('a task without a topic is ignored and creates no document', async () => {
    const res = await post(event('task.created', { taskSid: newSid('WT'), attributes: '{"type":"x"}' }));
    assert.equal(res.status, 200);
    assert.equal(res.body.ignored, true);
    assert.match(res.body.reason, /topic/);
    const res2 = await post(event('task.created', { taskSid: newSid('WT') }));
    assert.equal(res2.status, 200);
    assert.equal(res2.body.ignored, true);
  });

  test('missing EventType -> 400', async () => {
    const p = { Sid: newSid('EV'), TaskSid: newSid('WT') };
    const res = await post(p);
    assert.equal(res.status, 400);
    assert.equal(typeof res.body.error, 'string');
  });

  test('a topic named queue-status or longer than 320 characters is refused', async () => {
    const qs = await post(event('task.created', { taskSid: newSid('WT'), topic: 'queue-status' }));
    assert.equal(qs.status, 400);
    assert.notEqual((await getDoc('queue-status')).body?.data?.status, 'waiting');
    const long = 't'.repeat(321);
    const res = await post(event('task.created', { taskSid: newSid('WT'), topic: long }));
    assert.equal(res.status, 400);
    assert.equal((await getDoc(long)).status, 404);
  });

  test('TaskAttributes that is not a JSON object -> 400', async () => {
    const res = await post(event('task.created', { taskSid: newSid('WT'), attributes: '[1,2]' }));
    assert.equal(res.status, 400);
    assert.equal(res.body.status, 400);
  });
});

describe('signature', () => {
  test('a bad signature -> 403 and nothing written', async () => {
    const topic = newTopic('badsig');
    const p = event('task.created', { taskSid: newSid('WT'), topic });
    const res = await post(p, { signature: sign(p, routerUrl, 'wrong-token-' + hex()) });
    assert.equal(res.status, 403);
    assert.equal(res.body.status, 403);
    assert.equal(typeof res.body.error, 'string');
    assert.equal((await getDoc(topic)).status, 404);
    // garbage of the right and the wrong length
    assert.equal((await post(p, { signature: 'A'.repeat(28) })).status, 403);
    assert.equal((await post(p, { signature: 'xyz' })).status, 403);
    // and the Sid was not burnt: the properly signed event still goes through
    const ok = await post(p);
    assert.equal(ok.status, 200);
    assert.equal(ok.body.changed, true);
  });

  test('a missing signature -> 403', async () => {
    const topic = newTopic('nosig');
    const res = await post(event('task.created', { taskSid: newSid('WT'), topic }), { signature: null });
    assert.equal(res.status, 403);
    assert.equal((await getDoc(topic)).status, 404);
  });

  test('a changed parameter -> 403', async () => {
    const topic = newTopic('tamper');
    const p = event('task.created', { taskSid: newSid('WT'), topic });
    const signature = sign(p);
    const res = await post({ ...p, TaskAttributes: JSON.stringify({ topic: `${topic}-x` }) }, { signature });
    assert.equal(res.status, 403);
    const res2 = await post({ ...p, Extra: '1' }, { signature });
    assert.equal(res2.status, 403);
    assert.equal((await getDoc(topic)).status, 404);
    assert.equal((await getDoc(`${topic}-x`)).status, 404);
  });

  test('a signature over another URL -> 403', async () => {
    const p = event('task.created', { taskSid: newSid('WT'), topic: newTopic() });
    const res = await post(p, { signature: sign(p, `${server.url}/general/other`) });
    assert.equal(res.status, 403);
  });

  test('TASSA_VERIFY_SIGNATURE=false accepts unsigned events', async () => {
    const open = await startServer({ env: { TASSA_VERIFY_SIGNATURE: 'false' } });
    try {
      const topic = newTopic('open');
      const p = event('task.created', { taskSid: newSid('WT'), topic });
      const res = await postForm(`${open.url}/general/router`, p);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.changed, true);
      const doc = await getDoc(topic, open);
      assert.equal(doc.status, 200);
      assert.equal(doc.body.data.status, 'waiting');
    } finally {
      await open.stop();
      open.cleanup();
    }
  });
});

describe('concurrency', () => {
  test('50 concurrent events on one topic: no lost write, consistent revision', async () => {
    const topic = newTopic('burst');
    const taskSid = newSid('WT');
    const types = ['task.created', 'reservation.accepted', 'reservation.completed'];
    const events = Array.from({ length: 50 }, (_, i) => event(types[i % 3], {
      taskSid, topic, WorkerSid: `WK${String(i).padStart(32, '0')}`, WorkerName: `w${i}`,
    }));
    const results = await Promise.all(events.map((p) => post(p)));
    for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
    const changed = results.filter((r) => r.body.changed === true);
    assert.ok(changed.length >= 1 && changed.length <= 3, `changed ${changed.length} times`);
    const doc = await getDoc(topic);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.data.status, 'completed');
    assert.equal(doc.body.data.taskSid, taskSid);
    assert.equal(Number(doc.body.revision), changed.length - 1);
    // the final document is the one the last reported change wrote
    const completing = changed.filter((r) => r.body.status === 'completed');
    assert.equal(completing.length, 1);
    // each status was written at most once
    const statuses = changed.map((r) => r.body.status);
    assert.equal(new Set(statuses).size, statuses.length, statuses.join());
    // the worker the one successful accept wrote is the one the completed topic kept
    const acceptIdx = results.findIndex((r) => r.body.changed === true && r.body.status === 'assigned');
    const expectedWorker = acceptIdx < 0 ? null
      : { sid: events[acceptIdx].WorkerSid, name: events[acceptIdx].WorkerName };
    assert.deepEqual(doc.body.data.worker, expectedWorker);
  });
});

describe('CLI', () => {
  test('tassa event posts a correctly signed event', async () => {
    const topic = newTopic('cli');
    const taskSid = newSid('WT');
    const out = tassa(['event', 'task.created', `TaskSid=${taskSid}`, `TaskAttributes={"topic":"${topic}"}`,
      '--port', String(server.port), '--data', server.store], { cwd: server.dataDir });
    const body = JSON.parse(out.trim());
    assert.equal(body.handler, 'reservation');
    assert.equal(body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.status, 200);
    assert.equal(doc.body.data.status, 'waiting');
    assert.equal(doc.body.data.taskSid, taskSid);
    assert.match(doc.body.data.eventSid, /^EV[0-9a-f]{32}$/);
  });
});

// twilio_backend.test.mjs - TASSA_BACKEND=twilio against a stand-in for Twilio.
//
// Three processes: a stand-in tassa (embedded back end) plays Twilio's REST API; a fault
// proxy sits in front of it; a second tassa runs with TASSA_BACKEND=twilio, its
// TWILIO_SYNC_URL and TWILIO_TASKROUTER_URL pointed at the proxy. The same flow suite
// (flowSuite below) runs against the stand-in directly (embedded back end) and against the
// twilio-backed tassa, and must give the same results; then the proxy injects faults (429,
// 500, timeouts, a 412 race, 404s) that the twilio back end must ride out or report clearly.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';
import jwt from 'jsonwebtoken';
import { startServerAnyPort as startServer, postForm, decode } from './lib/server.mjs';
import { startFaultProxy } from './lib/fault_proxy.mjs';

const hex = (n = 16) => randomBytes(n).toString('hex');
const newSid = (prefix) => `${prefix}${hex()}`;
const newTopic = (label = 'topic') => `${label}-${hex(6)}`;
const AUTH_TOKEN = hex();
const JWT_SECRET = hex(24);
const TIMEOUT_MS = 500;

let standIn; // embedded tassa playing Twilio
let proxy; // fault proxy in front of it
let remote; // tassa with TASSA_BACKEND=twilio
let workspaceSid;

before(async () => {
  standIn = await startServer();
  proxy = await startFaultProxy(standIn.url);
  workspaceSid = standIn.workspaceSid || newSid('WS');
  remote = await startServer({
    env: {
      TASSA_BACKEND: 'twilio',
      ACCOUNT_SID: standIn.creds.accountSid,
      API_KEY: standIn.creds.apiKey,
      API_SECRET: standIn.creds.apiSecret,
      WORKSPACE_SID: workspaceSid,
      TWILIO_SYNC_URL: proxy.url,
      TWILIO_TASKROUTER_URL: proxy.url,
      AUTH_TOKEN,
      JWT_SECRET,
      TASSA_HTTP_TIMEOUT_MS: String(TIMEOUT_MS),
    },
  });
});

after(async () => {
  if (process.env.DUMP_LOG) console.error(remote?.log); // DUMP_LOG=1: the twilio-backed log
  // Stop both even if one fails; a sanitizer report at exit fails the run.
  const results = await Promise.allSettled([remote?.stop(), standIn?.stop()]);
  await proxy?.close();
  remote?.cleanup();
  standIn?.cleanup();
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

// What a suite needs to know about the server under test. Resolved lazily: describe()
// bodies run before before() has started the servers.
const targets = {
  embedded: () => ({ server: standIn, authToken: standIn.creds.authToken }),
  twilio: () => ({ server: remote, authToken: AUTH_TOKEN }),
};

// A TaskRouter-shaped event callback.
function event(type, { taskSid, topic, ...extra } = {}) {
  const p = {
    EventType: type,
    Sid: newSid('EV'),
    Timestamp: String(Math.floor(Date.now() / 1000)),
    AccountSid: standIn.creds.accountSid,
    WorkspaceSid: workspaceSid,
  };
  if (taskSid) p.TaskSid = taskSid;
  if (topic !== undefined) p.TaskAttributes = JSON.stringify({ topic, type: 'support' });
  return { ...p, ...extra };
}

// Posts an event to target's /general/router, signed as TaskRouter would sign it.
async function post(target, params) {
  const { server, authToken } = target();
  const url = `${server.url}/general/router`;
  const signature = twilio.getExpectedTwilioSignature(authToken, url, params);
  return postForm(url, params, { 'X-Twilio-Signature': signature });
}

async function postOk(target, params) {
  const res = await post(target, params);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

// The topic document as Twilio (the stand-in) holds it, read directly, not through the proxy.
async function getDoc(topic) {
  const r = await fetch(`${standIn.url}/v1/Services/default/Documents/${encodeURIComponent(topic)}`,
    { headers: { Authorization: standIn.basic() } });
  return decode(r);
}

// Writes a document on the stand-in directly, as another writer would.
async function writeDoc(topic, data, revision) {
  const r = await fetch(`${standIn.url}/v1/Services/default/Documents/${encodeURIComponent(topic)}`, {
    method: 'POST',
    headers: {
      Authorization: standIn.basic(),
      'Content-Type': 'application/x-www-form-urlencoded',
      ...(revision !== undefined ? { 'If-Match': revision } : {}),
    },
    body: new URLSearchParams({ Data: JSON.stringify(data) }).toString(),
  });
  return decode(r);
}

// The flow assertions every back end must pass. Other e2e files can run their suites on both
// back ends the same way: wrap them in a function of a target and call it once per target.
function flowSuite(name, target) {
  describe(`router flow on the ${name} back end`, () => {
    test('task.created -> waiting -> reservation.accepted -> assigned -> completed', async () => {
      const topic = newTopic('flow');
      const taskSid = newSid('WT');
      const workerSid = newSid('WK');
      let body = await postOk(target, event('task.created', { taskSid, topic }));
      assert.deepEqual([body.handler, body.topic, body.status, body.changed],
        ['reservation', topic, 'waiting', true]);
      let doc = await getDoc(topic);
      assert.equal(doc.status, 200);
      assert.equal(doc.body.unique_name, topic);
      assert.equal(doc.body.revision, '0');
      assert.equal(doc.body.data.status, 'waiting');
      assert.equal(doc.body.data.taskSid, taskSid);
      assert.equal(doc.body.data.worker, null);

      body = await postOk(target, event('reservation.accepted',
        { taskSid, topic, WorkerSid: workerSid, WorkerName: 'Ada' }));
      assert.equal(body.status, 'assigned');
      doc = await getDoc(topic);
      assert.equal(doc.body.revision, '1');
      assert.equal(doc.body.data.status, 'assigned');
      assert.deepEqual(doc.body.data.worker, { sid: workerSid, name: 'Ada' });

      body = await postOk(target, event('reservation.completed', { taskSid, topic, WorkerSid: workerSid }));
      assert.equal(body.status, 'completed');
      doc = await getDoc(topic);
      assert.equal(doc.body.revision, '2');
      assert.equal(doc.body.data.status, 'completed');
      assert.equal(doc.body.data.event, 'reservation.completed');
      assert.deepEqual(doc.body.data.worker, { sid: workerSid, name: 'Ada' });
    });

    test('a replayed event (same Sid) is ignored and writes nothing', async () => {
      const topic = newTopic('replay');
      const created = event('task.created', { taskSid: newSid('WT'), topic });
      await postOk(target, created);
      const again = await postOk(target, created);
      assert.equal(again.ignored, true);
      assert.match(again.reason, /duplicate/);
      const doc = await getDoc(topic);
      assert.equal(doc.body.revision, '0');
    });

    test('a late reservation.accepted after completed changes nothing', async () => {
      const topic = newTopic('late');
      const taskSid = newSid('WT');
      await postOk(target, event('task.created', { taskSid, topic }));
      await postOk(target, event('task.canceled', { taskSid, topic }));
      const late = await postOk(target, event('reservation.accepted',
        { taskSid, topic, WorkerSid: newSid('WK'), WorkerName: 'late' }));
      assert.equal(late.changed, false);
      assert.match(late.reason, /already completed/);
      const doc = await getDoc(topic);
      assert.equal(doc.body.revision, '1');
      assert.equal(doc.body.data.status, 'completed');
      assert.equal(doc.body.data.worker, null);
    });

    test('a topic with unusual characters is stored under its exact unique name', async () => {
      const topic = `odd name/?#%&+=é-${hex(3)}`;
      await postOk(target, event('task.created', { taskSid: newSid('WT'), topic }));
      const doc = await getDoc(topic);
      assert.equal(doc.status, 200, JSON.stringify(doc.body));
      assert.equal(doc.body.unique_name, topic);
      assert.equal(doc.body.data.status, 'waiting');
    });

    test('a task without a topic is ignored with a reason', async () => {
      const body = await postOk(target, event('task.created', { taskSid: newSid('WT') }));
      assert.equal(body.ignored, true);
      assert.match(body.reason, /topic/);
    });

    test('20 concurrent events on one topic: no lost write', async () => {
      const topic = newTopic('burst');
      const taskSid = newSid('WT');
      const types = ['task.created', 'reservation.accepted', 'reservation.completed'];
      const events = Array.from({ length: 20 }, (_, i) => event(types[i % 3], {
        taskSid, topic, WorkerSid: `WK${String(i).padStart(32, '0')}`, WorkerName: `w${i}`,
      }));
      const results = await Promise.all(events.map((p) => post(target, p)));
      for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
      const changed = results.filter((r) => r.body.changed === true);
      assert.ok(changed.length >= 1 && changed.length <= 3, `changed ${changed.length} times`);
      const doc = await getDoc(topic);
      assert.equal(doc.body.data.status, 'completed');
      assert.equal(Number(doc.body.revision), changed.length - 1);
      const statuses = changed.map((r) => r.body.status);
      assert.equal(new Set(statuses).size, statuses.length, statuses.join());
      const acceptIdx = results.findIndex((r) => r.body.changed === true && r.body.status === 'assigned');
      const expectedWorker = acceptIdx < 0 ? null
        : { sid: events[acceptIdx].WorkerSid, name: events[acceptIdx].WorkerName };
      assert.deepEqual(doc.body.data.worker, expectedWorker);
    });
  });
}

flowSuite('embedded', targets.embedded);
flowSuite('twilio', targets.twilio);

const docPath = (topic) => new RegExp(`/v1/Services/default/Documents/${topic}$`);
const createPath = /\/v1\/Services\/default\/Documents$/;

// The failed-attempt lines the twilio back end logged for a path fragment.
function failures(fragment) {
  return remote.log.split('\n').filter((l) => l.includes('event=twilio_request_failed')
    && l.includes(fragment));
}

describe('faults from Twilio, ridden out by the twilio back end', () => {
  test('429 with Retry-After: 0, then success', async () => {
    proxy.clear();
    const topic = newTopic('f429');
    const rule = proxy.inject({ method: 'GET', path: docPath(topic), fault: '429' });
    const body = await postOk(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic }));
    assert.equal(body.changed, true);
    assert.equal(rule.hits, 1);
    assert.equal((await getDoc(topic)).body.data.status, 'waiting');
    const lines = failures(topic);
    assert.ok(lines.some((l) => /method=GET .*status=429 code=20429 attempt=1\/4 next=retry retry_in_ms=0/.test(l)),
      lines.join('\n'));
  });

  test('500, then success', async () => {
    proxy.clear();
    const topic = newTopic('f500');
    const taskSid = newSid('WT');
    await postOk(targets.twilio, event('task.created', { taskSid, topic }));
    const rule = proxy.inject({ method: 'POST', path: docPath(topic), fault: '500' });
    const body = await postOk(targets.twilio, event('reservation.accepted',
      { taskSid, topic, WorkerSid: newSid('WK'), WorkerName: 'Bo' }));
    assert.equal(body.changed, true);
    assert.equal(rule.hits, 1);
    const doc = await getDoc(topic);
    assert.equal(doc.body.data.status, 'assigned');
    assert.equal(doc.body.revision, '1');
    assert.ok(failures(topic).some((l) => /method=POST .*status=500 code=20500 attempt=1\/4 next=retry/.test(l)));
  });

  test('a timeout (answer held past TASSA_HTTP_TIMEOUT_MS), then success', async () => {
    proxy.clear();
    const topic = newTopic('ftimeout');
    const rule = proxy.inject({ method: 'GET', path: docPath(topic), fault: 'delay', delayMs: TIMEOUT_MS * 3 });
    const started = Date.now();
    const body = await postOk(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic }));
    assert.equal(body.changed, true);
    assert.equal(rule.hits, 1);
    assert.ok(Date.now() - started >= TIMEOUT_MS * 0.9, 'the first attempt waited for the timeout');
    assert.equal((await getDoc(topic)).body.data.status, 'waiting');
    assert.ok(failures(topic).some((l) => /method=GET .*status=0 .*attempt=1\/4 next=retry.*timed out/.test(l)),
      failures(topic).join('\n'));
  });

  test('a create that landed but timed out: the retry meets 409 and nothing is written twice', async () => {
    proxy.clear();
    const topic = newTopic('flanded');
    const rule = proxy.inject({ method: 'POST', path: createPath, fault: 'delay-after', delayMs: TIMEOUT_MS * 3 });
    const body = await postOk(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic }));
    assert.equal(rule.hits, 1);
    // The first attempt's write stands; the re-read sees it, so this answer changes nothing.
    assert.equal(body.status, 'waiting');
    const doc = await getDoc(topic);
    assert.equal(doc.body.data.status, 'waiting');
    assert.equal(doc.body.revision, '0');
    const lines = failures('/Documents ');
    assert.ok(lines.some((l) => /method=POST .*status=409 .*next=caller_handles/.test(l)), lines.join('\n'));
  });

  test('a 412 race: a concurrent write lands first; the final document reflects both', async () => {
    proxy.clear();
    const topic = newTopic('f412');
    const taskSid = newSid('WT');
    const racer = newSid('WK');
    await postOk(targets.twilio, event('task.created', { taskSid, topic }));
    const rule = proxy.inject({
      method: 'POST',
      path: docPath(topic),
      fault: 'race',
      before: async (req) => {
        // Another instance accepts the reservation just before our If-Match update goes out.
        const current = await getDoc(topic);
        const r = await writeDoc(topic, {
          status: 'assigned', taskSid, worker: { sid: racer, name: 'racer' },
          event: 'reservation.accepted', updatedAt: new Date().toISOString(),
        }, current.body.revision);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(req.headers['if-match'], current.body.revision);
      },
    });
    const body = await postOk(targets.twilio, event('reservation.completed', { taskSid, topic }));
    assert.equal(rule.hits, 1);
    assert.equal(body.changed, true);
    const doc = await getDoc(topic);
    assert.equal(doc.body.revision, '2', 'racer wrote 1, our retry wrote 2');
    assert.equal(doc.body.data.status, 'completed'); // our write
    assert.deepEqual(doc.body.data.worker, { sid: racer, name: 'racer' }); // the racer's write
    assert.ok(failures(topic).some((l) => /method=POST .*status=412 code=54103 .*next=caller_handles/.test(l)));
  });

  test('a 404 on an update (document deleted meanwhile) is re-read, not lost', async () => {
    proxy.clear();
    const topic = newTopic('f404once');
    const taskSid = newSid('WT');
    await postOk(targets.twilio, event('task.created', { taskSid, topic }));
    proxy.inject({ method: 'POST', path: docPath(topic), fault: '404' });
    const body = await postOk(targets.twilio, event('task.canceled', { taskSid, topic }));
    assert.equal(body.changed, true);
    assert.equal((await getDoc(topic)).body.data.status, 'completed');
  });

  test('a persistent 503 fails the event with a JSON error naming Twilio\'s answer', async () => {
    proxy.clear();
    const topic = newTopic('f503');
    const rule = proxy.inject({ path: docPath(topic), fault: '503', times: Infinity, message: 'Service down for maintenance' });
    const res = await post(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic }));
    proxy.clear();
    assert.equal(res.status, 503, JSON.stringify(res.body));
    assert.equal(res.body.status, 503);
    assert.match(res.body.error, /twilio 503 20500: Service down for maintenance/);
    assert.equal(rule.hits, 4, 'one try and three retries');
    assert.ok(failures(topic).some((l) => /status=503 .*attempt=4\/4 next=give_up/.test(l)));
    assert.equal((await getDoc(topic)).status, 404, 'nothing was written');
  });

  test('persistent 404s on the Sync paths: a JSON error with a reason, never a crash', async () => {
    proxy.clear();
    const topic = newTopic('f404');
    proxy.inject({ path: docPath(topic), fault: '404', times: Infinity });
    proxy.inject({ method: 'POST', path: createPath, fault: '404', times: Infinity });
    const res = await post(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic }));
    proxy.clear();
    assert.ok(res.status >= 400 && res.status < 600, String(res.status));
    assert.equal(typeof res.body.error, 'string');
    assert.ok(res.body.error.length > 0);
    assert.ok(failures('/Documents ').some((l) => /method=POST .*status=404 code=20404/.test(l)));
    // still serving
    const ok = await postOk(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic: newTopic('after404') }));
    assert.equal(ok.changed, true);
  });
});

describe('TaskRouter reads through the twilio back end (get-queue-position)', () => {
  // The stand-in's TaskRouter may not be running: the proxy answers these resources itself,
  // in Twilio's shapes, which also lets it serve several pages.
  const queueSid = newSid('WQ');
  const task = (sid, priority, age, topic) => ({
    sid, priority, age, assignment_status: 'pending', task_queue_sid: queueSid,
    task_queue_friendly_name: 'Support', date_created: new Date(Date.now() - age * 1000).toISOString(),
    attributes: JSON.stringify({ topic, identity: 'alice' }), workspace_sid: workspaceSid,
  });
  const tasksPath = () => new RegExp(`/v1/Workspaces/${workspaceSid}/Tasks\\?`);
  const meta = (next) => ({
    page: 0, page_size: 1000, key: 'tasks', next_page_url: next, previous_page_url: null,
    first_page_url: '', url: '',
  });
  const token = () => jwt.sign({ identity: 'alice' }, JWT_SECRET, { expiresIn: 600 });
  async function position(params) {
    const r = await fetch(`${remote.url}/queue/get-queue-position?${new URLSearchParams({
      identity: 'alice', token: token(), ...params })}`);
    return decode(r);
  }

  function cannedTasks(pages) {
    // Page i is served for PageToken=PTi; the first without one. The next_page_url points at
    // Twilio's real host: the back end must keep its own base URL (credentials stay here).
    proxy.inject({
      method: 'GET',
      path: tasksPath(),
      fault: 'respond',
      times: Infinity,
      body: (req) => {
        const u = new URL(req.url, 'http://x');
        const i = Number(u.searchParams.get('PageToken')?.slice(2) || 0);
        assert.deepEqual(u.searchParams.getAll('AssignmentStatus'), ['pending', 'reserved']);
        assert.equal(req.headers.authorization, standIn.basic());
        const next = i + 1 < pages.length
          ? `https://taskrouter.twilio.com/v1/Workspaces/${workspaceSid}/Tasks?AssignmentStatus=pending&AssignmentStatus=reserved&PageSize=1000&Page=${i + 1}&PageToken=PT${i + 1}`
          : null;
        return { tasks: pages[i] || [], meta: meta(next) };
      },
    });
  }

  test('tasks are gathered over all pages; statistics are read', async () => {
    proxy.clear();
    const a = task(newSid('WT'), 5, 60, 'qa');
    const b = task(newSid('WT'), 5, 30, 'qb');
    const c = task(newSid('WT'), 1, 90, 'qc');
    cannedTasks([[a], [c], [b]]);
    proxy.inject({ method: 'GET', path: /RealTimeStatistics$/, fault: 'respond', times: Infinity,
      body: { total_available_workers: 0, total_eligible_workers: 2, task_queue_sid: queueSid } });
    const cumulative = proxy.inject({ method: 'GET', path: /CumulativeStatistics\?Minutes=\d+$/,
      fault: 'respond', times: Infinity,
      body: { reservations_accepted: 30, avg_task_acceptance_time: 20, task_queue_sid: queueSid } });
    const res = await position({ taskSid: b.sid });
    proxy.clear();
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.position, 2); // a (same priority, older) is ahead; c has lower priority
    assert.equal(res.body.queueSize, 3);
    assert.equal(res.body.queue, 'Support');
    assert.equal(cumulative.hits, 1);
    assert.equal(typeof res.body.estimatedWaitSeconds, 'number');
  });

  // The answer is the one for any task that is not the caller's (queue_position.test.mjs),
  // so that it does not tell an unknown task from someone else's; the log keeps the reason.
  test('a 404 on a task fetch surfaces as a 404 JSON error, logged with Twilio\'s reason', async () => {
    proxy.clear();
    cannedTasks([[]]);
    const unknown = newSid('WT');
    const fetchRule = proxy.inject({ method: 'GET', path: new RegExp(`/Tasks/${unknown}$`), fault: '404' });
    const res = await position({ taskSid: unknown });
    proxy.clear();
    assert.equal(fetchRule.hits, 1);
    assert.equal(res.status, 404, JSON.stringify(res.body));
    assert.equal(res.body.status, 404);
    assert.equal(res.body.error, 'no task of this identity for the given taskSid or topic');
    assert.ok(failures(`/Tasks/${unknown}`).some((l) => /status=404 code=20404 attempt=1\/4 next=give_up/.test(l)));
  });

  test('a list that never ends stops at the page cap with a clear error', async () => {
    proxy.clear();
    proxy.inject({
      method: 'GET', path: tasksPath(), fault: 'respond', times: Infinity,
      body: { tasks: [], meta: meta(`${proxy.url}/v1/Workspaces/${workspaceSid}/Tasks?PageSize=1000&PageToken=again`) },
    });
    const res = await position({ taskSid: newSid('WT') });
    proxy.clear();
    assert.equal(res.status, 502, JSON.stringify(res.body));
    assert.match(res.body.error, /more than 600 pages/);
  });

  test('a 429 on a list page is retried and the list completes', async () => {
    proxy.clear();
    const a = task(newSid('WT'), 1, 10, 'q429');
    const limited = proxy.inject({ method: 'GET', path: /PageToken=PT1/, fault: '429' });
    cannedTasks([[], [a]]);
    proxy.inject({ method: 'GET', path: /Statistics/, fault: 'respond', times: Infinity, body: {} });
    const res = await position({ taskSid: a.sid });
    proxy.clear();
    assert.equal(limited.hits, 1);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.position, 1);
  });
});

describe('connections', () => {
  test('sequential requests reuse pooled connections', async () => {
    proxy.clear();
    const before = proxy.connections;
    for (let i = 0; i < 10; i++) {
      await postOk(targets.twilio, event('task.created', { taskSid: newSid('WT'), topic: newTopic('reuse') }));
    }
    // 20 requests (a fetch and a create each); a new connection each would make 20.
    assert.ok(proxy.connections - before <= 2, `${proxy.connections - before} new connections`);
  });
});

// functions_flow.test.mjs - the seed's functions on real routing, on both back ends.
//
// The same scenarios (flowSuite) run twice:
// - embedded: one tassa; /task/get-sync-grant, /queue/get-queue-position and the TaskRouter
//   and Sync REST are the same server, and the engine feeds /general/router in-process;
// - twilio: a stand-in tassa holds TaskRouter and Sync; a second tassa with the twilio back
//   end serves the functions, and the stand-in's EventCallbackUrl reaches its router (through
//   a relay that records the router's answers, lib/backends.mjs).
// TaskRouter is driven only through the official twilio client, as users drive Twilio; the
// functions are called over HTTP with callers' tokens minted by `tassa user-token`.
//
// Note for the twilio target: the stand-in's own in-process router also writes the topic and
// queue-status documents to the same Sync service, so a document alone does not prove that
// the second tassa routed an event; the suite also checks the second tassa's router answers.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { eventually, postForm, decode } from './lib/server.mjs';
import { startEmbeddedTarget, startTwilioTarget } from './lib/backends.mjs';

const hex = (n = 6) => randomBytes(n).toString('hex');

const targets = {};

before(async () => {
  targets.embedded = await startEmbeddedTarget();
  targets.twilio = await startTwilioTarget();
});

after(async () => {
  const results = await Promise.allSettled([targets.embedded?.stop(), targets.twilio?.stop()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

// Calls /queue/get-queue-position with GET (query string) or POST (form body).
async function queuePosition(T, params, { method = 'GET', headers = {} } = {}) {
  const url = `${T.fnUrl}/queue/get-queue-position`;
  if (method === 'GET') return decode(await fetch(`${url}?${new URLSearchParams(params)}`, { headers }));
  return postForm(url, params, headers);
}

// The queue-status document once pred holds for it.
async function queueStatusWhen(T, pred, what) {
  let last;
  try {
    return await eventually(async () => {
      last = await T.syncDoc('queue-status');
      return last && pred(last) && last;
    }, { timeout: 8000 });
  } catch (e) {
    throw new Error(`queue-status never showed ${what}; last: ${JSON.stringify(last)}`);
  }
}

// A topic document once its status is the wanted one.
async function topicWhen(T, topic, status) {
  let last;
  try {
    return await eventually(async () => {
      last = await T.syncDoc(topic);
      return last?.status === status && last;
    }, { timeout: 8000 });
  } catch (e) {
    throw new Error(`topic ${topic} never became ${status}; last: ${JSON.stringify(last)}`);
  }
}

function flowSuite(label, getTarget) {
  describe(`seed functions on real routing (${label} back end)`, () => {
    let T; // the target
    let ws; // client.taskrouter.v1.workspaces(WS) on the TaskRouter holder
    let act; // activity friendlyName -> sid
    let queue; let workflow; let ann; let ola; // ann starts Available, ola Offline
    const names = { ann: `Ann-${label}`, ola: `Ola-${label}` };

    // The engine event of a type about a task (from the Events API), once it is recorded.
    async function eventOf(filter) {
      return eventually(async () => (await ws.events.list({ ...filter, minutes: 60 }))[0], { timeout: 5000 });
    }

    // Where the router runs in another process: the event reached it and it answered 200
    // with the expected result. The embedded router is fed in-process (nothing to observe).
    async function assertRouted(filter, check) {
      const ev = await eventOf(filter);
      if (T.label !== 'twilio') return;
      let answer;
      try {
        answer = await eventually(() => T.routed(ev.sid), { timeout: 8000 });
      } catch {
        throw new Error(`${ev.eventType} ${ev.sid} never reached the twilio-mode router`);
      }
      assert.equal(answer.status, 200, `${ev.eventType}: ${JSON.stringify(answer.body)}`);
      check(answer.body);
    }

    const setActivity = (worker, name) => ws.workers(worker.sid).update({ activitySid: act[name] });

    async function createTask(attrs, priority = 0) {
      return ws.tasks.create({ attributes: JSON.stringify(attrs), workflowSid: workflow.sid, priority });
    }

    test('setup through the twilio client: activities, queue, workflow, workers', async () => {
      T = getTarget();
      assert.match(T.ws || '', /^WS[0-9a-f]{32}$/);
      ws = T.tr.taskrouter.v1.workspaces(T.ws);
      act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
      for (const n of ['Available', 'Offline', 'in-call']) assert.match(act[n] || '', /^WA[0-9a-f]{32}$/, n);
      queue = await ws.taskQueues.create({ friendlyName: 'General', targetWorkers: '1==1' });
      workflow = await ws.workflows.create({
        friendlyName: 'Everything to General',
        taskReservationTimeout: 30,
        configuration: JSON.stringify({
          task_routing: {
            filters: [{ filter_friendly_name: 'all', expression: '1==1', targets: [{ queue: queue.sid }] }],
            default_filter: { queue: queue.sid },
          },
        }),
      });
      assert.equal(workflow.taskReservationTimeout, 30);
      ann = await ws.workers.create({ friendlyName: names.ann, activitySid: act.Available });
      ola = await ws.workers.create({ friendlyName: names.ola, activitySid: act.Offline });
      assert.equal(ann.activityName, 'Available');
      assert.equal(ola.activityName, 'Offline');
    });

    // Runs before any reservation is accepted in the workspace: no history yet, so no estimate.
    test('queue positions of five waiting tasks of mixed priorities; caller errors', async () => {
      await setActivity(ann, 'Offline');
      await queueStatusWhen(T, (d) => d.tellerCount === 0, 'no tellers');
      const priorities = [0, 10, 5, 10, 0];
      const callers = [];
      for (let i = 0; i < priorities.length; i++) {
        const topic = `pos-${label}-${i}-${hex()}`;
        const identity = `cust-${label}-${i}-${hex(3)}`;
        const task = await createTask({ topic, identity }, priorities[i]);
        assert.equal(task.assignmentStatus, 'pending', 'nobody is available');
        assert.equal(task.priority, priorities[i]);
        callers.push({ topic, identity, task, token: T.callerToken(identity) });
      }
      // Priority descending, then the older first: 1 (10), 3 (10), 2 (5), 0 (0), 4 (0).
      const order = [1, 3, 2, 0, 4];
      const expected = new Map(order.map((i, k) => [i, k + 1]));

      try {
        // Every caller's answer first; the exact order is compared last, in one piece.
        const answers = [];
        for (let i = 0; i < callers.length; i++) {
          const c = callers[i];
          // GET and POST, the token as a parameter and as a Bearer header.
          const viaBearer = i === 2;
          const params = { identity: c.identity, topic: c.topic, ...(viaBearer ? {} : { token: c.token }) };
          const headers = viaBearer ? { Authorization: `Bearer ${c.token}` } : {};
          const res = await queuePosition(T, params, { method: i % 2 ? 'POST' : 'GET', headers });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          answers.push(res.body);
        }
        // Everything but the order among equal priorities.
        for (let i = 0; i < callers.length; i++) {
          const r = answers[i];
          assert.equal(r.taskSid, callers[i].task.sid);
          assert.equal(r.queue, 'General');
          assert.equal(r.queueSize, 5);
          assert.equal(r.status, 'pending');
          assert.equal(r.estimatedWaitSeconds, null, 'no history yet');
          assert.equal(r.ahead, r.position - 1);
        }
        assert.deepEqual(answers.map((r) => r.position).sort(), [1, 2, 3, 4, 5]);
        for (let i = 0; i < callers.length; i++) {
          for (let j = 0; j < callers.length; j++) {
            if (priorities[i] > priorities[j]) assert.ok(answers[i].position < answers[j].position, `priority ${priorities[i]} before ${priorities[j]}`);
          }
        }
        const qsCounts = await queueStatusWhen(T, (d) => d.pendingCount === 5, 'five pending tasks');
        assert.equal(qsCounts.tellerCount, 0);
        assert.deepEqual(qsCounts.eligibleTellers, []);
        assert.equal(qsCounts.byQueue.General.pending, 5);
        assert.ok(qsCounts.pendingTasks.every((p) => p.queue === 'General'));
        assert.deepEqual(qsCounts.pendingTasks.map((p) => p.priority), [10, 10, 5, 0, 0]);

        // Someone else's task: the same 404 as a topic nobody has (queue_position.test.mjs).
        // No token: 400. A token signed with another secret: 401.
        const [a, b] = callers;
        let res = await queuePosition(T, { identity: a.identity, token: a.token, topic: b.topic });
        assert.equal(res.status, 404, JSON.stringify(res.body));
        assert.equal(res.body.status, 404);
        assert.equal(typeof res.body.error, 'string');
        assert.ok(!JSON.stringify(res.body).includes(b.task.sid));
        res = await queuePosition(T, { identity: a.identity, token: a.token, taskSid: b.task.sid });
        assert.equal(res.status, 404, JSON.stringify(res.body));
        res = await queuePosition(T, { identity: a.identity, topic: a.topic });
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.status, 400);
        const forged = jwt.sign({ identity: a.identity }, 'not-the-secret', { expiresIn: 600 });
        res = await queuePosition(T, { identity: a.identity, token: forged, topic: a.topic });
        assert.equal(res.status, 401, JSON.stringify(res.body));
        assert.equal(res.body.status, 401);
        res = await queuePosition(T, { identity: a.identity, token: a.token, topic: `nobody-${hex()}` });
        assert.equal(res.status, 404, JSON.stringify(res.body));
        assert.equal(res.body.status, 404);
        // Last, the exact order, equal priorities oldest first: in the callers' positions and
        // in queue-status's list (one comparison, so that a failure shows both).
        const qs = await T.syncDoc('queue-status');
        assert.deepEqual({
          positions: answers.map((r) => r.position),
          queueStatus: qs.pendingTasks.map((p) => `${p.priority}:${p.topic}`),
        }, {
          positions: callers.map((c, i) => expected.get(i)),
          queueStatus: order.map((i) => `${priorities[i]}:${callers[i].topic}`),
        }, `tasks of priorities ${priorities.join(',')} created in this order (topics pos-*-0..4) must stand in the order ${order.join(',')}`);
        assert.deepEqual(qs.pendingTasks.map((p) => p.sid), order.map((i) => callers[i].task.sid));
        // By taskSid instead of topic.
        const bySid = await queuePosition(T, { identity: callers[3].identity, token: callers[3].token, taskSid: callers[3].task.sid },
          { method: 'POST' });
        assert.equal(bySid.status, 200, JSON.stringify(bySid.body));
        assert.deepEqual(bySid.body, answers[3]);
      } finally {
        // The later scenarios need an empty queue whatever happened here.
        for (const c of callers) await ws.tasks(c.task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
      }
      await queueStatusWhen(T, (d) => d.pendingCount === 0, 'the canceled tasks gone');
      const done = await topicWhen(T, callers[0].topic, 'completed');
      assert.equal(done.taskSid, callers[0].task.sid);
      assert.equal(done.event, 'task.canceled');
    });

    test('worker.activity.update changes queue-status eligibleTellers and tellerCount', async () => {
      await setActivity(ann, 'Available');
      let qs = await queueStatusWhen(T, (d) => d.tellerCount === 1, 'one teller');
      assert.deepEqual(qs.eligibleTellers, [{ sid: ann.sid, name: names.ann, activity: 'Available' }]);
      await assertRouted({ workerSid: ann.sid, eventType: 'worker.activity.update' }, (body) => {
        assert.equal(body.handler, 'queueInfo');
        assert.equal(body.document, 'queue-status');
      });

      // in-call is a teller activity too (not an available one).
      await setActivity(ola, 'in-call');
      qs = await queueStatusWhen(T, (d) => d.tellerCount === 2, 'two tellers');
      assert.deepEqual(qs.eligibleTellers.map((t) => [t.sid, t.activity]).sort(),
        [[ann.sid, 'Available'], [ola.sid, 'in-call']].sort());

      await setActivity(ola, 'Offline');
      qs = await queueStatusWhen(T, (d) => d.tellerCount === 1, 'one teller again');
      assert.deepEqual(qs.eligibleTellers.map((t) => t.sid), [ann.sid]);
    });

    let flow; // { topic, identity, task, reservation }

    test('a task: topic waiting; queue-status lists it with the eligible teller', async () => {
      const topic = `flow-${label}-${hex()}`;
      const identity = 'cust-1';
      const task = await createTask({ topic, identity }, 7);
      flow = { topic, identity, task };
      const doc = await topicWhen(T, topic, 'waiting');
      assert.equal(doc.taskSid, task.sid);
      assert.equal(doc.worker, null);
      assert.equal(doc.event, 'task.created');
      assert.match(doc.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      await assertRouted({ taskSid: task.sid, eventType: 'task.created' }, (body) => {
        assert.equal(body.handler, 'reservation');
        assert.equal(body.topic, topic);
        assert.equal(body.status, 'waiting');
      });

      const qs = await queueStatusWhen(T, (d) => d.pendingTasks.some((p) => p.sid === task.sid), 'the new task');
      const entry = qs.pendingTasks.find((p) => p.sid === task.sid);
      assert.equal(entry.topic, topic);
      assert.equal(entry.priority, 7);
      assert.equal(entry.queue, 'General');
      assert.ok(['pending', 'reserved'].includes(entry.status), entry.status);
      assert.equal(qs.pendingCount, 1);
      assert.equal(qs.byQueue.General.pending, 1);
      assert.deepEqual(qs.eligibleTellers, [{ sid: ann.sid, name: names.ann, activity: 'Available' }]);
      assert.equal(qs.tellerCount, 1);
      assert.match(qs.lastUpdated, /^\d{4}-\d\d-\d\dT/);
    });

    test('the reservation for the available worker, accepted: topic assigned, task off queue-status', async () => {
      const { task, topic } = flow;
      const reservation = await eventually(async () => {
        const list = await ws.tasks(task.sid).reservations.list();
        return list.find((r) => r.reservationStatus === 'pending');
      });
      assert.equal(reservation.workerSid, ann.sid);
      assert.equal(reservation.workerName, names.ann);
      flow.reservation = reservation;
      const accepted = await ws.tasks(task.sid).reservations(reservation.sid).update({ reservationStatus: 'accepted' });
      assert.equal(accepted.reservationStatus, 'accepted');
      const doc = await topicWhen(T, topic, 'assigned');
      assert.equal(doc.taskSid, task.sid);
      assert.deepEqual(doc.worker, { sid: ann.sid, name: names.ann });
      assert.equal(doc.event, 'reservation.accepted');
      await assertRouted({ taskSid: task.sid, eventType: 'reservation.accepted' }, (body) => {
        assert.equal(body.handler, 'reservation');
        assert.equal(body.status, 'assigned');
      });
      const qs = await queueStatusWhen(T, (d) => !d.pendingTasks.some((p) => p.sid === task.sid), 'the task gone');
      assert.equal(qs.pendingCount, 0);
      // The caller asking now learns the task is assigned, with no position.
      const res = await queuePosition(T, { identity: flow.identity, token: T.callerToken(flow.identity), taskSid: task.sid });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'assigned');
      assert.equal(res.body.position, null);
    });

    test('the task completed: topic completed, keeping its worker', async () => {
      const { task, topic } = flow;
      const wrapping = await ws.tasks(task.sid).update({ assignmentStatus: 'wrapping' });
      assert.equal(wrapping.assignmentStatus, 'wrapping');
      const done = await ws.tasks(task.sid).update({ assignmentStatus: 'completed', reason: 'served' });
      assert.equal(done.assignmentStatus, 'completed');
      const doc = await topicWhen(T, topic, 'completed');
      assert.equal(doc.taskSid, task.sid);
      assert.deepEqual(doc.worker, { sid: ann.sid, name: names.ann });
      // By topic, after the end: the document's status.
      const res = await queuePosition(T, { identity: flow.identity, token: T.callerToken(flow.identity), topic });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'completed');
      assert.equal(res.body.taskSid, task.sid);
    });

    test('/task/get-sync-grant: a Twilio access token signed with the API secret', async () => {
      const identity = `grant-${label}-${hex(3)}`;
      const res = await postForm(`${T.fnUrl}/task/get-sync-grant`, { token: T.callerToken(identity), identity });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.authorized, true);
      const { apiKey, apiSecret, accountSid } = T.grantKeys;
      const decoded = jwt.verify(res.body.syncToken, apiSecret, { algorithms: ['HS256'], complete: true });
      assert.equal(decoded.header.cty, 'twilio-fpa;v=1');
      assert.equal(decoded.header.typ, 'JWT');
      const p = decoded.payload;
      assert.equal(p.iss, apiKey);
      assert.equal(p.sub, accountSid);
      assert.equal(p.jti, `${apiKey}-${p.iat}`);
      assert.equal(p.exp - p.iat, 3600);
      assert.equal(p.grants.identity, identity);
      assert.match(p.grants.data_sync.service_sid, /^(default|IS[0-9a-f]{32})$/);
      assert.throws(() => jwt.verify(res.body.syncToken, 'another-secret', { algorithms: ['HS256'] }));
      const bad = await postForm(`${T.fnUrl}/task/get-sync-grant`, { token: T.callerToken(identity), identity: 'someone-else' });
      assert.equal(bad.status, 401, JSON.stringify(bad.body));
      assert.equal(bad.body.authorized, false);
    });

    if (label === 'embedded') {
      test('with history (an accepted task), a new waiting task gets an estimated wait', async () => {
        await setActivity(ann, 'Offline');
        const topic = `est-${label}-${hex()}`;
        const identity = `cust-est-${hex(3)}`;
        const task = await createTask({ topic, identity });
        assert.equal(task.assignmentStatus, 'pending');
        const res = await queuePosition(T, { identity, token: T.callerToken(identity), topic });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.equal(res.body.position, 1);
        assert.ok(Number.isInteger(res.body.estimatedWaitSeconds) && res.body.estimatedWaitSeconds >= 0,
          `estimatedWaitSeconds ${res.body.estimatedWaitSeconds}`);
        await ws.tasks(task.sid).update({ assignmentStatus: 'canceled', reason: 'test over' });
      });
    }
  });
}

flowSuite('embedded', () => targets.embedded);
flowSuite('twilio', () => targets.twilio);

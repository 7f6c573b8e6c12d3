// crash.test.mjs - kill -9 at random moments under concurrent writers, several rounds.
//
// Each round starts tassa on the same data file and runs, all at once:
// - Sync writers: each owns a few documents (create, then updates with If-Match on the last
//   revision it knows), and others race on shared documents with If-Match (412 -> re-read);
// - router senders: signed POSTs to /general/router walking synthetic tasks through
//   task.created -> reservation.accepted -> reservation.completed;
// - TaskRouter customers creating and canceling tasks, and tellers accepting their workers'
//   reservations and completing the tasks, all through the official twilio client;
// then SIGKILL at a random moment. After each restart it checks:
// - every acknowledged write is present (a write counts only once its 2xx answer was read
//   in full), and the one write in flight per document at the kill is either absent or
//   present whole;
// - no document revision is behind the last acknowledged (or observed) one, and no two
//   acknowledged If-Match writes of a shared document got the same revision;
// - TaskRouter is consistent: no pending reservation on a task that is not `reserved`, no
//   worker holding more than one active (pending, accepted or wrapping) reservation (the
//   engine has no multitasking: matching skips a worker with one), a reserved task has exactly
//   one pending reservation and an assigned one exactly one accepted;
// - acknowledged task creates, cancels, completions and reservation accepts are kept, and the
//   topic documents that the in-process router writes catch up after the restart.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import twilio from 'twilio';
import { startServerAnyPort as startServer, twilioClient, decode, eventually } from './lib/server.mjs';

const SANITIZE = /^(1|on|yes|true)$/i.test(process.env.TASSA_SANITIZE || '');
const ROUNDS = 8;
const LOAD_MS = SANITIZE ? [800, 2400] : [400, 1500]; // random kill moment in this window
const SYNC_OWNERS = 8;
const DOCS_PER_OWNER = 3;
const SHARED_DOCS = 2;
const SHARED_WRITERS = 4;
const ROUTER_SENDERS = 3;
const CUSTOMERS = 3;
const TELLERS = 3;
const MAX_TASKS = 2000; // bounds the verification work
const MAX_OPEN = 20; // tasks a customer lets wait before it cancels some

const hex = (n = 6) => randomBytes(n).toString('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let servers = [];
after(async () => {
  const last = servers.at(-1);
  try {
    await last?.stop(); // a clean exit at the end: sanitizer reports fail the test
  } finally {
    last?.cleanup();
  }
});

// The per-round connection: a server and what talks to it. Writers stop when it is gone.
class Round {
  constructor(server, n) {
    this.server = server;
    this.n = n;
    this.dead = false;
  }
}

// A network failure because the server died under the request (the round is over): the
// write's fate is unknown. Anything else is a failure of the test.
const NET = /ECONNRESET|ECONNREFUSED|EPIPE|UND_ERR_SOCKET|UND_ERR_CLOSED|ECONNABORTED|socket hang up|other side closed/;
function isNetErr(e, round) {
  const text = [e?.code, e?.cause?.code, e?.cause?.message, e?.message].filter(Boolean).join(' ');
  return round.dead && !e?.status && NET.test(text);
}

let acks = 0; // acknowledged writes, for the report

async function docApi(server, method, path, params, headers = {}) {
  const h = { Authorization: server.basic(), ...headers };
  let body;
  if (params) {
    h['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  // decode() reads the body in full: only then is a 2xx an acknowledgement.
  return decode(await fetch(`${server.url}/v1/Services/default/Documents${path}`, { method, headers: h, body }));
}

const unexpected = []; // answers no client should get: collected, asserted empty per round
function note(what, res) {
  unexpected.push(`${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
}

// ---- Sync documents owned by one writer ----------------------------------------------
// known: the last acknowledged (or, after a restart, observed) state; inflight: the write
// sent and not answered when the server died.
const owned = new Map(); // name -> { known: {revision, data} | null, inflight: data | null }

async function ownerLoop(round, w) {
  const names = Array.from({ length: DOCS_PER_OWNER }, (_, k) => `own-${w}-${k}`);
  for (let step = 0; !round.dead; step++) {
    const name = names[step % names.length];
    const d = owned.get(name) || { known: null, inflight: null };
    owned.set(name, d);
    const data = { w, name, step: `${round.n}.${step}`, pad: 'x'.repeat(randomInt(0, 300)) };
    d.inflight = data;
    let res;
    try {
      res = d.known
        ? await docApi(round.server, 'POST', `/${name}`, { Data: JSON.stringify(data) }, { 'If-Match': d.known.revision })
        : await docApi(round.server, 'POST', '', { UniqueName: name, Data: JSON.stringify(data) });
    } catch (e) {
      if (isNetErr(e, round)) return; // died under it: inflight stays for the check
      throw e;
    }
    if (res.status === 200 || res.status === 201) {
      d.known = { revision: res.body.revision, data: res.body.data };
      d.inflight = null;
      acks++;
    } else {
      d.inflight = null;
      note(`owner ${name}`, res);
    }
  }
}

// ---- Shared documents: If-Match races -------------------------------------------------
const shared = new Map(); // name -> { acks: Map revision -> data, floor: revision number }

async function sharedLoop(round, w) {
  for (let step = 0; !round.dead; step++) {
    const name = `shared-${step % SHARED_DOCS}`;
    const s = shared.get(name);
    let cur;
    try {
      cur = await docApi(round.server, 'GET', `/${name}`);
      if (cur.status !== 200) { note(`shared read ${name}`, cur); continue; }
      const data = { n: cur.body.data.n + 1, by: w, step: `${round.n}.${step}` };
      const res = await docApi(round.server, 'POST', `/${name}`, { Data: JSON.stringify(data) },
        { 'If-Match': cur.body.revision });
      if (res.status === 200) {
        if (s.acks.has(res.body.revision)) {
          note(`shared ${name}: revision ${res.body.revision} acknowledged twice`, res);
        }
        s.acks.set(res.body.revision, res.body.data);
        acks++;
      } else if (res.status !== 412) {
        note(`shared write ${name}`, res);
      }
    } catch (e) {
      if (isNetErr(e, round)) return;
      throw e;
    }
  }
}

// ---- Router events --------------------------------------------------------------------
const RANK = { waiting: 1, assigned: 2, completed: 3 };
const STEPS = [['task.created', 'waiting'], ['reservation.accepted', 'assigned'], ['reservation.completed', 'completed']];
const topics = new Map(); // topic -> { taskSid, acked: rank, next: step index }

async function routerLoop(round, r) {
  const url = `${round.server.url}/general/router`;
  const authToken = round.server.creds.authToken;
  for (;;) {
    if (round.dead) return;
    // The sender's current topic: the first of its own not walked to the end.
    let topic = [...topics].find(([t, v]) => v.sender === r && v.next < STEPS.length)?.[0];
    if (!topic) {
      topic = `crash-rt-${r}-${hex()}`;
      topics.set(topic, { sender: r, taskSid: `WT${hex(16)}`, acked: 0, next: 0 });
    }
    const t = topics.get(topic);
    const [type, status] = STEPS[t.next];
    const params = {
      EventType: type, Sid: `EV${hex(16)}`, AccountSid: round.server.creds.accountSid,
      Timestamp: String(Math.floor(Date.now() / 1000)), TaskSid: t.taskSid,
      TaskAttributes: JSON.stringify({ topic, type: 'support' }),
    };
    if (type !== 'task.created') Object.assign(params, { WorkerSid: `WK${hex(16)}`, WorkerName: `Teller ${r}`, ReservationSid: `WR${hex(16)}` });
    let res;
    try {
      const sig = twilio.getExpectedTwilioSignature(authToken, url, params);
      res = await decode(await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
        body: new URLSearchParams(params).toString(),
      }));
    } catch (e) {
      if (isNetErr(e, round)) return; // re-sent next round
      throw e;
    }
    if (res.status === 200 && res.body.topic === topic) {
      t.acked = Math.max(t.acked, RANK[status]);
      acks++;
      t.next++;
    } else {
      note(`router ${type} ${topic}`, res);
      t.next = STEPS.length; // give the topic up; its acknowledged rank still stands
    }
  }
}

// ---- TaskRouter ------------------------------------------------------------------------
const tr = {
  workflow: null, workers: [],
  tasks: new Map(), // sid -> { attributes, topic, acked: 'created' | 'canceled' | 'completed' }
  accepted: new Map(), // reservation sid -> task sid
};

async function customerLoop(round, ws, c) {
  for (let step = 0; !round.dead; step++) {
    try {
      const accepted = new Set(tr.accepted.values());
      const open = [...tr.tasks].filter(([sid, v]) => v.acked === 'created' && !accepted.has(sid)).length;
      if (tr.tasks.size < MAX_TASKS && open < MAX_OPEN && step % 3 !== 2) {
        const topic = `crash-tr-${c}-${hex()}`;
        const attributes = JSON.stringify({ topic, identity: `cust-${c}`, round: round.n, step });
        const task = await ws.tasks.create({ attributes, workflowSid: tr.workflow.sid, priority: randomInt(0, 5) });
        tr.tasks.set(task.sid, { attributes, topic, acked: 'created' });
        acks++;
      } else {
        // Cancel one of this customer's tasks that may still wait (a 400 when it no longer does).
        const mine = [...tr.tasks].filter(([, v]) => v.acked === 'created' && v.topic.startsWith(`crash-tr-${c}-`));
        if (!mine.length) { await sleep(5); continue; }
        const [sid, v] = mine[randomInt(0, mine.length)];
        try {
          const t = await ws.tasks(sid).update({ assignmentStatus: 'canceled', reason: 'crash test' });
          if (t.assignmentStatus === 'canceled') { v.acked = 'canceled'; acks++; }
        } catch (e) {
          if (e.status !== 400 || !/cannot go from (assigned|wrapping|completed)|already (completed|canceled)/.test(e.message)) throw e;
        }
      }
    } catch (e) {
      if (isNetErr(e, round)) return;
      note(`customer ${c}`, { status: e.status, body: e.message });
      if (!e.status) throw e;
    }
  }
}

async function tellerLoop(round, ws, k) {
  const worker = tr.workers[k];
  while (!round.dead) {
    try {
      // An accept whose answer the kill took leaves an accepted reservation: finish it first.
      const [held] = await ws.workers(worker.sid).reservations.list({ reservationStatus: 'accepted', limit: 1 });
      const pend = held ? [] : await ws.workers(worker.sid).reservations.list({ reservationStatus: 'pending', limit: 5 });
      if (!held && !pend.length) { await sleep(randomInt(2, 20)); continue; }
      for (const r of held ? [held] : pend) {
        let res = r;
        if (r.reservationStatus === 'pending') {
          try {
            res = await ws.workers(worker.sid).reservations(r.sid).update({ reservationStatus: 'accepted' });
          } catch (e) {
            // canceled by its customer meanwhile
            if (e.status === 400 && /not pending/.test(e.message)) continue;
            throw e;
          }
          tr.accepted.set(res.sid, res.taskSid);
          acks++;
        }
        const done = await ws.tasks(res.taskSid).update({ assignmentStatus: 'completed', reason: 'served' });
        if (done.assignmentStatus === 'completed' && tr.tasks.has(done.sid)) { tr.tasks.get(done.sid).acked = 'completed'; acks++; }
      }
    } catch (e) {
      if (isNetErr(e, round)) return;
      note(`teller ${k}`, { status: e.status, body: e.message });
      if (!e.status) throw e;
    }
  }
}

async function setupTaskRouter(server) {
  const client = await twilioClient(server);
  const ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  const act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
  const queue = await ws.taskQueues.create({ friendlyName: 'Crash', targetWorkers: '1==1' });
  tr.workflow = await ws.workflows.create({
    friendlyName: 'crash', taskReservationTimeout: 3600, // no timeouts while a round is checked
    configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
  });
  for (let k = 0; k < TELLERS; k++) {
    tr.workers.push(await ws.workers.create({ friendlyName: `teller-${k}`, activitySid: act.Available }));
  }
}

// Every page of a TaskRouter list, over REST (the twilio client's paging, as users page).
async function snapshot(ws) {
  const tasks = new Map((await ws.tasks.list({ pageSize: 1000 })).map((t) => [t.sid, t]));
  const reservations = [];
  for (const w of await ws.workers.list({ pageSize: 1000 })) {
    for (const r of await w.reservations().list({ pageSize: 1000 })) reservations.push(r);
  }
  const key = JSON.stringify({
    t: [...tasks.values()].map((t) => [t.sid, t.assignmentStatus]).sort(),
    r: reservations.map((r) => [r.sid, r.reservationStatus]).sort(),
  });
  return { tasks, reservations, key };
}

async function checkRound(server, n) {
  const where = `after kill ${n}`;
  // -- owned documents: the acknowledged state, or the one write in flight, whole
  for (const [name, d] of owned) {
    const r = await docApi(server, 'GET', `/${name}`);
    if (!d.known) {
      if (r.status === 404) { d.inflight = null; continue; } // the create never committed
      assert.equal(r.status, 200, `${where}: ${name}`);
      assert.ok(d.inflight, `${where}: ${name} exists but no create was sent`);
      assert.equal(r.body.revision, '0', `${where}: ${name}`);
      assert.deepEqual(r.body.data, d.inflight, `${where}: ${name} created with other data`);
    } else {
      assert.equal(r.status, 200, `${where}: acknowledged document ${name} lost: ${JSON.stringify(r.body)}`);
      const rev = Number(r.body.revision);
      const known = Number(d.known.revision);
      assert.ok(rev >= known, `${where}: ${name} went back from revision ${known} to ${rev}`);
      if (rev === known) {
        assert.deepEqual(r.body.data, d.known.data, `${where}: ${name} revision ${rev} holds other data`);
      } else {
        assert.equal(rev, known + 1, `${where}: ${name} jumped from ${known} to ${rev} with one write in flight`);
        assert.ok(d.inflight, `${where}: ${name} moved to ${rev} with no write in flight`);
        assert.deepEqual(r.body.data, d.inflight, `${where}: ${name} revision ${rev} is not the write in flight`);
      }
    }
    d.known = { revision: r.body.revision, data: r.body.data };
    d.inflight = null;
  }
  // -- shared documents: nothing behind the highest acknowledged revision
  for (const [name, s] of shared) {
    const r = await docApi(server, 'GET', `/${name}`);
    assert.equal(r.status, 200, `${where}: ${name}`);
    const rev = Number(r.body.revision);
    const top = Math.max(s.floor, ...[...s.acks.keys()].map(Number));
    assert.ok(rev >= top, `${where}: ${name} went back from acknowledged revision ${top} to ${rev}`);
    if (s.acks.has(r.body.revision)) assert.deepEqual(r.body.data, s.acks.get(r.body.revision), `${where}: ${name}@${rev}`);
    s.floor = rev;
    s.acks.clear();
  }
  // -- router topics: at least the acknowledged step
  for (const [topic, t] of topics) {
    if (!t.acked) continue;
    const r = await docApi(server, 'GET', `/${topic}`);
    assert.equal(r.status, 200, `${where}: topic ${topic} (acknowledged ${t.acked}) lost`);
    assert.equal(r.body.data.taskSid, t.taskSid, `${where}: ${topic}`);
    assert.ok(RANK[r.body.data.status] >= t.acked, `${where}: topic ${topic} is ${r.body.data.status}, acknowledged rank ${t.acked}`);
  }
  // -- TaskRouter: a settled snapshot (no client runs now; the reservation timeout is an
  // hour, so only start-up matching can still move), then its invariants.
  const client = await twilioClient(server);
  const ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  let snap = await snapshot(ws);
  for (let i = 0; ; i++) {
    await sleep(100);
    const again = await snapshot(ws);
    if (again.key === snap.key) break;
    snap = again;
    assert.ok(i < 50, `${where}: TaskRouter never settled`);
  }
  const { tasks, reservations } = snap;
  const active = new Map(); // worker -> active reservations
  const byTask = new Map(); // task -> reservations
  for (const r of reservations) {
    const task = tasks.get(r.taskSid);
    if (r.reservationStatus === 'pending') {
      assert.equal(task?.assignmentStatus, 'reserved', `${where}: pending reservation ${r.sid} on task ${r.taskSid} that is ${task?.assignmentStatus ?? 'missing'}`);
    }
    if (['pending', 'accepted', 'wrapping'].includes(r.reservationStatus)) {
      active.set(r.workerSid, [...(active.get(r.workerSid) || []), `${r.sid}:${r.reservationStatus}`]);
    }
    byTask.set(r.taskSid, [...(byTask.get(r.taskSid) || []), r.reservationStatus]);
  }
  for (const [w, list] of active) assert.ok(list.length <= 1, `${where}: worker ${w} holds ${list.join(', ')}`);
  for (const [sid, t] of tasks) {
    const st = byTask.get(sid) || [];
    if (t.assignmentStatus === 'reserved') assert.equal(st.filter((s) => s === 'pending').length, 1, `${where}: reserved task ${sid} has reservations ${st}`);
    if (t.assignmentStatus === 'assigned') assert.equal(st.filter((s) => s === 'accepted').length, 1, `${where}: assigned task ${sid} has reservations ${st}`);
  }
  // -- acknowledged TaskRouter writes
  for (const [sid, v] of tr.tasks) {
    const t = tasks.get(sid);
    assert.ok(t, `${where}: acknowledged task ${sid} lost`);
    assert.equal(t.attributes, v.attributes, `${where}: task ${sid}`);
    if (v.acked !== 'created') assert.equal(t.assignmentStatus, v.acked, `${where}: task ${sid} acknowledged ${v.acked}`);
  }
  const resStatus = new Map(reservations.map((r) => [r.sid, r.reservationStatus]));
  for (const [rsid, tsid] of tr.accepted) {
    assert.ok(['accepted', 'wrapping', 'completed'].includes(resStatus.get(rsid)),
      `${where}: acknowledged accept of ${rsid} (task ${tsid}) is now ${resStatus.get(rsid) ?? 'missing'}`);
    assert.ok(['assigned', 'wrapping', 'completed'].includes(tasks.get(tsid)?.assignmentStatus), `${where}: task ${tsid} of accepted ${rsid}`);
  }
  // -- the in-process router catches up on the engine's events after the restart
  const finished = [...tr.tasks.values()].filter((v) => v.acked !== 'created' && !v.topicSeen);
  try {
    await eventually(async () => {
      for (const v of finished) {
        const r = await docApi(server, 'GET', `/${v.topic}`);
        if (r.status !== 200 || r.body.data.status !== 'completed') return false;
      }
      return true;
    }, { timeout: SANITIZE ? 20000 : 10000, interval: 200 });
  } catch {
    const late = [];
    for (const v of finished) {
      const r = await docApi(server, 'GET', `/${v.topic}`);
      if (r.status !== 200 || r.body.data.status !== 'completed') late.push(`${v.topic}=${r.body?.data?.status ?? r.status}`);
    }
    assert.deepEqual(late, [], `${where}: topic documents of finished tasks never caught up`);
  }
  for (const v of finished) v.topicSeen = true; // a completed topic never moves again
  return { docs: owned.size + shared.size + topics.size, tasks: tasks.size, reservations: reservations.length };
}

test(`${ROUNDS} rounds of kill -9 under concurrent Sync, router and TaskRouter writers`, { timeout: 120000 }, async () => {
  let server = await startServer();
  servers.push(server);
  for (let d = 0; d < SHARED_DOCS; d++) {
    const c = await docApi(server, 'POST', '', { UniqueName: `shared-${d}`, Data: JSON.stringify({ n: 0 }) });
    assert.equal(c.status, 201);
    shared.set(`shared-${d}`, { acks: new Map(), floor: 0 });
  }
  await setupTaskRouter(server);
  const totals = { writes: 0 };
  for (let n = 1; n <= ROUNDS; n++) {
    const round = new Round(server, n);
    const client = await twilioClient(server);
    const ws = client.taskrouter.v1.workspaces(server.workspaceSid);
    const before = acks;
    const loops = [
      ...Array.from({ length: SYNC_OWNERS }, (_, w) => ownerLoop(round, w)),
      ...Array.from({ length: SHARED_WRITERS }, (_, w) => sharedLoop(round, w)),
      ...Array.from({ length: ROUTER_SENDERS }, (_, r) => routerLoop(round, r)),
      ...Array.from({ length: CUSTOMERS }, (_, c) => customerLoop(round, ws, c)),
      ...Array.from({ length: TELLERS }, (_, k) => tellerLoop(round, ws, k)),
    ];
    const done = Promise.allSettled(loops);
    await sleep(randomInt(LOAD_MS[0], LOAD_MS[1]));
    round.dead = true; // no new requests from here; the ones in flight meet the kill
    await server.kill9();
    for (const r of await done) if (r.status === 'rejected') throw r.reason;
    assert.deepEqual(unexpected, [], `round ${n}: unexpected answers`);
    const roundAcks = acks - before;
    totals.writes += roundAcks;
    server = await startServer({ dataDir: server.dataDir });
    servers.push(server);
    const seen = await checkRound(server, n);
    console.log(`round=${n} acknowledged_writes=${roundAcks} docs=${seen.docs} tasks=${seen.tasks} reservations=${seen.reservations}`);
  }
  assert.ok(totals.writes > ROUNDS * 20, `too few writes to prove anything: ${totals.writes}`);
});

// multinode.test.mjs - several tassa nodes on one PostgreSQL database (docs/nodes.md): two
// `tassa serve` processes share a throw-away cluster (lib/pg.mjs startPg) and the credentials
// node A generated.
//
// - Two nodes: API calls spread across both; the lease holder is killed with -9 while
//   reservations are being accepted; the survivor takes the lease (/healthz), no task is
//   assigned twice, every acknowledged create is present, and a reservation that was pending
//   on the dead node with a short timeout still times out on the survivor.
// - A database outage: while the cluster is stopped, writes answer 503 with a Twilio-style
//   body, each promptly, and /healthz says store false; after the restart writes work again
//   and nothing acknowledged before is lost.
// - The callback outbox: with both nodes delivering, every event reaches the EventCallbackUrl
//   exactly once (counted by EventSid).
//
// Each test starts its own cluster, so the file runs once (in the SQLite run of the suite;
// the PostgreSQL run skips it: it would only repeat the same thing).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import twilio from 'twilio';
import { BIN, eventually } from './lib/server.mjs';
import { startPg, SUITE_PG } from './lib/pg.mjs';
import { cleanEnv } from './lib/spawn_tassa.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SCRATCH = join(here, '../../tools/pg_scratch.sh');
const opts = SUITE_PG ? { skip: 'starts clusters of its own: runs once, in the SQLite run' } : {};

const cleanups = [];
after(async () => {
  const errors = [];
  for (const fn of cleanups.reverse()) {
    try { await fn(); } catch (e) { errors.push(e); }
  }
  if (errors.length) throw errors[0];
});

// A cluster of this file's own, stopped and removed at the end.
function cluster() {
  const pg = startPg();
  cleanups.push(() => pg.stop());
  return pg;
}

// Starts `tassa serve` on the database url; resolves a node { url, kill9(), stop(), log() }.
async function startNode(dbUrl, name) {
  const cwd = mkdtempSync(join(tmpdir(), `tassa-node-${name}-`));
  const child = spawn(BIN, ['serve', '--port', '0', '--data', dbUrl],
    { env: cleanEnv({ TASSA_DRAIN_DELAY_MS: '0' }), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout.on('data', (c) => { log += c; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${name} did not start:\n${log}`)), 20000);
    child.stderr.on('data', (c) => {
      log += c;
      const m = /event=listening url=http:\/\/[^:]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`node ${name} exited ${code}:\n${log}`)); });
  });
  const node = {
    name, url: `http://127.0.0.1:${port}`, log: () => log,
    async kill9() { child.kill('SIGKILL'); await exited; },
    // SIGTERM; a non-zero exit (a sanitizer's report) fails the file
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const { code, signal } = await exited;
        if (code !== 0) throw new Error(`node ${name} exited with ${code ?? signal}:\n${log.slice(-4000)}`);
      }
    },
  };
  cleanups.push(async () => { try { await node.stop(); } finally { rmSync(cwd, { recursive: true, force: true }); } });
  return node;
}

// The credentials node A generated in the database (`tassa credentials --data URL`).
function credentials(dbUrl) {
  const out = execFileSync(BIN, ['credentials', '--data', dbUrl], { env: cleanEnv(), encoding: 'utf8' });
  const c = Object.fromEntries(out.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  return { basic: 'Basic ' + Buffer.from(`${c.API_KEY}:${c.API_SECRET}`).toString('base64'), authToken: c.AUTH_TOKEN };
}

// One /v1 call; resolves { status, body, ms } (body parsed JSON or null).
async function call(node, auth, method, path, params) {
  const headers = { Authorization: auth };
  let body;
  if (params) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  const t0 = Date.now();
  const r = await fetch(`${node.url}${path}`, { method, headers, body, signal: AbortSignal.timeout(30000) });
  const text = await r.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, body: parsed, ms: Date.now() - t0 };
}

async function healthz(node) {
  const r = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(15000) });
  return { status: r.status, body: await r.json() };
}

// Two nodes on a new cluster, with A holding the workspace's lease. Resolves the set-up.
async function twoNodes() {
  const pg = cluster();
  const a = await startNode(pg.url, 'A');
  const creds = credentials(pg.url);
  const auth = creds.basic;
  const wsList = await call(a, auth, 'GET', '/v1/Workspaces');
  assert.equal(wsList.status, 200);
  const ws = wsList.body.workspaces[0].sid;
  const lease = `taskrouter:${ws}`;
  // A, alone, takes the workspace's lease; B, started next, finds it taken
  await eventually(async () => (await healthz(a)).body.leases.includes(lease), { timeout: 10000, interval: 100 });
  const b = await startNode(pg.url, 'B');
  await new Promise((r) => setTimeout(r, 1500)); // B's session thread has tried at least once
  assert.ok((await healthz(a)).body.leases.includes(lease), 'A keeps the lease');
  assert.ok(!(await healthz(b)).body.leases.includes(lease), 'one holder at a time');
  const base = `/v1/Workspaces/${ws}`;
  const acts = await call(b, auth, 'GET', `${base}/Activities`);
  const act = Object.fromEntries(acts.body.activities.map((x) => [x.friendly_name, x.sid]));
  return { pg, a, b, auth, creds, ws, lease, base, act };
}

test('two nodes: the survivor of a kill -9 takes the lease, assigns no task twice, loses no '
  + 'acknowledged write and fires the dead node\'s pending reservation timeout', opts, async () => {
  const { a, b, auth, lease, base, act } = await twoNodes();
  const acked = { workers: [], tasks: [] };
  const queue = await call(a, auth, 'POST', `${base}/TaskQueues`, { FriendlyName: 'All', TargetWorkers: '1==1' });
  assert.equal(queue.status, 201);
  const flow = (timeout) => call(b, auth, 'POST', `${base}/Workflows`, {
    FriendlyName: `T${timeout}`, TaskReservationTimeout: String(timeout),
    Configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.body.sid } } }),
  });
  const long = await flow(120);
  const short = await flow(4);
  assert.equal(long.status, 201);
  assert.equal(short.status, 201);
  // workers on A, tasks on B: each create on one node is matched in the shared critical section
  for (let i = 0; i < 8; i++) {
    const w = await call(a, auth, 'POST', `${base}/Workers`, { FriendlyName: `w${i}`, ActivitySid: act.Available });
    assert.equal(w.status, 201);
    acked.workers.push(w.body.sid);
  }
  for (let i = 0; i < 6; i++) {
    const t = await call(b, auth, 'POST', `${base}/Tasks`, { WorkflowSid: long.body.sid, Attributes: JSON.stringify({ n: i }) });
    assert.equal(t.status, 201);
    acked.tasks.push(t.body.sid);
  }
  const pendingOf = async (node, task) => (await call(node, auth, 'GET', `${base}/Tasks/${task}/Reservations`))
    .body.reservations.filter((r) => r.reservation_status === 'pending');
  // two tasks with a 4 s reservation timeout, reserved last, pending when A dies
  const shortTasks = [];
  for (let i = 0; i < 2; i++) {
    const t = await call(a, auth, 'POST', `${base}/Tasks`, { WorkflowSid: short.body.sid, Attributes: JSON.stringify({ s: i }) });
    assert.equal(t.status, 201);
    acked.tasks.push(t.body.sid);
    shortTasks.push(t.body.sid);
  }
  const shortRes = [];
  for (const t of shortTasks) {
    const p = await pendingOf(a, t);
    assert.equal(p.length, 1, 'the short task is reserved');
    shortRes.push(p[0]);
  }
  // accept on both nodes while A is killed in the middle
  const accepts = [];
  for (const [i, t] of acked.tasks.slice(0, 6).entries()) {
    const node = i % 2 ? b : a;
    accepts.push((async () => {
      const p = await pendingOf(node, t).catch(() => []);
      if (!p.length) return;
      await call(node, auth, 'POST', `${base}/Tasks/${t}/Reservations/${p[0].sid}`, { ReservationStatus: 'accepted' }).catch(() => null);
    })());
    if (i === 2) {
      assert.match(a.log(), /event=tr_lease_taken/);
      assert.doesNotMatch(b.log(), /event=tr_lease_taken/, 'B runs no timers while A holds the lease');
      await a.kill9();
    }
  }
  await Promise.all(accepts);
  // the survivor takes the lease within a few seconds
  await eventually(async () => (await healthz(b)).body.leases.includes(lease), { timeout: 8000, interval: 200 });
  await eventually(() => /event=tr_lease_taken/.test(b.log()), { timeout: 3000 });
  // the reservations that were pending on A time out on B
  for (const r of shortRes) {
    await eventually(async () => {
      const got = await call(b, auth, 'GET', `${base}/Tasks/${r.task_sid}/Reservations/${r.sid}`);
      return got.body.reservation_status === 'timeout';
    }, { timeout: 15000, interval: 250 });
  }
  const timeouts = await call(b, auth, 'GET', `${base}/Events?EventType=reservation.timeout&PageSize=100`);
  for (const r of shortRes)
    assert.ok(timeouts.body.events.some((e) => e.resource_sid === r.sid), `reservation.timeout of ${r.sid}`);
  // more work on the survivor still routes
  const late = await call(b, auth, 'POST', `${base}/Workers`, { FriendlyName: 'late', ActivitySid: act.Available });
  assert.equal(late.status, 201);
  acked.workers.push(late.body.sid);
  // every acknowledged create is there; no task assigned twice; no worker on two tasks
  for (const w of acked.workers) assert.equal((await call(b, auth, 'GET', `${base}/Workers/${w}`)).status, 200);
  const busy = new Map();
  for (const t of acked.tasks) {
    const task = await call(b, auth, 'GET', `${base}/Tasks/${t}`);
    assert.equal(task.status, 200, t);
    const res = (await call(b, auth, 'GET', `${base}/Tasks/${t}/Reservations`)).body.reservations;
    const accepted = res.filter((r) => r.reservation_status === 'accepted');
    assert.ok(accepted.length <= 1, `task ${t} has ${accepted.length} accepted reservations`);
    assert.ok(res.filter((r) => r.reservation_status === 'pending').length <= 1, `task ${t}: one pending at most`);
    if (accepted.length) {
      assert.equal(task.body.assignment_status, 'assigned');
      const w = accepted[0].worker_sid;
      assert.ok(!busy.has(w), `worker ${w} holds ${busy.get(w)} and ${t}`);
      busy.set(w, t);
    }
  }
  assert.ok(busy.size >= 1, 'some reservation was accepted');
});

test('a database outage: writes answer 503 promptly, /healthz says store false, and after the '
  + 'restart writes work again and nothing acknowledged is lost', opts, async () => {
  const { pg, a, b, auth, creds, base } = await twoNodes();
  const acked = [];
  for (let i = 0; i < 5; i++) {
    const node = i % 2 ? b : a;
    const w = await call(node, auth, 'POST', `${base}/Workers`, { FriendlyName: `before${i}` });
    assert.equal(w.status, 201);
    acked.push(w.body.sid);
  }
  const doc = await call(a, auth, 'POST', '/v1/Services/default/Documents', { UniqueName: 'kept', Data: '{"v":1}' });
  assert.equal(doc.status, 201);
  execFileSync(SCRATCH, ['stop', pg.dir], { stdio: 'ignore' });
  try {
    for (const node of [a, b]) {
      for (let i = 0; i < 3; i++) {
        const w = await call(node, auth, 'POST', `${base}/Workers`, { FriendlyName: `during-${node.name}${i}` });
        assert.equal(w.status, 503, JSON.stringify(w.body));
        assert.equal(w.body.code, 20503);
        assert.equal(w.body.status, 503);
        assert.match(w.body.message, /store/i);
        assert.equal(w.body.more_info, 'https://www.twilio.com/docs/errors/20503');
        assert.ok(w.ms < 6000, `answered in ${w.ms} ms`);
      }
      // a TaskRouter read of what exists is no 404 meanwhile
      for (const path of [`${base}/Workers/${acked[0]}`, `${base}/Workers`, `${base}/Workers/${acked[0]}/Reservations`]) {
        const r = await call(node, auth, 'GET', path);
        assert.equal(r.status, 503, `GET ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 20503);
      }
      const d = await call(node, auth, 'POST', '/v1/Services/default/Documents/kept', { Data: '{"v":2}' });
      assert.equal(d.status, 503);
      assert.equal(d.body.code, 20503);
      // nor is a Sync read of a document that exists
      for (const path of ['/v1/Services/default/Documents/kept', '/v1/Services/default/Documents/kept/Permissions/nobody']) {
        const r = await call(node, auth, 'GET', path);
        assert.equal(r.status, 503, `GET ${path}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 20503);
      }
      // the router function (signed as TaskRouter signs) answers 503 in its own error shape
      const routerUrl = `${node.url}/general/router`;
      const ev = { EventType: 'task.created', Sid: `EV${'0'.repeat(31)}${node.name === 'A' ? 1 : 2}`,
        TaskSid: `WT${'0'.repeat(32)}`, TaskAttributes: JSON.stringify({ topic: 'outage' }) };
      const t0 = Date.now();
      const rr = await fetch(routerUrl, {
        method: 'POST', body: new URLSearchParams(ev).toString(),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded',
          'X-Twilio-Signature': twilio.getExpectedTwilioSignature(creds.authToken, routerUrl, ev) },
        signal: AbortSignal.timeout(30000),
      });
      const rb = await rr.json();
      assert.equal(rr.status, 503, JSON.stringify(rb));
      assert.equal(rb.status, 503);
      assert.match(rb.error, /store/i);
      assert.ok(Date.now() - t0 < 6000);
      const h = await healthz(node);
      assert.equal(h.status, 503);
      assert.equal(h.body.store, false);
    }
  } finally {
    execFileSync(SCRATCH, ['restart', pg.dir], { stdio: 'ignore' });
  }
  for (const node of [a, b]) {
    const w = await eventually(async () => {
      const r = await call(node, auth, 'POST', `${base}/Workers`, { FriendlyName: `after-${node.name}` });
      return r.status === 201 && r;
    }, { timeout: 20000, interval: 250 });
    acked.push(w.body.sid);
    assert.equal((await healthz(node)).body.store, true);
  }
  for (const w of acked) assert.equal((await call(b, auth, 'GET', `${base}/Workers/${w}`)).status, 200, w);
  const kept = await call(b, auth, 'GET', '/v1/Services/default/Documents/kept');
  assert.equal(kept.status, 200);
  assert.deepEqual(kept.body.data, { v: 1 });
  const names = (await call(a, auth, 'GET', `${base}/Workers?PageSize=100`)).body.workers.map((w) => w.friendly_name);
  assert.ok(!names.some((n) => n.startsWith('during-')), 'no refused write was stored');
});

test('the callback outbox: with both nodes delivering, every event is POSTed exactly once',
  opts, async () => {
  const { a, b, auth, base, ws, act } = await twoNodes();
  const got = [];
  // a slow receiver, so that deliveries overlap and both nodes' outbox threads find due rows
  const srv = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    got.push(Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString())));
    await new Promise((r) => setTimeout(r, 50));
    res.writeHead(204);
    res.end();
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }));
  const cb = `http://127.0.0.1:${srv.address().port}/events`;
  const upd = await call(b, auth, 'POST', `/v1/Workspaces/${ws}`, { EventCallbackUrl: cb });
  assert.equal(upd.status, 200);
  const queue = await call(a, auth, 'POST', `${base}/TaskQueues`, { FriendlyName: 'Q', TargetWorkers: '1==1' });
  const flow = await call(b, auth, 'POST', `${base}/Workflows`, {
    FriendlyName: 'F', Configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.body.sid } } }),
  });
  assert.equal(flow.status, 201);
  await Promise.all([...Array(6).keys()].map((i) => call(i % 2 ? a : b, auth, 'POST', `${base}/Workers`,
    { FriendlyName: `cw${i}`, ActivitySid: act.Available })));
  const tasks = await Promise.all([...Array(10).keys()].map((i) => call(i % 2 ? b : a, auth, 'POST', `${base}/Tasks`,
    { WorkflowSid: flow.body.sid, Attributes: JSON.stringify({ i }) })));
  for (const t of tasks) assert.equal(t.status, 201);
  // every event since the URL was set, as the API lists them
  const listed = async () => (await call(b, auth, 'GET', `${base}/Events?PageSize=1000`)).body.events
    .filter((e) => Date.parse(e.event_date) >= Date.parse(upd.body.date_updated) - 1000);
  let events;
  await eventually(async () => {
    events = await listed();
    const sids = new Set(got.map((p) => p.Sid));
    return events.length > 30 && events.every((e) => sids.has(e.sid));
  }, { timeout: 20000, interval: 250 });
  // wait out a second poll of both outboxes, then count
  await new Promise((r) => setTimeout(r, 2500));
  const counts = new Map();
  for (const p of got) counts.set(p.Sid, (counts.get(p.Sid) || 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], 'no event POSTed twice');
  for (const e of events) assert.equal(counts.get(e.sid), 1, `${e.event_type} ${e.sid}`);
});

test('nodes that start at the same moment on a new database agree on one set of credentials, '
  + 'one workspace and one default Sync service', opts, async () => {
  const pg = cluster();
  // eight processes generate credentials in the new database at once: one set wins for all
  const outs = await Promise.all(Array.from({ length: 8 }, () => new Promise((resolve, reject) => {
    const c = spawn(BIN, ['credentials', '--data', pg.url], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    // 'close', not 'exit': the process can exit before its stdout has been read to the end
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`credentials exited ${code}`))));
  })));
  assert.equal(new Set(outs).size, 1, outs.map((o) => o.split('\n')[0]).join(', '));
  const nodes = await Promise.all(['P', 'Q', 'R'].map((n) => startNode(pg.url, n)));
  const { basic } = credentials(pg.url);
  const seen = [];
  for (const node of nodes) {
    // each node answers with the one stored set of credentials
    const ws = await call(node, basic, 'GET', '/v1/Workspaces');
    assert.equal(ws.status, 200, `${node.name}: ${JSON.stringify(ws.body)}`);
    assert.equal(ws.body.workspaces.length, 1, JSON.stringify(ws.body.workspaces.map((w) => w.sid)));
    const svc = await call(node, basic, 'GET', '/v1/Services/default');
    assert.equal(svc.status, 200);
    seen.push(`${ws.body.workspaces[0].sid} ${svc.body.sid}`);
  }
  assert.equal(new Set(seen).size, 1, seen.join(', '));
});

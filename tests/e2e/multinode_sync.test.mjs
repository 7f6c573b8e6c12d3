// multinode_sync.test.mjs - live document streams across two `tassa serve` nodes on one
// PostgreSQL database (its own throw-away cluster, lib/pg.mjs): every revision written on
// either node reaches the streams of both, in order, none missing, none twice; concurrent
// If-Match writers on both nodes never overwrite each other (412); Last-Event-ID resumes on
// the other node, for document and service streams; a database outage only pauses the
// streams; a node killed with -9 loses no acknowledged update for the survivor's streams; a
// removal or a revoked permission on one node ends the other node's streams.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import jwt from 'jsonwebtoken';
import { BIN } from './lib/server.mjs';
import { startPg } from './lib/pg.mjs';
import { spawnTassa, cleanEnv } from './lib/spawn_tassa.mjs';

const SCRATCH = join(dirname(fileURLToPath(import.meta.url)), '../../tools/pg_scratch.sh');

let pg, cwd, creds;
const nodes = {};

// Starts one node on the cluster's database.
async function startNode(name) {
  const n = await spawnTassa(BIN, { args: ['--data', pg.url, '--quiet'], cwd });
  nodes[name] = n;
  return n;
}

before(async () => {
  pg = startPg();
  cwd = mkdtempSync(join(tmpdir(), 'tassa-multinode-'));
  await startNode('A'); // first: it migrates the schema and generates the credentials
  const out = execFileSync(BIN, ['credentials', '--data', pg.url], { env: cleanEnv(), cwd, encoding: 'utf8' });
  creds = Object.fromEntries(out.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  await startNode('B');
});

after(async () => {
  for (const n of Object.values(nodes)) {
    const { code, signal } = await n.stop();
    if (signal !== 'SIGKILL') assert.equal(code, 0, n.log().slice(-4000)); // sanitizer reports fail
  }
  pg?.stop();
  rmSync(cwd, { recursive: true, force: true });
});

const basic = () => 'Basic ' + Buffer.from(`${creds.API_KEY}:${creds.API_SECRET}`).toString('base64');

// A Sync REST call on node n; resolves { status, body }. Never throws on HTTP errors.
async function call(n, method, path, params, headers = {}) {
  const r = await fetch(`${n.url}/v1/Services/default${path}`, {
    method,
    headers: { Authorization: basic(), 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: params ? new URLSearchParams(params).toString() : undefined,
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

// Creates document name on node n and lets identity read it.
async function createDoc(n, name, identity = 'alice') {
  const c = await call(n, 'POST', '/Documents', { UniqueName: name, Data: JSON.stringify({ n: 0 }) });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const g = await call(n, 'POST', `/Documents/${name}/Permissions/${identity}`,
    { Read: 'true', Write: 'false', Manage: 'false' });
  assert.equal(g.status, 200, JSON.stringify(g.body));
  return c.body;
}

const update = (n, name, data, headers) =>
  call(n, 'POST', `/Documents/${name}`, { Data: JSON.stringify(data) }, headers);

function syncToken(identity) {
  const iat = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { jti: `${creds.API_KEY}-${iat}`, iss: creds.API_KEY, sub: creds.ACCOUNT_SID, iat, exp: iat + 3600,
      grants: { identity, data_sync: { service_sid: 'default' } } },
    creds.API_SECRET, { algorithm: 'HS256', header: { cty: 'twilio-fpa;v=1', typ: 'JWT' }, noTimestamp: true });
}

// Opens the SSE stream of document name on node n; resolves once the status is known.
// s.events collects { id, event, data }; s.until(pred) waits for pred(s).
// name null: the service stream.
function openStream(n, name, { identity = 'alice', lastEventId } = {}) {
  const path = name === null ? '' : `/Documents/${encodeURIComponent(name)}`;
  const url = `${n.url}/v1/Services/default${path}/Stream` +
    `?token=${encodeURIComponent(syncToken(identity))}`;
  const headers = { Accept: 'text/event-stream' };
  if (lastEventId !== undefined) headers['Last-Event-ID'] = String(lastEventId);
  return new Promise((resolve, reject) => {
    const s = { events: [], status: 0, ended: false, waiters: [] };
    const wake = () => { for (const w of s.waiters.splice(0)) w(); };
    const req = http.get(url, { headers }, (res) => {
      s.status = res.statusCode;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = {};
          for (const line of buf.slice(0, i).split('\n')) {
            const m = /^([a-z]+): ?(.*)$/i.exec(line);
            if (m) ev[m[1]] = m[2];
          }
          buf = buf.slice(i + 2);
          if (ev.data !== undefined) s.events.push({ ...ev, data: JSON.parse(ev.data) });
        }
        wake();
      });
      res.on('close', () => { s.ended = true; wake(); });
      resolve(s);
    });
    req.on('error', reject);
    s.close = () => req.destroy();
    s.until = (pred, timeout = 15000) => new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`stream on ${n.url}: condition not met; ` +
        `${s.events.length} events, last ${JSON.stringify(s.events.at(-1))}, ended ${s.ended}`)), timeout);
      const check = () => { if (pred(s)) { clearTimeout(timer); ok(s); } else s.waiters.push(check); };
      check();
    });
  });
}

// The revisions a document stream carried, as numbers.
const ids = (s) => s.events.filter((e) => e.id !== undefined).map((e) => Number(e.id));
const lastId = (s) => ids(s).at(-1);

// Asserts that s carried every revision from its first event to last, once each, in order.
function assertEveryRevision(s, last, label) {
  const got = ids(s);
  assert.ok(got.length > 0, `${label}: no event`);
  const want = [];
  for (let r = got[0]; r <= last; r++) want.push(r);
  assert.deepEqual(got, want, `${label}: revisions out of order, missing or repeated`);
}

test('a stream on each node sees every revision written on either node, in order, once', async () => {
  const { A, B } = nodes;
  const doc = await createDoc(A, 'mn-alternate');
  const onA = await openStream(A, 'mn-alternate');
  const onB = await openStream(B, 'mn-alternate');
  assert.equal(onA.status, 200);
  assert.equal(onB.status, 200);
  await onA.until((s) => s.events.length >= 1);
  await onB.until((s) => s.events.length >= 1);
  let rev = Number(doc.revision);
  for (let i = 1; i <= 40; i++) {
    const r = await update(i % 2 ? A : B, 'mn-alternate', { n: i });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    rev = Number(r.body.revision);
  }
  assert.equal(rev, Number(doc.revision) + 40);
  for (const [s, label] of [[onA, 'node A'], [onB, 'node B']]) {
    await s.until((x) => lastId(x) === rev);
    assertEveryRevision(s, rev, label);
    assert.deepEqual(s.events.at(-1).data.data, { n: 40 });
  }
  onA.close();
  onB.close();
});

test('concurrent If-Match writers on both nodes: every accepted write counts, every refused one is 412', async () => {
  const { A, B } = nodes;
  const doc = await createDoc(B, 'mn-cas');
  const streams = [await openStream(A, 'mn-cas'), await openStream(B, 'mn-cas')];
  for (const s of streams) await s.until((x) => x.events.length >= 1);
  let accepted = 0, refused = 0;
  const writer = async (n, w) => {
    for (let i = 0; i < 12; i++) {
      const cur = await call(n, 'GET', '/Documents/mn-cas');
      assert.equal(cur.status, 200);
      const r = await update(n, 'mn-cas', { w, i }, { 'If-Match': cur.body.revision });
      if (r.status === 200) {
        accepted++;
        assert.equal(Number(r.body.revision), Number(cur.body.revision) + 1);
      } else {
        assert.equal(r.status, 412, JSON.stringify(r.body));
        refused++;
      }
    }
  };
  await Promise.all([0, 1, 2, 3].flatMap((w) => [writer(A, `A${w}`), writer(B, `B${w}`)]));
  assert.equal(accepted + refused, 96);
  assert.ok(refused > 0, 'the writers never raced: the test proved nothing');
  const final = await call(A, 'GET', '/Documents/mn-cas');
  assert.equal(Number(final.body.revision), Number(doc.revision) + accepted);
  for (const [s, label] of [[streams[0], 'node A'], [streams[1], 'node B']]) {
    await s.until((x) => lastId(x) === Number(final.body.revision));
    assertEveryRevision(s, Number(final.body.revision), label);
    s.close();
  }
});

test('Last-Event-ID resumes on the other node with exactly the missed revisions', async () => {
  const { A, B } = nodes;
  const doc = await createDoc(A, 'mn-resume');
  const first = await openStream(A, 'mn-resume');
  await first.until((s) => s.events.length >= 1);
  for (let i = 1; i <= 3; i++) assert.equal((await update(A, 'mn-resume', { n: i })).status, 200);
  const seen = Number(doc.revision) + 3;
  await first.until((s) => lastId(s) === seen);
  first.close();
  for (let i = 4; i <= 8; i++) assert.equal((await update(A, 'mn-resume', { n: i })).status, 200);
  // Node B never watched this document: what it replays comes from the shared change log.
  const again = await openStream(B, 'mn-resume', { lastEventId: seen });
  assert.equal(again.status, 200);
  await again.until((s) => lastId(s) === seen + 5);
  assert.deepEqual(again.events.map((e) => e.event), Array(5).fill('update'));
  assert.deepEqual(ids(again), [1, 2, 3, 4, 5].map((k) => seen + k));
  assert.deepEqual(again.events.map((e) => e.data.data.n), [4, 5, 6, 7, 8]);
  again.close();
});

test('service streams number changes alike on both nodes and resume on the other node', async () => {
  const { A, B } = nodes;
  const svcA = await openStream(A, null);
  const svcB = await openStream(B, null);
  await svcA.until((s) => s.events.length >= 1);
  await svcB.until((s) => s.events.length >= 1);
  assert.equal(svcA.events[0].event, 'ready');
  await createDoc(A, 'mn-svc-1'); // its permission follows: alice reads it from then on
  for (let i = 1; i <= 3; i++) assert.equal((await update(i % 2 ? B : A, 'mn-svc-1', { n: i })).status, 200);
  const upTo3 = (s) => s.events.some((e) => e.event === 'update' && e.data.data.n === 3);
  await svcA.until(upTo3);
  await svcB.until(upTo3);
  // The create may or may not show (its readers are read when a node hands it on, maybe
  // before the grant): compare the three updates after it.
  const tail = (s) => s.events.filter((e) => e.event === 'update').slice(-3).map((e) => [e.id, e.data.revision]);
  assert.deepEqual(tail(svcB), tail(svcA), 'both nodes carry the same ids for the same changes');
  const seen = svcA.events.at(-1).id;
  svcA.close();
  for (let i = 4; i <= 6; i++) assert.equal((await update(A, 'mn-svc-1', { n: i })).status, 200);
  const again = await openStream(B, null, { lastEventId: seen });
  await again.until((s) => s.events.length >= 3);
  assert.deepEqual(again.events.map((e) => [e.event, e.data.data.n]), [['update', 4], ['update', 5], ['update', 6]]);
  assert.ok(again.events.every((e) => BigInt(e.id) > BigInt(seen)));
  again.close();
  svcB.close();
});

test('a removal or a revoked permission on node A ends the streams on node B', async () => {
  const { A, B } = nodes;
  await createDoc(A, 'mn-remove');
  await createDoc(A, 'mn-revoke');
  const removed = await openStream(B, 'mn-remove');
  const revoked = await openStream(B, 'mn-revoke');
  await removed.until((s) => s.events.length >= 1);
  await revoked.until((s) => s.events.length >= 1);
  assert.equal((await call(A, 'DELETE', '/Documents/mn-remove')).status, 204);
  await removed.until((s) => s.ended);
  assert.equal(removed.events.at(-1).event, 'deleted');
  assert.equal(removed.events.at(-1).data.unique_name, 'mn-remove');
  assert.equal((await call(A, 'DELETE', '/Documents/mn-revoke/Permissions/alice')).status, 204);
  await revoked.until((s) => s.ended);
  assert.equal(revoked.events.at(-1).event, 'access-changed');
});

test('after a database outage the streams on both nodes carry on with every later revision', async () => {
  const { A, B } = nodes;
  await createDoc(A, 'mn-outage');
  const streams = [await openStream(A, 'mn-outage'), await openStream(B, 'mn-outage')];
  for (const s of streams) await s.until((x) => x.events.length >= 1);
  assert.equal((await update(B, 'mn-outage', { n: 1 })).status, 200);
  execFileSync(SCRATCH, ['stop', pg.dir], { stdio: 'ignore' });
  const during = await update(A, 'mn-outage', { n: -1 });
  assert.ok(during.status >= 500, `a write during the outage answered ${during.status}`);
  execFileSync(SCRATCH, ['restart', pg.dir], { stdio: 'ignore' });
  // Each node's store reconnects with back-off (at most 8 s): write on each until it works.
  let n = 1;
  for (const node of [A, B]) {
    let r;
    for (let i = 0; i < 200; i++) {
      r = await update(node, 'mn-outage', { n: n + 1 });
      if (r.status === 200) break;
      assert.ok(r.status >= 500, `a write after the outage answered ${r.status}`);
      await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.equal(r.status, 200, JSON.stringify(r.body));
    n++;
  }
  for (let i = 4; i <= 8; i++) assert.equal((await update(i % 2 ? B : A, 'mn-outage', { n: i })).status, 200);
  const final = await call(B, 'GET', '/Documents/mn-outage');
  assert.deepEqual(final.body.data, { n: 8 });
  for (const [s, label] of [[streams[0], 'node A'], [streams[1], 'node B']]) {
    await s.until((x) => lastId(x) === Number(final.body.revision), 30000);
    assertEveryRevision(s, Number(final.body.revision), label);
    s.close();
  }
});

test('after node A is killed with -9 during writes, a stream on node B has every acknowledged update', async () => {
  const { A, B } = nodes;
  const doc = await createDoc(A, 'mn-kill');
  const onB = await openStream(B, 'mn-kill');
  await onB.until((s) => s.events.length >= 1);
  const acked = [];
  let stop = false;
  const writer = async (n, w) => {
    for (let i = 0; !stop || n === B; i++) {
      if (n === B && stop && i > 40) break;
      let r;
      try {
        r = await update(n, 'mn-kill', { w, i });
      } catch {
        return; // node A is gone: that write was never acknowledged
      }
      if (r.status === 200) acked.push(Number(r.body.revision));
      else assert.equal(n, A, `node B refused a write: ${r.status}`);
    }
  };
  const writers = [0, 1, 2].flatMap((w) => [writer(A, `A${w}`), writer(B, `B${w}`)]);
  await new Promise((r) => setTimeout(r, 300));
  await nodes.A.child.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  assert.ok(acked.length > 40, `only ${acked.length} writes were acknowledged`);
  const final = await call(B, 'GET', '/Documents/mn-kill');
  assert.ok(Number(final.body.revision) >= Math.max(...acked));
  await onB.until((s) => lastId(s) === Number(final.body.revision));
  const seen = new Set(ids(onB));
  for (const rev of acked) assert.ok(seen.has(rev), `acknowledged revision ${rev} never reached node B's stream`);
  assertEveryRevision(onB, Number(final.body.revision), 'node B');
  assert.ok(ids(onB)[0] <= Number(doc.revision) + 1);
  onB.close();
});

// durability.test.mjs - documents survive a clean restart and a kill -9 after acknowledged writes;
// an acknowledged write is in the run's store (the data file, or in the PostgreSQL run the
// server's database), read there without tassa.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  startServerAnyPort as startServer, decode, docsApi, STORE_KIND, storeQuery, sqliteOnly, BIN,
} from './lib/server.mjs';

const toStop = [];
after(async () => {
  // stop every live server (a failing stop fails the file), then remove the data dirs
  const errors = [];
  for (const s of toStop) {
    try { await s.stop(); } catch (e) { errors.push(e); }
  }
  for (const s of toStop) s.cleanup();
  if (errors.length) throw errors[0];
});


// A TaskRouter write on srv's workspace, form-encoded like the helper libraries'.
async function trPost(srv, path, params) {
  return decode(await fetch(`${srv.url}/v1/Workspaces/${srv.workspaceSid}${path}`, {
    method: 'POST',
    headers: { Authorization: srv.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  }));
}

test('a restart keeps every document, data and revision', async () => {
  const first = await startServer();
  toStop.push(first);
  const expected = new Map();
  for (let i = 0; i < 20; i++) {
    const n = `keep-${i}`;
    const c = await docsApi(first, 'POST', '', { UniqueName: n, Data: JSON.stringify({ i, text: `doc ${i} ✓` }) });
    assert.equal(c.status, 201);
    let doc = c.body;
    for (let k = 0; k < i % 4; k++) { // a few have later revisions
      const u = await docsApi(first, 'POST', `/${n}`, { Data: JSON.stringify({ i, k }) });
      assert.equal(u.status, 200);
      doc = u.body;
    }
    expected.set(n, doc);
  }
  const second = await first.restart();
  toStop.push(second);
  assert.equal(second.store, first.store);
  assert.deepEqual(second.creds, first.creds, 'the generated credentials persist');
  for (const [n, doc] of expected) {
    const r = await docsApi(second, 'GET', `/${n}`);
    assert.equal(r.status, 200, n);
    assert.equal(r.body.sid, doc.sid);
    assert.equal(r.body.revision, doc.revision);
    assert.deepEqual(r.body.data, doc.data);
    assert.equal(r.body.date_created, doc.date_created);
  }
  const list = await docsApi(second, 'GET', '?PageSize=100');
  // every document made here, plus the queue-status document the functions keep
  const listed = list.body.documents.map((d) => d.unique_name).filter((n) => n !== 'queue-status');
  assert.equal(listed.length, 20);
  // and the restarted server still writes
  const u = await docsApi(second, 'POST', '/keep-0', { Data: '{"after":"restart"}' });
  assert.equal(u.status, 200);
  assert.equal(u.body.revision, String(Number(expected.get('keep-0').revision) + 1));
});

test('kill -9 right after a burst of acknowledged writes loses none', async () => {
  const srv = await startServer();
  toStop.push(srv);
  // 8 workers; worker w owns documents w, w+8, ... and runs each one's create and then its
  // updates in order, so the last acknowledged state of every document is known exactly.
  const WORKERS = 8;
  const DOCS = 40;
  const UPDATES = 4; // 40 creates + 160 updates = 200 writes
  const acked = new Map(); // name -> { sid, revision, data }
  let writes = 0;
  let failures = [];
  async function worker(w) {
    for (let d = w; d < DOCS; d += WORKERS) {
      const n = `burst-${d}`;
      const c = await docsApi(srv, 'POST', '', { UniqueName: n, Data: JSON.stringify({ d, v: 0 }) });
      writes++;
      if (c.status !== 201) { failures.push(c); continue; }
      acked.set(n, { sid: c.body.sid, revision: c.body.revision, data: c.body.data });
      for (let v = 1; v <= UPDATES; v++) {
        const u = await docsApi(srv, 'POST', `/${c.body.sid}`, { Data: JSON.stringify({ d, v, pad: 'x'.repeat(200) }) });
        writes++;
        if (u.status !== 200) { failures.push(u); continue; }
        acked.set(n, { sid: u.body.sid, revision: u.body.revision, data: u.body.data });
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  await srv.kill9(); // immediately after the last answer
  assert.equal(writes, 200);
  assert.deepEqual(failures.map((f) => f.status), []);
  assert.equal(acked.size, DOCS);

  const again = await startServer({ dataDir: srv.dataDir });
  toStop.push(again);
  for (const [n, want] of acked) {
    const r = await docsApi(again, 'GET', `/${n}`);
    assert.equal(r.status, 200, `${n} lost`);
    assert.equal(r.body.sid, want.sid, n);
    assert.equal(r.body.revision, want.revision, n);
    assert.equal(want.revision, String(UPDATES), n);
    assert.deepEqual(r.body.data, want.data, n);
  }
});

test('an acknowledged write is in the store of this run, read without tassa', async () => {
  const srv = await startServer();
  toStop.push(srv);
  assert.match(srv.log, STORE_KIND === 'pg' ? / data=postgres:\/\/\S+\/e2e_/ : / data=\/\S+tassa\.db/);
  const name = `in-store-${process.pid}`;
  const r = await docsApi(srv, 'POST', '', { UniqueName: name, Data: '{"kind":"probe"}' });
  assert.equal(r.status, 201);
  const rows = storeQuery(srv.store, `SELECT unique_name, revision, data FROM sync_documents WHERE unique_name = '${name}'`);
  assert.equal(rows, `${name}|0|{"kind":"probe"}`);
});

// tests/e2e/shim/failsync.c, built beside tassa: WAL syncs fail once a flag file exists.
const FAILSYNC = join(dirname(BIN), 'libtassa_failsync.so');

test('a TaskRouter write whose WAL sync fails is answered 503, and nothing acknowledged is lost', sqliteOnly('the shim fails SQLite WAL syncs'), async () => {
  const flagDir = mkdtempSync(join(tmpdir(), 'tassa-failsync-'));
  const flag = join(flagDir, 'fail');
  try {
    const env = {
      LD_PRELOAD: FAILSYNC,
      TASSA_TEST_FAILSYNC: flag,
      // the shim comes before the sanitizers' runtime in the sanitizer run
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:verify_asan_link_order=0',
    };
    const srv = await startServer({ env });
    toStop.push(srv);
    const post = (path, params) => trPost(srv, path, params);
    const q = await post('/TaskQueues', { FriendlyName: 'failsync-q', TargetWorkers: '1==1' });
    assert.equal(q.status, 201, JSON.stringify(q.body));
    const kept = await post('/Tasks', { TaskQueueSid: q.body.sid, Attributes: '{"n":1}' });
    assert.equal(kept.status, 201, JSON.stringify(kept.body));

    writeFileSync(flag, ''); // the disk fails from here on
    // The handler saw its write succeed (its store_unlock did not wait); the commit's sync
    // failed, so the answer is the store's error, not the 201 it made.
    const lost = await post('/Tasks', { TaskQueueSid: q.body.sid, Attributes: '{"n":2}' });
    assert.equal(lost.status, 503, JSON.stringify(lost.body));
    assert.equal(lost.body.code, 20503);
    assert.match(lost.body.message, /store/i);
    assert.match(srv.log, /event=store_sync_failed/);
    unlinkSync(flag); // the disk works again, but the store refuses writes until a restart
    const after = await post('/Tasks', { TaskQueueSid: q.body.sid, Attributes: '{"n":3}' });
    assert.equal(after.status, 503, JSON.stringify(after.body));
    await srv.stop();

    const again = await startServer({ dataDir: srv.dataDir });
    toStop.push(again);
    const got = await decode(await fetch(
      `${again.url}/v1/Workspaces/${again.workspaceSid}/Tasks/${kept.body.sid}`,
      { headers: { Authorization: again.basic() } }));
    assert.equal(got.status, 200, 'the acknowledged task is kept');
    assert.deepEqual(JSON.parse(got.body.attributes), { n: 1 });
    const fresh = await trPost(again, '/Tasks', { TaskQueueSid: q.body.sid, Attributes: '{"n":4}' });
    assert.equal(fresh.status, 201, JSON.stringify(fresh.body));
  } finally {
    rmSync(flagDir, { recursive: true, force: true });
  }
});

// durability.test.mjs - documents survive a clean restart and a kill -9 after acknowledged writes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServerAnyPort as startServer, decode } from './lib/server.mjs';

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

async function api(srv, method, path, params) {
  const headers = { Authorization: srv.basic() };
  let body;
  if (params) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  return decode(await fetch(`${srv.url}/v1/Services/default/Documents${path}`, { method, headers, body }));
}

test('a restart keeps every document, data and revision', async () => {
  const first = await startServer();
  toStop.push(first);
  const expected = new Map();
  for (let i = 0; i < 20; i++) {
    const n = `keep-${i}`;
    const c = await api(first, 'POST', '', { UniqueName: n, Data: JSON.stringify({ i, text: `doc ${i} ✓` }) });
    assert.equal(c.status, 201);
    let doc = c.body;
    for (let k = 0; k < i % 4; k++) { // a few have later revisions
      const u = await api(first, 'POST', `/${n}`, { Data: JSON.stringify({ i, k }) });
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
    const r = await api(second, 'GET', `/${n}`);
    assert.equal(r.status, 200, n);
    assert.equal(r.body.sid, doc.sid);
    assert.equal(r.body.revision, doc.revision);
    assert.deepEqual(r.body.data, doc.data);
    assert.equal(r.body.date_created, doc.date_created);
  }
  const list = await api(second, 'GET', '?PageSize=100');
  // every document made here, plus the queue-status document the functions keep
  const listed = list.body.documents.map((d) => d.unique_name).filter((n) => n !== 'queue-status');
  assert.equal(listed.length, 20);
  // and the restarted server still writes
  const u = await api(second, 'POST', '/keep-0', { Data: '{"after":"restart"}' });
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
      const c = await api(srv, 'POST', '', { UniqueName: n, Data: JSON.stringify({ d, v: 0 }) });
      writes++;
      if (c.status !== 201) { failures.push(c); continue; }
      acked.set(n, { sid: c.body.sid, revision: c.body.revision, data: c.body.data });
      for (let v = 1; v <= UPDATES; v++) {
        const u = await api(srv, 'POST', `/${c.body.sid}`, { Data: JSON.stringify({ d, v, pad: 'x'.repeat(200) }) });
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
    const r = await api(again, 'GET', `/${n}`);
    assert.equal(r.status, 200, `${n} lost`);
    assert.equal(r.body.sid, want.sid, n);
    assert.equal(r.body.revision, want.revision, n);
    assert.equal(want.revision, String(UPDATES), n);
    assert.deepEqual(r.body.data, want.data, n);
  }
});

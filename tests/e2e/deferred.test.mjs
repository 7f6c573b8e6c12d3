// deferred.test.mjs - writes answered from the commit, not from a waiting thread (issue 12):
// Sync document writes and the router's topic events suspend their connection until the
// group commit, and are answered from the Sync engine's settle thread. A client that hangs
// up while its write is in flight must not leave anything behind: the write still settles,
// and a live stream opened afterwards starts at once and sees every later change (the
// reverted first attempt left such a change unsettled, and every later subscriber waited
// behind it for ever: the change was settled on the HTTP thread that answered it, and a
// stream opening on that same thread waited for it). Sixty writers at once still reach a
// stream in revision order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import jwt from 'jsonwebtoken';
import { startServerAnyPort as startServer, eventually, docsApi } from './lib/server.mjs';

let server;

before(async () => {
  // The router's signature check is covered by signature.test.mjs; here the events are
  // posted by hand.
  server = await startServer({ env: { TASSA_VERIFY_SIGNATURE: 'false' } });
  // Streams need a sync token; access control (acl.test.mjs) is off here, so any identity
  // streams any document.
  const r = await fetch(`${server.url}/v1/Services/default`, {
    method: 'POST',
    headers: { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'AclEnabled=false',
  });
  assert.equal(r.status, 200);
});

// A Twilio access token with a Sync grant, as /task/get-sync-grant mints it.
function syncToken() {
  const { apiKey, accountSid, apiSecret } = server.creds;
  const iat = Math.floor(Date.now() / 1000);
  return jwt.sign({ jti: `${apiKey}-${iat}`, iss: apiKey, sub: accountSid, iat, exp: iat + 3600,
    grants: { identity: 'watcher', data_sync: { service_sid: 'default' } } }, apiSecret,
  { algorithm: 'HS256', header: { cty: 'twilio-fpa;v=1', typ: 'JWT' }, noTimestamp: true });
}

after(async () => {
  await server?.stop(); // rejects when the exit is not clean (a suspended connection left)
  server?.cleanup();
});

const docsUrl = () => `${server.url}/v1/Services/default/Documents`;
const rest = (method, path, params) => docsApi(server, method, path, params);

// Sends one complete HTTP request on a raw socket and hangs up right after the last byte,
// without reading the answer. Resolves when the socket is closed.
function postAndHangUp(path, form, headers = {}) {
  const body = new URLSearchParams(form).toString();
  const head = [`POST ${path} HTTP/1.1`, `Host: 127.0.0.1:${server.port}`,
    'Content-Type: application/x-www-form-urlencoded', `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
  return new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1', () => {
      s.write(head + body, () => s.destroy());
    });
    s.on('close', resolve);
    s.on('error', resolve);
  });
}

// Opens the document's SSE stream with a sync token; collects the events' parsed data.
function openStream(name) {
  return new Promise((resolve, reject) => {
    const s = { events: [], waiters: [] };
    const req = http.get(`${docsUrl()}/${encodeURIComponent(name)}/Stream`,
      { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${syncToken()}` } }, (res) => {
        s.status = res.statusCode;
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
            if (data) s.events.push(JSON.parse(data));
          }
          for (const w of s.waiters.splice(0)) w();
        });
        res.on('close', () => { s.ended = true; for (const w of s.waiters.splice(0)) w(); });
        resolve(s);
      });
    req.on('error', reject);
    s.close = () => req.destroy();
    s.until = (pred, timeout = 5000) => new Promise((res2, rej2) => {
      const timer = setTimeout(() => rej2(new Error(`stream: ${s.events.length} events (${s.events.map(revisionOf).join(",")}), ended ${!!s.ended}, last ` +
        JSON.stringify(s.events.at(-1))?.slice(0, 200))), timeout);
      const check = () => { if (pred(s)) { clearTimeout(timer); res2(); } else s.waiters.push(check); };
      check();
    });
  });
}

const revisionOf = (ev) => Number(ev.revision ?? ev.data?.revision);

test('document writers that hang up mid-commit: every write settles, a new stream starts at once and sees later changes', async () => {
  assert.equal((await rest('POST', '', { UniqueName: 'hangup-doc', Data: '{"n":0}' })).status, 201);
  const N = 40;
  const auth = { Authorization: server.basic() };
  await Promise.all(Array.from({ length: N }, (_, i) =>
    postAndHangUp('/v1/Services/default/Documents/hangup-doc', { Data: JSON.stringify({ n: i + 1 }) }, auth)));
  // Every update was received whole, so every one is applied, answered or not.
  await eventually(async () => {
    const r = await rest('GET', '/hangup-doc');
    assert.equal(r.status, 200);
    assert.equal(Number(r.body.revision), N, `revision ${r.body.revision}`);
    return true;
  });
  const stream = await openStream('hangup-doc');
  assert.equal(stream.status, 200);
  await stream.until((s) => s.events.length >= 1);
  assert.equal(revisionOf(stream.events[0]), N, JSON.stringify(stream.events[0]));
  const r = await rest('POST', '/hangup-doc', { Data: '{"n":"after"}' });
  assert.equal(r.status, 200);
  assert.equal(Number(r.body.revision), N + 1);
  await stream.until((s) => s.events.some((e) => revisionOf(e) === N + 1));
  stream.close();
});

test('router events that hang up mid-commit: every topic is written, later events are answered', async () => {
  const N = 20;
  await Promise.all(Array.from({ length: N }, (_, i) => postAndHangUp('/general/router', {
    EventType: 'task.created', Sid: `EVhangup${i}`, TaskSid: `WThangup${i}`,
    TaskAttributes: JSON.stringify({ topic: `hangup-topic-${i}` }),
  })));
  for (let i = 0; i < N; i++) {
    await eventually(async () => {
      const r = await rest('GET', `/hangup-topic-${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.data.status, 'waiting');
      return true;
    });
  }
  const stream = await openStream('hangup-topic-0');
  await stream.until((s) => s.events.length >= 1);
  const ev = await fetch(`${server.url}/general/router`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ EventType: 'reservation.accepted', Sid: 'EVhangup-acc', TaskSid: 'WThangup0',
      WorkerSid: 'WKx', WorkerName: 'Ada', TaskAttributes: JSON.stringify({ topic: 'hangup-topic-0' }) }).toString(),
  });
  assert.equal(ev.status, 200);
  const body = await ev.json();
  assert.equal(body.changed, true, JSON.stringify(body));
  assert.equal(body.status, 'assigned');
  await stream.until((s) => s.events.some((e) => (e.data ?? e).status === 'assigned' || e.data?.data?.status === 'assigned'
    || JSON.stringify(e).includes('"assigned"')));
  stream.close();
  // A replay of an answered event is recognised as a duplicate (remembered after its commit).
  const again = await fetch(`${server.url}/general/router`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ EventType: 'reservation.accepted', Sid: 'EVhangup-acc', TaskSid: 'WThangup0',
      TaskAttributes: JSON.stringify({ topic: 'hangup-topic-0' }) }).toString(),
  });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).ignored, true);
});

test('sixty writers at once: every answer is a distinct revision, and the stream sees them all in order', async () => {
  assert.equal((await rest('POST', '', { UniqueName: 'many-doc', Data: '{"n":0}' })).status, 201);
  const stream = await openStream('many-doc');
  await stream.until((s) => s.events.length >= 1);
  // Below the hub's bound of 64 queued live events per subscriber (HUB_QUEUE_EVENTS): past it
  // a stream that cannot keep up is dropped as a slow client (streams.test.mjs), which a
  // loaded machine may well be.
  const N = 60;
  const answers = await Promise.all(Array.from({ length: N }, (_, i) =>
    rest('POST', '/many-doc', { Data: JSON.stringify({ n: i + 1 }) })));
  const revs = answers.map((a) => { assert.equal(a.status, 200, JSON.stringify(a.body)); return Number(a.body.revision); });
  assert.deepEqual([...revs].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i + 1));
  await stream.until((s) => s.events.some((e) => revisionOf(e) === N));
  const seen = stream.events.map(revisionOf);
  assert.deepEqual(seen, Array.from({ length: N + 1 }, (_, i) => i), 'every revision once, in order');
  stream.close();
});

test('one HTTP thread: a stream opened while writes are in flight starts, and the writes are answered', async () => {
  // The first attempt settled a deferred write on the HTTP thread that resumed its connection;
  // a stream opening on that thread waits for every change before it, so with one thread
  // (or two connections on one thread) both waited for each other for ever.
  const one = await startServer({ env: { TASSA_THREADS: '1' } });
  try {
    const call = (path, params) => fetch(`${one.url}/v1/Services/default/Documents${path}`, {
      method: 'POST',
      headers: { Authorization: one.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    assert.equal((await fetch(`${one.url}/v1/Services/default`, {
      method: 'POST',
      headers: { Authorization: one.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'AclEnabled=false',
    })).status, 200);
    assert.equal((await call('', { UniqueName: 'one-thread', Data: '{"n":0}' })).status, 201);
    const saved = server;
    server = one; // openStream and syncToken read the module's server
    let stream;
    try {
      const writes = Array.from({ length: 30 }, (_, i) => call('/one-thread', { Data: JSON.stringify({ n: i + 1 }) }));
      stream = await openStream('one-thread');
      assert.equal(stream.status, 200);
      const answers = await Promise.all(writes);
      for (const a of answers) assert.equal(a.status, 200);
      await stream.until((s) => s.events.some((e) => revisionOf(e) === 30));
    } finally {
      stream?.close();
      server = saved;
    }
  } finally {
    await one.stop();
    one.cleanup();
  }
});

test('one HTTP thread: TaskRouter writes wait for their commit on the writers, reads go on meanwhile', async () => {
  const one = await startServer({ env: { TASSA_THREADS: '1', TASSA_WRITERS: '4' } });
  try {
    const tr = `${one.url}/v1/Workspaces/${one.workspaceSid}`;
    const post = (path, params) => fetch(`${tr}${path}`, {
      method: 'POST',
      headers: { Authorization: one.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params).toString(),
    });
    const q = await (await post('/TaskQueues', { FriendlyName: 'deferred-q', TargetWorkers: '1==1' })).json();
    const wf = await post('/Workflows', { FriendlyName: 'deferred-wf',
      Configuration: JSON.stringify({ task_routing: { default_filter: { queue: q.sid } } }) });
    assert.equal(wf.status, 201);
    const wfSid = (await wf.json()).sid;
    const N = 50;
    const creates = Array.from({ length: N }, (_, i) =>
      post('/Tasks', { WorkflowSid: wfSid, Attributes: JSON.stringify({ n: i }) }));
    // The one HTTP thread answers reads while the creates are in flight.
    const health = await fetch(`${one.url}/healthz`);
    assert.equal(health.status, 200);
    const answers = await Promise.all(creates);
    const sids = new Set();
    for (const a of answers) {
      assert.equal(a.status, 201);
      const t = await a.json();
      assert.match(t.sid, /^WT[0-9a-f]{32}$/);
      sids.add(t.sid);
    }
    assert.equal(sids.size, N);
    const del = await fetch(`${tr}/Tasks/${[...sids][0]}`, { method: 'DELETE', headers: { Authorization: one.basic() } });
    assert.equal(del.status, 204);
    const list = await (await fetch(`${tr}/Tasks?PageSize=100`, { headers: { Authorization: one.basic() } })).json();
    assert.equal(list.tasks.length, N - 1);
  } finally {
    await one.stop();
    one.cleanup();
  }
});

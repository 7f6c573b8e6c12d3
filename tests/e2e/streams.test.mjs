// streams.test.mjs - live document streams (Server-Sent Events) over real sockets: order,
// resume with Last-Event-ID, the service-wide stream, authorisation, limits, slow clients
// that must never hold back a fast one, concurrent writers, and token expiry.
//
// The servers run with Sync access control on (tassa's default): a token identity streams a
// document only after the REST API granted it `read` (rest.grant). acl.test.mjs covers the
// access rules themselves.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import { startServerAnyPort as startServer, tassa, postForm, eventually } from './lib/server.mjs';

const now = () => Math.floor(Date.now() / 1000);

// A Twilio access token with a Sync grant, minted as /task/get-sync-grant does.
function syncToken(server, identity, { service = 'default', secret, iat = now(), exp } = {}) {
  const { apiKey, accountSid, apiSecret } = server.creds;
  return jwt.sign(
    { jti: `${apiKey}-${iat}`, iss: apiKey, sub: accountSid, iat, exp: exp ?? iat + 3600,
      grants: { identity, data_sync: { service_sid: service } } },
    secret ?? apiSecret, { algorithm: 'HS256', header: { cty: 'twilio-fpa;v=1', typ: 'JWT' }, noTimestamp: true });
}

// Opens an SSE stream with http.get and parses it. Resolves once the status is known.
// The returned object collects events ({id, event, data (parsed JSON), raw}) and comments.
function openStream(url, { headers = {}, paused = false } = {}) {
  return new Promise((resolve, reject) => {
    const s = { events: [], comments: [], status: 0, ended: false, body: '', waiters: [] };
    const req = http.get(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      s.status = res.statusCode;
      s.headers = res.headers;
      s.res = res;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        if (s.status !== 200) { s.body += chunk; return; }
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) { s.comments.push(line.slice(1).trim()); continue; }
            const m = /^([a-z]+): ?(.*)$/i.exec(line);
            if (!m) continue;
            if (m[1] === 'data') ev.raw = (ev.raw ? ev.raw + '\n' : '') + m[2];
            else ev[m[1]] = m[2];
          }
          if (ev.raw !== undefined) {
            ev.data = JSON.parse(ev.raw);
            s.events.push(ev);
          }
        }
        for (const w of s.waiters.splice(0)) w();
      });
      res.on('end', () => { s.ended = true; for (const w of s.waiters.splice(0)) w(); });
      res.on('error', () => { s.ended = true; });
      res.on('close', () => { s.ended = true; for (const w of s.waiters.splice(0)) w(); });
      if (paused) res.pause();
      resolve(s);
    });
    req.on('error', reject);
    s.req = req;
    // Waits until pred(s) holds (checked on every chunk), or rejects after timeout ms.
    s.until = (pred, timeout = 5000) => new Promise((res2, rej2) => {
      const timer = setTimeout(() => rej2(new Error(`stream condition not met in ${timeout} ms; ` +
        `${s.events.length} events, last id ${s.events.at(-1)?.id}, ended ${s.ended}`)), timeout);
      const check = () => {
        if (pred(s)) { clearTimeout(timer); res2(s); } else s.waiters.push(check);
      };
      check();
    });
    s.close = () => { req.destroy(); };
  });
}

let server;
let rest;

// The Sync REST API with Basic auth.
function makeRest(srv) {
  const call = async (method, path, params) => {
    const r = await fetch(`${srv.url}/v1/Services/default${path}`, {
      method,
      headers: { Authorization: srv.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: params ? new URLSearchParams(params).toString() : undefined,
    });
    const body = await r.json().catch(() => null);
    return { status: r.status, body };
  };
  return {
    // Lets each identity read document name (Twilio's Document Permission resource).
    grant: async (name, ...identities) => {
      for (const id of identities) {
        const r = await call('POST', `/Documents/${encodeURIComponent(name)}/Permissions/${encodeURIComponent(id)}`,
          { Read: 'true', Write: 'false', Manage: 'false' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
    },
    // The service's AclEnabled.
    acl: async (enabled) => {
      const r = await fetch(`${srv.url}/v1/Services/default`, {
        method: 'POST',
        headers: { Authorization: srv.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ AclEnabled: String(enabled) }).toString(),
      });
      assert.equal(r.status, 200);
      assert.equal((await r.json()).acl_enabled, enabled);
    },
    create: (name, data) => call('POST', '/Documents', { UniqueName: name, Data: JSON.stringify(data) }),
    update: (name, data) => call('POST', `/Documents/${name}`, { Data: JSON.stringify(data) }),
    remove: (name) => call('DELETE', `/Documents/${name}`),
  };
}

const docUrl = (name, token) =>
  `${server.url}/v1/Services/default/Documents/${encodeURIComponent(name)}/Stream` +
  (token ? `?token=${encodeURIComponent(token)}` : '');

before(async () => {
  server = await startServer();
  rest = makeRest(server);
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

describe('document stream', () => {
  test('first event is the current document; updates follow in revision order with id', async () => {
    // A real grant from the seed's function, shown as a Bearer header.
    const caller = tassa(['user-token', 'alice', '--data', server.store], { cwd: server.dataDir }).trim();
    const grant = await postForm(`${server.url}/task/get-sync-grant`, { token: caller, identity: 'alice' });
    assert.equal(grant.status, 200);
    const created = await rest.create('order-doc', { n: 0 });
    assert.equal(created.status, 201);
    for (let i = 1; i <= 3; i++) assert.equal((await rest.update('order-doc', { n: i })).status, 200);
    await rest.grant('order-doc', 'alice');

    const s = await openStream(docUrl('order-doc'), { headers: { Authorization: `Bearer ${grant.body.syncToken}` } });
    assert.equal(s.status, 200);
    assert.match(s.headers['content-type'], /^text\/event-stream/);
    await s.until((x) => x.events.length >= 1);
    const first = s.events[0];
    assert.equal(first.event, 'snapshot');
    assert.equal(first.id, '3');
    assert.deepEqual(first.data.data, { n: 3 });
    assert.equal(first.data.revision, '3');
    assert.equal(first.data.unique_name, 'order-doc');
    assert.equal(first.data.sid, created.body.sid);

    const N = 30;
    for (let i = 4; i < 4 + N; i++) await rest.update('order-doc', { n: i });
    await s.until((x) => x.events.length >= N + 1);
    const updates = s.events.slice(1);
    assert.deepEqual(updates.map((e) => e.id), Array.from({ length: N }, (_, k) => String(4 + k)));
    assert.ok(updates.every((e) => e.event === 'update'));
    assert.deepEqual(updates.map((e) => e.data.data.n), Array.from({ length: N }, (_, k) => 4 + k));
    // The data line is the document as the REST API returns it.
    const fetched = await (await fetch(`${server.url}/v1/Services/default/Documents/order-doc`,
      { headers: { Authorization: server.basic() } })).json();
    assert.deepEqual(updates.at(-1).data, fetched);
    s.close();
  });

  test('Last-Event-ID resumes with exactly the missing revisions', async () => {
    const token = syncToken(server, 'resumer');
    await rest.create('resume-doc', { n: 0 });
    await rest.grant('resume-doc', 'resumer');
    const a = await openStream(docUrl('resume-doc', token));
    await a.until((x) => x.events.length >= 1);
    for (let i = 1; i <= 3; i++) await rest.update('resume-doc', { n: i });
    await a.until((x) => x.events.length >= 4);
    assert.deepEqual(a.events.map((e) => e.id), ['0', '1', '2', '3']);
    a.close();

    for (let i = 4; i <= 9; i++) await rest.update('resume-doc', { n: i }); // missed: 4..9
    const b = await openStream(docUrl('resume-doc', token), { headers: { 'Last-Event-ID': '3' } });
    assert.equal(b.status, 200);
    await b.until((x) => x.events.length >= 6);
    await rest.update('resume-doc', { n: 10 });
    await b.until((x) => x.events.length >= 7);
    await new Promise((r) => setTimeout(r, 150)); // nothing more may come
    assert.deepEqual(b.events.map((e) => e.id), ['4', '5', '6', '7', '8', '9', '10']);
    assert.ok(b.events.every((e) => e.event === 'update'));
    assert.deepEqual(b.events.map((e) => e.data.data.n), [4, 5, 6, 7, 8, 9, 10]);
    b.close();

    // Resuming at the current revision sends nothing until the next change.
    const c = await openStream(docUrl('resume-doc', token) + '&lastEventId=10');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(c.events.length, 0);
    await rest.update('resume-doc', { n: 11 });
    await c.until((x) => x.events.length >= 1);
    assert.deepEqual(c.events.map((e) => [e.id, e.event]), [['11', 'update']]);
    c.close();
  });

  test('a Last-Event-ID older than the ring gets one snapshot of the current document', async () => {
    const token = syncToken(server, 'old-resumer');
    await rest.create('ring-doc', { n: 0 });
    await rest.grant('ring-doc', 'old-resumer');
    const a = await openStream(docUrl('ring-doc', token));
    await a.until((x) => x.events.length >= 1);
    for (let i = 1; i <= 140; i++) await rest.update('ring-doc', { n: i });
    await a.until((x) => x.events.length >= 141);
    a.close();
    const b = await openStream(docUrl('ring-doc', token), { headers: { 'Last-Event-ID': '2' } });
    await b.until((x) => x.events.length >= 1);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(b.events.map((e) => [e.id, e.event, e.data.data.n]), [['140', 'snapshot', 140]]);
    b.close();
  });

  test('deleting the document sends `deleted` and ends the stream', async () => {
    const token = syncToken(server, 'deleter');
    await rest.create('gone-doc', { n: 0 });
    await rest.grant('gone-doc', 'deleter');
    const s = await openStream(docUrl('gone-doc', token));
    await s.until((x) => x.events.length >= 1);
    assert.equal((await rest.remove('gone-doc')).status, 204);
    await s.until((x) => x.ended && x.events.length >= 2);
    assert.equal(s.events[1].event, 'deleted');
    assert.equal(s.events[1].data.unique_name, 'gone-doc');
  });

  test('the service stream carries every change of every document with a sequence id', async () => {
    // With ACL on, a document's creation reaches only those who may read it then, and no one
    // can be granted a document before it exists: this test of the sequence runs with ACL off
    // (acl.test.mjs tests the filtering).
    await rest.acl(false);
    const token = syncToken(server, 'dashboard');
    const s = await openStream(`${server.url}/v1/Services/default/Stream?token=${token}`);
    assert.equal(s.status, 200);
    await s.until((x) => x.events.length >= 1);
    assert.equal(s.events[0].event, 'ready');
    const seq0 = BigInt(s.events[0].id);
    await rest.create('svc-a', { v: 1 });
    await rest.create('svc-b', { v: 1 });
    await rest.update('svc-a', { v: 2 });
    await s.until((x) => x.events.length >= 4);
    const evs = s.events.slice(1);
    assert.deepEqual(evs.map((e) => [e.event, e.data.unique_name, e.data.data.v]),
      [['update', 'svc-a', 1], ['update', 'svc-b', 1], ['update', 'svc-a', 2]]);
    assert.deepEqual(evs.map((e) => BigInt(e.id) - seq0), [1n, 2n, 3n]);
    s.close();
    // Resume after the first change: exactly the two later ones.
    await rest.update('svc-b', { v: 2 });
    const r = await openStream(`${server.url}/v1/Services/default/Stream?token=${token}`,
      { headers: { 'Last-Event-ID': String(seq0 + 1n) } });
    await r.until((x) => x.events.length >= 3);
    await new Promise((res) => setTimeout(res, 150));
    assert.deepEqual(r.events.map((e) => [BigInt(e.id) - seq0, e.data.unique_name, e.data.data.v]),
      [[2n, 'svc-b', 1], [3n, 'svc-a', 2], [4n, 'svc-b', 2]]);
    r.close();
    // An id this process never issued: a reset.
    const z = await openStream(`${server.url}/v1/Services/default/Stream?token=${token}`,
      { headers: { 'Last-Event-ID': '5' } });
    await z.until((x) => x.events.length >= 1);
    assert.equal(z.events[0].event, 'reset');
    z.close();
    await rest.acl(true);
  });
});

describe('authorisation', () => {
  before(async () => { await rest.create('secret-doc', { s: 1 }); });

  const expectError = async (url, status, headers = {}) => {
    const s = await openStream(url, { headers });
    await s.until((x) => x.ended);
    assert.equal(s.status, status, s.body);
    const body = JSON.parse(s.body);
    assert.equal(body.status, status);
    assert.equal(typeof body.code, 'number');
    assert.equal(typeof body.message, 'string');
    return body;
  };

  test('no token: 401', async () => {
    const body = await expectError(docUrl('secret-doc'), 401);
    assert.equal(body.code, 20003);
  });

  test('bad signature: 401', async () => {
    await expectError(docUrl('secret-doc', syncToken(server, 'eve', { secret: 'not-the-secret' })), 401);
    await expectError(docUrl('secret-doc'), 401, { Authorization: 'Bearer not.a.token' });
    // A caller token (signed with JWT_SECRET) is not a sync token.
    const caller = tassa(['user-token', 'alice', '--data', server.store], { cwd: server.dataDir }).trim();
    await expectError(docUrl('secret-doc', caller), 401);
  });

  test('expired token: 401', async () => {
    await expectError(docUrl('secret-doc', syncToken(server, 'late', { iat: now() - 7200, exp: now() - 60 })), 401);
  });

  test('a grant for another service: 403', async () => {
    const other = 'IS' + 'ab'.repeat(16);
    await expectError(docUrl('secret-doc', syncToken(server, 'mallory', { service: other })), 403);
    await expectError(`${server.url}/v1/Services/default/Stream?token=${syncToken(server, 'm', { service: other })}`, 403);
  });

  test('unknown document: 404 with ACL off; with ACL on 403, as for a document it may not read', async () => {
    await expectError(docUrl('no-such-doc', syncToken(server, 'alice')), 403);
    await expectError(docUrl('secret-doc', syncToken(server, 'alice')), 403);
    await rest.acl(false);
    try {
      await expectError(docUrl('no-such-doc', syncToken(server, 'alice')), 404);
    } finally {
      await rest.acl(true);
    }
  });
});

describe('limits', () => {
  let limited;
  before(async () => {
    limited = await startServer({ env: { TASSA_MAX_STREAMS_PER_IDENTITY: '2', TASSA_MAX_STREAMS: '3' } });
    await makeRest(limited).create('limit-doc', {});
    await makeRest(limited).grant('limit-doc', 'ann', 'bob');
  });
  after(async () => { await limited?.stop(); limited?.cleanup(); });

  test('per identity and per server: 429, and a closed stream frees its slot', async () => {
    const url = (id) => `${limited.url}/v1/Services/default/Documents/limit-doc/Stream?token=${syncToken(limited, id)}`;
    const a1 = await openStream(url('ann'));
    const a2 = await openStream(url('ann'));
    assert.equal(a1.status, 200);
    assert.equal(a2.status, 200);
    const a3 = await openStream(url('ann'));
    await a3.until((x) => x.ended);
    assert.equal(a3.status, 429);
    assert.equal(JSON.parse(a3.body).status, 429);
    const b1 = await openStream(url('bob'));
    assert.equal(b1.status, 200);
    const b2 = await openStream(url('bob')); // fourth stream on a server allowing three
    await b2.until((x) => x.ended);
    assert.equal(b2.status, 429);
    a1.close();
    // A suspended stream's closed socket is noticed when the server next writes to it (an
    // update here; else the heartbeat's check).
    let x = 0;
    await eventually(async () => {
      await makeRest(limited).update('limit-doc', { x: ++x });
      const s = await openStream(url('ann'));
      if (s.status !== 200) { await s.until((x) => x.ended); return false; }
      s.close();
      return true;
    }, { timeout: 5000, interval: 100 });
    a2.close();
    b1.close();
  });
});

describe('slow clients', () => {
  test('200 slow clients next to a fast one: the fast one gets every update in time', async () => {
    const name = 'busy-doc';
    const filler = 'x'.repeat(12000); // large documents fill the slow sockets quickly
    await rest.create(name, { n: 0, filler });
    await rest.grant(name, 'fast', ...Array.from({ length: 200 }, (_, i) => `slow-${i}`));
    const slow = [];
    for (let i = 0; i < 200; i++) {
      slow.push(await openStream(docUrl(name, syncToken(server, `slow-${i}`)), { paused: true }));
    }
    assert.ok(slow.every((s) => s.status === 200));
    const fast = await openStream(docUrl(name, syncToken(server, 'fast')));
    await fast.until((x) => x.events.length >= 1);

    const N = 150;
    const lags = [];
    const t0 = Date.now();
    for (let i = 1; i <= N; i++) {
      const sent = Date.now();
      assert.equal((await rest.update(name, { n: i, filler })).status, 200);
      await fast.until((x) => x.events.length >= i + 1, 2000);
      lags.push(Date.now() - sent);
      if (i % 50 === 0) {
        const h = await fetch(`${server.url}/healthz`);
        assert.equal(h.status, 200, 'server stays responsive');
      }
    }
    const total = Date.now() - t0;
    assert.deepEqual(fast.events.slice(1).map((e) => Number(e.id)), Array.from({ length: N }, (_, k) => k + 1));
    lags.sort((a, b) => a - b);
    const p99 = lags[Math.floor(lags.length * 0.99)];
    console.log(`fast client: ${N} updates in ${total} ms, p99 write-to-receive ${p99} ms`);
    assert.ok(p99 < 1000, `p99 ${p99} ms`);

    // The slow ones overflowed their queues and were dropped: once read, each stream ends
    // before the last revision.
    for (const s of slow) s.res.resume();
    await eventually(() => slow.every((s) => s.ended), { timeout: 15000, interval: 100 }).catch((e) => {
      const open = slow.filter((s) => !s.ended);
      console.log(`still open: ${open.length}; their last ids: ${open.slice(0, 10).map((s) => s.events.at(-1)?.id)}`);
      throw e;
    });
    const lastIds = slow.map((s) => Number(s.events.at(-1)?.id ?? -1));
    assert.ok(lastIds.every((id) => id < N), `dropped before the end: ${Math.max(...lastIds)}`);
    assert.equal(fast.ended, false, 'the fast client is still connected');

    // A dropped client resumes with its Last-Event-ID and catches up (here: a snapshot or
    // the missing revisions, ending at N).
    const again = await openStream(docUrl(name, syncToken(server, 'slow-0')),
      { headers: { 'Last-Event-ID': String(lastIds[0]) } });
    await again.until((x) => x.events.length >= 1 && Number(x.events.at(-1).id) === N);
    again.close();
    fast.close();
  });
});

describe('heartbeat', () => {
  let hb;
  before(async () => {
    hb = await startServer({ env: { TASSA_STREAM_HEARTBEAT_MS: '200' } });
  });
  after(async () => {
    await hb?.stop();
    hb?.cleanup();
  });

  test('an idle stream gets `: ping` comments at the configured interval', async () => {
    const r = await fetch(`${hb.url}/v1/Services/default/Documents`, {
      method: 'POST',
      headers: { Authorization: hb.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ UniqueName: 'idle', Data: '{"a":1}' }).toString(),
    });
    assert.equal(r.status, 201);
    await makeRest(hb).grant('idle', 'watcher');
    const token = syncToken(hb, 'watcher');
    const started = Date.now();
    const s = await openStream(`${hb.url}/v1/Services/default/Documents/idle/Stream?token=${token}`);
    assert.equal(s.status, 200);
    await s.until((x) => x.comments.filter((c) => c === 'ping').length >= 3, 5000);
    // three pings at 200 ms take at least ~0.4 s and far less than the 15 s default
    assert.ok(Date.now() - started >= 350, `pings came too fast: ${Date.now() - started} ms`);
    assert.equal(s.events.length, 1, 'only the first snapshot: pings are not events');
    s.close();
  });
});

describe('concurrent writers', () => {
  // A subscriber that never gives up: when the server ends its stream (a slow client that
  // overflowed its queue) it reconnects with the Last-Event-ID of the last event it got, as
  // EventSource does. Every event it ever received is in `events`, in arrival order.
  function follower(name, token) {
    const f = { events: [], reconnects: 0, stream: null, closed: false };
    const connect = async () => {
      const last = f.events.at(-1)?.id;
      const s = await openStream(docUrl(name, token), { headers: last ? { 'Last-Event-ID': last } : {} });
      assert.equal(s.status, 200);
      f.stream = s;
      let seen = 0;
      const pump = () => {
        for (; seen < s.events.length; seen++) f.events.push(s.events[seen]);
        if (s.ended) {
          if (!f.closed) { f.reconnects++; connect(); }
        } else s.waiters.push(pump);
      };
      pump();
    };
    f.ready = connect();
    f.close = () => { f.closed = true; f.stream?.close(); };
    return f;
  }

  test('16 writers on one document: every subscriber gets every revision in order, and a resume replays the ring', async () => {
    const name = 'race-doc';
    assert.equal((await rest.create(name, { w: -1, i: -1 })).status, 201);
    await rest.grant(name, 'race-resume', ...Array.from({ length: 5 }, (_, k) => `race-${k}`));
    const followers = [];
    for (let k = 0; k < 5; k++) followers.push(follower(name, syncToken(server, `race-${k}`)));
    await Promise.all(followers.map((f) => f.ready));
    await eventually(() => followers.every((f) => f.events.length >= 1));

    const WRITERS = 16, EACH = 200, TOTAL = WRITERS * EACH;
    await Promise.all(Array.from({ length: WRITERS }, async (_, w) => {
      for (let i = 0; i < EACH; i++) {
        const r = await rest.update(name, { w, i });
        assert.equal(r.status, 200);
      }
    }));
    for (const f of followers) {
      await eventually(() => Number(f.events.at(-1)?.id) === TOTAL, { timeout: 20000, interval: 50 });
    }
    for (const f of followers) {
      f.close();
      // Consecutive revisions; a jump is allowed only as an explicit snapshot.
      const gaps = [];
      for (let i = 1; i < f.events.length; i++) {
        const prev = Number(f.events[i - 1].id), cur = Number(f.events[i].id);
        if (cur !== prev + 1 && f.events[i].event !== 'snapshot') gaps.push(`${prev}->${cur}`);
      }
      assert.deepEqual(gaps, [], `silent gaps (after ${f.reconnects} reconnects)`);
      const ids = f.events.map((e) => Number(e.id));
      assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), 'revisions only go forward');
      for (const e of f.events.filter((x) => x.event === 'update')) assert.equal(e.data.revision, e.id);
    }

    // The ring keeps the last STREAMS_RING_EVENTS (128) revisions: a resume from 120 back
    // replays exactly those 120 revisions, each as the document it was.
    const back = 120;
    const r = await openStream(docUrl(name, syncToken(server, 'race-resume')),
      { headers: { 'Last-Event-ID': String(TOTAL - back) } });
    await r.until((x) => x.events.length >= back, 10000);
    await new Promise((res) => setTimeout(res, 150));
    assert.deepEqual(r.events.map((e) => Number(e.id)), Array.from({ length: back }, (_, k) => TOTAL - back + 1 + k));
    assert.ok(r.events.every((e) => e.event === 'update'));
    r.close();
  });
});

describe('token expiry', () => {
  test('a stream ends at its token\'s expiry with `token-expired`; a new token resumes it', async () => {
    const name = 'expiring-doc';
    await rest.create(name, { n: 0 });
    await rest.grant(name, 'short');
    const iat = now();
    const s = await openStream(docUrl(name, syncToken(server, 'short', { iat, exp: iat + 2 })));
    assert.equal(s.status, 200);
    await s.until((x) => x.events.length >= 1);
    assert.equal((await rest.update(name, { n: 1 })).status, 200);
    await s.until((x) => x.events.length >= 2);
    // The token runs out within two seconds: the server ends the stream with one event that
    // carries no id (the client's Last-Event-ID stays 1) and tells it to get a new token.
    await s.until((x) => x.ended, 5000);
    const expiredAt = Date.now();
    assert.ok(expiredAt >= (iat + 2) * 1000 - 50, `ended ${(iat + 2) * 1000 - expiredAt} ms before exp`);
    assert.deepEqual(s.events.map((e) => e.event), ['snapshot', 'update', 'token-expired']);
    const last = s.events.at(-1);
    assert.equal(last.id, undefined);
    assert.equal(last.data.code, 20104);
    assert.match(last.data.message, /new/);
    // Nothing after the expiry reaches the old connection; a fresh token resumes from id 1.
    assert.equal((await rest.update(name, { n: 2 })).status, 200);
    assert.equal((await rest.update(name, { n: 3 })).status, 200);
    const again = await openStream(docUrl(name, syncToken(server, 'short')), { headers: { 'Last-Event-ID': '1' } });
    assert.equal(again.status, 200);
    await again.until((x) => x.events.length >= 2);
    assert.deepEqual(again.events.map((e) => [e.id, e.event, e.data.data.n]), [['2', 'update', 2], ['3', 'update', 3]]);
    again.close();
    // The expired token itself is refused now (time() may lag the clock by a tick).
    await new Promise((r) => setTimeout(r, Math.max(0, (iat + 2) * 1000 + 50 - Date.now())));
    const old = await openStream(docUrl(name, syncToken(server, 'short', { iat, exp: iat + 2 })));
    await old.until((x) => x.ended);
    assert.equal(old.status, 401);
  });

  test('the service stream ends at expiry too', async () => {
    const iat = now();
    const s = await openStream(`${server.url}/v1/Services/default/Stream?token=${syncToken(server, 'svc-short', { iat, exp: iat + 1 })}`);
    assert.equal(s.status, 200);
    await s.until((x) => x.ended, 5000);
    assert.equal(s.events.at(-1).event, 'token-expired');
  });
});

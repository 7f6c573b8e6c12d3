// sdk_sync.test.mjs - the official twilio-sync SDK (4.x, over twilsock) against tassa's
// /v3/wsconnect, and raw-socket tests of the WebSocket layer's limits.
//
// The SDK is used unchanged: globalThis.WebSocket is the `ws` package (Node has no WebSocket
// the SDK picks up), twilsock.uri and cdsUri point at the server. Spec:
// docs/protocols/sdk-protocols.md sections 1, 2 and 4.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { startServerAnyPort as startServer, tassa, postForm, twilioClient, eventually } from './lib/server.mjs';

const require = createRequire(import.meta.url);
globalThis.WebSocket = WebSocket;
const { SyncClient } = require('twilio-sync');

// A sync token for identity from /task/get-sync-grant, as a page gets it.
async function syncToken(server, identity) {
  const caller = tassa(['user-token', identity, '--data', server.store], { cwd: server.dataDir }).trim();
  const res = await postForm(`${server.url}/task/get-sync-grant`, { token: caller, identity });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.syncToken;
}

// A Twilio access token minted as twilio-node's AccessToken does, with any secret and ttl.
async function accessToken(server, identity, { secret = server.creds.apiSecret, ttl = 3600 } = {}) {
  const twilio = (await import('twilio')).default;
  const { AccessToken } = twilio.jwt;
  const t = new AccessToken(server.creds.accountSid, server.creds.apiKey, secret, { identity, ttl });
  t.addGrant(new AccessToken.SyncGrant({ serviceSid: 'default' }));
  return t.toJwt();
}

function newClient(server, token) {
  return new SyncClient(token, {
    twilsock: { uri: `ws://127.0.0.1:${server.port}/v3/wsconnect` },
    cdsUri: `http://127.0.0.1:${server.port}`,
    logLevel: 'silent',
  });
}

function connected(client) {
  return new Promise((resolve, reject) => {
    if (client.connectionState === 'connected') return resolve();
    client.on('connectionStateChanged', (s) => {
      if (s === 'connected') resolve();
      if (s === 'denied' || s === 'error') reject(new Error(`state ${s}`));
    });
  });
}

// Resolves with the next `event` of emitter that pred accepts.
function next(emitter, event, pred = () => true, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const on = (arg) => {
      if (!pred(arg)) return;
      clearTimeout(timer);
      emitter.removeListener(event, on);
      resolve(arg);
    };
    emitter.on(event, on);
  });
}

const clients = [];
function track(c) { clients.push(c); return c; }

let server;
let rest; // twilio-node against the server
let svc;

before(async () => {
  server = await startServer({ env: { TASSA_SYNC_ACL: 'false', TASSA_WS_MAX_PER_IDENTITY: '3' } });
  rest = await twilioClient(server);
  svc = rest.sync.v1.services('default');
});

after(async () => {
  for (const c of clients) { try { await c.shutdown(); } catch { /* gone */ } }
  await server?.stop();
  server?.cleanup();
});

describe('twilio-sync SyncClient', () => {
  test('connects with the token from get-sync-grant', async () => {
    const client = track(newClient(server, await syncToken(server, 'alice')));
    await connected(client);
    assert.equal(client.connectionState, 'connected');
  });

  test('a forged token is refused: connectionError 401/20101 and state denied', async () => {
    const forged = await accessToken(server, 'alice', { secret: 'not-the-secret' });
    const client = track(newClient(server, forged));
    const [err] = await Promise.all([
      next(client, 'connectionError'),
      next(client, 'connectionStateChanged', (s) => s === 'denied'),
    ]);
    assert.equal(err.terminal, true);
    assert.equal(err.httpStatusCode, 401);
    assert.equal(err.errorCode, 20101);
    assert.equal(client.connectionState, 'denied');
  });

  test('an expired token is refused with tokenExpired and errorCode 20104', async () => {
    const expired = await accessToken(server, 'alice', { ttl: -10 });
    const client = track(newClient(server, expired));
    const [err] = await Promise.all([next(client, 'connectionError'), next(client, 'tokenExpired', () => true)]);
    assert.equal(err.errorCode, 20104);
  });

  test('opens, sets and mutates a document that the REST API reads back', async () => {
    const client = track(newClient(server, await syncToken(server, 'alice')));
    await connected(client);
    const doc = await client.document('sdk-doc-1');
    assert.match(doc.sid, /^ET[0-9a-f]{32}$/);
    assert.deepEqual(doc.data, {});
    await doc.set({ v: 1, who: 'sdk' });
    let back = await svc.documents('sdk-doc-1').fetch();
    assert.deepEqual(back.data, { v: 1, who: 'sdk' });
    await doc.update({ w: 2 });
    await doc.mutate((d) => ({ ...d, v: d.v + 10 }));
    back = await svc.documents(doc.sid).fetch();
    assert.deepEqual(back.data, { v: 11, who: 'sdk', w: 2 });
    assert.equal(String(back.revision), String(doc.revision));
    // open_existing of a missing document rejects with 404 / 54100
    await assert.rejects(client.document({ id: 'no-such-doc', mode: 'open_existing' }),
      (e) => e.status === 404 && e.code === 54100);
  });

  test('a REST update arrives as `updated` (isLocal false); a REST delete as `removed`', async () => {
    const client = track(newClient(server, await syncToken(server, 'bob')));
    await connected(client);
    const doc = await client.document('sdk-doc-2');
    // let the subscription be established before the write (no timing: wait for the server
    // to confirm through a replayed read; a REST write made now is delivered either way)
    const updated = next(doc, 'updated', (e) => !e.isLocal);
    await svc.documents('sdk-doc-2').update({ data: { from: 'rest', n: 7 } });
    const ev = await updated;
    assert.deepEqual(ev.data, { from: 'rest', n: 7 });
    assert.deepEqual(doc.data, { from: 'rest', n: 7 });
    const removed = next(doc, 'removed', (e) => !e.isLocal);
    await svc.documents('sdk-doc-2').remove();
    await removed;
  });

  test('a second SDK client sees the first one\'s writes and removal', async () => {
    const a = track(newClient(server, await syncToken(server, 'carol')));
    const b = track(newClient(server, await syncToken(server, 'dave')));
    await Promise.all([connected(a), connected(b)]);
    const da = await a.document('sdk-doc-3');
    const db = await b.document('sdk-doc-3');
    const seen = next(da, 'updated', (e) => !e.isLocal && e.data.by === 'b');
    await db.set({ by: 'b' });
    assert.deepEqual((await seen).data, { by: 'b' });
    const gone = next(da, 'removed', (e) => !e.isLocal);
    await db.removeDocument();
    await gone;
    await assert.rejects(svc.documents('sdk-doc-3').fetch(), (e) => e.status === 404);
  });

  test('mutate after a concurrent REST write: 412, re-read, retried on the new revision', async () => {
    const client = track(newClient(server, await syncToken(server, 'erin')));
    await connected(client);
    const doc = await client.document('sdk-doc-4');
    await doc.set({ count: 1 });
    // a REST write the client may not have seen yet when it mutates
    await svc.documents('sdk-doc-4').update({ data: { count: 100 } });
    let calls = 0;
    await doc.mutate((d) => { calls++; return { count: (d.count || 0) + 1 }; });
    const back = await svc.documents('sdk-doc-4').fetch();
    assert.deepEqual(back.data, { count: 101 });
    assert.ok(calls >= 1);
  });

  test('a stale If-Match is answered 412 over the wire (raw twilsock)', async () => {
    const d = await svc.documents.create({ uniqueName: 'sdk-doc-5', data: { a: 1 } });
    const ts = await rawSession(await syncToken(server, 'frank'));
    const stale = await ts.request('POST', `/v3/Documents/${d.sid}`, { data: { a: 2 } }, { 'If-Match': '999' });
    assert.equal(stale.header.status.code, 200, 'the twilsock level is 200');
    assert.equal(stale.header.http_status.code, 412);
    assert.equal(stale.body.code, 54103);
    const ok = await ts.request('POST', `/v3/Documents/${d.sid}`, { data: { a: 2 } }, { 'If-Match': String(d.revision) });
    assert.equal(ok.header.http_status.code, 200);
    const ttl = await ts.request('POST', `/v3/Documents/${d.sid}`, { ttl: 3600 });
    assert.equal(ttl.header.http_status.code, 200);
    assert.deepEqual(ttl.body.data, { a: 2 }, 'setTtl keeps the data');
    assert.ok(ttl.body.date_expires);
    const list = await ts.request('GET', '/v3/Lists/x', null);
    assert.equal(list.header.http_status.code, 501);
    const del = await ts.request('DELETE', `/v3/Documents/${d.sid}`, 'data_sync');
    assert.equal(del.header.http_status.code, 204);
    ts.close();
  });

  test('a burst of writes across the service: the client ends with the last state, connected', async () => {
    const client = track(newClient(server, await syncToken(server, 'burst')));
    await connected(client);
    const doc = await client.document('burst-doc');
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      svc.documents.create({ uniqueName: `burst-${i}`, data: { i } })));
    const writes = [];
    for (let round = 0; round < 10; round++) {
      for (const o of others) writes.push(svc.documents(o.sid).update({ data: { round } }));
      writes.push(svc.documents('burst-doc').update({ data: { round } }));
    }
    await Promise.all(writes);
    const last = await svc.documents('burst-doc').fetch(); // concurrent writes: any may be last
    await eventually(() => String(doc.revision) === String(last.revision), { timeout: 15000 });
    assert.deepEqual(doc.data, last.data);
    assert.equal(client.connectionState, 'connected');
  });

  test('subscriptions (raw): 202 object body first, then the replay, then the same numeric correlation_id; cancel stops them', async () => {
    const d = await svc.documents.create({ uniqueName: 'sub-doc', data: { n: 0 } });
    await svc.documents(d.sid).update({ data: { n: 1 } });
    const ts = await rawSession(await syncToken(server, 'subber'));
    const corr = 1796112655496;
    const est = await ts.request('POST', '/v4/Subscriptions', {
      event_protocol_version: 4, action: 'establish', correlation_id: corr, retried_requests: 0, ttl_in_s: -1,
      requests: [{ object_sid: d.sid, object_type: 'document', last_event_id: 0 }],
    });
    assert.equal(est.header.http_status.code, 202);
    assert.equal(typeof est.body, 'object');
    assert.ok(est.body.estimated_delivery_in_ms > 0);
    assert.ok(est.body.max_batch_size > 0);
    await eventually(() => ts.notes.length >= 2);
    const [replay, confirm] = ts.notes.splice(0, 2);
    assert.ok(replay.binary && confirm.binary, 'server frames are binary');
    assert.equal(replay.header.method, 'notification');
    assert.equal(replay.body.event_type, 'document_updated');
    assert.equal(replay.body.event.id, 1);
    assert.equal(replay.body.event.document_sid, d.sid);
    assert.deepEqual(replay.body.event.document_data, { n: 1 });
    assert.equal(confirm.header.message_type, 'twilio.sync.event');
    assert.equal(confirm.body.event_type, 'subscription_established');
    assert.equal(confirm.body.correlation_id, corr, 'the same JSON number');
    assert.equal(confirm.body.event.last_event_id, 1);
    // a REST write arrives as document_updated with the next id
    await svc.documents(d.sid).update({ data: { n: 2 } });
    await eventually(() => ts.notes.length >= 1);
    const upd = ts.notes.shift();
    assert.equal(upd.body.event_type, 'document_updated');
    assert.equal(upd.body.event.id, 2);
    assert.equal(upd.body.event.document_revision, '2');
    // a subscription to a missing document fails with 404
    await ts.request('POST', '/v4/Subscriptions', {
      action: 'establish', correlation_id: corr + 1,
      requests: [{ object_sid: 'ET' + '0'.repeat(32), object_type: 'document', last_event_id: 0 }],
    });
    await eventually(() => ts.notes.some((n) => n.body?.event_type === 'subscription_failed'));
    const failed = ts.notes.find((n) => n.body?.event_type === 'subscription_failed');
    assert.equal(failed.body.event.error.status, 404);
    ts.notes.length = 0;
    // cancelled: later writes are not sent (checked after a request whose reply follows them)
    const cancel = await ts.request('POST', '/v4/Subscriptions', {
      action: 'cancel', correlation_id: corr + 2, requests: [{ object_sid: d.sid, object_type: 'document' }],
    });
    assert.equal(cancel.header.http_status.code, 202);
    await svc.documents(d.sid).update({ data: { n: 3 } });
    const other = await svc.documents.create({ uniqueName: 'sub-doc-marker', data: {} });
    await ts.request('POST', '/v4/Subscriptions', {
      action: 'establish', correlation_id: corr + 3,
      requests: [{ object_sid: other.sid, object_type: 'document', last_event_id: 0 }],
    });
    await eventually(() => ts.notes.some((n) => n.body?.correlation_id === corr + 3));
    assert.ok(!ts.notes.some((n) => n.body?.event?.document_sid === d.sid), 'nothing for the cancelled document');
    ts.close();
  });

  test('bad upstream requests get a 4xx in http_status and change nothing', async () => {
    const d = await svc.documents.create({ uniqueName: 'bad-in', data: { keep: true } });
    const ts = await rawSession(await syncToken(server, 'mallory'));
    const send = (req, payload = '') => new Promise((resolve) => {
      const id = 'TM' + crypto.randomBytes(16).toString('hex');
      ts.sock.on('message', function on(buf) {
        const f = parseFrame(buf);
        if (f.header.id === id) { ts.sock.off('message', on); resolve(f); }
      });
      ts.sock.send(frame({ id, method: 'message', http_request: req }, payload));
    });
    const url = `/v3/Documents/${d.sid}`;
    const cases = [
      [{ method: 'POST', path: url, headers: {} }, 'not json', 400],
      [{ method: 'POST', path: url, headers: {} }, '[1,2]', 400],
      [{ method: 'POST', path: url, headers: {} }, '{"data":"text"}', 400],
      [{ method: 'POST', path: url, headers: {} }, '{"data":{},"ttl":-5}', 400],
      [{ method: 'POST', path: url, headers: {} }, JSON.stringify({ data: { big: 'x'.repeat(20000) } }), 413],
      [{ method: 'POST', path: '/v3/Documents', headers: {} }, '{"unique_name":5}', 400],
      [{ method: 'POST', path: '/v3/Documents', headers: {} }, '{"unique_name":"bad-in"}', 409],
      [{ method: 'GET', path: '/v3/Documents/%00x', headers: {} }, '', 404],
      [{ method: 'GET', path: '/v3/Documents/%zz', headers: {} }, '', 404],
      [{ method: 'PATCH', path: url, headers: {} }, '', 405],
      [{ method: 'GET', path: '/v9/Nothing', headers: {} }, '', 404],
      [{ method: 'POST', path: '/v4/Subscriptions', headers: {} }, '{"action":"explode"}', 400],
      [{ path: url }, '', 400],
      ['not an object', '', 400],
    ];
    for (const [req, payload, status] of cases) {
      const r = await send(req, payload);
      assert.equal(r.header.status.code, 200, JSON.stringify(req));
      assert.equal(r.header.http_status.code, status, `${JSON.stringify(req)} ${payload.slice(0, 40)}`);
      assert.equal(typeof r.body.message, 'string');
    }
    const back = await svc.documents(d.sid).fetch();
    assert.deepEqual(back.data, { keep: true });
    assert.equal(String(back.revision), String(d.revision));
    ts.close();
  });

  test('updateToken is accepted for the same identity', async () => {
    const client = track(newClient(server, await syncToken(server, 'gina')));
    await connected(client);
    await client.updateToken(await syncToken(server, 'gina'));
    const doc = await client.document('sdk-doc-6');
    await doc.set({ after: 'update' });
    assert.deepEqual((await svc.documents('sdk-doc-6').fetch()).data, { after: 'update' });
  });

  test('token expiry: tokenAboutToExpire, then close 410 gives tokenExpired', async () => {
    const client = track(newClient(server, await accessToken(server, 'hank', { ttl: 4 })));
    const about = next(client, 'tokenAboutToExpire', () => true, 15000);
    const expired = next(client, 'tokenExpired', () => true, 15000);
    await connected(client);
    await about;
    await expired;
  });

  test('reconnects with its continuation token after the server drops the socket', async () => {
    const srv = await startServer({ env: { TASSA_SYNC_ACL: 'false' } });
    try {
      const r = await twilioClient(srv);
      const client = newClient(srv, await syncToken(srv, 'ivy'));
      await connected(client);
      const doc = await client.document('sdk-doc-7');
      await doc.set({ n: 1 });
      // restart the server on the same data file and port: the socket drops
      const srv2 = await srv.restart({ port: srv.port });
      try {
        const r2 = await twilioClient(srv2);
        await r2.sync.v1.services('default').documents('sdk-doc-7').update({ data: { n: 2 } });
        await eventually(() => doc.data.n === 2, { timeout: 20000 });
        await client.shutdown();
      } finally {
        await srv2.stop();
      }
      void r;
    } finally {
      srv.cleanup();
    }
  });
});

// ---- raw sockets ----

// A raw twilsock session over `ws`: init, then request(method, path, body, headers).
async function rawSession(token, url = `ws://127.0.0.1:${server.port}/v3/wsconnect`, ct = null) {
  const sock = new WebSocket(url);
  sock.binaryType = 'nodebuffer';
  const pending = new Map();
  const notes = [];
  sock.on('message', (buf, isBinary) => {
    const f = parseFrame(buf);
    f.binary = isBinary;
    if (f.header.method === 'reply' && pending.has(f.header.id)) {
      pending.get(f.header.id)(f);
      pending.delete(f.header.id);
    } else notes.push(f);
  });
  await new Promise((res, rej) => { sock.once('open', res); sock.once('error', rej); });
  const send = (header, payload = '') => new Promise((resolve) => {
    header.id = header.id || 'TM' + crypto.randomBytes(16).toString('hex');
    pending.set(header.id, resolve);
    sock.send(frame(header, payload));
  });
  const init = await send({ method: 'init', token, continuation_token: ct });
  return {
    sock, init, notes,
    request: (method, path, body, headers = {}) => send({
      method: 'message', active_grant: 'data_sync', payload_type: 'application/json',
      http_request: { host: `127.0.0.1:${server.port}`, path, method, params: {}, headers },
    }, body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body)),
    close: () => sock.close(),
  };
}

function frame(header, payload = '') {
  const p = Buffer.from(payload);
  const h = Buffer.from(JSON.stringify({ ...header, payload_size: p.length }));
  return Buffer.concat([Buffer.from(`TWILSOCK V3.0 ${h.length}\r\n`), h, Buffer.from('\r\n'), p]);
}

function parseFrame(buf) {
  const cr = buf.indexOf('\r');
  const [magic, ver, len] = buf.subarray(0, cr).toString().split(' ');
  assert.equal(magic, 'TWILSOCK');
  assert.equal(ver, 'V3.0');
  const start = cr + 2;
  const header = JSON.parse(buf.subarray(start, start + Number(len)).toString());
  const pstart = start + Number(len) + 2;
  const payload = buf.subarray(pstart, pstart + header.payload_size).toString();
  return { header, body: payload ? JSON.parse(payload) : null };
}

// Sends a raw HTTP request and returns the whole answer as text (until the server closes or
// ms pass).
function rawHttp(port, text, ms = 3000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    const done = () => { s.destroy(); resolve(out); };
    const timer = setTimeout(done, ms);
    s.on('data', (d) => {
      out += d;
      if (/\r\n\r\n/.test(out) && !/^HTTP\/1\.1 101/.test(out)) {
        const m = /content-length: *(\d+)/i.exec(out);
        const body = out.split('\r\n\r\n')[1] || '';
        if (m && Buffer.byteLength(body) >= Number(m[1])) { clearTimeout(timer); done(); }
      }
    });
    s.on('close', () => { clearTimeout(timer); resolve(out); });
    s.on('error', () => {});
    s.write(text);
  });
}

describe('WebSocket layer limits (raw sockets)', () => {
  const key = crypto.randomBytes(16).toString('base64');
  const upgrade = (headers) => `GET /v3/wsconnect HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`;

  test('bad upgrade headers get a 400 (426 for a wrong version), and the server lives', async () => {
    const cases = [
      ['', 400],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n`, 400],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n`, 400],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${'!'.repeat(22)}==\r\n`, 400],
      [`Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`, 400],
      [`Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`, 400],
      [`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: ${key}\r\n`, 426],
    ];
    for (const [h, status] of cases) {
      const out = await rawHttp(server.port, upgrade(h));
      assert.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${JSON.stringify(h)} -> ${out.slice(0, 80)}`);
      const body = JSON.parse(out.split('\r\n\r\n')[1]);
      assert.equal(body.status, status === 426 ? 426 : 400);
      assert.equal(typeof body.error, 'string');
      if (status === 426) assert.match(out, /Sec-WebSocket-Version: 13/i);
    }
    const post = await rawHttp(server.port, `POST /v3/wsconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`);
    assert.match(post, /^HTTP\/1\.1 405 /);
    // a good one still works, and the accept value is RFC 6455's
    const good = await rawHttp(server.port, upgrade(`Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n`), 500);
    assert.match(good, /^HTTP\/1\.1 101 /);
    const accept = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    assert.match(good, new RegExp(`Sec-WebSocket-Accept: ${accept.replace(/[+/]/g, '\\$&')}`, 'i'));
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
  });

  test('an oversize message closes the connection with 1009', async () => {
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/v3/wsconnect`);
    await new Promise((res, rej) => { sock.once('open', res); sock.once('error', rej); });
    const closed = new Promise((res) => sock.once('close', (code) => res(code)));
    sock.send(Buffer.alloc(200 * 1024, 0x41)); // TASSA_WS_MAX_MESSAGE is 128 KiB by default
    assert.equal(await closed, 1009);
  });

  test('a frame that is not twilsock closes with 1002; a request before init is refused', async () => {
    const sock = new WebSocket(`ws://127.0.0.1:${server.port}/v3/wsconnect`);
    await new Promise((res, rej) => { sock.once('open', res); sock.once('error', rej); });
    const closed = new Promise((res) => sock.once('close', (code) => res(code)));
    sock.send(Buffer.from('TWILSOCK V3.0 999999999\r\n{}'));
    assert.equal(await closed, 1002);
    const s2 = new WebSocket(`ws://127.0.0.1:${server.port}/v3/wsconnect`);
    s2.binaryType = 'nodebuffer';
    await new Promise((res, rej) => { s2.once('open', res); s2.once('error', rej); });
    const reply = new Promise((res) => s2.once('message', (b) => res(parseFrame(b))));
    const closed2 = new Promise((res) => s2.once('close', (code) => res(code)));
    s2.send(frame({ id: 'TM1', method: 'message', http_request: { method: 'GET', path: '/v3/Documents/x' } }));
    assert.equal((await reply).header.status.code, 401);
    assert.equal(await closed2, 1008);
  });

  test('per-identity limit: the connection past TASSA_WS_MAX_PER_IDENTITY gets 429 at init', async () => {
    const token = await syncToken(server, 'limited');
    const open = [];
    for (let i = 0; i < 3; i++) {
      const s = await rawSession(token);
      assert.equal(s.init.header.status.code, 200);
      open.push(s);
    }
    const extra = await rawSession(token);
    assert.equal(extra.init.header.status.code, 429);
    assert.equal(extra.init.header.status.status, 'TOO_MANY_REQUESTS');
    assert.equal(extra.init.body.backoff_policy.reconnect_min_ms, 5000, 'the SDK backs off this long');
    // another identity is not affected
    // (with a continuation token this server never gave: accepted, as a stale one must be)
    const other = await rawSession(await syncToken(server, 'unlimited'), undefined, 'CTstale0123');
    assert.equal(other.init.header.status.code, 200);
    assert.match(other.init.header.continuation_token, /^CT[0-9a-f]{32}$/);
    // one closes: a new one fits again
    const gone = new Promise((res) => open[0].sock.once('close', res));
    open[0].close();
    await gone;
    await eventually(async () => {
      const again = await rawSession(token);
      again.close();
      return again.init.header.status.code === 200;
    });
    for (const s of [...open.slice(1), extra, other]) s.close();
  });

  test('a slow reader is dropped once its send queue is full', async () => {
    const srv = await startServer({ env: { TASSA_SYNC_ACL: 'false', TASSA_WS_QUEUE_BYTES: '65536', TASSA_LOG_LEVEL: 'debug' } });
    try {
      const r = await twilioClient(srv);
      const big = { blob: 'x'.repeat(15000) };
      const d = await r.sync.v1.services('default').documents.create({ uniqueName: 'big', data: big });
      const token = await syncToken(srv, 'slow');
      // raw TCP: upgrade, init, then many GETs of the big document, never reading
      const s = net.connect(srv.port, '127.0.0.1');
      s.setNoDelay(true);
      await new Promise((res) => s.once('connect', res));
      const k = crypto.randomBytes(16).toString('base64');
      s.write(`GET /v3/wsconnect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${k}\r\n\r\n`);
      s.pause(); // stop reading: the kernel buffers fill, then the server's queue
      const mask = (payload) => {
        const m = crypto.randomBytes(4);
        const len = payload.length;
        const head = len < 126 ? Buffer.from([0x82, 0x80 | len])
          : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]);
        const out = Buffer.alloc(len);
        for (let i = 0; i < len; i++) out[i] = payload[i] ^ m[i % 4];
        return Buffer.concat([head, m, out]);
      };
      s.write(mask(frame({ id: 'TMinit', method: 'init', token })));
      let closed = false;
      s.on('close', () => { closed = true; });
      s.on('error', () => { closed = true; });
      for (let i = 0; i < 1000 && !closed; i++) {
        const req = frame({ id: `TM${i}`, method: 'message', http_request: { host: 'x', path: `/v3/Documents/${d.sid}`, method: 'GET', params: {}, headers: {} } });
        if (!s.write(mask(req))) await new Promise((res) => setTimeout(res, 5));
      }
      // the server dropped it: reading now drains what the kernel held, then the end
      s.resume();
      await eventually(() => closed, { timeout: 15000 });
      // (the log line comes through a pipe: it may trail the socket's end)
      await eventually(() => /event=ws_dropped reason=slow_client/.test(srv.log), { timeout: 5000 })
        .catch((e) => { throw new Error(`${e.message}\n${srv.log.split('\n').filter((l) => /ws_|twilsock/.test(l)).join('\n')}`); });
      // the server still serves others
      const ok = await rawSessionAt(srv, await syncToken(srv, 'fast'));
      assert.equal(ok.init.header.status.code, 200);
      ok.close();
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

describe('ACL and Document Permissions over twilsock', () => {
  test('with ACL on: no read permission is 403, a read grant opens, writes need write', async () => {
    const srv = await startServer({ env: { TASSA_SYNC_ACL: 'true' } });
    try {
      const s = (await twilioClient(srv)).sync.v1.services('default');
      const d = await s.documents.create({ uniqueName: 'acl-doc', data: { secret: 1 } });
      const client = newClient(srv, await syncToken(srv, 'alice'));
      await connected(client);
      await assert.rejects(client.document({ id: 'acl-doc', mode: 'open_existing' }), (e) => e.status === 403);
      // creating with a token is refused while ACL is on
      await assert.rejects(client.document('acl-new'), (e) => e.status === 403);
      await assert.rejects(s.documents('acl-new').fetch(), (e) => e.status === 404);
      await s.documents(d.sid).documentPermissions('alice').update({ read: true, write: false, manage: false });
      const doc = await client.document({ id: 'acl-doc', mode: 'open_existing' });
      assert.deepEqual(doc.data, { secret: 1 });
      await assert.rejects(doc.set({ secret: 2 }), (e) => e.status === 403);
      await assert.rejects(doc.removeDocument(), (e) => e.status === 403);
      assert.deepEqual((await s.documents(d.sid).fetch()).data, { secret: 1 }, 'nothing changed');
      await s.documents(d.sid).documentPermissions('alice').update({ read: true, write: true, manage: false });
      await doc.set({ secret: 3 });
      assert.deepEqual((await s.documents(d.sid).fetch()).data, { secret: 3 });
      await client.shutdown();
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

describe('server-wide limit and draining', () => {
  test('past TASSA_WS_MAX_CONNECTIONS an upgrade gets 503; SIGTERM closes sockets with 1001', async () => {
    const srv = await startServer({ env: { TASSA_SYNC_ACL: 'false', TASSA_WS_MAX_CONNECTIONS: '2' } });
    let stopped = false;
    try {
      const token = await syncToken(srv, 'drain');
      const a = await rawSessionAt(srv, token);
      const b = await rawSessionAt(srv, token);
      assert.equal(a.init.header.status.code, 200);
      assert.equal(b.init.header.status.code, 200);
      const third = new WebSocket(`ws://127.0.0.1:${srv.port}/v3/wsconnect`);
      const status = await new Promise((resolve) => {
        third.on('unexpected-response', (req, res) => resolve(res.statusCode));
        third.on('open', () => resolve(101));
        third.on('error', () => {});
      });
      assert.equal(status, 503);
      const codes = Promise.all([a, b].map((x) => new Promise((res) => x.sock.once('close', (c) => res(c)))));
      await srv.stop();
      stopped = true;
      assert.deepEqual(await codes, [1001, 1001]);
    } finally {
      if (!stopped) await srv.stop();
      srv.cleanup();
    }
  });
});

describe('ping and pong', () => {
  test('pings go out every TASSA_WS_PING_MS; a client that answers stays, one that does not is closed', async () => {
    // (a short header deadline too: it must not apply to upgraded connections)
    const srv = await startServer({ env: { TASSA_SYNC_ACL: 'false', TASSA_WS_PING_MS: '200', TASSA_HEADER_TIMEOUT_MS: '300' } });
    try {
      // `ws` answers pings by itself
      const good = new WebSocket(`ws://127.0.0.1:${srv.port}/v3/wsconnect`);
      let pings = 0;
      good.on('ping', () => { pings++; });
      await new Promise((res, rej) => { good.once('open', res); good.once('error', rej); });
      // a raw client that never answers
      const raw = net.connect(srv.port, '127.0.0.1');
      await new Promise((res) => raw.once('connect', res));
      const k = crypto.randomBytes(16).toString('base64');
      raw.write(`GET /v3/wsconnect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${k}\r\n\r\n`);
      let bytes = Buffer.alloc(0);
      raw.on('data', (d) => { bytes = Buffer.concat([bytes, d]); });
      const rawClosed = new Promise((res) => raw.once('close', res));
      raw.on('error', () => {});
      await rawClosed;
      const body = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
      assert.equal(body[0], 0x89, 'a ping frame came first');
      await eventually(() => /event=ws_dropped reason=no_pong/.test(srv.log));
      await eventually(() => pings >= 3, { timeout: 10000 });
      assert.equal(good.readyState, WebSocket.OPEN, 'the answering client is still open');
      good.close();
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });
});

async function rawSessionAt(srv, token) {
  const saved = server;
  server = srv;
  try { return await rawSession(token); } finally { server = saved; }
}

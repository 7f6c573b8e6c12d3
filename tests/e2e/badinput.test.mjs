// badinput.test.mjs - malformed, oversized and unexpected requests get clean 4xx answers, and
// the server keeps serving with its data intact.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer as startServerStrict, startServerAnyPort as startServer, decode, postForm, tassa } from './lib/server.mjs';

let server; // signature verification off, so router input reaches the parser and handlers
let docsUrl;
let keep; // a document written first and checked last

before(async () => {
  server = await startServer({ env: { TASSA_VERIFY_SIGNATURE: 'false' } });
  docsUrl = `${server.url}/v1/Services/default/Documents`;
  const r = await api('POST', docsUrl, { body: 'UniqueName=keep&Data=' + encodeURIComponent('{"safe":true,"n":[1,2,3]}') });
  assert.equal(r.status, 201);
  keep = r.body;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

async function api(method, url, { body, type = 'application/x-www-form-urlencoded', auth = true, headers = {} } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = server.basic();
  if (body !== undefined && type) h['Content-Type'] = type;
  return decode(await fetch(url, { method, headers: h, body }));
}

function assertFnError(res, status) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body, 'object', `JSON body: ${res.body}`);
  assert.equal(res.body.status, status);
  assert.equal(typeof res.body.error, 'string');
  assert.ok(res.body.error.length > 0);
}

function assertTwilioError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body, 'object', `JSON body: ${res.body}`);
  assert.equal(res.body.status, status);
  if (code !== undefined) assert.equal(res.body.code, code);
  assert.equal(typeof res.body.message, 'string');
}

async function docCount() {
  const r = await api('GET', `${docsUrl}?PageSize=100`);
  assert.equal(r.status, 200);
  return r.body.documents.length;
}

describe('malformed bodies', () => {
  test('malformed JSON to /general/router -> 400 JSON error', async () => {
    const res = await api('POST', `${server.url}/general/router`, { body: '{"a":', type: 'application/json', auth: false });
    assertFnError(res, 400);
  });

  test('malformed JSON to /task/get-sync-grant -> 400 JSON error', async () => {
    const res = await api('POST', `${server.url}/task/get-sync-grant`, { body: '{"a":', type: 'application/json', auth: false });
    assertFnError(res, 400);
  });

  test('a JSON body that is not an object -> 400', async () => {
    const res = await api('POST', `${server.url}/general/router`, { body: '[1,2]', type: 'application/json', auth: false });
    assertFnError(res, 400);
  });

  test('malformed form encoding (a=%zz) -> 400', async () => {
    assertFnError(await api('POST', `${server.url}/general/router`, { body: 'EventType=task.created&a=%zz', auth: false }), 400);
    assertFnError(await api('POST', `${server.url}/task/get-sync-grant`, { body: 'a=%zz', auth: false }), 400);
    assertFnError(await api('POST', `${server.url}/general/router`, { body: 'EventType=x&b=%4', auth: false }), 400);
    const before = await docCount();
    assertTwilioError(await api('POST', docsUrl, { body: 'UniqueName=bad%zzname' }), 400, 20001);
    assert.equal(await docCount(), before);
  });

  test('an unsupported Content-Type -> 400', async () => {
    assertFnError(await api('POST', `${server.url}/general/router`, { body: 'EventType=x', type: 'text/plain', auth: false }), 400);
  });

  test('a NUL byte in a parameter -> 400', async () => {
    assertFnError(await api('POST', `${server.url}/general/router`, { body: 'EventType=a%00b', auth: false }), 400);
  });
});

describe('sizes and limits', () => {
  test('a body over the 1 MiB default -> 413', async () => {
    const big = 'EventType=x&pad=' + 'a'.repeat((1 << 20) + 10);
    const res = await api('POST', `${server.url}/general/router`, { body: big, auth: false });
    assertFnError(res, 413);
    const api413 = await api('POST', docsUrl, { body: 'Data=' + 'a'.repeat((1 << 20) + 10) });
    assertTwilioError(api413, 413);
  });

  test('TASSA_MAX_BODY=2048: a 4 KiB body -> 413, a 1 KiB body is fine', async () => {
    const small = await startServer({ env: { TASSA_MAX_BODY: '2048', TASSA_VERIFY_SIGNATURE: 'false' } });
    try {
      const url = `${small.url}/general/router`;
      const over = await postForm(url, { EventType: 'nothing.here', pad: 'b'.repeat(4096) });
      assertFnError(over, 413);
      const under = await postForm(url, { EventType: 'nothing.here', pad: 'b'.repeat(1024) });
      assert.equal(under.status, 200);
      assert.equal(under.body.ignored, true);
      // chunked upload (no Content-Length) is cut off too
      const chunks = [Buffer.from('EventType=nothing.here&pad='), Buffer.alloc(4096, 'c')];
      const stream = new ReadableStream({ pull(ctl) { const c = chunks.shift(); if (c) ctl.enqueue(c); else ctl.close(); } });
      const chunked = await decode(await fetch(url, { method: 'POST', body: stream, duplex: 'half',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }));
      assertFnError(chunked, 413);
    } finally {
      await small.stop();
      small.cleanup();
    }
  });

  test('an overlong unique name (321) -> 400, not stored; 320 is fine', async () => {
    const before = await docCount();
    const res = await api('POST', docsUrl, { body: `UniqueName=${'n'.repeat(321)}&Data=%7B%7D` });
    assertTwilioError(res, 400, 20001);
    assert.equal(await docCount(), before);
    const ok = await api('POST', docsUrl, { body: `UniqueName=${'n'.repeat(320)}` });
    assert.equal(ok.status, 201);
    assert.equal(await docCount(), before + 1);
  });

  test('a unique name shaped like a SID or with a control character -> 400', async () => {
    const before = await docCount();
    assertTwilioError(await api('POST', docsUrl, { body: `UniqueName=ET${'a'.repeat(32)}` }), 400, 20001);
    assertTwilioError(await api('POST', docsUrl, { body: 'UniqueName=a%0Ab' }), 400, 20001);
    assert.equal(await docCount(), before);
  });

  test('Data that is not JSON, or a JSON array -> 400', async () => {
    const before = await docCount();
    for (const data of ['not json', '{"a":', '[1,2,3]', '"str"', '42', 'null', '']) {
      const res = await api('POST', docsUrl, { body: `UniqueName=bad-data&Data=${encodeURIComponent(data)}` });
      assertTwilioError(res, 400, 20001);
    }
    assert.equal(await docCount(), before);
    // and on update: the document is unchanged
    const upd = await api('POST', `${docsUrl}/keep`, { body: `Data=${encodeURIComponent('[1]')}` });
    assertTwilioError(upd, 400, 20001);
  });

  test('Data over 16 KiB -> 413 54006; exactly 16 KiB is fine', async () => {
    const before = await docCount();
    const over = JSON.stringify({ s: 'x'.repeat(16384) });
    const res = await api('POST', docsUrl, { body: `UniqueName=too-big&Data=${encodeURIComponent(over)}` });
    assertTwilioError(res, 413, 54006);
    assert.equal(await docCount(), before);
    const upd = await api('POST', `${docsUrl}/keep`, { body: `Data=${encodeURIComponent(over)}` });
    assertTwilioError(upd, 413, 54006);
    const exact = JSON.stringify({ s: 'y'.repeat(16384 - 8) }); // {"s":"..."} is 8 bytes of framing
    assert.equal(exact.length, 16384);
    const ok = await api('POST', docsUrl, { body: `UniqueName=just-fits&Data=${encodeURIComponent(exact)}` });
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 200));
  });

  // 429 would be wrong: it means "slow down", and twilio-node's autoRetry retries it, but this
  // request can never succeed.
  const clientError = (s) => s >= 400 && s < 500 && s !== 429;

  test('more than 256 parameters -> 4xx (not 429)', async () => {
    const body = Array.from({ length: 300 }, (_, i) => `p${i}=${i}`).join('&');
    const res = await api('POST', `${server.url}/general/router`, { body: `EventType=x&${body}`, auth: false });
    assert.equal(typeof res.body.error, 'string');
    assert.ok(clientError(res.status), `status ${res.status}`);
    const before = await docCount();
    const res2 = await api('POST', docsUrl, { body: `UniqueName=many&${body}` });
    assert.equal(await docCount(), before);
    assert.ok(clientError(res2.status), `status ${res2.status}`);
  });

  test('a parameter name over 256 bytes -> 400', async () => {
    const res = await api('POST', `${server.url}/general/router`, { body: `EventType=x&${'k'.repeat(300)}=1`, auth: false });
    assertFnError(res, 400);
  });
});

describe('routing', () => {
  test('an unknown path -> 404 JSON', async () => {
    assertFnError(await api('GET', `${server.url}/no/such/thing`, { auth: false }), 404);
    assertTwilioError(await api('GET', `${server.url}/v1/Nothing`), 404, 20404);
  });

  test('a wrong method -> 405', async () => {
    assertFnError(await api('GET', `${server.url}/general/router`, { auth: false }), 405);
    assertFnError(await api('DELETE', `${server.url}/task/get-sync-grant`, { auth: false }), 405);
    assertTwilioError(await api('PUT', docsUrl, { body: 'a=1' }), 405);
  });

  test('a path with too many segments -> 404', async () => {
    const res = await api('GET', `${server.url}/${'a/'.repeat(40)}b`, { auth: false });
    assertFnError(res, 404);
  });
});

describe('CLI', () => {
  test('serve --port 0 picks a free port (as the e2e harness expects)', async () => {
    // startServer (the harness' own) passes --port 0 and reads the bound port from the log.
    const dataDir = mkdtempSync(join(tmpdir(), 'tassa-e2e-'));
    try {
      const s = await startServerStrict({ dataDir });
      try {
        assert.ok(s.port > 0);
        const r = await fetch(`${s.url}/healthz`);
        assert.equal(r.status, 200);
      } finally {
        await s.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('user-token rejects a bad --ttl', () => {
    assert.throws(() => tassa(['user-token', 'alice', '--ttl', '0', '--data', server.store], { cwd: server.dataDir }));
    assert.throws(() => tassa(['user-token', 'alice', '--ttl', 'abc', '--data', server.store], { cwd: server.dataDir }));
  });
});

describe('after all of it', () => {
  test('/healthz is 200 and earlier documents are intact', async () => {
    const h = await fetch(`${server.url}/healthz`);
    assert.equal(h.status, 200);
    const r = await api('GET', `${docsUrl}/keep`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, keep);
  });
});

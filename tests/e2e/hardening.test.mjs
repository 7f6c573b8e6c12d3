// hardening.test.mjs - an adversary's inputs over real sockets: a second server on a taken port
// or data file, bytes that are not UTF-8, NUL bytes, unknown JWT extensions, oversized bodies,
// slow headers and loose numbers. Each test is the regression test of one defect of issue 9.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { BIN, startServerAnyPort as startServer, decode, tassa, sqliteOnly } from './lib/server.mjs';

let server;
let docs; // the Documents list URL of the default service

before(async () => {
  server = await startServer({ env: { TASSA_MAX_BODY: '65536', TASSA_HEADER_TIMEOUT_MS: '1500',
    TASSA_STREAM_HEARTBEAT_MS: '300' } });
  docs = `${server.url}/v1/Services/default/Documents`;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

function api(method, url, { body, auth, headers = {} } = {}) {
  const h = { Authorization: auth ?? server.basic(), ...headers };
  if (body !== undefined) h['Content-Type'] = 'application/x-www-form-urlencoded';
  return fetch(url, { method, headers: h, body }).then(decode);
}

function assertTwilioError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.status, status);
  assert.equal(res.body.code, code);
  assert.equal(res.body.more_info, `https://www.twilio.com/docs/errors/${code}`);
  assert.equal(typeof res.body.message, 'string');
}

// Runs `tassa serve` with args until it exits; resolves { code, stderr }, or { code: null }
// (after killing it) when it is still running after ms: a server that should have refused.
function serveUntilExit(args, dataDir, ms = 8000) {
  return new Promise((resolve) => {
    const child = spawn(BIN, ['serve', '--quiet', ...args], { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

// A raw TCP connection that records what the server sends and when it closes.
function rawConnect(port) {
  return new Promise((resolve, reject) => {
    const c = { data: '', closed: false, waiters: [] };
    const sock = net.connect(port, '127.0.0.1', () => resolve(c));
    c.sock = sock;
    const wake = () => { for (const w of c.waiters.splice(0)) w(); };
    sock.setEncoding('latin1');
    sock.on('data', (d) => { c.data += d; wake(); });
    sock.on('close', () => { c.closed = true; wake(); });
    sock.on('error', () => { /* a reset counts as closed */ });
    sock.on('connect', () => {});
    c.until = (pred, ms) => new Promise((res) => {
      const end = setTimeout(() => res(pred()), ms);
      const check = () => { if (pred()) { clearTimeout(end); res(true); } else c.waiters.push(check); };
      check();
    });
    c.write = (s) => new Promise((res) => { if (c.closed || sock.destroyed) return res(false); sock.write(s, () => res(true)); });
    sock.once('error', reject);
  });
}

describe('defect 2: one server per port and per data file', () => {
  test('a second serve on a port in use exits non-zero with one line naming the address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tassa-e2e-'));
    try {
      const r = await serveUntilExit(['--port', String(server.port), '--data', join(dir, 'other.db')], dir);
      assert.notEqual(r.code, null, 'the second server kept running on a port in use');
      assert.notEqual(r.code, 0);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('tassa:'));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${server.port}\\b`));
      // The first server still answers every request.
      for (let i = 0; i < 10; i++) assert.equal((await api('GET', docs)).status, 200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a second serve on the same data file is refused, whatever its port',
    sqliteOnly('one serving process per data file (the file lock); on PostgreSQL several nodes share a database'), async () => {
    const r = await serveUntilExit(['--port', '0', '--data', server.store], server.dataDir);
    assert.notEqual(r.code, null, 'two servers ran engines on one data file');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tassa: data file .*tassa\.db is in use by another tassa process/);
    // Reading credentials from a served file stays possible (it runs no engine).
    assert.match(tassa(['credentials', '--data', server.store]), /ACCOUNT_SID=AC/);
  });
});

describe('defect 3: bytes that are not UTF-8 are refused, never stored', () => {
  for (const [what, enc] of [['a lone 0xFF', 'bad%FFname'], ['an overlong "/"', 'bad%C0%AFname'],
    ['a surrogate', 'bad%ED%A0%80name'], ['a code point past U+10FFFF', 'bad%F4%90%80%80name'],
    ['a truncated sequence', 'bad%E2%82']]) {
    test(`Sync UniqueName with ${what}: 400, nothing stored, a clean 404 for the path`, async () => {
      const before = await api('GET', `${docs}?PageSize=100`);
      const r = await api('POST', docs, { body: `UniqueName=${enc}&Data=%7B%7D` });
      assertTwilioError(r, 400, 20001);
      const get = await api('GET', `${docs}/${enc}`);
      assertTwilioError(get, 404, 20404);
      const list = await api('GET', `${docs}?PageSize=100`);
      assert.equal(list.status, 200);
      assert.equal(list.body.documents.length, before.body.documents.length);
    });
  }

  test('invalid UTF-8 in Data, in the query and in a JSON body: 400', async () => {
    assertTwilioError(await api('POST', docs, { body: 'UniqueName=ok-name&Data=%7B%22a%22%3A%22%FF%22%7D' }), 400, 20001);
    assertTwilioError(await api('GET', `${docs}?PageSize=%FF`), 400, 20001);
    const r = await fetch(docs, { method: 'POST', headers: { Authorization: server.basic(), 'Content-Type': 'application/json' },
      body: Buffer.from([...Buffer.from('{"UniqueName":"x'), 0xc0, 0xaf, ...Buffer.from('"}')]) }).then(decode);
    assertTwilioError(r, 400, 20001);
    assert.equal((await api('GET', `${docs}/ok-name`)).status, 404);
  });

  test('worker and queue FriendlyName with invalid UTF-8: 400, nothing created', async () => {
    const ws = `${server.url}/v1/Workspaces/${server.workspaceSid}`;
    for (const kind of ['Workers', 'TaskQueues']) {
      const before = await api('GET', `${ws}/${kind}?PageSize=1000`);
      assert.equal(before.status, 200);
      assertTwilioError(await api('POST', `${ws}/${kind}`, { body: 'FriendlyName=caf%C3' }), 400, 20001);
      assertTwilioError(await api('POST', `${ws}/${kind}`, { body: 'FriendlyName=x%C0%80y' }), 400, 20001);
      const after = await api('GET', `${ws}/${kind}?PageSize=1000`);
      assert.deepEqual(after.body.meta.key && after.body[after.body.meta.key].length,
        before.body[before.body.meta.key].length);
    }
  });

  test('a path segment that is not UTF-8: 400 to write, 404 to read', async () => {
    assertTwilioError(await api('POST', `${docs}/bad%FFname`, { body: 'Data=%7B%7D' }), 400, 20001);
    assertTwilioError(await api('POST', `${docs}/bad%C0%AFname`, { body: 'Data=%7B%7D' }), 400, 20001);
    assertTwilioError(await api('GET', `${docs}/bad%C0%AFname`), 404, 20404);
    const r = await fetch(`${server.url}/bad%FF.html`);
    assert.equal(r.status, 404);
  });

  test('valid multi-byte UTF-8 still works', async () => {
    const name = 'caf\u00e9-\u{1F600}';
    const r = await api('POST', docs, { body: `UniqueName=${encodeURIComponent(name)}&Data=%7B%7D` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.unique_name, name);
    assert.equal((await api('GET', `${docs}/${encodeURIComponent(name)}`)).body.unique_name, name);
  });
});

describe('defect 6: NUL bytes never cut a string', () => {
  test('Basic credentials with a NUL and a tail are refused', async () => {
    const { apiKey, apiSecret, accountSid, authToken } = server.creds;
    for (const pair of [`${apiKey}:${apiSecret}\0anything`, `${apiKey}\0x:${apiSecret}`,
      `${accountSid}:${authToken}\0`]) {
      const r = await api('GET', docs, { auth: 'Basic ' + Buffer.from(pair).toString('base64') });
      assertTwilioError(r, 401, 20003);
    }
    assert.equal((await api('GET', docs)).status, 200);
  });

  test('%00 in a path segment: never the resource before it (404 to read, 400 to write)', async () => {
    assert.equal((await api('POST', docs, { body: 'UniqueName=victim&Data=%7B%22secret%22%3A1%7D' })).status, 201);
    assertTwilioError(await api('GET', `${docs}/victim%00x`), 404, 20404);
    assertTwilioError(await api('GET', `${docs}/victim%00`), 404, 20404);
    assertTwilioError(await api('POST', `${docs}/victim%00x`, { body: 'Data=%7B%7D' }), 400, 20001);
    assertTwilioError(await api('DELETE', `${docs}/victim%00x`), 404, 20404);
    assert.deepEqual((await api('GET', `${docs}/victim`)).body.data, { secret: 1 });
  });

  test('/index.html%00.txt does not serve index.html', async () => {
    assert.equal((await fetch(`${server.url}/index.html`)).status, 200);
    const r = await fetch(`${server.url}/index.html%00.txt`);
    assert.equal(r.status, 404);
    assert.doesNotMatch(await r.text(), /<html/i);
  });

  test('%00 in a parameter value is a 400', async () => {
    assertTwilioError(await api('POST', docs, { body: 'UniqueName=nul%00name' }), 400, 20001);
    assertTwilioError(await api('GET', `${docs}?PageSize=5%00`), 400, 20001);
  });
});

describe('defect 7: a caller JWT with an unknown crit header is refused', () => {
  test('crit names an extension we do not understand', async () => {
    const now = Math.floor(Date.now() / 1000);
    const sign = (header) => jwt.sign({ identity: 'alice', iat: now, exp: now + 600 }, server.creds.jwtSecret,
      { algorithm: 'HS256', header, noTimestamp: true });
    const grant = (token) => fetch(`${server.url}/task/get-sync-grant`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ identity: 'alice', token }) }).then(decode);
    assert.equal((await grant(sign({ typ: 'JWT' }))).status, 200, 'control: a plain token works');
    for (const header of [{ crit: ['x-unknown'], 'x-unknown': true }, { crit: ['exp'] }, { crit: [] }, { crit: 'b64' }]) {
      const r = await grant(sign(header));
      assert.equal(r.status, 401, JSON.stringify(header));
      assert.equal(r.body.authorized, false);
    }
  });
});

describe('defect 8: an oversized body gets its 413 at once, then the connection closes', () => {
  test('a declared 10 GB Content-Length', async () => {
    const c = await rawConnect(server.port);
    await c.write(`POST /v1/Services/default/Documents HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\n` +
      'Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10737418240\r\n\r\nUniqueName=');
    assert.ok(await c.until(() => c.closed, 10000), `no close; got: ${c.data}`);
    assert.match(c.data, /^HTTP\/1\.1 413 /);
    assert.match(c.data, /"code":20001/);
  });

  test('a chunked body that grows past TASSA_MAX_BODY', async () => {
    const c = await rawConnect(server.port);
    await c.write(`POST /v1/Services/default/Documents HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\n` +
      'Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = 'a'.repeat(8192);
    let sent = 0;
    // Up to 4 MB would follow; the server must answer after ~64 KiB, without the end chunk.
    while (sent < 4 << 20 && !c.closed && !c.data) {
      if (!(await c.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`))) break;
      sent += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    assert.ok(await c.until(() => c.closed, 10000), `no close; got: ${c.data}`);
    assert.match(c.data, /^HTTP\/1\.1 413 /);
    assert.ok(sent < 4 << 20, `the whole ${sent} bytes were read before the answer`);
  });

  test('a body within the limit still works on the same server', async () => {
    const r = await api('POST', docs, { body: 'UniqueName=small&Data=' + encodeURIComponent(JSON.stringify({ s: 'x'.repeat(1000) })) });
    assert.equal(r.status, 201);
  });
});

describe('defect 9: headers must arrive within TASSA_HEADER_TIMEOUT_MS', () => {
  test('a client dribbling one byte at a time is cut after the deadline', async () => {
    const c = await rawConnect(server.port);
    await c.write('GET /v1/Services/default/Documents HTTP/1.1\r\nX-Slow: ');
    const start = Date.now();
    // 200 ms per byte is far below the 120 s idle timeout; only a header deadline ends this.
    while (!c.closed && Date.now() - start < 15000) {
      await c.write('a');
      await c.until(() => c.closed, 200);
    }
    assert.ok(c.closed, 'the server kept a connection whose headers never ended');
    assert.equal(c.data.includes('200 OK'), false);
  });

  test('a live stream lasts well past the header deadline', async () => {
    const { apiKey, accountSid, apiSecret } = server.creds;
    const iat = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ jti: `${apiKey}-${iat}`, iss: apiKey, sub: accountSid, iat, exp: iat + 3600,
      grants: { identity: 'dashboard', data_sync: { service_sid: 'default' } } }, apiSecret,
    { algorithm: 'HS256', header: { cty: 'twilio-fpa;v=1', typ: 'JWT' }, noTimestamp: true });
    const s = await new Promise((resolve, reject) => {
      const st = { ended: false, chunks: 0 };
      const req = http.get(`${server.url}/v1/Services/default/Stream?token=${encodeURIComponent(token)}`,
        { headers: { Accept: 'text/event-stream' } }, (res) => {
          st.status = res.statusCode;
          st.res = res;
          res.on('data', () => { st.chunks++; });
          res.on('close', () => { st.ended = true; });
          resolve(st);
        });
      req.on('error', reject);
    });
    assert.equal(s.status, 200);
    await new Promise((r) => setTimeout(r, 4000)); // more than twice the 1.5 s deadline
    const chunks = s.chunks;
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(s.ended, false, 'the header deadline cut a live stream');
    assert.ok(s.chunks > chunks, 'the stream still delivers (heartbeats)');
    s.res.destroy();
  });

  test('ordinary keep-alive requests are unaffected', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise((resolve, reject) => {
      http.get(docs, { agent, headers: { Authorization: server.basic() } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    for (let i = 0; i < 5; i++) assert.equal(await get(), 200);
    agent.destroy();
  });
});

describe('defect 10: numeric parameters are strict decimal integers in range', () => {
  for (const bad of ['%2050', '50%20', '+50', '5x', '0x10', '1e2', '', '-1', '0', '1001', '99999999999999999999', '%0950']) {
    test(`PageSize=${bad || '(empty)'} is refused (empty: the default)`, async () => {
      const r = await api('GET', `${docs}?PageSize=${bad}`);
      if (bad === '') {
        // an empty value reads as "not given", as Twilio's own parsers do
        assert.equal(r.status, 200);
        return;
      }
      assertTwilioError(r, 400, 20001);
    });
  }
  test('Ttl, Priority, Timeout, Minutes and workflow timeouts are as strict; nothing is stored', async () => {
    const ws = `${server.url}/v1/Workspaces/${server.workspaceSid}`;
    const queue = await api('POST', `${ws}/TaskQueues`, { body: 'FriendlyName=strict-q' });
    assert.equal(queue.status, 201);
    for (const bad of ['+5', '%205', '5%20', '0x5']) {
      assertTwilioError(await api('POST', docs, { body: `UniqueName=strict-ttl&Ttl=${bad}` }), 400, 20001);
      assertTwilioError(await api('POST', `${ws}/Tasks`, { body: `Attributes=%7B%7D&Priority=${bad}` }), 400, 20001);
      assertTwilioError(await api('POST', `${ws}/Tasks`, { body: `Attributes=%7B%7D&Timeout=${bad}` }), 400, 20001);
      assertTwilioError(await api('GET', `${ws}/TaskQueues/${queue.body.sid}/CumulativeStatistics?Minutes=${bad}`), 400, 20001);
      const cfg = encodeURIComponent(JSON.stringify({ task_routing: { filters: [], default_filter: { queue: 'WQ0' } }, timeout: decodeURIComponent(bad) }));
      assertTwilioError(await api('POST', `${ws}/Workflows`, { body: `FriendlyName=strict&Configuration=${cfg}` }), 400, 20001);
    }
    assert.equal((await api('GET', `${docs}/strict-ttl`)).status, 404);
    const wfs = await api('GET', `${ws}/Workflows?PageSize=1000`);
    assert.ok(!wfs.body.workflows.some((w) => w.friendly_name === 'strict'));
    assert.equal((await api('POST', docs, { body: 'UniqueName=strict-ttl&Ttl=5' })).status, 201);
  });

  test('PageSize=50 and Page=0 work', async () => {
    const r = await api('GET', `${docs}?PageSize=50&Page=0`);
    assert.equal(r.status, 200);
    assert.equal(r.body.meta.page_size, 50);
  });
});

describe('finding H1: a URL with hundreds of query pieces is answered at once, never stalls', () => {
  // libmicrohttpd keeps every query piece in the connection's memory pool; once the pool was
  // full the answer could not be queued: no reply at ~500 pieces, a 120 s hang from ~600 on.
  // tassa answers a refused target itself (400, a Twilio error on /v1); a request line past
  // the connection's 24 KiB pool is refused by libmicrohttpd first (414, its own page).
  const shapes = [
    ['600 bare &', `?${'&'.repeat(600)}`],
    ['500 bare &', `?${'&'.repeat(500)}`],
    ['3000 a=1 pieces', `?${'a=1&'.repeat(3000)}`],
    ['12000 bare &', `?${'&'.repeat(12000)}`],
    ['one 9 KB value', `?FriendlyName=${'a'.repeat(9000)}`],
    ['257 pieces', `?${'a=1&'.repeat(256)}a=1`],
    ['one 60 KB value', `?FriendlyName=${'a'.repeat(60000)}`, 414],
    ['30000 bare &', `?${'&'.repeat(30000)}`, 414],
  ];
  for (const [name, query, pool] of shapes) {
    for (const path of ['/v1/Services/default/Documents', '/x']) {
      test(`${name} on ${path}: a prompt 4xx, then the connection closes`, async () => {
        const c = await rawConnect(server.port);
        // no "Connection: close": the server must end the connection itself
        await c.write(`GET ${path}${query} HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\n\r\n`);
        assert.ok(await c.until(() => c.closed, 10000), `no close within 10 s; got: ${c.data.slice(0, 200)}`);
        const status = Number(c.data.match(/^HTTP\/1\.1 (\d{3}) /)?.[1]);
        assert.equal(status, pool ?? 400, c.data.slice(0, 200));
        if (path.startsWith('/v1/') && !pool) {
          const body = JSON.parse(c.data.slice(c.data.indexOf('\r\n\r\n') + 4));
          assert.equal(body.status, status);
          assert.equal(body.more_info, `https://www.twilio.com/docs/errors/${body.code}`);
        }
      });
    }
  }

  test('headers past the connection pool get a prompt 431, then the connection closes', async () => {
    const c = await rawConnect(server.port);
    const pad = Array.from({ length: 40 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(1000)}\r\n`).join('');
    await c.write(`GET /v1/Services/default/Documents HTTP/1.1\r\nHost: x\r\n${pad}` +
      `Authorization: ${server.basic()}\r\n\r\n`);
    assert.ok(await c.until(() => c.closed, 10000), `no close within 10 s; got: ${c.data.slice(0, 200)}`);
    assert.match(c.data, /^HTTP\/1\.1 431 /);
  });

  test('a POST whose URL is refused gets its 400 before the body, and nothing is stored', async () => {
    const c = await rawConnect(server.port);
    const body = 'UniqueName=h1-post';
    await c.write(`POST /v1/Services/default/Documents?${'&'.repeat(700)} HTTP/1.1\r\nHost: x\r\n` +
      `Authorization: ${server.basic()}\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
      `Content-Length: ${body.length}\r\n\r\n${body}`);
    assert.ok(await c.until(() => c.closed, 10000), `no close within 10 s; got: ${c.data.slice(0, 200)}`);
    assert.match(c.data, /^HTTP\/1\.1 400 /);
    assert.match(c.data, /"code":20001/);
    assert.equal((await api('GET', `${docs}/h1-post`)).status, 404);
  });

  test('256 pieces in an 8 KB URL, at the limits, are answered as usual', async () => {
    const pieces = Array.from({ length: 255 }, (_, i) => `F${i}=${'a'.repeat(25)}`).join('&');
    const r = await api('GET', `${docs}?${pieces}&PageSize=5`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.meta.page_size, 5);
  });

  test('an 8 KB URL of 256 pieces with 8 KB of other headers is answered as usual', async () => {
    const pieces = Array.from({ length: 255 }, (_, i) => `F${i}=${'a'.repeat(25)}`).join('&');
    const headers = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`X-Pad-${i}`, 'p'.repeat(1000)]));
    const r = await api('GET', `${docs}?${pieces}&PageSize=5`, { headers });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.meta.page_size, 5);
  });

  test('query pieces are decoded as form values: +, %-escapes, bare keys, empty pieces', async () => {
    const name = `h1-q-${Date.now()}`;
    assert.equal((await api('POST', docs, { body: `UniqueName=${name}` })).status, 201);
    // PageSize=2 after empty pieces and a bare key; a bad escape in the query is a 400
    const r = await api('GET', `${docs}?&&Bare&=x&Page%53ize=2&`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.meta.page_size, 2);
    assertTwilioError(await api('GET', `${docs}?PageSize=%zz`), 400, 20001);
    // '+' is a space: the filter comes back in the page's own URL
    const t = await api('GET', `${server.url}/v1/Workspaces/${server.workspaceSid}/Tasks?` +
      'TaskQueueName=a+b%2Bc&PageSize=5');
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.match(t.body.meta.url, /\?TaskQueueName=a%20b%2Bc&PageSize=5&/);
  });

  test('a list with a long filter (within the limits) is still answered 200', async () => {
    const r = await api('GET', `${server.url}/v1/Workspaces/${server.workspaceSid}/Tasks?` +
      `AssignmentStatus=pending&${'TaskQueueName=q&'.repeat(100)}PageSize=5`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  });
});

describe('finding P1: page URLs keep their page after a long filter', () => {
  // next_page_url was built in 1024 bytes: a long filter cut PageSize, Page and PageToken off
  // it (or the filter was dropped), so twilio-node, which follows it verbatim, read page 0
  // again and again, or pages of another filter.
  test('the twilio client pages through tasks under a 1 KB filter and sees each one once', async () => {
    const { twilioClient } = await import('./lib/server.mjs');
    const client = await twilioClient(server);
    const ws = client.taskrouter.v1.workspaces(server.workspaceSid);
    const q = await ws.taskQueues.create({ friendlyName: 'p1-queue' });
    const wf = await ws.workflows.create({ friendlyName: 'p1-flow',
      configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: q.sid } } }) });
    const tag = 'p'.repeat(1000);
    const want = [];
    for (let i = 0; i < 5; i++)
      want.push((await ws.tasks.create({ attributes: JSON.stringify({ tag }), workflowSid: wf.sid })).sid);
    for (let i = 0; i < 3; i++) // not under the filter
      await ws.tasks.create({ attributes: JSON.stringify({ tag: 'other' }), workflowSid: wf.sid });
    const seen = [];
    const done = new Promise((resolve, reject) => ws.tasks.each({
      evaluateTaskAttributes: `tag == "${tag}"`, pageSize: 2, limit: 20,
      callback: (t) => { seen.push(t.sid); }, done: (err) => (err ? reject(err) : resolve()),
    }));
    await done;
    assert.deepEqual([...seen].sort(), [...want].sort());
  });
});

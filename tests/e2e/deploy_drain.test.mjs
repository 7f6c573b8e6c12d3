// deploy_drain.test.mjs - graceful SIGTERM: /healthz says "draining" while the listener is
// still open, every request in flight is answered, every acknowledged write survives, live
// streams are told to reconnect, and the exit status is 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startServer, eventually } from './lib/server.mjs';

// One request on a fresh connection (no keep-alive reuse); resolves {status, body, headers}
// or rejects with the socket error.
function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const exitOf = (server) => new Promise((resolve) => {
  if (server.child.exitCode !== null) resolve(server.child.exitCode);
  else server.child.on('exit', (code, signal) => resolve(code ?? signal));
});

test('SIGTERM during a burst of writes: every acknowledged write kept, every request answered, exit 0', async () => {
  const server = await startServer({ env: { TASSA_DRAIN_DELAY_MS: '1500' } });
  const auth = server.basic();
  const docs = `${server.url}/v1/Services/default/Documents`;
  const acked = [];
  const failures = [];
  let sent = 0, stop = false, n = 0;
  const writer = async () => {
    while (!stop) {
      const name = `drain-${n++}`;
      const body = new URLSearchParams({ UniqueName: name, Data: JSON.stringify({ n }) }).toString();
      sent++;
      try {
        const r = await request(docs, { method: 'POST', body, headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' } });
        if (r.status === 201) acked.push(name);
        else failures.push(`${name}: HTTP ${r.status} ${r.body}`);
      } catch (e) {
        failures.push(`${name}: ${e.code || e.message}`);
      }
    }
  };
  const writers = Array.from({ length: 8 }, writer);
  await eventually(() => acked.length >= 40, { timeout: 20000 });
  const exited = exitOf(server);
  server.child.kill('SIGTERM');
  // a load balancer's view: healthz turns to draining while connections are still accepted
  const h = await eventually(async () => {
    const r = await request(`${server.url}/healthz`);
    return r.status === 503 && r;
  }, { timeout: 5000, interval: 5 });
  stop = true; // the balancer moves the traffic: no new requests from here
  assert.equal(JSON.parse(h.body).status, 'draining');
  assert.equal(h.headers.connection, 'close');
  await Promise.all(writers);
  assert.deepEqual(failures, [], 'every request sent before draining was seen is answered with success');
  assert.equal(acked.length, sent);
  assert.equal(await exited, 0, server.log.slice(-2000));
  assert.match(server.log, /event=draining signal=15/);

  const again = await startServer({ dataDir: server.dataDir });
  try {
    const missing = [];
    for (const name of acked) {
      const r = await fetch(`${again.url}/v1/Services/default/Documents/${name}`, { headers: { Authorization: again.basic() } });
      if (r.status !== 200) missing.push(name);
    }
    assert.deepEqual(missing, [], `${acked.length} acknowledged writes`);
  } finally {
    await again.stop();
    again.cleanup();
  }
});

test('a request in flight when the listener closes is still answered and kept', async () => {
  const server = await startServer();
  const { hostname, port } = new URL(server.url);
  const body = new URLSearchParams({ UniqueName: 'in-flight', Data: '{"late":true}' }).toString();
  const sock = net.connect(Number(port), hostname);
  await new Promise((r) => sock.once('connect', r));
  let answer = '';
  sock.setEncoding('utf8');
  sock.on('data', (c) => { answer += c; });
  const closed = new Promise((r) => sock.on('close', r));
  sock.write(`POST /v1/Services/default/Documents HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: ${server.basic()}\r\n` +
    `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
  await eventually(async () => (await request(`${server.url}/healthz`)).status === 200);
  const exited = exitOf(server);
  server.child.kill('SIGTERM');
  // the listener closes: new connections are refused
  await eventually(() => new Promise((resolve) => {
    const c = net.connect(Number(port), hostname);
    c.on('connect', () => { c.destroy(); resolve(false); });
    c.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  }), { timeout: 5000 });
  sock.write(body.slice(10));
  await closed;
  assert.match(answer, /^HTTP\/1\.1 201 /, answer);
  assert.match(answer, /\r\nConnection: close\r\n/i);
  assert.equal(await exited, 0, server.log.slice(-2000));
  const again = await startServer({ dataDir: server.dataDir });
  try {
    const r = await fetch(`${again.url}/v1/Services/default/Documents/in-flight`, { headers: { Authorization: again.basic() } });
    assert.equal(r.status, 200);
    assert.deepEqual((await r.json()).data, { late: true });
  } finally {
    await again.stop();
    again.cleanup();
  }
});

test('live streams get a reconnect event and end; the server exits 0', async () => {
  const server = await startServer();
  const auth = server.basic();
  const r = await request(`${server.url}/v1/Services/default/Documents`, {
    method: 'POST', body: 'UniqueName=watched&Data=%7B%7D',
    headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(r.status, 201);
  // Sync ACL is on: alice streams the document once she holds read on it.
  const p = await request(`${server.url}/v1/Services/default/Documents/watched/Permissions/alice`, {
    method: 'POST', body: 'Read=true&Write=false&Manage=false',
    headers: { Authorization: auth, 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  assert.equal(p.status, 200);
  const { tassa } = await import('./lib/server.mjs');
  const caller = tassa(['user-token', 'alice', '--data', server.store], { cwd: server.dataDir }).trim();
  const grant = await request(`${server.url}/task/get-sync-grant`, {
    method: 'POST', body: new URLSearchParams({ token: caller, identity: 'alice' }).toString(),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
  });
  const syncToken = JSON.parse(grant.body).syncToken;
  let text = '';
  const ended = new Promise((resolve, reject) => {
    http.get(`${server.url}/v1/Services/default/Documents/watched/Stream`,
      { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${syncToken}` }, agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        res.setEncoding('utf8');
        res.on('data', (c) => { text += c; });
        res.on('end', resolve);
        res.on('error', reject);
      }).on('error', reject);
  });
  await eventually(() => text.includes('data:'));
  const exited = exitOf(server);
  server.child.kill('SIGTERM');
  await ended;
  assert.match(text, /event: reconnect\ndata: \{"reason":"draining"\}\n\n$/);
  assert.equal(await exited, 0, server.log.slice(-2000));
  server.cleanup();
});

// worker_grant.test.mjs - /task/get-worker-grant (a teller's token for the official
// twilio-taskrouter Worker and twilio-sync), `tassa worker-token`, and /config.json, against a
// started tassa: CORS, caller JWT checks, the identity -> worker mapping (attributes.identity,
// else contact_uri client:ID), and tokens that jsonwebtoken verifies with the API secret and
// that carry exactly the grants twilio-node's AccessToken + TaskRouterGrant + SyncGrant carry.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { createRequire } from 'node:module';
import WebSocket from 'ws';
import { startServerAnyPort as startServer, tassa, postForm, twilioClient, decode } from './lib/server.mjs';

// The official Worker reads the WebSocket constructor once, when it is required.
globalThis.WebSocket = WebSocket;
const { Worker } = createRequire(import.meta.url)('twilio-taskrouter');

let server;
let ws;     // client.taskrouter.v1.workspaces(WS)
let tina;   // a worker named by attributes.identity
let uma;    // a worker named by contact_uri client:uma

const caller = (id) => tassa(['user-token', id, '--data', server.store], { cwd: server.dataDir }).trim();
const grant = (params, headers) => postForm(`${server.url}/task/get-worker-grant`, params, headers);

before(async () => {
  server = await startServer();
  const client = await twilioClient(server);
  ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  tina = await ws.workers.create({ friendlyName: 'Tina', attributes: JSON.stringify({ identity: 'tina', skills: ['general'] }) });
  uma = await ws.workers.create({ friendlyName: 'Uma', attributes: JSON.stringify({ contact_uri: 'client:uma' }) });
  // Two workers claim "twin": the grant cannot choose.
  for (const n of ['Twin A', 'Twin B']) await ws.workers.create({ friendlyName: n, attributes: JSON.stringify({ identity: 'twin' }) });
  // A worker whose identity attribute is not a string names nobody.
  await ws.workers.create({ friendlyName: 'Odd', attributes: JSON.stringify({ identity: 7 }) });
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

// Verifies a worker token as a Twilio client library would (jsonwebtoken, the API secret).
function verified(token) {
  const decoded = jwt.verify(token, server.creds.apiSecret, { algorithms: ['HS256'], complete: true });
  assert.equal(decoded.header.cty, 'twilio-fpa;v=1');
  assert.equal(decoded.header.typ, 'JWT');
  return decoded.payload;
}

test('a caller JWT for a worker identity gets a 1 h token with the TaskRouter and Sync grants', async () => {
  const res = await grant({ token: caller('tina'), identity: 'tina' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.authorized, true);
  assert.equal(res.body.workerSid, tina.sid);
  assert.equal(res.body.workspaceSid, server.workspaceSid);
  assert.equal(res.body.friendlyName, 'Tina');
  assert.equal(res.body.ttl, 3600);
  const p = verified(res.body.workerToken);
  assert.equal(p.iss, server.creds.apiKey);
  assert.equal(p.sub, server.creds.accountSid);
  assert.equal(p.jti, `${server.creds.apiKey}-${p.iat}`);
  assert.equal(p.exp - p.iat, 3600);
  assert.ok(Math.abs(p.iat - Date.now() / 1000) < 60);
  assert.deepEqual(p.grants, {
    identity: 'tina',
    task_router: { workspace_sid: server.workspaceSid, worker_sid: tina.sid, role: 'worker' },
    data_sync: { service_sid: 'default' },
  });
  // Signed with the API secret, nothing else.
  assert.throws(() => jwt.verify(res.body.workerToken, 'another-secret', { algorithms: ['HS256'] }),
    /invalid signature/);
});

test('the same grants as twilio-node mints with AccessToken + TaskRouterGrant + SyncGrant', async () => {
  const twilio = (await import('twilio')).default;
  const { AccessToken } = twilio.jwt;
  const t = new AccessToken(server.creds.accountSid, server.creds.apiKey, server.creds.apiSecret,
    { identity: 'tina', ttl: 3600 });
  t.addGrant(new AccessToken.TaskRouterGrant({ workspaceSid: server.workspaceSid, workerSid: tina.sid, role: 'worker' }));
  t.addGrant(new AccessToken.SyncGrant({ serviceSid: 'default' }));
  const theirs = jwt.decode(t.toJwt(), { complete: true });
  const ours = jwt.decode((await grant({ token: caller('tina'), identity: 'tina' })).body.workerToken, { complete: true });
  assert.deepEqual(ours.header, theirs.header);
  assert.deepEqual(ours.payload.grants, theirs.payload.grants);
  assert.deepEqual(Object.keys(ours.payload).sort(), Object.keys(theirs.payload).sort());
});

test('the official twilio-taskrouter Worker becomes ready with the token, as its worker', async () => {
  const { workerToken } = (await grant({ token: caller('tina'), identity: 'tina' })).body;
  const w = new Worker(workerToken, {
    ebServer: `http://127.0.0.1:${server.port}/v1/wschannels`,
    wsServer: `ws://127.0.0.1:${server.port}/v1/wschannels`,
    logLevel: 'silent',
  });
  const errors = [];
  w.on('error', (e) => errors.push(e));
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready in 10 s: ${errors.map(String)}`)), 10000);
      w.on('ready', () => { clearTimeout(timer); resolve(); });
    });
    assert.equal(w.sid, tina.sid);
    assert.equal(w.friendlyName, 'Tina');
    assert.equal(w.attributes.identity, 'tina');
    const available = [...w.activities.values()].find((a) => a.name === 'Available');
    const updated = new Promise((resolve) => w.once('activityUpdated', resolve));
    await available.setAsCurrent();
    await updated;
    assert.equal(w.activity.name, 'Available');
    assert.equal((await ws.workers(tina.sid).fetch()).activityName, 'Available');
  } finally {
    w.disconnect();
  }
  await ws.workers(tina.sid).update({ activitySid: (await ws.activities.list({ friendlyName: 'Offline' }))[0].sid });
});

test('contact_uri client:IDENTITY names a worker too; GET with a Bearer caller token works', async () => {
  const r = await decode(await fetch(`${server.url}/task/get-worker-grant?identity=uma`,
    { headers: { Authorization: `Bearer ${caller('uma')}` } }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.workerSid, uma.sid);
  assert.equal(verified(r.body.workerToken).grants.task_router.worker_sid, uma.sid);
});

test('refusals: no token 400, a bad or someone else\'s caller JWT 401, unknown 404, ambiguous 409', async () => {
  let r = await grant({ identity: 'tina' });
  assert.equal(r.status, 400);
  assert.deepEqual(r.body, { authorized: false, error: 'token is required', status: 400 });
  r = await grant({ token: caller('tina') });
  assert.equal(r.status, 400);
  assert.equal(r.body.error, 'identity is required');

  // Forged: the caller JWT's own claims, signed with another secret.
  const claims = jwt.decode(caller('tina'));
  const forged = jwt.sign(claims, 'not-the-jwt-secret', { algorithm: 'HS256' });
  r = await grant({ token: forged, identity: 'tina' });
  assert.equal(r.status, 401, JSON.stringify(r.body));
  assert.equal(r.body.authorized, false);
  assert.equal(r.body.workerToken, undefined);
  // Uma's valid token does not buy Tina's worker.
  r = await grant({ token: caller('uma'), identity: 'tina' });
  assert.equal(r.status, 401);
  r = await grant({ token: 'garbage', identity: 'tina' });
  assert.equal(r.status, 401);

  r = await grant({ token: caller('nobody'), identity: 'nobody' });
  assert.equal(r.status, 404);
  assert.equal(r.body.authorized, false);
  assert.match(r.body.error, /no worker has the attribute identity "nobody"/);
  r = await grant({ token: caller('7'), identity: '7' });
  assert.equal(r.status, 404, 'a number is no identity');
  r = await grant({ token: caller('twin'), identity: 'twin' });
  assert.equal(r.status, 409);
  assert.match(r.body.error, /more than one worker has identity "twin"/);
  // Nothing was changed by the refusals.
  assert.equal((await ws.workers.list()).length, 5);
});

test('CORS: the preflight is answered and the grant carries the allow-origin header', async () => {
  const pre = await fetch(`${server.url}/task/get-worker-grant`, {
    method: 'OPTIONS',
    headers: { Origin: 'https://bank.example', 'Access-Control-Request-Method': 'POST' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
  const r = await grant({ token: caller('tina'), identity: 'tina' }, { Origin: 'https://bank.example' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
});

test('tassa worker-token IDENTITY prints the worker token the server grants', () => {
  const out = tassa(['worker-token', 'tina', '--port', String(server.port), '--data', server.store],
    { cwd: server.dataDir }).trim();
  assert.equal(verified(out).grants.task_router.worker_sid, tina.sid);
  assert.throws(() => tassa(['worker-token', 'nobody', '--port', String(server.port), '--data', server.store],
    { cwd: server.dataDir }), /no worker has the attribute identity "nobody"/);
});

test('/config.json names the back end and the SDK endpoints, from the Host the page used', async () => {
  const r = await decode(await fetch(`${server.url}/config.json`));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const base = `127.0.0.1:${server.port}`;
  assert.deepEqual(r.body, {
    backend: 'embedded',
    syncServiceSid: 'default',
    workspaceSid: server.workspaceSid,
    sync: { twilsockUri: `ws://${base}/v3/wsconnect`, cdsUri: `http://${base}` },
    taskrouter: { ebServer: `http://${base}/v1/wschannels`, wsServer: `ws://${base}/v1/wschannels` },
  });
});

test('/config.json refuses a malformed Host rather than reflect it', async () => {
  const net = await import('node:net');
  const raw = (host) => new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1', () => {
      s.end(`GET /config.json HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    s.on('data', (c) => { data += c; });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
  const bad = await raw('evil.example"><script>');
  assert.match(bad, /^HTTP\/1\.1 400/);
  assert.doesNotMatch(bad, /evil/);
  const good = await raw('teller.bank.example:8443');
  assert.match(good, /^HTTP\/1\.1 200/);
  assert.match(good, /"twilsockUri":"ws:\/\/teller\.bank\.example:8443\/v3\/wsconnect"/);
});

test('TASSA_BACKEND=twilio: the same grant for the worker Twilio has, and no endpoint overrides', async () => {
  // A second tassa in front of this one, which plays Twilio's TaskRouter API.
  const JWT_SECRET = 'twilio-mode-caller-secret';
  const remote = await startServer({
    env: {
      TASSA_BACKEND: 'twilio', ACCOUNT_SID: server.creds.accountSid, API_KEY: server.creds.apiKey,
      API_SECRET: server.creds.apiSecret, WORKSPACE_SID: server.workspaceSid,
      TWILIO_SYNC_URL: server.url, TWILIO_TASKROUTER_URL: server.url, JWT_SECRET,
      AUTH_TOKEN: 'x'.repeat(32),
    },
  });
  try {
    const token = jwt.sign({ identity: 'tina', sub: 'tina' }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 });
    const r = await postForm(`${remote.url}/task/get-worker-grant`, { token, identity: 'tina' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.workerSid, tina.sid);
    assert.deepEqual(verified(r.body.workerToken).grants.task_router,
      { workspace_sid: server.workspaceSid, worker_sid: tina.sid, role: 'worker' });
    const c = await decode(await fetch(`${remote.url}/config.json`));
    assert.equal(c.status, 200);
    assert.deepEqual(c.body, {
      backend: 'twilio', syncServiceSid: 'default', workspaceSid: server.workspaceSid,
      sync: { twilsockUri: null, cdsUri: null }, taskrouter: { ebServer: null, wsServer: null },
    });
  } finally {
    await remote.stop();
    remote.cleanup();
  }
});

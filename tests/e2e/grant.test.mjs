// grant.test.mjs - /task/get-sync-grant: CORS, caller-token checks, and the Twilio access token.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { createHmac } from 'node:crypto';
import { startServerAnyPort as startServer, tassa, postForm, decode } from './lib/server.mjs';

let server;
let grantUrl;
let aliceToken;

before(async () => {
  server = await startServer();
  grantUrl = `${server.url}/task/get-sync-grant`;
  aliceToken = tassa(['user-token', 'alice', '--data', server.store], { cwd: server.dataDir }).trim();
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// Checks a successful answer and the access token it carries; returns the decoded payload.
function checkGrant(res, identity = 'alice') {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.authorized, true);
  assert.equal(typeof res.body.syncToken, 'string');
  assert.ok(res.headers.get('access-control-allow-origin'), 'CORS header on the answer');
  const { creds } = server;
  const t = res.body.syncToken;
  const payload = jwt.verify(t, creds.apiSecret, { algorithms: ['HS256'] });
  const { header } = jwt.decode(t, { complete: true });
  assert.equal(header.alg, 'HS256');
  assert.equal(header.typ, 'JWT');
  assert.equal(header.cty, 'twilio-fpa;v=1');
  assert.equal(payload.iss, creds.apiKey);
  assert.match(payload.iss, /^SK[0-9a-f]{32}$/);
  assert.equal(payload.sub, creds.accountSid);
  assert.match(payload.sub, /^AC[0-9a-f]{32}$/);
  assert.equal(typeof payload.iat, 'number');
  assert.ok(Math.abs(payload.iat - now()) <= 5, 'iat is now');
  assert.equal(payload.jti, `${creds.apiKey}-${payload.iat}`);
  assert.equal(payload.exp - payload.iat, 3600);
  assert.equal(payload.grants.identity, identity);
  assert.equal(payload.grants.data_sync.service_sid, 'default');
  // The token must not verify with any other secret (it is really signed with API_SECRET).
  assert.throws(() => jwt.verify(t, creds.jwtSecret, { algorithms: ['HS256'] }));
  return payload;
}

function checkRefused(res, status) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(typeof res.body, 'object');
  assert.equal(res.body.authorized, false);
  assert.equal(typeof res.body.error, 'string');
  assert.ok(res.body.error.length > 0);
  assert.equal(res.body.syncToken, undefined);
  // nothing secret leaks into the error
  const text = JSON.stringify(res.body);
  for (const secret of [server.creds.jwtSecret, server.creds.apiSecret, server.creds.authToken]) {
    assert.ok(!text.includes(secret), 'no secret in the error body');
  }
}

describe('preflight', () => {
  test('OPTIONS answers 204 with the CORS headers and needs no auth', async () => {
    const r = await fetch(grantUrl, {
      method: 'OPTIONS',
      headers: { Origin: 'https://caller.example', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(r.status, 204);
    assert.equal(await r.text(), '');
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    const methods = r.headers.get('access-control-allow-methods');
    assert.ok(methods, 'Allow-Methods present');
    for (const m of ['OPTIONS', 'POST', 'GET']) assert.match(methods, new RegExp(m));
    const hdrs = r.headers.get('access-control-allow-headers');
    assert.ok(hdrs, 'Allow-Headers present');
    assert.match(hdrs, /content-type/i);
    assert.match(hdrs, /authorization/i);
  });
});

describe('success', () => {
  test('token as a form field', async () => {
    const res = await postForm(grantUrl, { token: aliceToken, identity: 'alice' });
    checkGrant(res);
  });

  test('token in a JSON body', async () => {
    const r = await fetch(grantUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token: aliceToken, identity: 'alice' }),
    });
    checkGrant(await decode(r));
  });

  test('token in the query string (GET)', async () => {
    const q = new URLSearchParams({ token: aliceToken, identity: 'alice' });
    checkGrant(await decode(await fetch(`${grantUrl}?${q}`)));
  });

  test('token as Authorization: Bearer', async () => {
    const res = await postForm(grantUrl, { identity: 'alice' }, { Authorization: `Bearer ${aliceToken}` });
    checkGrant(res);
  });

  test('a caller token minted elsewhere with JWT_SECRET (HS256) is accepted', async () => {
    const t = jwt.sign({ identity: 'bob' }, server.creds.jwtSecret, { algorithm: 'HS256', expiresIn: 60 });
    checkGrant(await postForm(grantUrl, { token: t, identity: 'bob' }), 'bob');
  });

  test('the identity falls back to the sub claim', async () => {
    const t = jwt.sign({ sub: 'carol' }, server.creds.jwtSecret, { algorithm: 'HS256', expiresIn: 60 });
    checkGrant(await postForm(grantUrl, { token: t, identity: 'carol' }), 'carol');
  });
});

describe('refusals', () => {
  test('missing token -> 400', async () => {
    checkRefused(await postForm(grantUrl, { identity: 'alice' }), 400);
  });

  test('missing identity -> 400', async () => {
    checkRefused(await postForm(grantUrl, { token: aliceToken }), 400);
  });

  test('empty token and identity -> 400', async () => {
    checkRefused(await postForm(grantUrl, { token: '', identity: '' }), 400);
  });

  test('identity mismatch -> 401', async () => {
    checkRefused(await postForm(grantUrl, { token: aliceToken, identity: 'mallory' }), 401);
  });

  test('expired token -> 401', async () => {
    const t = jwt.sign({ identity: 'alice', iat: now() - 120, exp: now() - 60 }, server.creds.jwtSecret,
      { algorithm: 'HS256' });
    checkRefused(await postForm(grantUrl, { token: t, identity: 'alice' }), 401);
  });

  test('token minted by the CLI with --ttl 1 expires', async () => {
    const t = tassa(['user-token', 'alice', '--ttl', '1', '--data', server.store], { cwd: server.dataDir }).trim();
    const { exp } = jwt.decode(t);
    // wait until the clock is past exp (whole seconds, compared exactly by the server)
    const waitMs = Math.max(0, (exp + 1) * 1000 - Date.now()) + 100;
    assert.ok(waitMs < 2500, `wait ${waitMs} ms is bounded`);
    await new Promise((r) => setTimeout(r, waitMs));
    checkRefused(await postForm(grantUrl, { token: t, identity: 'alice' }), 401);
  });

  test('a token not valid yet (nbf in the future) -> 401', async () => {
    const t = jwt.sign({ identity: 'alice', nbf: now() + 300 }, server.creds.jwtSecret, { algorithm: 'HS256', expiresIn: 600 });
    checkRefused(await postForm(grantUrl, { token: t, identity: 'alice' }), 401);
  });

  test('a string exp does not make a token immortal -> 401', async () => {
    const h = b64url({ alg: 'HS256', typ: 'JWT' });
    const p = b64url({ identity: 'alice', exp: String(now() + 600) });
    const sig = createHmac('sha256', server.creds.jwtSecret).update(`${h}.${p}`).digest('base64url');
    checkRefused(await postForm(grantUrl, { token: `${h}.${p}.${sig}`, identity: 'alice' }), 401);
    // the same token with a numeric exp is fine (the signature code above is right)
    const p2 = b64url({ identity: 'alice', exp: now() + 600 });
    const sig2 = createHmac('sha256', server.creds.jwtSecret).update(`${h}.${p2}`).digest('base64url');
    checkGrant(await postForm(grantUrl, { token: `${h}.${p2}.${sig2}`, identity: 'alice' }));
  });

  test('token signed with another secret -> 401', async () => {
    const t = jwt.sign({ identity: 'alice' }, 'not-the-secret-' + server.creds.jwtSecret, { algorithm: 'HS256', expiresIn: 60 });
    checkRefused(await postForm(grantUrl, { token: t, identity: 'alice' }), 401);
  });

  test('alg none -> 401', async () => {
    const body = b64url({ identity: 'alice', iat: now(), exp: now() + 600 });
    const unsigned = `${b64url({ alg: 'none', typ: 'JWT' })}.${body}.`;
    checkRefused(await postForm(grantUrl, { token: unsigned, identity: 'alice' }), 401);
    // alg none with a signature part copied from a valid token
    const sig = aliceToken.split('.')[2];
    const forged = `${b64url({ alg: 'none', typ: 'JWT' })}.${body}.${sig}`;
    checkRefused(await postForm(grantUrl, { token: forged, identity: 'alice' }), 401);
  });

  test('HS512 token with the right secret -> 401 (alg pinned to HS256)', async () => {
    const t = jwt.sign({ identity: 'alice' }, server.creds.jwtSecret, { algorithm: 'HS512', expiresIn: 60 });
    checkRefused(await postForm(grantUrl, { token: t, identity: 'alice' }), 401);
  });

  test('tampered payload -> 401', async () => {
    const [h, , s] = aliceToken.split('.');
    const t = `${h}.${b64url({ identity: 'mallory', sub: 'mallory', exp: now() + 600 })}.${s}`;
    checkRefused(await postForm(grantUrl, { token: t, identity: 'mallory' }), 401);
  });

  test('garbage token -> 401', async () => {
    checkRefused(await postForm(grantUrl, { token: 'not.a.jwt', identity: 'alice' }), 401);
    checkRefused(await postForm(grantUrl, { token: 'abc', identity: 'alice' }), 401);
  });

  test('refusals carry the CORS header too', async () => {
    const res = await postForm(grantUrl, { token: aliceToken, identity: 'mallory' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  });
});

describe('CORS_ALLOWED_ORIGINS', () => {
  let restricted;
  let url;
  let token;
  before(async () => {
    restricted = await startServer({ env: { CORS_ALLOWED_ORIGINS: 'https://a.example' } });
    url = `${restricted.url}/task/get-sync-grant`;
    token = tassa(['user-token', 'alice', '--data', restricted.store], { cwd: restricted.dataDir }).trim();
  });
  after(async () => {
    await restricted?.stop();
    restricted?.cleanup();
  });

  test('an allowed origin is echoed (preflight and answer)', async () => {
    const pre = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://a.example',
      'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://a.example');
    assert.match(pre.headers.get('vary') || '', /origin/i);
    const res = await postForm(url, { token, identity: 'alice' }, { Origin: 'https://a.example' });
    assert.equal(res.status, 200);
    assert.equal(res.body.authorized, true);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://a.example');
  });

  test('another origin gets no Access-Control-Allow-Origin', async () => {
    for (const origin of ['https://b.example', 'https://a.example.evil', 'http://a.example']) {
      const pre = await fetch(url, { method: 'OPTIONS', headers: { Origin: origin,
        'Access-Control-Request-Method': 'POST' } });
      assert.equal(pre.headers.get('access-control-allow-origin'), null, origin);
      const res = await postForm(url, { token, identity: 'alice' }, { Origin: origin });
      assert.equal(res.headers.get('access-control-allow-origin'), null, origin);
    }
  });
});

// signature.test.mjs - X-Twilio-Signature on /general/router, against the official client.
//
// Every signature here is made by the `twilio` npm package's getExpectedTwilioSignature, the
// function Twilio's own helpers use, for both variants: form parameters, and a JSON body
// whose SHA-256 travels in the URL (bodySHA256) with the signature over the URL alone. A
// changed parameter, body, URL or token, or a missing header, must be refused with 403 and a
// reason, and must write nothing. Behind a proxy the URL Twilio signed is rebuilt from
// PUBLIC_URL, or else from X-Forwarded-Proto and X-Forwarded-Host.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import twilio from 'twilio';
import { startServerAnyPort as startServer, postForm, decode } from './lib/server.mjs';

const hex = (n = 16) => randomBytes(n).toString('hex');
const newSid = (prefix) => `${prefix}${hex()}`;
const newTopic = (label = 'sig') => `${label}-${hex(6)}`;
const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');
const PUBLIC = 'https://tassa.example.com';

let server; // plain, signature URL from the request (and X-Forwarded-*)
let behind; // PUBLIC_URL=https://tassa.example.com

before(async () => {
  [server, behind] = await Promise.all([
    startServer(),
    startServer({ env: { PUBLIC_URL: PUBLIC } }),
  ]);
});

after(async () => {
  const results = await Promise.allSettled([server?.stop(), behind?.stop()]);
  server?.cleanup();
  behind?.cleanup();
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

const routerUrl = (srv = server) => `${srv.url}/general/router`;

function event(topic = newTopic()) {
  return {
    EventType: 'task.created',
    Sid: newSid('EV'),
    TaskSid: newSid('WT'),
    TaskAttributes: JSON.stringify({ topic }),
    Timestamp: String(Math.floor(Date.now() / 1000)),
  };
}

const topicOf = (params) => JSON.parse(params.TaskAttributes).topic;

async function getDoc(topic, srv = server) {
  const r = await fetch(`${srv.url}/v1/Services/default/Documents/${encodeURIComponent(topic)}`,
    { headers: { Authorization: srv.basic() } });
  return decode(r);
}

// Asserts a 403 with a reason, and that the event wrote nothing.
async function assertRefused(res, topic, reason, srv = server) {
  assert.equal(res.status, 403, JSON.stringify(res.body));
  assert.equal(res.body.status, 403);
  assert.equal(typeof res.body.error, 'string');
  assert.match(res.body.error, reason);
  assert.equal((await getDoc(topic, srv)).status, 404, 'a refused event wrote a document');
}

async function assertAccepted(res, topic, srv = server) {
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.status, 'waiting');
  assert.equal((await getDoc(topic, srv)).body.data.status, 'waiting');
}

// POSTs a JSON body to url with the given signature (null: no header).
async function postJson(url, body, signature, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(signature === null ? {} : { 'X-Twilio-Signature': signature }),
      ...headers,
    },
    body,
  });
  return decode(r);
}

describe('form variant', () => {
  test('signed by getExpectedTwilioSignature -> accepted', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), p);
    assert.ok(twilio.validateRequest(server.creds.authToken, sig, routerUrl(), p));
    await assertAccepted(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig }), topicOf(p));
  });

  test('a changed parameter -> 403', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), p);
    const changed = { ...p, TaskSid: newSid('WT') };
    await assertRefused(await postForm(routerUrl(), changed, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i);
  });

  test('an added parameter -> 403', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), p);
    await assertRefused(await postForm(routerUrl(), { ...p, WorkerSid: newSid('WK') },
      { 'X-Twilio-Signature': sig }), topicOf(p), /signature/i);
  });

  test('a signature over another path -> 403', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken,
      `${server.url}/general/other`, p);
    await assertRefused(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i);
  });

  test('a signature over another query string -> 403', async () => {
    const p = event();
    const signedUrl = `${routerUrl()}?attempt=1`;
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, signedUrl, p);
    // posted without the query
    await assertRefused(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i);
    // posted with another value
    await assertRefused(await postForm(`${routerUrl()}?attempt=2`, p, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i);
    // and the right one is accepted
    await assertAccepted(await postForm(signedUrl, p, { 'X-Twilio-Signature': sig }), topicOf(p));
  });

  test('a wrong auth token -> 403', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(hex(), routerUrl(), p);
    await assertRefused(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i);
  });

  test('a missing header -> 403 naming it', async () => {
    const p = event();
    await assertRefused(await postForm(routerUrl(), p), topicOf(p), /missing X-Twilio-Signature/i);
  });

  test('an empty or garbage header -> 403', async () => {
    const p = event();
    for (const sig of ['', 'not-base64!', 'A'.repeat(28), 'x'.repeat(500)]) {
      await assertRefused(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig }),
        topicOf(p), /signature/i);
    }
  });
});

// Issue 9 defect 11: a repeated identical parameter. twilio-node's getExpectedTwilioSignature
// signs it once (new Set); a sender that signs every occurrence (sorted by key, then each
// value, as the algorithm in webhooks.ts does without the Set) must be accepted too.
describe('repeated identical parameters', () => {
  const pairsOf = (p) => [...Object.entries(p), ['Extra', 'x'], ['Extra', 'x']];
  const postPairs = (pairs, sig) => fetch(routerUrl(), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
    body: new URLSearchParams(pairs).toString(),
  }).then(decode);
  // twilio-node's algorithm, every occurrence kept.
  const everyOccurrence = (token, url, pairs) => {
    const sorted = [...pairs].sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
    const data = sorted.reduce((acc, [k, v]) => acc + k + v, url);
    return createHmac('sha1', token).update(Buffer.from(data, 'utf-8')).digest('base64');
  };

  test('signed over every occurrence -> accepted', async () => {
    const p = event();
    const sig = everyOccurrence(server.creds.authToken, routerUrl(), pairsOf(p));
    assert.notEqual(sig, twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), { ...p, Extra: ['x', 'x'] }));
    await assertAccepted(await postPairs(pairsOf(p), sig), topicOf(p));
  });

  test("twilio-node's own signature (one copy) -> still accepted", async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), { ...p, Extra: ['x', 'x'] });
    assert.ok(twilio.validateRequest(server.creds.authToken, sig, routerUrl(), { ...p, Extra: ['x', 'x'] }));
    await assertAccepted(await postPairs(pairsOf(p), sig), topicOf(p));
  });

  test('a signature over two copies does not cover three -> 403', async () => {
    const p = event();
    const sig = everyOccurrence(server.creds.authToken, routerUrl(), pairsOf(p));
    await assertRefused(await postPairs([...pairsOf(p), ['Extra', 'x']], sig), topicOf(p), /signature/i);
  });
});

describe('JSON variant (bodySHA256)', () => {
  function signedJson(params = event(), srv = server, token = srv.creds.authToken) {
    const body = JSON.stringify(params);
    const url = `${routerUrl(srv)}?bodySHA256=${sha256(body)}`;
    const sig = twilio.getExpectedTwilioSignature(token, url, {});
    return { params, body, url, sig };
  }

  test('signature over the URL with bodySHA256 -> accepted', async () => {
    const { params, body, url, sig } = signedJson();
    assert.ok(twilio.validateRequestWithBody(server.creds.authToken, sig, url, body));
    await assertAccepted(await postJson(url, body, sig), topicOf(params));
  });

  test('a changed body (hash no longer matches) -> 403', async () => {
    const { params, url, sig } = signedJson();
    const tampered = JSON.stringify({ ...params, TaskSid: newSid('WT') });
    await assertRefused(await postJson(url, tampered, sig), topicOf(params), /bodySHA256|signature/i);
  });

  test('a changed bodySHA256 in the URL (matching the new body) -> 403', async () => {
    const { params, sig } = signedJson();
    const tampered = JSON.stringify({ ...params, TaskSid: newSid('WT') });
    const url = `${routerUrl()}?bodySHA256=${sha256(tampered)}`;
    await assertRefused(await postJson(url, tampered, sig), topicOf(params), /signature/i);
  });

  test('a wrong auth token -> 403', async () => {
    const { params, body, url, sig } = signedJson(event(), server, hex());
    await assertRefused(await postJson(url, body, sig), topicOf(params), /signature/i);
  });

  test('a missing header -> 403', async () => {
    const { params, body, url } = signedJson();
    await assertRefused(await postJson(url, body, null), topicOf(params), /missing X-Twilio-Signature/i);
  });

  test('a signature over another path -> 403', async () => {
    const { params, body } = signedJson();
    const other = `${server.url}/general/other?bodySHA256=${sha256(body)}`;
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, other, {});
    await assertRefused(await postJson(`${routerUrl()}?bodySHA256=${sha256(body)}`, body, sig),
      topicOf(params), /signature/i);
  });
});

describe('behind a proxy', () => {
  test('PUBLIC_URL: a signature over the public URL is accepted', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(behind.creds.authToken, `${PUBLIC}/general/router`, p);
    await assertAccepted(await postForm(routerUrl(behind), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), behind);
  });

  test('PUBLIC_URL: the public URL with the default port :443 is accepted too', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(behind.creds.authToken,
      'https://tassa.example.com:443/general/router', p);
    await assertAccepted(await postForm(routerUrl(behind), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), behind);
  });

  test('PUBLIC_URL: a signature over the local URL is refused', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(behind.creds.authToken, routerUrl(behind), p);
    await assertRefused(await postForm(routerUrl(behind), p, { 'X-Twilio-Signature': sig }),
      topicOf(p), /signature/i, behind);
  });

  test('PUBLIC_URL: the JSON variant signs the public URL with its query', async () => {
    const p = event();
    const body = JSON.stringify(p);
    const path = `/general/router?bodySHA256=${sha256(body)}`;
    const sig = twilio.getExpectedTwilioSignature(behind.creds.authToken, `${PUBLIC}${path}`, {});
    await assertAccepted(await postJson(`${behind.url}${path}`, body, sig), topicOf(p), behind);
  });

  const forwarded = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'tassa.example.com' };

  test('X-Forwarded-Proto/Host: a signature over the forwarded URL is accepted', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, `${PUBLIC}/general/router`, p);
    await assertAccepted(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig, ...forwarded }),
      topicOf(p));
  });

  test('X-Forwarded-Proto/Host: a signature over the local URL is then refused', async () => {
    const p = event();
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, routerUrl(), p);
    await assertRefused(await postForm(routerUrl(), p, { 'X-Twilio-Signature': sig, ...forwarded }),
      topicOf(p), /signature/i);
  });

  test('X-Forwarded-Proto alone: the scheme changes, the host stays', async () => {
    const p = event();
    const url = `https://127.0.0.1:${server.port}/general/router`;
    const sig = twilio.getExpectedTwilioSignature(server.creds.authToken, url, p);
    await assertAccepted(await postForm(routerUrl(), p,
      { 'X-Twilio-Signature': sig, 'X-Forwarded-Proto': 'https' }), topicOf(p));
  });
});

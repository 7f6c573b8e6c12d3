// sync.test.mjs - Sync Documents REST conformance with plain fetch and Basic auth.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServerAnyPort as startServer, decode, eventually } from './lib/server.mjs';

let server;
let docsUrl;

before(async () => {
  server = await startServer();
  docsUrl = `${server.url}/v1/Services/default/Documents`;
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

const name = (label = 'doc') => `${label}-${randomBytes(6).toString('hex')}`;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

async function api(method, url, { params, headers = {}, auth = server.basic() } = {}) {
  const h = { ...headers };
  if (auth) h.Authorization = auth;
  let body;
  if (params) {
    h['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  return decode(await fetch(url, { method, headers: h, body }));
}

const create = (params, opts) => api('POST', docsUrl, { params, ...opts });
const fetchDoc = (id, opts) => api('GET', `${docsUrl}/${encodeURIComponent(id)}`, opts);
const update = (id, params, opts) => api('POST', `${docsUrl}/${encodeURIComponent(id)}`, { params, ...opts });
const remove = (id, opts) => api('DELETE', `${docsUrl}/${encodeURIComponent(id)}`, opts);

function assertTwilioError(res, status, code) {
  assert.equal(res.status, status, JSON.stringify(res.body));
  assert.equal(res.body.status, status);
  assert.equal(res.body.code, code);
  assert.equal(typeof res.body.message, 'string');
  assert.ok(res.body.message.length > 0);
  assert.equal(res.body.more_info, `https://www.twilio.com/docs/errors/${code}`);
}

describe('documents', () => {
  const uniqueName = name('conf');
  let created;

  test('create -> 201 with every field', async () => {
    const res = await create({ UniqueName: uniqueName, Data: JSON.stringify({ a: 1, nested: { b: [1, 2] } }) });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const d = res.body;
    assert.match(d.sid, /^ET[0-9a-f]{32}$/);
    assert.equal(d.unique_name, uniqueName);
    assert.equal(d.account_sid, server.creds.accountSid);
    assert.match(d.service_sid, /^IS[0-9a-f]{32}$/);
    assert.equal(d.url, `${server.url}/v1/Services/${d.service_sid}/Documents/${d.sid}`);
    assert.equal(d.links.permissions, `${d.url}/Permissions`);
    assert.equal(d.revision, '0');
    assert.deepEqual(d.data, { a: 1, nested: { b: [1, 2] } });
    assert.match(d.date_created, ISO);
    assert.match(d.date_updated, ISO);
    assert.ok(Math.abs(Date.parse(d.date_created) - Date.now()) < 60_000);
    assert.equal(d.date_expires, null);
    assert.equal(d.created_by, 'system');
    assert.equal(res.headers.get('etag'), '0');
    assert.match(res.headers.get('content-type'), /application\/json/);
    created = d;
  });

  test('create without any parameter -> 201 with {} and no unique name', async () => {
    const res = await create({});
    assert.equal(res.status, 201);
    assert.deepEqual(res.body.data, {});
    assert.equal(res.body.unique_name, null);
    assert.equal((await remove(res.body.sid)).status, 204);
  });

  test('fetch by SID and by unique name', async () => {
    const bySid = await fetchDoc(created.sid);
    assert.equal(bySid.status, 200);
    assert.deepEqual(bySid.body, created);
    assert.equal(bySid.headers.get('etag'), '0');
    const byName = await fetchDoc(uniqueName);
    assert.equal(byName.status, 200);
    assert.deepEqual(byName.body, created);
  });

  test('update Data -> revision 1', async () => {
    const res = await update(uniqueName, { Data: JSON.stringify({ a: 2 }) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.revision, '1');
    assert.equal(res.headers.get('etag'), '1');
    assert.deepEqual(res.body.data, { a: 2 });
    assert.equal(res.body.sid, created.sid);
    assert.equal(res.body.date_created, created.date_created);
    const again = await fetchDoc(created.sid);
    assert.equal(again.body.revision, '1');
    assert.deepEqual(again.body.data, { a: 2 });
  });

  test('If-Match: right revision -> 200, wrong -> 412 54103 and nothing changed', async () => {
    const ok = await update(created.sid, { Data: '{"a":3}' }, { headers: { 'If-Match': '1' } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.revision, '2');
    for (const stale of ['1', '0', '7', 'abc']) {
      const bad = await update(created.sid, { Data: '{"a":99}' }, { headers: { 'If-Match': stale } });
      assertTwilioError(bad, 412, 54103);
    }
    const after = await fetchDoc(created.sid);
    assert.equal(after.body.revision, '2');
    assert.deepEqual(after.body.data, { a: 3 });
  });

  test('duplicate unique name -> 409 54301', async () => {
    const res = await create({ UniqueName: uniqueName, Data: '{"dup":true}' });
    assertTwilioError(res, 409, 54301);
    const still = await fetchDoc(uniqueName);
    assert.deepEqual(still.body.data, { a: 3 });
  });

  test('missing document -> 404 with the Twilio error body', async () => {
    const res = await fetchDoc(name('missing'));
    assertTwilioError(res, 404, 20404);
    assert.deepEqual(Object.keys(res.body).sort(), ['code', 'message', 'more_info', 'status']);
    assertTwilioError(await update(name('missing'), { Data: '{}' }), 404, 20404);
    assertTwilioError(await remove(`ET${'0'.repeat(32)}`), 404, 20404);
  });

  test('missing service -> 404', async () => {
    const res = await api('GET', `${server.url}/v1/Services/IS${'0'.repeat(32)}/Documents/x`);
    assertTwilioError(res, 404, 20404);
  });

  test('delete -> 204, then 404', async () => {
    const res = await remove(uniqueName);
    assert.equal(res.status, 204);
    assert.equal(res.body, null);
    assertTwilioError(await fetchDoc(created.sid), 404, 20404);
    assertTwilioError(await remove(created.sid), 404, 20404);
    // the name is free again
    const again = await create({ UniqueName: uniqueName });
    assert.equal(again.status, 201);
    assert.notEqual(again.body.sid, created.sid);
    assert.equal(again.body.revision, '0');
  });

  test('delete with a stale If-Match -> 412, document kept', async () => {
    const n = name('del');
    const c = await create({ UniqueName: n });
    assertTwilioError(await remove(n, { headers: { 'If-Match': '5' } }), 412, 54103);
    assert.equal((await fetchDoc(n)).status, 200);
    assert.equal((await remove(n, { headers: { 'If-Match': c.body.revision } })).status, 204);
  });

  test('Ttl=1: fetchable, then gone', async () => {
    const n = name('ttl');
    const res = await create({ UniqueName: n, Data: '{"t":1}', Ttl: '1' });
    assert.equal(res.status, 201);
    assert.match(res.body.date_expires, ISO);
    const exp = Date.parse(res.body.date_expires);
    assert.ok(exp > Date.now() - 5000 && exp <= Date.now() + 2000, res.body.date_expires);
    const t0 = Date.now();
    const f = await fetchDoc(n);
    assert.equal(f.status, 200);
    assert.deepEqual(f.body.data, { t: 1 });
    await eventually(async () => (await fetchDoc(n)).status === 404, { timeout: 3000, interval: 100 });
    assert.ok(Date.now() - t0 < 3000);
    // and it is gone from the list, and its name is free
    const list = await api('GET', `${docsUrl}?PageSize=100`);
    assert.ok(!list.body.documents.some((d) => d.unique_name === n));
    assert.equal((await create({ UniqueName: n })).status, 201);
  });

  test('bad Ttl -> 400', async () => {
    const res = await create({ UniqueName: name('badttl'), Ttl: 'soon' });
    assertTwilioError(res, 400, 20001);
  });
});

describe('unique names in the URL', () => {
  // Twilio: "{Sid} can be the Document resource's sid or its unique_name"; a client puts the
  // name in the path percent-encoded (encodeURIComponent), and the server must decode it once.
  for (const n of ['sp ace', 'ü-ñame', 'q?x&y=1', 'a+b', '50%off', 'a%41', 'pct%2Fslash', 'a/b']) {
    test(`${JSON.stringify(n)} round-trips: fetch, update, delete by name`, async () => {
      const c = await create({ UniqueName: n, Data: '{"v":0}' });
      if (c.status !== 201) {
        // refusing the name at create is acceptable; accepting it and losing it is not
        assertTwilioError(c, 400, 20001);
        return;
      }
      assert.equal(c.body.unique_name, n);
      const f = await fetchDoc(n);
      assert.equal(f.status, 200, `fetch ${JSON.stringify(n)}: ${JSON.stringify(f.body)}`);
      assert.equal(f.body.sid, c.body.sid);
      const u = await update(n, { Data: '{"v":1}' });
      assert.equal(u.status, 200, JSON.stringify(u.body));
      assert.equal(u.body.sid, c.body.sid);
      assert.equal((await remove(n)).status, 204);
      assert.equal((await fetchDoc(c.body.sid)).status, 404);
    });
  }
});

describe('paging', () => {
  let pager;
  before(async () => {
    // The functions keep their documents (queue-status) in their own service here, so that
    // `default` holds exactly what this test creates.
    pager = await startServer({ env: { SYNC_SERVICE_SID: `IS${'a'.repeat(32)}` } });
  });
  after(async () => {
    await pager?.stop();
    pager?.cleanup();
  });

  test('7 documents, PageSize=3 -> pages of 3, 3, 1 by meta.next_page_url', async () => {
    const url = `${pager.url}/v1/Services/default/Documents`;
    const names = [];
    for (let i = 0; i < 7; i++) {
      const n = `page-${i}`;
      const r = await decode(await fetch(url, { method: 'POST', headers: { Authorization: pager.basic(),
        'Content-Type': 'application/x-www-form-urlencoded' }, body: `UniqueName=${n}&Data=${encodeURIComponent(`{"i":${i}}`)}` }));
      assert.equal(r.status, 201);
      names.push(n);
    }
    const sizes = [];
    const seen = [];
    let next = `${url}?PageSize=3`;
    for (let page = 0; next && page < 5; page++) {
      const r = await decode(await fetch(next, { headers: { Authorization: pager.basic() } }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const { meta, documents } = r.body;
      assert.equal(meta.key, 'documents');
      assert.equal(meta.page, page);
      assert.equal(meta.page_size, 3);
      assert.match(meta.url, /^http:\/\//);
      assert.match(meta.first_page_url, /^http:\/\/.*PageSize=3/);
      if (page === 0) assert.equal(meta.previous_page_url, null);
      else assert.match(meta.previous_page_url, /^http:\/\//);
      if (meta.next_page_url !== null) {
        assert.ok(meta.next_page_url.startsWith(`${pager.url}/v1/Services/default/Documents?`),
          meta.next_page_url);
      }
      sizes.push(documents.length);
      seen.push(...documents.map((d) => d.unique_name));
      next = meta.next_page_url;
    }
    assert.deepEqual(sizes, [3, 3, 1]);
    assert.equal(next, null);
    assert.deepEqual(seen, names);
  });

  test('bad PageSize -> 400', async () => {
    for (const ps of ['0', '101', 'x']) {
      const r = await decode(await fetch(`${pager.url}/v1/Services/default/Documents?PageSize=${ps}`,
        { headers: { Authorization: pager.basic() } }));
      assert.equal(r.status, 400, ps);
      assert.equal(r.body.code, 20001);
    }
  });
});

describe('auth and service', () => {
  test('Basic ACCOUNT_SID:AUTH_TOKEN works', async () => {
    const { accountSid, authToken } = server.creds;
    const auth = 'Basic ' + Buffer.from(`${accountSid}:${authToken}`).toString('base64');
    const n = name('acct');
    const res = await create({ UniqueName: n }, { auth });
    assert.equal(res.status, 201);
    assert.equal((await fetchDoc(n, { auth })).status, 200);
  });

  test('no auth -> 401 20003', async () => {
    const res = await api('GET', docsUrl, { auth: null });
    assertTwilioError(res, 401, 20003);
    assert.match(res.headers.get('www-authenticate') || '', /^Basic/);
    assertTwilioError(await create({ UniqueName: name('noauth') }, { auth: null }), 401, 20003);
  });

  test('wrong secret -> 401, and nothing is created', async () => {
    const { apiKey, accountSid, authToken, apiSecret } = server.creds;
    const n = name('wrong');
    for (const [u, p] of [[apiKey, 'x' + apiSecret], [apiKey, ''], [accountSid, apiSecret], [apiKey, authToken]]) {
      const auth = 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');
      assertTwilioError(await create({ UniqueName: n }, { auth }), 401, 20003);
    }
    assertTwilioError(await create({ UniqueName: n }, { auth: `Bearer ${apiSecret}` }), 401, 20003);
    assertTwilioError(await fetchDoc(n), 404, 20404);
  });

  test('GET /v1/Services/default -> 200 with an IS sid', async () => {
    const res = await api('GET', `${server.url}/v1/Services/default`);
    assert.equal(res.status, 200);
    assert.match(res.body.sid, /^IS[0-9a-f]{32}$/);
    assert.equal(res.body.account_sid, server.creds.accountSid);
    assert.equal(res.body.links.documents, `${server.url}/v1/Services/${res.body.sid}/Documents`);
    const bySid = await api('GET', `${server.url}/v1/Services/${res.body.sid}`);
    assert.equal(bySid.status, 200);
    assert.equal(bySid.body.sid, res.body.sid);
    assertTwilioError(await api('GET', `${server.url}/v1/Services/IS${'f'.repeat(32)}`), 404, 20404);
  });
});

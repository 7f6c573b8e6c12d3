// wire_sync.test.mjs - the official twilio npm client (v5), used exactly as users use it, against
// the embedded Sync engine: only its base URL differs (lib/server.mjs twilioClient).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import twilio from 'twilio';
import { startServerAnyPort as startServer, twilioClient } from './lib/server.mjs';

const { RestException } = twilio;

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

// Asserts that promise rejects with a RestException of the given status and code.
async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof RestException, `RestException, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    assert.equal(e.moreInfo, `https://www.twilio.com/docs/errors/${code}`);
    assert.ok(e.message.length > 0);
    return true;
  });
}

for (const mode of ['api key', 'auth token']) {
  describe(`twilio client (${mode})`, () => {
    let client;
    let docs; // client.sync.v1.services('default').documents
    const prefix = mode === 'api key' ? 'key' : 'tok';

    before(async () => {
      client = await twilioClient(server, { useAuthToken: mode === 'auth token' });
      docs = client.sync.v1.services('default').documents;
    });

    test('services(default).fetch()', async () => {
      const svc = await client.sync.v1.services('default').fetch();
      assert.match(svc.sid, /^IS[0-9a-f]{32}$/);
      assert.equal(svc.accountSid, server.creds.accountSid);
      assert.equal(svc.uniqueName, 'default');
    });

    test('create, fetch by name, update with ifMatch, stale ifMatch -> 412 54103', async () => {
      const uniqueName = `${prefix}-status`;
      const created = await docs.create({ uniqueName, data: { status: 'waiting', n: 1, list: ['a', 'b'] } });
      assert.match(created.sid, /^ET[0-9a-f]{32}$/);
      assert.equal(created.uniqueName, uniqueName);
      assert.equal(created.accountSid, server.creds.accountSid);
      assert.match(created.serviceSid, /^IS[0-9a-f]{32}$/);
      assert.equal(created.revision, '0');
      assert.deepEqual(created.data, { status: 'waiting', n: 1, list: ['a', 'b'] });
      assert.equal(created.createdBy, 'system');
      assert.ok(created.dateCreated instanceof Date && !Number.isNaN(created.dateCreated.getTime()));
      assert.equal(created.dateExpires, null);
      assert.ok(created.links.permissions.endsWith('/Permissions'));

      const fetched = await docs(uniqueName).fetch();
      assert.equal(fetched.sid, created.sid);
      assert.equal(fetched.revision, '0');
      assert.deepEqual(fetched.data, created.data);

      const updated = await docs(created.sid).update({ data: { status: 'assigned' }, ifMatch: fetched.revision });
      assert.equal(updated.revision, '1');
      assert.deepEqual(updated.data, { status: 'assigned' });

      await rejectsWith(docs(created.sid).update({ data: { status: 'lost' }, ifMatch: fetched.revision }), 412, 54103);
      const after = await docs(uniqueName).fetch();
      assert.equal(after.revision, '1');
      assert.deepEqual(after.data, { status: 'assigned' });

      // the instance's own update (context proxy) works too
      const again = await after.update({ data: { status: 'completed' }, ifMatch: after.revision });
      assert.equal(again.revision, '2');
      assert.equal(again.sid, created.sid);
    });

    test('create with ttl sets dateExpires', async () => {
      const d = await docs.create({ uniqueName: `${prefix}-ttl`, data: {}, ttl: 3600 });
      assert.ok(d.dateExpires instanceof Date);
      const delta = d.dateExpires.getTime() - Date.now();
      assert.ok(delta > 3500_000 && delta < 3700_000, `expires in ${delta} ms`);
    });

    test('duplicate unique name -> 409 54301', async () => {
      await docs.create({ uniqueName: `${prefix}-dup` });
      await rejectsWith(docs.create({ uniqueName: `${prefix}-dup` }), 409, 54301);
    });

    test('fetch of a missing document -> 404 20404', async () => {
      await rejectsWith(docs(`${prefix}-missing`).fetch(), 404, 20404);
    });

    // twilio-node puts the name into the path as it is (`/Documents/${sid}`), so a caller
    // whose unique name holds '%' or '/' must encode it, exactly as against Twilio.
    test('a unique name with a percent sign is fetched by its encoded name', async () => {
      const name = `${prefix}-100%41/x`;
      const created = await docs.create({ uniqueName: name, data: { pct: true } });
      assert.equal(created.uniqueName, name);
      const fetched = await docs(encodeURIComponent(name)).fetch();
      assert.equal(fetched.sid, created.sid);
      assert.equal(fetched.uniqueName, name);
    });

    test('remove() -> true, then fetch -> 404, remove again -> 404', async () => {
      const name = `${prefix}-gone`;
      await docs.create({ uniqueName: name, data: { x: 1 } });
      assert.equal(await docs(name).remove(), true);
      await rejectsWith(docs(name).fetch(), 404, 20404);
      await rejectsWith(docs(name).remove(), 404, 20404);
    });
  });
}

describe('paging with the client', () => {
  let pager;
  let docs;
  const names = Array.from({ length: 7 }, (_, i) => `paged-${i}`);

  before(async () => {
    // queue-status lives in the functions' own service, so `default` holds only these.
    pager = await startServer({ env: { SYNC_SERVICE_SID: `IS${'b'.repeat(32)}` } });
    const client = await twilioClient(pager);
    docs = client.sync.v1.services('default').documents;
    for (const [i, uniqueName] of names.entries()) await docs.create({ uniqueName, data: { i } });
  });
  after(async () => {
    await pager?.stop();
    pager?.cleanup();
  });

  test('list({pageSize: 2, limit: 5}) follows next_page_url across pages', async () => {
    const list = await docs.list({ pageSize: 2, limit: 5 });
    assert.deepEqual(list.map((d) => d.uniqueName), names.slice(0, 5));
    assert.deepEqual(list.map((d) => d.data.i), [0, 1, 2, 3, 4]);
  });

  test('list() without a limit returns everything', async () => {
    const all = await docs.list({ pageSize: 3 });
    assert.deepEqual(all.map((d) => d.uniqueName), names);
  });

  test('each() visits every document in order', async () => {
    const seen = [];
    await new Promise((resolve, reject) => {
      docs.each({ pageSize: 2, callback: (d) => seen.push(d.uniqueName), done: (err) => (err ? reject(err) : resolve()) });
    });
    assert.deepEqual(seen, names);
  });

  test('page() and nextPage()', async () => {
    const first = await docs.page({ pageSize: 3 });
    assert.deepEqual(first.instances.map((d) => d.uniqueName), names.slice(0, 3));
    assert.ok(first.nextPageUrl, 'has a next page');
    assert.ok(first.nextPageUrl.startsWith(pager.url), first.nextPageUrl);
    assert.equal(first.previousPageUrl, undefined);
    const second = await first.nextPage();
    assert.deepEqual(second.instances.map((d) => d.uniqueName), names.slice(3, 6));
    const third = await second.nextPage();
    assert.deepEqual(third.instances.map((d) => d.uniqueName), names.slice(6));
    assert.equal(third.nextPageUrl, undefined);
    assert.equal(await third.nextPage(), undefined);
    const back = await third.previousPage();
    assert.deepEqual(back.instances.map((d) => d.uniqueName), names.slice(3, 6));
  });
});

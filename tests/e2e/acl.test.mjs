// acl.test.mjs - Sync access control as Twilio defines it, through the official twilio npm
// client: the service's AclEnabled, document permissions (create/fetch/list/delete, durable),
// enforcement on document and service streams, and the seed's flow (the router grants a
// task's identity read on its topic; TASSA_QUEUE_STATUS_READERS names who reads queue-status).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import jwt from 'jsonwebtoken';
import twilio from 'twilio';
import { startServerAnyPort as startServer, twilioClient, eventually } from './lib/server.mjs';
import { startTwilioTarget } from './lib/backends.mjs';

const { RestException } = twilio;
const now = () => Math.floor(Date.now() / 1000);

// A Twilio access token with a Sync grant (twilio-node's AccessToken shape).
function syncToken(server, identity) {
  const { apiKey, accountSid, apiSecret } = server.creds;
  const iat = now();
  return jwt.sign(
    { jti: `${apiKey}-${iat}`, iss: apiKey, sub: accountSid, iat, exp: iat + 3600,
      grants: { identity, data_sync: { service_sid: 'default' } } },
    apiSecret, { algorithm: 'HS256', header: { cty: 'twilio-fpa;v=1', typ: 'JWT' }, noTimestamp: true });
}

// Opens an SSE stream; resolves once the status is known. Collects parsed events.
function openStream(url) {
  return new Promise((resolve, reject) => {
    const s = { events: [], status: 0, ended: false, body: '', waiters: [] };
    const wake = () => { for (const w of s.waiters.splice(0)) w(); };
    const req = http.get(url, { headers: { Accept: 'text/event-stream' } }, (res) => {
      s.status = res.statusCode;
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk) => {
        if (s.status !== 200) { s.body += chunk; return; }
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = {};
          for (const line of buf.slice(0, i).split('\n')) {
            const m = /^([a-z]+): ?(.*)$/i.exec(line);
            if (m) ev[m[1]] = m[2];
          }
          buf = buf.slice(i + 2);
          if (ev.data !== undefined) { ev.data = JSON.parse(ev.data); s.events.push(ev); }
        }
        wake();
      });
      res.on('close', () => { s.ended = true; wake(); });
      resolve(s);
    });
    req.on('error', reject);
    s.until = (pred, timeout = 5000) => new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`stream condition not met in ${timeout} ms; ` +
        `${s.events.length} events, ended ${s.ended}, status ${s.status}`)), timeout);
      const check = () => { if (pred(s)) { clearTimeout(timer); ok(s); } else s.waiters.push(check); };
      check();
    });
    s.close = () => req.destroy();
  });
}

const docStream = (srv, doc, identity) =>
  openStream(`${srv.url}/v1/Services/default/Documents/${encodeURIComponent(doc)}/Stream?token=${syncToken(srv, identity)}`);
const svcStream = (srv, identity, lastEventId) =>
  openStream(`${srv.url}/v1/Services/default/Stream?token=${syncToken(srv, identity)}` +
    (lastEventId ? `&lastEventId=${lastEventId}` : ''));

// Opens a stream expected to be refused; returns the status and Twilio error body.
async function refused(promise) {
  const s = await promise;
  await s.until((x) => x.ended);
  return { status: s.status, body: JSON.parse(s.body) };
}

async function rejectsWith(promise, status, code) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof RestException, `RestException, got ${e?.constructor?.name}: ${e?.message}`);
    assert.equal(e.status, status);
    if (code) assert.equal(e.code, code);
    return true;
  });
}

let server, client, svc;

before(async () => {
  server = await startServer({ env: { TASSA_QUEUE_STATUS_READERS: 'wallboard, supervisor' } });
  client = await twilioClient(server);
  svc = client.sync.v1.services('default');
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

describe('service AclEnabled', () => {
  test('on for a new data file; update({aclEnabled}) switches it and fetch reports it', async () => {
    assert.equal((await svc.fetch()).aclEnabled, true);
    const off = await svc.update({ aclEnabled: false });
    assert.equal(off.aclEnabled, false);
    assert.equal((await svc.fetch()).aclEnabled, false);
    const on = await svc.update({ aclEnabled: true });
    assert.equal(on.aclEnabled, true);
    assert.equal((await svc.fetch()).aclEnabled, true);
  });

  test('a bad AclEnabled is a 400 and changes nothing', async () => {
    const r = await fetch(`${server.url}/v1/Services/default`, {
      method: 'POST',
      headers: { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'AclEnabled=maybe&FriendlyName=changed',
    });
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.status, 400);
    assert.equal(body.more_info, `https://www.twilio.com/docs/errors/${body.code}`);
    const fetched = await svc.fetch();
    assert.equal(fetched.aclEnabled, true);
    assert.equal(fetched.friendlyName, 'default');
  });

  test('TASSA_SYNC_ACL=false switches it off; streams then need no permission', async () => {
    const open = await startServer({ env: { TASSA_SYNC_ACL: 'false' } });
    try {
      const c = await twilioClient(open);
      assert.equal((await c.sync.v1.services('default').fetch()).aclEnabled, false);
      await c.sync.v1.services('default').documents.create({ uniqueName: 'open-doc', data: { a: 1 } });
      const s = await docStream(open, 'open-doc', 'anyone');
      assert.equal(s.status, 200);
      await s.until((x) => x.events.length >= 1);
      s.close();
    } finally {
      await open.stop();
      open.cleanup();
    }
  });
});

describe('document permissions', () => {
  let doc;
  before(async () => {
    doc = await svc.documents.create({ uniqueName: 'perm-doc', data: { secret: 1 } });
  });

  test('update creates and replaces; fetch and list return Twilio\'s shape', async () => {
    const perms = svc.documents('perm-doc').documentPermissions;
    const p = await perms('alice').update({ read: true, write: false, manage: false });
    assert.deepEqual(
      { accountSid: p.accountSid, serviceSid: p.serviceSid, documentSid: p.documentSid, identity: p.identity,
        read: p.read, write: p.write, manage: p.manage },
      { accountSid: server.creds.accountSid, serviceSid: doc.serviceSid, documentSid: doc.sid, identity: 'alice',
        read: true, write: false, manage: false });
    assert.equal(p.url, `${server.url}/v1/Services/${doc.serviceSid}/Documents/${doc.sid}/Permissions/alice`);
    const replaced = await perms('alice').update({ read: true, write: true, manage: true });
    assert.deepEqual([replaced.read, replaced.write, replaced.manage], [true, true, true]);
    // By SID as well as by unique name.
    const fetched = await svc.documents(doc.sid).documentPermissions('alice').fetch();
    assert.deepEqual([fetched.identity, fetched.read, fetched.write, fetched.manage], ['alice', true, true, true]);
    await perms('bob smith').update({ read: false, write: false, manage: false });
    const list = await perms.list();
    assert.deepEqual(list.map((x) => [x.identity, x.read]), [['alice', true], ['bob smith', false]]);
    // The wire envelope: `permissions` and `meta`.
    const raw = await (await fetch(`${server.url}/v1/Services/default/Documents/perm-doc/Permissions?PageSize=1`,
      { headers: { Authorization: server.basic() } })).json();
    assert.equal(raw.permissions.length, 1);
    assert.equal(raw.meta.key, 'permissions');
    assert.equal(raw.meta.page_size, 1);
    assert.ok(raw.meta.next_page_url);
  });

  test('remove deletes; fetch is then a 404; unknown documents and bad flags are refused', async () => {
    const perms = svc.documents('perm-doc').documentPermissions;
    await perms('bob smith').update({ read: true, write: false, manage: false });
    assert.equal(await perms('bob smith').remove(), true);
    await rejectsWith(perms('bob smith').fetch(), 404, 20404);
    await rejectsWith(perms('bob smith').remove(), 404, 20404);
    await rejectsWith(svc.documents('no-such-doc').documentPermissions('alice').update({ read: true, write: false, manage: false }), 404, 20404);
    await rejectsWith(svc.documents('no-such-doc').documentPermissions.list(), 404, 20404);
    for (const body of ['Read=true&Write=false', 'Read=yes&Write=false&Manage=false']) {
      const r = await fetch(`${server.url}/v1/Services/default/Documents/perm-doc/Permissions/carol`, {
        method: 'POST',
        headers: { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body,
      });
      assert.equal(r.status, 400, body);
    }
    await rejectsWith(perms('carol').fetch(), 404);
    // An identity that is not UTF-8 or holds a control character: 400, nothing stored.
    for (const id of ['bad%FFname', 'bad%C0%AFname', 'line%0Abreak']) {
      const r = await fetch(`${server.url}/v1/Services/default/Documents/perm-doc/Permissions/${id}`, {
        method: 'POST',
        headers: { Authorization: server.basic(), 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'Read=true&Write=false&Manage=false',
      });
      assert.equal(r.status, 400, id);
      assert.equal((await r.json()).status, 400);
    }
    assert.deepEqual((await perms.list()).map((x) => x.identity), ['alice']);
  });

  test('permissions are stored in the data file and go with their document', async () => {
    await svc.documents.create({ uniqueName: 'durable-doc', data: {} });
    await svc.documents('durable-doc').documentPermissions('dora').update({ read: true, write: false, manage: false });
    server = await server.restart();
    client = await twilioClient(server);
    svc = client.sync.v1.services('default');
    const p = await svc.documents('durable-doc').documentPermissions('dora').fetch();
    assert.equal(p.read, true);
    assert.equal((await svc.fetch()).aclEnabled, true);
    await svc.documents('durable-doc').remove();
    const again = await svc.documents.create({ uniqueName: 'durable-doc', data: {} });
    assert.deepEqual(await svc.documents(again.sid).documentPermissions.list(), []);
  });
});

describe('enforcement', () => {
  test('a document stream needs read: 403 without (as for a missing document), 200 with', async () => {
    await svc.documents.create({ uniqueName: 'guarded', data: { v: 1 } });
    for (const name of ['guarded', 'never-created']) {
      const r = await refused(docStream(server, name, 'mallory'));
      assert.equal(r.status, 403, name);
      assert.equal(r.body.code, 20403);
    }
    // write and manage without read are not enough
    await svc.documents('guarded').documentPermissions('mallory').update({ read: false, write: true, manage: true });
    assert.equal((await refused(docStream(server, 'guarded', 'mallory'))).status, 403);

    await svc.documents('guarded').documentPermissions('reader').update({ read: true, write: false, manage: false });
    const s = await docStream(server, 'guarded', 'reader');
    assert.equal(s.status, 200);
    await s.until((x) => x.events.length >= 1);
    assert.deepEqual(s.events[0].data.data, { v: 1 });
    await svc.documents('guarded').update({ data: { v: 2 } });
    await s.until((x) => x.events.length >= 2);
    // Account credentials are not limited by ACL.
    assert.deepEqual((await svc.documents('guarded').fetch()).data, { v: 2 });

    // Revoking read ends the open stream with `access-changed`; a new one is refused.
    await svc.documents('guarded').documentPermissions('reader').remove();
    await s.until((x) => x.ended);
    assert.equal(s.events.at(-1).event, 'access-changed');
    await svc.documents('guarded').update({ data: { v: 3 } });
    assert.ok(s.events.every((e) => e.data?.data?.v !== 3));
    assert.equal((await refused(docStream(server, 'guarded', 'reader'))).status, 403);
  });

  test('switching AclEnabled on ends the open streams of identities without read', async () => {
    await svc.documents.create({ uniqueName: 'was-open', data: { v: 1 } });
    await svc.update({ aclEnabled: false });
    let s;
    try {
      s = await docStream(server, 'was-open', 'passer-by');
      assert.equal(s.status, 200);
      await s.until((x) => x.events.length >= 1);
      await svc.update({ aclEnabled: false }); // no change: the stream stays
      await svc.documents('was-open').update({ data: { v: 2 } });
      await s.until((x) => x.events.length >= 2);
    } finally {
      await svc.update({ aclEnabled: true });
    }
    await s.until((x) => x.ended);
    assert.deepEqual(s.events.map((e) => e.event), ['snapshot', 'update', 'access-changed']);
    assert.equal((await refused(docStream(server, 'was-open', 'passer-by'))).status, 403);
  });

  test('the service stream carries only the documents the token may read, live and on resume', async () => {
    await svc.documents.create({ uniqueName: 'mine', data: { n: 0 } });
    await svc.documents.create({ uniqueName: 'theirs', data: { n: 0 } });
    await svc.documents('mine').documentPermissions('ann').update({ read: true, write: false, manage: false });
    await svc.documents('mine').documentPermissions('boss').update({ read: true, write: false, manage: false });
    await svc.documents('theirs').documentPermissions('boss').update({ read: true, write: false, manage: false });
    const ann = await svcStream(server, 'ann');
    const boss = await svcStream(server, 'boss');
    await ann.until((x) => x.events.length >= 1);
    await boss.until((x) => x.events.length >= 1);
    const ready = ann.events[0].id;
    for (let n = 1; n <= 3; n++) {
      await svc.documents('theirs').update({ data: { n } });
      await svc.documents('mine').update({ data: { n } });
    }
    await svc.documents('theirs').remove();
    await boss.until((x) => x.events.length >= 8);
    await ann.until((x) => x.events.length >= 4);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(ann.events.slice(1).map((e) => [e.data.unique_name, e.data.data.n]), [['mine', 1], ['mine', 2], ['mine', 3]]);
    assert.deepEqual(boss.events.slice(1).map((e) => [e.event, e.data.unique_name]),
      [['update', 'theirs'], ['update', 'mine'], ['update', 'theirs'], ['update', 'mine'],
        ['update', 'theirs'], ['update', 'mine'], ['deleted', 'theirs']]);
    ann.close();
    boss.close();
    // A resume replays only what the identity may read.
    const again = await svcStream(server, 'ann', ready);
    await again.until((x) => x.events.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(again.events.map((e) => [e.data.unique_name, e.data.data.n]), [['mine', 1], ['mine', 2], ['mine', 3]]);
    again.close();
  });
});

describe('the seed\'s flow under ACL', () => {
  let ws, workflow;
  before(async () => {
    ws = client.taskrouter.v1.workspaces(server.workspaceSid);
    const queue = await ws.taskQueues.create({ friendlyName: 'acl-queue', targetWorkers: '1==1' });
    workflow = await ws.workflows.create({
      friendlyName: 'acl-flow',
      configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
    });
  });

  test('the router grants the task\'s identity read on its topic, and nobody else', async () => {
    const topic = `topic-${Date.now()}`;
    await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic, identity: 'cust-7' }) });
    const p = await eventually(async () => {
      const list = await svc.documents(topic).documentPermissions.list();
      return list.find((x) => x.identity === 'cust-7');
    }, { timeout: 5000 });
    assert.deepEqual([p.read, p.write, p.manage], [true, false, false]);
    const mine = await docStream(server, topic, 'cust-7');
    assert.equal(mine.status, 200);
    await mine.until((x) => x.events.length >= 1);
    assert.equal(mine.events[0].data.data.status, 'waiting');
    mine.close();
    const other = await refused(docStream(server, topic, 'cust-8'));
    assert.equal(other.status, 403);
  });

  test('queue-status is readable by TASSA_QUEUE_STATUS_READERS only', async () => {
    await eventually(async () => (await svc.documents('queue-status').documentPermissions.list()).length === 2,
      { timeout: 5000 });
    const readers = (await svc.documents('queue-status').documentPermissions.list()).map((x) => x.identity);
    assert.deepEqual(readers.sort(), ['supervisor', 'wallboard']);
    const s = await docStream(server, 'queue-status', 'wallboard');
    assert.equal(s.status, 200);
    await s.until((x) => x.events.length >= 1);
    assert.ok('pendingTasks' in s.events[0].data.data);
    s.close();
    assert.equal((await refused(docStream(server, 'queue-status', 'cust-7'))).status, 403);
  });
});

describe('the seed\'s flow over the twilio back end', () => {
  let target;
  before(async () => { target = await startTwilioTarget(); });
  after(async () => { await target?.stop(); });

  test('the router POSTs Twilio\'s Permissions endpoint for the task\'s identity', async () => {
    const ws = target.tr.taskrouter.v1.workspaces(target.ws);
    const queue = await ws.taskQueues.create({ friendlyName: 'acl-remote', targetWorkers: '1==1' });
    const workflow = await ws.workflows.create({
      friendlyName: 'acl-remote',
      configuration: JSON.stringify({ task_routing: { filters: [], default_filter: { queue: queue.sid } } }),
    });
    const topic = `remote-${Date.now()}`;
    await ws.tasks.create({ workflowSid: workflow.sid, attributes: JSON.stringify({ topic, identity: 'cust-remote' }) });
    const holder = target.tr.sync.v1.services('default');
    const p = await eventually(async () =>
      (await holder.documents(topic).documentPermissions.list()).find((x) => x.identity === 'cust-remote'),
    { timeout: 8000, interval: 100 });
    assert.deepEqual([p.read, p.write, p.manage], [true, false, false]);
    const s = await docStream(target.holder, topic, 'cust-remote');
    assert.equal(s.status, 200);
    await s.until((x) => x.events.length >= 1);
    s.close();
  });
});

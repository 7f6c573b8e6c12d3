// metrics.test.mjs - /metrics: strict Prometheus text, counters that agree with a scripted
// run (requests, router events, documents, commits, streams, TaskRouter gauges), and access
// limited to loopback or a bearer token.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { networkInterfaces } from 'node:os';
import { randomBytes } from 'node:crypto';
import twilio from 'twilio';
import { startServerAnyPort as startServer, postForm, eventually, twilioClient, tassa } from './lib/server.mjs';
import { parseProm } from './lib/prom.mjs';

let server;
let scrapes = 0;

before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); server?.cleanup(); });

async function scrape(headers = {}, base = server.url) {
  const r = await fetch(`${base}/metrics`, { headers });
  scrapes++;
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseProm(await r.text());
}

test('the parser is strict (the checks can fail)', () => {
  assert.throws(() => parseProm('x 1\n'), /no # TYPE/);
  assert.throws(() => parseProm('# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n'), /duplicate/);
  assert.throws(() => parseProm('# TYPE x counter\nx{a=1} 1\n'), /not quoted/);
  assert.throws(() => parseProm('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /cumulative/);
  assert.throws(() => parseProm('# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'), /_count/);
  assert.throws(() => parseProm('# TYPE x counter\nx 1'), /final newline/);
  assert.equal(parseProm('# HELP x a\n# TYPE x counter\nx{a="q\\""} 3\n').get('x', { a: 'q"' }), 3);
});

test('/metrics parses and carries every family the issue lists', async () => {
  const m = await scrape();
  for (const [name, type] of [
    ['tassa_http_requests_total', 'counter'], ['tassa_http_request_duration_seconds', 'histogram'],
    ['tassa_router_events_total', 'counter'], ['tassa_sync_documents_written_total', 'counter'],
    ['tassa_store_commit_batch_size', 'histogram'], ['tassa_store_commit_duration_seconds', 'histogram'],
    ['tassa_stream_clients', 'gauge'], ['tassa_stream_clients_dropped_total', 'counter'],
    ['tassa_outbox_depth', 'gauge'], ['tassa_outbox_delivery_failures_total', 'counter'],
    ['tassa_taskrouter_tasks', 'gauge'], ['tassa_taskrouter_workers', 'gauge'],
    ['tassa_backend_rest_calls_total', 'counter'], ['tassa_backend_rest_retries_total', 'counter'],
    ['tassa_draining', 'gauge'],
  ]) {
    assert.equal(m.families.get(name)?.type, type, name);
    assert.ok(m.families.get(name).help, `${name} has HELP`);
  }
  assert.equal(m.get('tassa_draining'), 0);
});

test('HTTP counters and latency histograms agree with the requests sent', async () => {
  // Start from a scrape that counts every earlier one (the scrapes of the tests before this
  // one; each is counted when its answer is queued, before the client can read it).
  let before0;
  await eventually(async () => {
    before0 = await scrape();
    return before0.get('tassa_http_requests_total', { route: '/metrics', status: '200' }) === scrapes - 1;
  });
  const healthBefore = before0.get('tassa_http_requests_total', { route: '/healthz', status: '200' });
  const metricsBefore = before0.get('tassa_http_requests_total', { route: '/metrics', status: '200' });
  for (let i = 0; i < 7; i++) assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${server.url}/no-such-page-${i}.js`)).status, 404);
  const m = await scrape();
  assert.equal(m.get('tassa_http_requests_total', { route: '/healthz', status: '200', method: 'GET' }) - healthBefore, 7);
  assert.equal(m.get('tassa_http_request_duration_seconds_count', { route: '/healthz' }) - healthBefore, 7);
  assert.equal(m.get('tassa_http_requests_total', { route: '/{}', status: '404' }) - before0.get('tassa_http_requests_total', { route: '/{}', status: '404' }), 3);
  // this scrape is counted when it ends: the previous one is in
  assert.equal(m.get('tassa_http_requests_total', { route: '/metrics', status: '200' }) - metricsBefore, 1);
});

// GET path on a connection of its own (no keep-alive): its whole body read, then the status.
function getFresh(path) {
  return new Promise((resolve, reject) => {
    http.get(`${server.url}${path}`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('a request whose answer was read is in the next scrape, from another connection', async () => {
  // Each request and each scrape on a connection of its own, so on different server threads:
  // a request counted only once its connection is done with it could still be missing.
  const healthz = async () => parseProm((await getFresh('/metrics')).body)
    .get('tassa_http_requests_total', { route: '/healthz', status: '200', method: 'GET' });
  const base = await healthz();
  for (let i = 1; i <= 150; i++) {
    assert.equal((await getFresh('/healthz')).status, 200);
    assert.equal(await healthz(), base + i, `request ${i}`);
  }
});

test('documents written and group commits agree with the Sync writes', async () => {
  const auth = { Authorization: server.basic() };
  const m0 = await scrape();
  const docs0 = m0.get('tassa_sync_documents_written_total');
  const commits0 = m0.get('tassa_store_commit_batch_size_count');
  const base = `${server.url}/v1/Services/default/Documents`;
  for (let i = 0; i < 5; i++) {
    const r = await postForm(base, { UniqueName: `metrics-doc-${i}`, Data: JSON.stringify({ i }) }, auth);
    assert.equal(r.status, 201);
  }
  const r = await postForm(`${base}/metrics-doc-0`, { Data: '{"i":10}' }, auth);
  assert.equal(r.status, 200);
  const bad = await postForm(base, { UniqueName: 'metrics-doc-1', Data: '{}' }, auth); // duplicate
  assert.equal(bad.status, 409);
  const m = await scrape();
  assert.equal(m.get('tassa_sync_documents_written_total') - docs0, 6);
  const commits = m.get('tassa_store_commit_batch_size_count') - commits0;
  assert.ok(commits >= 1 && commits <= 6, `commits ${commits}`);
  assert.ok(m.get('tassa_store_commit_batch_size_sum') >= 6);
  assert.equal(m.get('tassa_store_commit_duration_seconds_count'), m.get('tassa_store_commit_batch_size_count'));
});

test('router events by type and outcome agree with the events posted', async () => {
  const url = `${server.url}/general/router`;
  const post = (type) => {
    const p = { EventType: type, Sid: `EV${randomBytes(16).toString('hex')}`, AccountSid: server.creds.accountSid };
    return postForm(url, p, { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(server.creds.authToken, url, p) });
  };
  const m0 = await scrape();
  const handled0 = m0.get('tassa_router_events_total', { type: 'worker.activity.update', outcome: 'handled' });
  const other0 = m0.get('tassa_router_events_total', { type: 'other', outcome: 'ignored' });
  for (let i = 0; i < 3; i++) assert.equal((await post('worker.activity.update')).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await post(`made.up.${i}`)).body.ignored, true);
  const m = await scrape();
  assert.equal(m.get('tassa_router_events_total', { type: 'worker.activity.update', outcome: 'handled' }) - handled0, 3);
  assert.equal(m.get('tassa_router_events_total', { type: 'other', outcome: 'ignored' }) - other0, 2);
});

test('TaskRouter gauges count tasks by status and workers by activity', async () => {
  const client = await twilioClient(server);
  const ws = client.taskrouter.v1.workspaces(server.workspaceSid);
  const q = await ws.taskQueues.create({ friendlyName: 'MetricsQ', targetWorkers: '1==1' });
  const wf = await ws.workflows.create({ friendlyName: 'MetricsWF', configuration: JSON.stringify({ task_routing: { default_filter: { queue: q.sid } } }) });
  await ws.workers.create({ friendlyName: 'metrics-w1' });
  await ws.workers.create({ friendlyName: 'metrics-w2' });
  await ws.tasks.create({ attributes: '{}', workflowSid: wf.sid });
  await ws.tasks.create({ attributes: '{}', workflowSid: wf.sid });
  const workers = await ws.workers.list();
  const offline = workers.filter((w) => w.activityName === 'Offline').length;
  await eventually(async () => {
    const m = await scrape();
    return m.get('tassa_taskrouter_tasks', { status: 'pending' }) === 2 &&
      m.get('tassa_taskrouter_workers', { activity: 'Offline' }) === offline &&
      m.get('tassa_taskrouter_workers', { activity: 'Available' }) === workers.length - offline;
  }, { timeout: 8000, interval: 200 });
});

test('stream clients are a gauge that follows connects and disconnects', async () => {
  const caller = tassa(['user-token', 'alice', '--data', server.store], { cwd: server.dataDir }).trim();
  const grant = await postForm(`${server.url}/task/get-sync-grant`, { token: caller, identity: 'alice' });
  assert.equal(grant.status, 200);
  // Sync ACL is on: alice may stream the document once she holds read on it.
  const client = await twilioClient(server);
  const svc = client.sync.v1.services('default');
  await svc.documents.create({ uniqueName: 'metrics-stream-doc', data: {} });
  await svc.documents('metrics-stream-doc').documentPermissions('alice').update({ read: true, write: false, manage: false });
  const route = { route: '/v1/Services/{}/Documents/{}/Stream', status: '200', method: 'GET' };
  const m0 = await scrape();
  const base = m0.get('tassa_stream_clients', { transport: 'sse' });
  const streams0 = m0.get('tassa_http_requests_total', route);
  const res = await new Promise((resolve, reject) => {
    http.get(`${server.url}/v1/Services/default/Documents/metrics-stream-doc/Stream`,
      { headers: { Accept: 'text/event-stream', Authorization: `Bearer ${grant.body.syncToken}` } }, resolve).on('error', reject);
  });
  assert.equal(res.statusCode, 200);
  // A request is counted when its answer is queued: the open stream already, at once.
  assert.equal((await scrape()).get('tassa_http_requests_total', route), streams0 + 1);
  await eventually(async () => (await scrape()).get('tassa_stream_clients', { transport: 'sse' }) === base + 1);
  res.destroy();
  await eventually(async () => (await scrape()).get('tassa_stream_clients', { transport: 'sse' }) === base, { timeout: 30000, interval: 200 });
});

test('access: loopback by default; with TASSA_METRICS_TOKEN only the bearer', async () => {
  const addr = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  const token = randomBytes(16).toString('hex');
  const s = await startServer({ args: ['--bind', '0.0.0.0'] });
  const t = await startServer({ env: { TASSA_METRICS_TOKEN: token } });
  try {
    if (addr) {
      const r = await fetch(`http://${addr}:${s.port}/metrics`);
      assert.equal(r.status, 403, 'not loopback');
      assert.doesNotMatch(await r.text(), /tassa_http/);
      assert.equal((await fetch(`http://127.0.0.1:${s.port}/metrics`)).status, 200);
    }
    assert.equal((await fetch(`${t.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${t.url}/metrics`, { headers: { Authorization: `Bearer ${token}x` } })).status, 401);
    assert.equal((await fetch(`${t.url}/metrics`, { headers: { Authorization: 'Bearer ' } })).status, 401);
    const ok = await fetch(`${t.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    assert.ok(parseProm(await ok.text()).families.size > 10);
  } finally {
    await s.stop(); s.cleanup();
    await t.stop(); t.cleanup();
  }
});

test('twilio back end: REST calls and retries agree with what Twilio saw', async () => {
  const { startFaultProxy } = await import('./lib/fault_proxy.mjs');
  const standIn = await startServer();
  const proxy = await startFaultProxy(standIn.url);
  const authToken = randomBytes(16).toString('hex');
  const remote = await startServer({
    env: {
      TASSA_BACKEND: 'twilio', ACCOUNT_SID: standIn.creds.accountSid, API_KEY: standIn.creds.apiKey,
      API_SECRET: standIn.creds.apiSecret, WORKSPACE_SID: standIn.workspaceSid,
      TWILIO_SYNC_URL: proxy.url, TWILIO_TASKROUTER_URL: proxy.url, AUTH_TOKEN: authToken,
      JWT_SECRET: randomBytes(24).toString('hex'), TASSA_HTTP_TIMEOUT_MS: '2000',
    },
  });
  try {
    const topic = `mt-${randomBytes(4).toString('hex')}`;
    const rule = proxy.inject({ method: 'GET', path: new RegExp(`/Documents/${topic}$`), fault: '500' });
    const url = `${remote.url}/general/router`;
    const p = { EventType: 'task.created', Sid: `EV${randomBytes(16).toString('hex')}`, AccountSid: standIn.creds.accountSid,
      TaskSid: `WT${randomBytes(16).toString('hex')}`, TaskAttributes: JSON.stringify({ topic }) };
    const r = await postForm(url, p, { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(authToken, url, p) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(rule.hits, 1);
    // Only remote talks to the proxy, from its start: every request the proxy saw is a call or
    // a retry. Background refreshes (queue-status) may be half done: wait until they end.
    let m, calls, retries, seen;
    await eventually(async () => {
      m = await scrape({}, remote.url);
      seen = proxy.count(null, /./);
      retries = m.get('tassa_backend_rest_retries_total');
      calls = m.get('tassa_backend_rest_calls_total');
      if (calls + retries !== seen) throw new Error(`calls ${calls} retries ${retries} seen ${seen}`);
      return true;
    }, { timeout: 10000, interval: 100 });
    assert.ok(retries >= 1, 'the 500 was retried');
    assert.ok(m.get('tassa_backend_rest_calls_total', { outcome: 'ok' }) >= 1);
    assert.equal(m.get('tassa_router_events_total', { type: 'task.created', outcome: 'handled' }), 1);
  } finally {
    await remote.stop(); remote.cleanup();
    await proxy.close();
    await standIn.stop(); standIn.cleanup();
  }
});

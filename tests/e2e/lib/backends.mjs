// backends.mjs - the two ways to run the seed's functions on real routing, as test targets,
// plus small HTTP helpers (a recording callback receiver, a recording relay).
//
// A target is what a suite needs to drive the functions against TaskRouter and read Sync:
//   { label, fnUrl, tr (twilio client on the TaskRouter/Sync holder), ws (workspace SID),
//     holder (the server holding TaskRouter and Sync), grantKeys {accountSid, apiKey,
//     apiSecret}, callerToken(identity), syncDoc(name), routed(sid), stop() }
// - embedded: one tassa; the engine feeds /general/router in-process.
// - twilio:   a stand-in tassa (embedded) holds TaskRouter and Sync; a second tassa runs with
//             the twilio back end against it, and the stand-in's EventCallbackUrl points at
//             the second tassa's /general/router through a relay that records the answers.
import http from 'node:http';
import { startServerAnyPort as startServer, twilioClient, tassa, decode } from './server.mjs';

// A caller JWT minted by `tassa user-token` from a data file's JWT_SECRET.
function mintToken(server, identity) {
  return tassa(['user-token', identity, '--data', server.store], { cwd: server.dataDir }).trim();
}

// A Sync document's data on server's `default` service, or null when there is none.
async function fetchDoc(server, name) {
  const r = await fetch(`${server.url}/v1/Services/default/Documents/${encodeURIComponent(name)}`,
    { headers: { Authorization: server.basic() } });
  const res = await decode(r);
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`document ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

// Stops servers (all of them even when one fails) and removes their data; rejects with the
// first failure (a non-zero exit, e.g. a sanitizer report).
export async function stopAll(...servers) {
  const results = await Promise.allSettled(servers.map((s) => s?.stop()));
  for (const s of servers) s?.cleanup?.();
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

// One embedded tassa: functions, TaskRouter and Sync in one process.
export async function startEmbeddedTarget() {
  const server = await startServer();
  const tr = await twilioClient(server);
  return {
    label: 'embedded',
    fnUrl: server.url,
    routerUrl: `${server.url}/general/router`,
    authToken: server.creds.authToken,
    tr,
    ws: server.workspaceSid,
    holder: server,
    servers: [server],
    grantKeys: { accountSid: server.creds.accountSid, apiKey: server.creds.apiKey, apiSecret: server.creds.apiSecret },
    callerToken: (identity) => mintToken(server, identity),
    syncDoc: (name) => fetchDoc(server, name),
    // The in-process router sees every engine event before the REST call that caused it
    // returns; there is no wire to observe.
    routed: () => null,
    stop: () => stopAll(server),
  };
}

// A relay in front of a server's /general/router: forwards each POST with its Host header
// unchanged (so the signed URL is the relay's, as the sender used it) and records
// { sid, type, status, body (parsed answer) } per request.
export async function startRelay(targetUrl) {
  const upstream = new URL(targetUrl);
  const answers = [];
  const srv = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const params = new URLSearchParams(body.toString());
    const headers = { ...req.headers, 'content-length': String(body.length) };
    const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (r) => {
        const out = [];
        r.on('data', (c) => out.push(c));
        r.on('end', () => {
          const text = Buffer.concat(out).toString();
          let parsed = text;
          try { parsed = JSON.parse(text); } catch { /* not JSON */ }
          answers.push({ sid: params.get('Sid'), type: params.get('EventType'), taskSid: params.get('TaskSid'),
            status: r.statusCode, body: parsed });
          res.writeHead(r.statusCode, { 'Content-Type': r.headers['content-type'] || 'application/json' });
          res.end(text);
        });
      });
    up.on('error', (e) => {
      answers.push({ sid: params.get('Sid'), type: params.get('EventType'), status: 0, body: String(e) });
      res.writeHead(502);
      res.end();
    });
    up.end(body);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${srv.address().port}`,
    answers,
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()); }),
  };
}

// A stand-in tassa (embedded) and a second tassa with the twilio back end pointed at it.
// The second tassa validates X-Twilio-Signature with the stand-in's auth token, since the
// stand-in signs its callbacks with its own.
export async function startTwilioTarget() {
  const standIn = await startServer();
  const tr = await twilioClient(standIn);
  const { accountSid, apiKey, apiSecret, authToken, jwtSecret } = standIn.creds;
  // `--backend twilio` rather than TASSA_BACKEND in the environment: startServer reads the
  // data file's credentials with `tassa credentials`, which refuses under TASSA_BACKEND=twilio.
  const second = await startServer({
    args: ['--backend', 'twilio'],
    env: {
      ACCOUNT_SID: accountSid, API_KEY: apiKey, API_SECRET: apiSecret,
      WORKSPACE_SID: standIn.workspaceSid,
      TWILIO_TASKROUTER_URL: standIn.url, TWILIO_SYNC_URL: standIn.url,
      AUTH_TOKEN: authToken, JWT_SECRET: jwtSecret,
    },
  });
  if (!/event=listening .*backend=twilio/.test(second.log)) {
    await stopAll(second, standIn);
    throw new Error(`the second tassa did not start with the twilio back end:\n${second.log}`);
  }
  const relay = await startRelay(second.url);
  const routerUrl = `${relay.url}/general/router`;
  await tr.taskrouter.v1.workspaces(standIn.workspaceSid).update({ eventCallbackUrl: routerUrl });
  return {
    label: 'twilio',
    fnUrl: second.url,
    routerUrl,
    authToken,
    tr,
    ws: standIn.workspaceSid,
    holder: standIn,
    second,
    relay,
    servers: [second, standIn],
    grantKeys: { accountSid, apiKey, apiSecret },
    callerToken: (identity) => mintToken(standIn, identity),
    syncDoc: (name) => fetchDoc(standIn, name),
    // The second tassa's router answer for the event with this Sid, once delivered.
    routed: (sid) => relay.answers.find((a) => a.sid === sid) || null,
    async stop() {
      try {
        await stopAll(second, standIn);
      } finally {
        await relay.close();
      }
    },
  };
}

// A local HTTP receiver on 127.0.0.1 that records every request: { method, url, headers,
// raw, params (an object of the form fields), at }. respond(req, record) may return a status
// (default 204). port 0 picks a free one.
export async function startReceiver({ port = 0, respond } = {}) {
  const requests = [];
  const srv = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();
    const record = {
      method: req.method, url: req.url, headers: req.headers, raw,
      params: Object.fromEntries(new URLSearchParams(raw)), at: Date.now(),
    };
    const status = (respond && respond(record)) || 204;
    record.status = status;
    requests.push(record);
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end();
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  return {
    port: srv.address().port,
    url: `http://127.0.0.1:${srv.address().port}`,
    requests,
    close: () => new Promise((resolve) => { srv.closeAllConnections?.(); srv.close(() => resolve()); }),
  };
}

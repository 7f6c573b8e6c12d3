// server.mjs - starts a real `tassa serve` on a free port and a temporary data file.
//
// Every e2e test talks to the real binary over real sockets. The binary is the one CMake
// built (TASSA_BIN, set by ctest); under AddressSanitizer a non-zero exit at stop() fails
// the test, so memory errors and leaks surface as test failures.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.TASSA_BIN || join(here, '../../../build/tassa');

// The environment a server starts with: nothing of the caller's tassa settings leaks in.
function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PORT|TASSA_|ACCOUNT_SID|API_KEY|API_SECRET|AUTH_TOKEN|JWT_SECRET|SYNC_SERVICE_SID|WORKSPACE_SID|TWILIO_|CORS_|PUBLIC_URL)/.test(k)) continue;
    env[k] = v;
  }
  env.ASAN_OPTIONS = env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0';
  env.UBSAN_OPTIONS = env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1';
  return { ...env, ...extra };
}

// Runs a tassa sub-command (user-token, credentials, event) and returns its stdout.
export function tassa(args, { env = {}, cwd } = {}) {
  return execFileSync(BIN, args, { env: cleanEnv(env), cwd, encoding: 'utf8' });
}

// Parses `tassa credentials` output into an object.
function readCredentials(dataFile, env, cwd) {
  const out = tassa(['credentials', '--data', dataFile], { env, cwd });
  const creds = Object.fromEntries(out.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  return {
    accountSid: creds.ACCOUNT_SID, apiKey: creds.API_KEY, apiSecret: creds.API_SECRET,
    authToken: creds.AUTH_TOKEN, jwtSecret: creds.JWT_SECRET,
  };
}

// Starts a server. opts: { env, args, dataDir (reuse a previous server's), port }.
export async function startServer(opts = {}) {
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), 'tassa-e2e-'));
  const dataFile = join(dataDir, 'tassa.db');
  const env = { ...(opts.env || {}) };
  const args = ['serve', '--port', String(opts.port || 0), '--data', dataFile, '--quiet',
    ...(opts.args || [])];
  const child = spawn(BIN, args, { env: cleanEnv(env), cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tassa did not start:\n${log}`)), 15000);
    const onData = (chunk) => {
      log += chunk;
      const m = /event=listening url=http:\/\/[^:]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (c) => { log += c; });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`tassa exited ${code}:\n${log}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  let creds;
  try {
    creds = readCredentials(dataFile, env, dataDir);
  } catch (e) {
    child.kill('SIGKILL'); // never leave a server behind a failed start
    throw e;
  }
  const server = {
    url, port, dataDir, dataFile, creds, child, opts,
    get log() { return log; },
    // SIGTERM and wait; rejects when the server did not exit cleanly (sanitizer reports).
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const { code, signal } = await exited;
      if (code !== 0) throw new Error(`tassa exited with ${code ?? signal}:\n${log.slice(-4000)}`);
    },
    // kill -9: no chance to flush anything.
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    // A new process on the same data file (same port when possible).
    async restart(extra = {}) {
      await server.stop();
      return startServer({ ...opts, dataDir, ...extra });
    },
    cleanup() { rmSync(dataDir, { recursive: true, force: true }); },
    // Basic auth header for the /v1 API.
    basic() {
      return 'Basic ' + Buffer.from(`${creds.apiKey}:${creds.apiSecret}`).toString('base64');
    },
  };
  // The workspace SID (the TaskRouter engine creates one at first start), when there is one.
  try {
    const r = await fetch(`${url}/v1/Workspaces`, { headers: { Authorization: server.basic() } });
    if (r.ok) server.workspaceSid = (await r.json()).workspaces?.[0]?.sid;
  } catch { /* no TaskRouter yet */ }
  return server;
}

// A twilio npm client whose requests go to the local server (TWILIO-NOTES section 6).
export async function twilioClient(server, { useAuthToken = false } = {}) {
  const twilio = (await import('twilio')).default;
  class LocalHttpClient {
    constructor() { this.inner = new twilio.RequestClient(); }
    request(o) {
      o.uri = o.uri.replace(/^https:\/\/[a-z0-9.-]+\.twilio\.com/, server.url);
      return this.inner.request(o);
    }
  }
  const { accountSid, apiKey, apiSecret, authToken } = server.creds;
  return useAuthToken
    ? twilio(accountSid, authToken, { httpClient: new LocalHttpClient() })
    : twilio(apiKey, apiSecret, { accountSid, httpClient: new LocalHttpClient() });
}

// POSTs form parameters; returns { status, body (parsed JSON or text), headers }.
export async function postForm(url, params, headers = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
  return decode(r);
}

// Decodes a fetch Response into { status, body, headers }.
export async function decode(r) {
  const text = await r.text();
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, body, headers: r.headers };
}

// Polls fn until it returns a truthy value or the timeout passes.
export async function eventually(fn, { timeout = 5000, interval = 25 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`condition not met in ${timeout} ms: ${last}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

// A port the OS reports free right now (closed again before it is returned).
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// startServer, but tolerant of a binary that refuses `--port 0`: it then picks a free port
// itself (retrying if another process took it meanwhile). restart() keeps that port.
export async function startServerAnyPort(opts = {}) {
  if (opts.port !== undefined) return startServer(opts);
  opts = { ...opts, dataDir: opts.dataDir || mkdtempSync(join(tmpdir(), 'tassa-e2e-')) };
  try {
    return await startServer(opts);
  } catch (e) {
    if (!/PORT must be/.test(String(e.message))) throw e;
  }
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await startServer({ ...opts, port });
    } catch (e) {
      if (attempt >= 4 || !/cannot listen/.test(String(e.message))) throw e;
    }
  }
}

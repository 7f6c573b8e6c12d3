// server.mjs - starts a real `tassa serve` on a free port and a temporary data file.
//
// The store: a data file tassa.db in the server's dataDir, or, in the suite's PostgreSQL run
// (TASSA_TEST_STORE=pg, see lib/pg.mjs), a fresh database in the shared cluster whose URL is
// kept in the dataDir (pg-store.url), so a server started again on the same dataDir (restart,
// or startServer({ dataDir })) opens the same database. server.store is the file path or the
// URL: pass it to `--data` of tassa sub-commands.
//
// Every e2e test talks to the real binary over real sockets. The binary is the one CMake
// built (TASSA_BIN, set by ctest); under AddressSanitizer a non-zero exit at stop() fails
// the test, so memory errors and leaks surface as test failures.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { SUITE_PG, createSuiteDb, dropSuiteDb, psql } from './pg.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.TASSA_BIN || join(here, '../../../build/tassa');

// Which store this run uses: 'sqlite' or 'pg'.
export const STORE_KIND = SUITE_PG ? 'pg' : 'sqlite';

// Options for a test that is about the SQLite data file itself: skipped in the PostgreSQL run
// with the reason. The one list of such tests: grep for sqliteOnly.
export function sqliteOnly(reason) {
  return SUITE_PG ? { skip: `SQLite only: ${reason}` } : {};
}

// The store of a dataDir: its data file, or its PostgreSQL database (created at first use).
export function storeOf(dataDir) {
  if (!SUITE_PG) return join(dataDir, 'tassa.db');
  const keep = join(dataDir, 'pg-store.url');
  if (existsSync(keep)) return readFileSync(keep, 'utf8').trim();
  const url = createSuiteDb();
  writeFileSync(keep, url);
  return url;
}

// Runs one SELECT straight on a store (sqlite3 on the data file, psql on the database), outside
// tassa; returns its rows as text, one a line, columns separated by |.
export function storeQuery(store, sql) {
  const [cmd, args] = SUITE_PG ? [psql(), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', store, '-c', sql]]
    : ['sqlite3', [store, sql]];
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

// Removes a dataDir and, in the PostgreSQL run, drops its database.
export function removeDataDir(dataDir) {
  const keep = join(dataDir, 'pg-store.url');
  if (SUITE_PG && existsSync(keep)) dropSuiteDb(readFileSync(keep, 'utf8').trim());
  rmSync(dataDir, { recursive: true, force: true });
}

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
function readCredentials(store, env, cwd) {
  const out = tassa(['credentials', '--data', store], { env, cwd });
  const creds = Object.fromEntries(out.trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
  return {
    accountSid: creds.ACCOUNT_SID, apiKey: creds.API_KEY, apiSecret: creds.API_SECRET,
    authToken: creds.AUTH_TOKEN, jwtSecret: creds.JWT_SECRET,
  };
}

// Starts a server. opts: { env, args, dataDir (reuse a previous server's), port }.
export async function startServer(opts = {}) {
  const dataDir = opts.dataDir || mkdtempSync(join(tmpdir(), 'tassa-e2e-'));
  const store = storeOf(dataDir);
  const dataFile = SUITE_PG ? undefined : store;
  const env = { ...(opts.env || {}) };
  const args = ['serve', '--port', String(opts.port || 0), '--data', store, '--quiet',
    ...(opts.args || [])];
  const child = spawn(BIN, args, { env: cleanEnv(env), cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tassa did not start:\n${log}`)), 15000);
    const onData = (chunk) => {
      log += chunk;
      const m = /event=listening url=http:\/\/[^:]+:(\d+)[^\n]*\n/.exec(log);
      if (!m) return;
      clearTimeout(timer);
      // The PostgreSQL run really serves from PostgreSQL: the listening line names the store
      // (data=- when a back end keeps no data).
      const data = / data=(\S+)/.exec(log.slice(m.index))?.[1];
      if (SUITE_PG && data !== '-' && !data?.startsWith('postgres://')) { child.kill('SIGKILL'); reject(new Error(`not on PostgreSQL:\n${log}`)); }
      else resolve(Number(m[1]));
    };
    child.stderr.on('data', onData);
    child.stdout.on('data', (c) => { log += c; });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`tassa exited ${code}:\n${log}`)); });
  });
  const url = `http://127.0.0.1:${port}`;
  let creds;
  try {
    creds = readCredentials(store, env, dataDir);
  } catch (e) {
    child.kill('SIGKILL'); // never leave a server behind a failed start
    throw e;
  }
  const server = {
    url, port, dataDir, dataFile, store, creds, child, opts,
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
    // A new process on the same store (same port when possible).
    async restart(extra = {}) {
      await server.stop();
      return startServer({ ...opts, dataDir, ...extra });
    },
    cleanup() { removeDataDir(dataDir); },
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

// A Sync Documents REST call on srv's default service with its API key (Basic), form-encoded
// params when given; returns decode's { status, body, headers }.
export async function docsApi(srv, method, path, params) {
  const headers = { Authorization: srv.basic() };
  let body;
  if (params) {
    headers['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(params).toString();
  }
  return decode(await fetch(`${srv.url}/v1/Services/default/Documents${path}`, { method, headers, body }));
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

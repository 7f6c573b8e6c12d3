// pg_store.test.mjs - the PostgreSQL store (TASSA_STORE=postgres://...) with the real binary
// on a throw-away cluster (lib/pg.mjs): stored values survive across processes, and an
// unreachable database fails start-up with one clear line and a non-zero exit.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './lib/server.mjs';
import { startPg } from './lib/pg.mjs';

let pg;
before(() => { pg = startPg(); });
after(() => pg?.stop());

// Runs tassa with only the given TASSA_* settings; returns { status, stdout, stderr }.
function run(args, env, cwd) {
  const clean = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(TASSA_|PORT$)/.test(k)) clean[k] = v;
  return spawnSync(BIN, args, { env: { ...clean, ...env }, cwd, encoding: 'utf8', timeout: 30000 });
}

// A loopback port with nothing listening on it.
async function closedPort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

test('generated credentials are stored in PostgreSQL and read back by the next process', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'tassa-pgcwd-'));
  try {
    const first = run(['credentials'], { TASSA_STORE: pg.url }, cwd);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^ACCOUNT_SID=AC[0-9a-f]{32}$/m);
    const second = run(['credentials'], { TASSA_STORE: pg.url }, cwd);
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout, first.stdout);
    // nothing was written next to the process: no data file named after the URL
    assert.deepEqual(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('an unreachable database fails start-up with one line naming the host, never the password', async () => {
  const port = await closedPort();
  const r = run(['serve', '--port', '0'], {
    TASSA_STORE: `postgres://tassa:n0t-this-secret@127.0.0.1:${port}/tassa`,
  }, tmpdir());
  assert.notEqual(r.status, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], new RegExp(`PostgreSQL at host 127\\.0\\.0\\.1 port ${port}`));
  assert.doesNotMatch(r.stderr + r.stdout, /n0t-this-secret/);
});

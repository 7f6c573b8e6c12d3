// pg.mjs - PostgreSQL for e2e tests (tools/pg_scratch.sh): a throw-away cluster of a test's own
// (startPg), or one database per server in the suite's shared cluster (createSuiteDb).
//
// startPg(): initdb in a temporary folder, one server on 127.0.0.1 at a free port, database
// "tassa", user "tassa" (trust). Run as root, the server runs as `nobody` (PostgreSQL refuses
// root; see the script). It throws when the cluster cannot start, so a test that needs it
// fails, never skips.
//
// The PostgreSQL run of the suite (ctest's e2e_pg_* tests, TASSA_TEST_STORE=pg) shares one
// cluster that ctest's fixture e2e_pg_setup started in TASSA_TEST_PG_DIR; createSuiteDb()
// creates a fresh database there for each server (lib/server.mjs).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
const SCRATCH = join(here, '../../../tools/pg_scratch.sh');

// Starts a cluster; returns { url, dir, stop() }. stop() stops it and deletes the folder.
export function startPg() {
  const dir = mkdtempSync(join(tmpdir(), 'tassa-pg-'));
  let url;
  try {
    url = execFileSync(SCRATCH, ['start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    try { execFileSync(SCRATCH, ['stop', dir], { stdio: 'ignore' }); } catch { /* not started */ }
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`the PostgreSQL cluster did not start:\n${e.stderr || e.message}`);
  }
  return {
    url,
    dir,
    stop() {
      try { execFileSync(SCRATCH, ['stop', dir], { stdio: 'ignore' }); } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// Is this the PostgreSQL run of the suite?
export const SUITE_PG = process.env.TASSA_TEST_STORE === 'pg';

// The suite cluster's port (written by tools/pg_scratch.sh start into TASSA_TEST_PG_DIR).
function suitePort() {
  const dir = process.env.TASSA_TEST_PG_DIR;
  if (!dir) throw new Error('TASSA_TEST_STORE=pg needs TASSA_TEST_PG_DIR (the cluster of ctest\'s e2e_pg_setup)');
  return readFileSync(join(dir, 'port'), 'utf8').trim();
}

// Runs one statement on the suite cluster's maintenance database "tassa".
function suiteSql(sql) {
  execFileSync('psql', ['-X', '-q', '-h', '127.0.0.1', '-p', suitePort(), '-U', 'tassa', '-d', 'tassa',
    '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
}

// Creates an empty database in the suite cluster; returns its postgres:// URL.
export function createSuiteDb() {
  const name = `e2e_${process.pid}_${randomBytes(6).toString('hex')}`;
  suiteSql(`CREATE DATABASE ${name}`);
  return `postgres://tassa@127.0.0.1:${suitePort()}/${name}`;
}

// Drops a database createSuiteDb made (closing what is still connected to it).
export function dropSuiteDb(url) {
  const name = /\/(e2e_[0-9a-z_]+)$/.exec(url)?.[1];
  if (!name) return;
  try { suiteSql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`); } catch { /* cluster gone */ }
}

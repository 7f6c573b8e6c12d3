// pg.mjs - a throw-away PostgreSQL cluster for e2e tests (tools/pg_scratch.sh): initdb in a
// temporary folder, one server on 127.0.0.1 at a free port, database "tassa", user "tassa"
// (trust). Run as root, the server runs as `nobody` (PostgreSQL refuses root; see the script).
// startPg() throws when the cluster cannot start, so a test that needs it fails, never skips.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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

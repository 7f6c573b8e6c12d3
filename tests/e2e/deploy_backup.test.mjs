// deploy_backup.test.mjs - `tassa backup FILE` copies a live data file while writes go on: the
// copy opens, passes SQLite's integrity check, and holds every write acknowledged before the
// backup started; a server restored from it serves them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, startServer, postForm, eventually, sqliteOnly } from './lib/server.mjs';

const run = promisify(execFile);
const env = { PATH: process.env.PATH, ASAN_OPTIONS: 'detect_leaks=1' };

test('a backup taken during writes holds every write acknowledged before it started',
  sqliteOnly('tassa backup copies the data file (a PostgreSQL store is backed up with pg_dump)'), async () => {
  const server = await startServer();
  const restoreDir = mkdtempSync(join(tmpdir(), 'tassa-restore-'));
  const copy = join(restoreDir, 'tassa.db');
  const acked = [];
  let stop = false, n = 0;
  const docs = `${server.url}/v1/Services/default/Documents`;
  const writer = async () => {
    while (!stop) {
      const name = `bk-${n++}`;
      const r = await postForm(docs, { UniqueName: name, Data: JSON.stringify({ name }) }, { Authorization: server.basic() });
      assert.equal(r.status, 201);
      acked.push(name);
    }
  };
  try {
    const writers = Array.from({ length: 4 }, writer);
    await eventually(() => acked.length >= 30, { timeout: 20000 });
    const before = [...acked]; // acknowledged before the backup starts
    const out = await run(BIN, ['backup', copy, '--data', server.dataFile], { env });
    assert.match(out.stdout, /^backed up /);
    const afterBackup = acked.length;
    await eventually(() => acked.length >= afterBackup + 10, { timeout: 20000 }); // writes went on
    stop = true;
    await Promise.all(writers);
    assert.ok(!existsSync(`${copy}.tmp`));
    const check = await run('sqlite3', [copy, 'PRAGMA integrity_check; PRAGMA journal_mode;']);
    assert.equal(check.stdout, 'ok\ndelete\n');

    const restored = await startServer({ dataDir: restoreDir });
    try {
      assert.equal(restored.creds.authToken, server.creds.authToken, 'the credentials come along');
      const missing = [];
      for (const name of before) {
        const r = await fetch(`${restored.url}/v1/Services/default/Documents/${name}`, { headers: { Authorization: restored.basic() } });
        if (r.status !== 200) missing.push(name);
      }
      assert.deepEqual(missing, [], `${before.length} writes acknowledged before the backup`);
    } finally {
      await restored.stop();
    }
  } finally {
    stop = true;
    await server.stop();
    server.cleanup();
    rmSync(restoreDir, { recursive: true, force: true });
  }
});

test('backup refuses to overwrite, to copy onto the data file, and a missing data file',
  sqliteOnly('tassa backup of data files'), async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tassa-bk-'));
  try {
    const data = join(dir, 'live.db');
    await run(BIN, ['credentials', '--data', data], { env }); // makes a data file
    const dst = join(dir, 'copy.db');
    writeFileSync(dst, 'precious');
    await assert.rejects(run(BIN, ['backup', dst, '--data', data], { env }), (e) => e.code === 1 && /exists \(add --force/.test(e.stderr));
    await run(BIN, ['backup', dst, '--data', data, '--force'], { env });
    await assert.rejects(run(BIN, ['backup', data, '--data', data, '--force'], { env }), (e) => /must not be the data file/.test(e.stderr));
    await assert.rejects(run(BIN, ['backup', join(dir, 'x.db'), '--data', join(dir, 'none.db')], { env }), (e) => /no data file at/.test(e.stderr));
    await assert.rejects(run(BIN, ['backup'], { env }), (e) => e.code === 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

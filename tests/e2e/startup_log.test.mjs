// startup_log.test.mjs - a new data file, and a restart on it, log no error: the migrations'
// probes ("is this column there yet?") fail on a new schema by design, and that is an
// answer, not an error (it used to print `store_prepare_failed ... no such column:
// claimed_by` on every first start, in `make run` too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

const errors = (log) => log.split('\n').filter((l) => /level=error|store_prepare_failed/.test(l));

test('first start and restart on a new data file log no error', async () => {
  let server = await startServer();
  try {
    assert.deepEqual(errors(server.log), [], server.log);
    server = await server.restart();
    assert.deepEqual(errors(server.log), [], server.log);
  } finally {
    await server.stop();
    server.cleanup();
  }
});

// demo_console.test.mjs - `tassa serve --demo` for a person at the teller console: the demo
// adds the teller Erin (attributes.identity "erin", Offline), prints the console's URL with a
// caller token that get-worker-grant accepts, and its simulated tellers leave Erin alone: a
// reservation offered to Erin stays pending while the simulation moves on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServerAnyPort as startServer, twilioClient, postForm, eventually } from './lib/server.mjs';

let server;
let ws;

before(async () => {
  server = await startServer({ args: ['--demo'] });
  ws = (await twilioClient(server)).taskrouter.v1.workspaces(server.workspaceSid);
});

after(async () => {
  await server?.stop();
  server?.cleanup();
});

test('the demo has a console teller, and its URL signs in', async () => {
  const workers = await ws.workers.list();
  const erin = workers.filter((w) => JSON.parse(w.attributes).identity === 'erin');
  assert.equal(erin.length, 1, 'one worker named by identity erin');
  assert.equal(erin[0].friendlyName, 'Erin');
  assert.equal(erin[0].activityName, 'Offline');
  const m = await eventually(() => /http:\/\/localhost:\d+\/teller\.html\?identity=erin&token=([\w.-]+)/.exec(server.log));
  const res = await postForm(`${server.url}/task/get-worker-grant`, { token: m[1], identity: 'erin' });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.workerSid, erin[0].sid);
  // A restart does not add a second Erin.
  server = await server.restart();
  ws = (await twilioClient(server)).taskrouter.v1.workspaces(server.workspaceSid);
  const again = (await ws.workers.list()).filter((w) => JSON.parse(w.attributes).identity === 'erin');
  assert.equal(again.length, 1);
});

test('the simulation does not accept what is offered to Erin', async () => {
  const workers = await ws.workers.list();
  const act = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
  const erin = workers.find((w) => w.friendlyName === 'Erin');
  for (const w of workers) {
    if (w.sid !== erin.sid) await ws.workers(w.sid).update({ activitySid: act.Offline });
  }
  await ws.workers(erin.sid).update({ activitySid: act.Available });
  // The next demo customer is reserved for Erin, the only one on duty.
  const offered = await eventually(async () =>
    (await ws.workers(erin.sid).reservations.list()).find((r) => r.reservationStatus === 'pending'),
  { timeout: 20000, interval: 200 });
  // The simulation accepts after 4 ticks and a customer arrives every 4: once two more have
  // arrived, it has had its chance at least once.
  const count = async () => (await ws.tasks.list()).length;
  const before = await count();
  await eventually(async () => (await count()) >= before + 2, { timeout: 30000, interval: 250 });
  const r = await ws.workers(erin.sid).reservations(offered.sid).fetch();
  assert.equal(r.reservationStatus, 'pending', 'nobody but the person at the console accepts');
  assert.equal((await ws.workers(erin.sid).fetch()).activityName, 'Available');
});

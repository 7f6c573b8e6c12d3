// routing.test.mjs - queue membership and queue counts over the official twilio client, on a
// server of its own (so no other test's worker or task takes part): a worker joins and leaves
// a queue's matching as its attributes change, a queue's new TargetWorkers is evaluated
// against the workers, and the queue's statistics and positions follow the tasks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServerAnyPort as startServer, twilioClient } from './lib/server.mjs';

let server;
let ws;

before(async () => {
  server = await startServer();
  ws = (await twilioClient(server)).taskrouter.v1.workspaces(server.workspaceSid);
});

after(async () => {
  await server.stop();
  server.cleanup();
});

test('membership follows worker attributes and the queue expression; counts follow tasks', async () => {
  const acts = Object.fromEntries((await ws.activities.list()).map((a) => [a.friendlyName, a.sid]));
  const q = await ws.taskQueues.create({ friendlyName: 'M', targetWorkers: "skills HAS 'x'" });
  const wf = await ws.workflows.create({
    friendlyName: 'MW',
    configuration: JSON.stringify({ task_routing: { default_filter: { queue: q.sid } } }),
  });
  const w = await ws.workers.create({
    friendlyName: 'Wm', attributes: JSON.stringify({ skills: ['y'] }), activitySid: acts.Available,
  });
  const stats = () => ws.taskQueues(q.sid).realTimeStatistics().fetch();
  const t1 = await ws.tasks.create({ attributes: '{}', workflowSid: wf.sid, priority: 1 });
  const t2 = await ws.tasks.create({ attributes: '{}', workflowSid: wf.sid, priority: 5 });
  assert.equal(t1.assignmentStatus, 'pending'); // W is not a member
  let rt = await stats();
  assert.equal(rt.totalEligibleWorkers, 0);
  assert.equal(rt.totalTasks, 2);
  assert.deepEqual(rt.tasksByPriority, { 1: 1, 5: 1 });

  // W's attributes come to match: it joins, and gets the higher priority task.
  await ws.workers(w.sid).update({ attributes: JSON.stringify({ skills: ['x'] }) });
  assert.equal((await ws.tasks(t2.sid).fetch()).assignmentStatus, 'reserved');
  assert.equal((await ws.tasks(t1.sid).fetch()).assignmentStatus, 'pending');
  rt = await stats();
  assert.equal(rt.totalEligibleWorkers, 1);
  assert.equal(rt.tasksByStatus.reserved, 1);
  assert.equal(rt.tasksByStatus.pending, 1);

  // Done with t2; W's attributes stop matching before it is free: t1 stays pending.
  await ws.workers(w.sid).update({ attributes: JSON.stringify({ skills: ['y'] }) });
  await ws.tasks(t2.sid).update({ assignmentStatus: 'canceled' });
  assert.equal((await ws.tasks(t1.sid).fetch()).assignmentStatus, 'pending');
  rt = await stats();
  assert.equal(rt.totalEligibleWorkers, 0);
  assert.equal(rt.totalTasks, 1);

  // The queue's new expression is evaluated against W: t1 goes to it.
  await ws.taskQueues(q.sid).update({ targetWorkers: "skills HAS 'y'" });
  assert.equal((await ws.tasks(t1.sid).fetch()).assignmentStatus, 'reserved');
  const res = await ws.tasks(t1.sid).reservations.list();
  assert.equal(res.length, 1);
  assert.equal(res[0].workerSid, w.sid);
  await ws.tasks(t1.sid).reservations(res[0].sid).update({ reservationStatus: 'accepted' });
  rt = await stats();
  assert.equal(rt.tasksByStatus.assigned, 1);
  assert.equal(rt.totalTasks, 1);
  await ws.tasks(t1.sid).update({ assignmentStatus: 'completed' });
  rt = await stats();
  assert.equal(rt.totalTasks, 0);
  assert.deepEqual(rt.tasksByPriority, {});
});

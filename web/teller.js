// teller.js - the teller console on the official twilio-taskrouter Worker
// (web/vendor/twilio-taskrouter.min.js, window.TaskRouter): sign in with a caller token, get a
// worker token from /task/get-worker-grant, show and change the activity, take the offered
// customer (accept / reject), then wrap up and complete the task. Everything arrives live over
// the Worker's event bridge; a dropped connection shows a banner while the SDK reconnects.
import { readCredentials, saveCredentials, forgetCredentials, loadConfig, formatDuration,
  speakDuration, h } from './common.js';

const $ = (id) => document.getElementById(id);
let creds = null;
let worker = null;
let current = null;     // the reservation on the desk (pending or accepted), or null
let renewTimer = null;

const STATE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…',
  denied: 'Signed out', signedout: 'Signed out',
};

function setState(state, detail) {
  const pill = $('conn');
  pill.className = `pill ${state}`;
  pill.textContent = STATE_TEXT[state] || state;
  const banner = $('banner');
  banner.classList.toggle('error', state === 'denied');
  if (state === 'reconnecting') {
    banner.textContent = `Connection lost. Reconnecting…${detail ? ` (${detail})` : ''} Offers reach you again once it is back.`;
    banner.hidden = false;
  } else if (state === 'denied') {
    banner.textContent = `Your sign-in was refused: ${detail || 'please sign in again.'}`;
    banner.hidden = false;
    stopWorker();
    forgetCredentials();
    showSignin(creds || {});
  } else {
    banner.hidden = true;
  }
}

// POST /task/get-worker-grant: the caller's token and identity for a one-hour worker token.
async function getWorkerGrant(c) {
  let r;
  try {
    r = await fetch('/task/get-worker-grant', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: c.token, identity: c.identity }).toString(),
    });
  } catch {
    throw Object.assign(new Error('The server cannot be reached.'), { status: 0 });
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.workerToken) {
    throw Object.assign(new Error(body.error || `The sign-in was refused (${r.status}).`), { status: r.status });
  }
  return body;
}

function workerOptions(config) {
  const opts = { logLevel: 'error' };
  // tassa's event bridge; with TASSA_BACKEND=twilio both are null: Twilio's own.
  if (config?.taskrouter?.ebServer) opts.ebServer = config.taskrouter.ebServer;
  if (config?.taskrouter?.wsServer) opts.wsServer = config.taskrouter.wsServer;
  return opts;
}

function showError(msg) {
  $('action-error').textContent = msg || '';
  $('action-error').hidden = !msg;
}

// Runs an SDK call from a button: the buttons are disabled meanwhile, failures are shown.
async function act(fn) {
  const buttons = ['accept', 'reject', 'wrapup', 'complete'].map($);
  for (const b of buttons) b.disabled = true;
  showError('');
  try {
    await fn();
  } catch (e) {
    showError(`That did not work: ${e?.message || e}`);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

function renderActivity() {
  if (!worker) return;
  const sel = $('activity');
  const acts = [...worker.activities.values()].sort((a, b) => a.name.localeCompare(b.name));
  const now = worker.activity;
  sel.replaceChildren(...acts.map((a) => h('option', { value: a.sid, selected: a.sid === now?.sid },
    a.available ? `${a.name} (takes customers)` : a.name)));
  $('activity-name').textContent = now?.name || '–';
  $('who').textContent = worker.friendlyName || worker.name || '';
}

// The reservation to show: an accepted one first (the customer being served), else a pending one.
function pick() {
  const all = [...(worker?.reservations?.values() || [])];
  return all.find((r) => r.status === 'accepted' || r.status === 'wrapping')
    || all.find((r) => r.status === 'pending') || null;
}

function waitSeconds(task) {
  const created = task?.dateCreated instanceof Date ? task.dateCreated.getTime() : NaN;
  return Number.isFinite(created) ? (Date.now() - created) / 1000 : Number(task?.age) || 0;
}

function renderOffer() {
  current = pick();
  const card = $('offer-card');
  card.classList.remove('waiting', 'assigned', 'completed');
  const r = current;
  if (!r) {
    $('offer-text').textContent = 'No customer is offered to you.';
    $('offer-detail').textContent = worker?.available
      ? 'You are available: the next customer will appear here.'
      : 'Set your activity to Available to receive customers.';
    $('offer').hidden = true;
    $('offer-actions').hidden = true;
    $('task-actions').hidden = true;
    return;
  }
  const t = r.task;
  const a = t?.attributes || {};
  const who = a.name || a.identity || 'A customer';
  $('offer').hidden = false;
  $('offer-topic').textContent = a.topic ?? '–';
  $('offer-queue').textContent = t?.queueName || '–';
  $('offer-priority').textContent = t?.priority ?? 0;
  tick();
  if (r.status === 'pending') {
    card.classList.add('waiting');
    $('offer-text').textContent = `${who} is offered to you.`;
    $('offer-detail').textContent = 'Accept to serve them, or reject to pass them to another teller.';
    $('offer-actions').hidden = false;
    $('task-actions').hidden = true;
  } else {
    card.classList.add('assigned');
    const wrapping = t?.status === 'wrapping' || r.status === 'wrapping';
    $('offer-text').textContent = wrapping ? `Wrapping up with ${who}.` : `You are serving ${who}.`;
    $('offer-detail').textContent = wrapping ? 'Complete the task when you are done.'
      : 'Wrap up when the conversation ends, then complete the task.';
    $('offer-actions').hidden = true;
    $('task-actions').hidden = false;
    $('wrapup').hidden = wrapping;
  }
}

function tick() {
  if (!current || current.status !== 'pending') {
    if (current) $('offer-wait').textContent = '–';
    return;
  }
  const w = waitSeconds(current.task);
  $('offer-wait').textContent = formatDuration(w);
  $('offer-wait').setAttribute('aria-label', speakDuration(w));
}

function follow(r) {
  for (const ev of ['accepted', 'rejected', 'timeout', 'canceled', 'rescinded', 'completed', 'wrapup']) {
    r.on(ev, () => {
      if (ev === 'timeout' || ev === 'canceled' || ev === 'rescinded') {
        showError(ev === 'timeout' ? 'The offer timed out and went to another teller.'
          : 'The customer is no longer waiting for you.');
      }
      if (ev === 'completed') $('offer-detail').textContent = 'Task completed.';
      // The SDK removes a finished reservation itself; render from its state.
      setTimeout(renderOffer, 0);
    });
  }
  r.task?.on?.('wrapup', () => setTimeout(renderOffer, 0));
  r.task?.on?.('completed', () => setTimeout(renderOffer, 0));
}

function stopWorker() {
  clearTimeout(renewTimer);
  const w = worker;
  worker = null;
  if (w) {
    w.removeAllListeners();
    w.on('error', () => {});
    try { w.disconnect(); } catch { /* already closed */ }
  }
}

// A fresh worker token before this one runs out (the grant lasts an hour).
function scheduleRenew(ttl) {
  clearTimeout(renewTimer);
  renewTimer = setTimeout(renew, Math.max(60, (ttl || 3600) - 300) * 1000);
}

async function renew() {
  if (!worker) return;
  try {
    const g = await getWorkerGrant(creds);
    worker?.updateToken(g.workerToken);
    scheduleRenew(g.ttl);
  } catch (e) {
    if (e.status === 401 || e.status === 403 || e.status === 404) setState('denied', e.message);
    else renewTimer = setTimeout(renew, 10000);
  }
}

async function start(c) {
  creds = c;
  stopWorker();
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('switch').hidden = false;
  setState('connecting');
  let config;
  let grant;
  try {
    config = await loadConfig();
    grant = await getWorkerGrant(c);
  } catch (e) {
    if ([400, 401, 403, 404, 409].includes(e.status)) setState('denied', e.message);
    else {
      setState('reconnecting', e.message);
      setTimeout(() => { if (creds === c) start(c); }, 3000);
    }
    return;
  }
  if (creds !== c) return;
  const w = new window.TaskRouter.Worker(grant.workerToken, workerOptions(config));
  worker = w;
  scheduleRenew(grant.ttl);
  w.on('error', (e) => {
    // Connection failures are followed by `disconnected` and a retry; others are shown.
    if (!/CONNECTION|GATEWAY/i.test(`${e?.name} ${e?.message}`)) console.warn('worker error', e);
  });
  w.on('ready', () => {
    if (w !== worker) return;
    setState('live');
    renderActivity();
    for (const r of w.reservations.values()) follow(r);
    renderOffer();
  });
  w.on('connected', () => {
    if (w !== worker) return;
    setState('live');
  });
  w.on('disconnected', (e) => {
    if (w !== worker) return;
    setState('reconnecting', e?.message);
  });
  w.on('activityUpdated', () => {
    if (w !== worker) return;
    renderActivity();
    renderOffer();
  });
  w.on('reservationCreated', (r) => {
    if (w !== worker) return;
    follow(r);
    renderOffer();
  });
  w.on('tokenExpired', () => { if (w === worker) renew(); });
}

function showSignin(c) {
  $('signin').hidden = false;
  $('desk').hidden = true;
  $('switch').hidden = true;
  if (c.identity) $('identity').value = c.identity;
}

function init() {
  const c = readCredentials();
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = { identity: $('identity').value.trim(), token: $('token').value.trim() };
    if (!next.identity || !next.token) return;
    saveCredentials(next);
    $('token').value = '';
    start(next);
  });
  $('activity').addEventListener('change', () => {
    const a = worker?.activities.get($('activity').value);
    if (!a) return;
    act(async () => {
      try {
        await a.setAsCurrent();
      } finally {
        renderActivity(); // back to the real activity if the change was refused
      }
    });
  });
  $('accept').addEventListener('click', () => act(async () => { await current?.accept(); renderOffer(); }));
  $('reject').addEventListener('click', () => act(async () => { await current?.reject(); renderOffer(); }));
  $('wrapup').addEventListener('click', () => act(async () => {
    await current?.task.wrapUp({ reason: 'wrapping up' });
    renderOffer();
  }));
  $('complete').addEventListener('click', () => act(async () => {
    await current?.task.complete('served');
    renderOffer();
  }));
  $('switch').addEventListener('click', () => {
    stopWorker();
    creds = null;
    forgetCredentials();
    setState('signedout');
    showSignin({});
    $('identity').focus();
  });
  if (c.token && c.identity) start(c);
  else {
    setState('signedout');
    showSignin(c);
  }
  setInterval(tick, 1000);
}

init();

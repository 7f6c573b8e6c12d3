// dashboard.js - the queue-status document, live: pending tasks with a ticking wait,
// tellers grouped by activity, counts, last update, and a banner while reconnecting.
import { readCredentials, saveCredentials, forgetCredentials, LiveDocument, formatDuration,
  speakDuration, h } from './common.js';

const $ = (id) => document.getElementById(id);
let doc = null;        // the latest queue-status data
let receivedAt = 0;    // Date.now() when it arrived
let stream = null;

const STATE_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  waiting: 'Waiting for data',
  denied: 'Signed out',
  signedout: 'Signed out',
};

function setState(state, detail) {
  const pill = $('conn');
  pill.className = `pill ${state}`;
  pill.textContent = STATE_TEXT[state] || state;
  const banner = $('banner');
  banner.classList.toggle('error', state === 'denied');
  if (state === 'reconnecting') {
    banner.textContent = 'Connection lost. Reconnecting to live updates… The figures below may be out of date.';
    banner.hidden = false;
  } else if (state === 'waiting') {
    banner.textContent = 'Waiting for the first queue status from the server…';
    banner.hidden = false;
  } else if (state === 'denied') {
    banner.textContent = `Your sign-in was refused: ${detail || 'please sign in again.'}`;
    banner.hidden = false;
    forgetCredentials();
    showSignin();
  } else {
    banner.hidden = true;
  }
}

// Seconds since the document's lastUpdated (or since it arrived, if that is unusable).
function elapsedSinceUpdate() {
  const t = doc && Date.parse(doc.lastUpdated);
  const base = Number.isFinite(t) && t <= Date.now() + 2000 ? Math.min(t, Date.now()) : receivedAt;
  return Math.max(0, (Date.now() - base) / 1000);
}

const waitOf = (task) => (Number(task.age) || 0) + elapsedSinceUpdate();

function renderTasks() {
  const tasks = Array.isArray(doc?.pendingTasks) ? doc.pendingTasks : [];
  const body = $('tasks-body');
  body.replaceChildren(...tasks.map((t) => {
    const wait = waitOf(t);
    return h('tr', { 'data-sid': t.sid },
      h('td', { class: 'num', 'data-label': 'Priority' }, h('span', { class: 'prio' }, t.priority ?? 0)),
      h('td', { 'data-label': 'Queue' }, t.queue ?? '–'),
      h('td', { 'data-label': 'Topic' }, t.topic ?? '–'),
      h('td', { class: 'num', 'data-label': 'Waiting' },
        h('span', { class: 'wait', 'data-age': t.age ?? 0, 'aria-label': speakDuration(wait) }, formatDuration(wait))),
      h('td', { 'data-label': 'Task' }, h('span', { class: 'sid' }, t.sid ?? '')));
  }));
  $('tasks').hidden = tasks.length === 0;
  $('tasks-empty').hidden = tasks.length !== 0;
  const total = Number(doc?.pendingCount ?? tasks.length);
  $('tasks-more').hidden = total <= tasks.length;
  $('tasks-more').textContent = `Showing the first ${tasks.length} of ${total} pending tasks.`;
}

function renderQueues() {
  const byQueue = doc?.byQueue && typeof doc.byQueue === 'object' ? doc.byQueue : {};
  const names = Object.keys(byQueue).sort();
  const since = elapsedSinceUpdate();
  $('queues-body').replaceChildren(...names.map((name) => {
    const q = byQueue[name] || {};
    const longest = (Number(q.longestWaitSeconds) || 0) + (Number(q.pending) > 0 ? since : 0);
    return h('tr', {}, h('th', { scope: 'row' }, name), h('td', { class: 'num' }, q.pending ?? 0),
      h('td', { class: 'num' }, h('span', { class: 'wait queue-wait', 'data-base': q.longestWaitSeconds ?? 0,
        'data-pending': q.pending ?? 0 }, formatDuration(longest))));
  }));
  $('queues').hidden = names.length === 0;
  $('queues-empty').hidden = names.length !== 0;
}

const LABELS = { available: 'Available', 'in-call': 'In call', 'post-call': 'Post call' };

function renderTellers() {
  const tellers = Array.isArray(doc?.eligibleTellers) ? doc.eligibleTellers : [];
  const groups = new Map();
  for (const t of tellers) {
    const a = String(t.activity || 'unknown');
    const key = a.toLowerCase();
    const label = LABELS[key] || a.charAt(0).toUpperCase() + a.slice(1);
    if (!groups.has(key)) groups.set(key, { label, list: [] });
    groups.get(key).list.push(t);
  }
  const order = ['available', 'in-call', 'post-call'];
  const keys = [...groups.keys()].sort((x, y) =>
    ((order.indexOf(x) + 1 || 99) - (order.indexOf(y) + 1 || 99)) || x.localeCompare(y));
  $('tellers').replaceChildren(...keys.map((k) => {
    const g = groups.get(k);
    const id = `group-${k.replace(/[^a-z0-9]+/g, '-')}`;
    return h('div', { class: 'group', role: 'group', 'aria-labelledby': id },
      h('h3', { id }, `${g.label} (${g.list.length})`),
      h('ul', {}, g.list.map((t) => h('li', { 'data-sid': t.sid }, t.name || t.sid))));
  }));
  $('tellers-empty').hidden = tellers.length !== 0;
}

function renderCounts() {
  const tasks = Array.isArray(doc?.pendingTasks) ? doc.pendingTasks : [];
  $('pending-count').textContent = doc?.pendingCount ?? tasks.length;
  $('teller-count').textContent = doc?.tellerCount ?? (doc?.eligibleTellers || []).length;
  let longest = 0;
  for (const q of Object.values(doc?.byQueue || {})) longest = Math.max(longest, Number(q?.longestWaitSeconds) || 0);
  for (const t of tasks) longest = Math.max(longest, Number(t.age) || 0);
  const any = (doc?.pendingCount ?? tasks.length) > 0;
  $('longest-wait').textContent = formatDuration(any ? longest + elapsedSinceUpdate() : 0);
  const t = $('updated');
  const when = Date.parse(doc?.lastUpdated);
  t.dateTime = Number.isFinite(when) ? new Date(when).toISOString() : '';
  t.textContent = Number.isFinite(when) ? new Date(when).toLocaleTimeString() : '–';
}

function render() {
  if (!doc) return;
  renderCounts();
  renderTasks();
  renderQueues();
  renderTellers();
}

// Every second: advance the wait times without rebuilding the page (keeps focus and selection).
function tick() {
  if (!doc) return;
  const since = elapsedSinceUpdate();
  for (const el of document.querySelectorAll('#tasks-body .wait')) {
    const wait = (Number(el.dataset.age) || 0) + since;
    el.textContent = formatDuration(wait);
    el.setAttribute('aria-label', speakDuration(wait));
  }
  for (const el of document.querySelectorAll('#queues-body .queue-wait')) {
    const pending = Number(el.dataset.pending) > 0;
    el.textContent = formatDuration((Number(el.dataset.base) || 0) + (pending ? since : 0));
  }
  renderCounts();
}

function showSignin(creds = {}) {
  $('signin').hidden = false;
  $('board').hidden = true;
  if (creds.identity) $('identity').value = creds.identity;
}

function watch(creds) {
  $('signin').hidden = true;
  $('board').hidden = false;
  stream?.stop();
  stream = new LiveDocument({
    document: 'queue-status',
    credentials: creds,
    onState: setState,
    onDoc: (d) => {
      doc = d.data || {};
      receivedAt = Date.now();
      render();
    },
  });
  stream.start();
}

function init() {
  const creds = readCredentials();
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const c = { identity: $('identity').value.trim(), token: $('token').value.trim() };
    if (!c.identity || !c.token) return;
    saveCredentials(c);
    $('token').value = '';
    watch(c);
  });
  if (creds.token && creds.identity) watch(creds);
  else {
    setState('signedout');
    showSignin(creds);
  }
  setInterval(tick, 1000);
}

init();

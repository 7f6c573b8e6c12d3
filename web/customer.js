// customer.js - a caller follows their task: waiting (with position and estimated wait),
// assigned (with the teller's name), completed. Live from the topic document.
import { readCredentials, saveCredentials, forgetCredentials, LiveDocument, formatDuration,
  speakDuration } from './common.js';

const $ = (id) => document.getElementById(id);
let stream = null;
let creds = null;
let status = null;
let positionTimer = null;

const STATE_TEXT = {
  connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…',
  waiting: 'Waiting', denied: 'Signed out', signedout: 'Signed out',
};

function setState(state, detail) {
  const pill = $('conn');
  pill.className = `pill ${state}`;
  pill.textContent = STATE_TEXT[state] || state;
  const banner = $('banner');
  banner.classList.toggle('error', state === 'denied');
  if (state === 'reconnecting') {
    banner.textContent = 'Connection lost. Reconnecting… your place in line is kept.';
    banner.hidden = false;
  } else if (state === 'denied') {
    banner.textContent = `Your sign-in was refused: ${detail || 'please sign in again.'}`;
    banner.hidden = false;
    forgetCredentials();
    showSignin(creds || {});
  } else {
    banner.hidden = true;
  }
  if (state === 'waiting' && !status) {
    $('status-text').textContent = 'We have not received your request yet.';
    $('status-detail').textContent = 'This page updates by itself as soon as it arrives.';
  }
}

// Asks /queue/get-queue-position where the task stands; quietly shows "unknown" on failure.
async function refreshPosition() {
  clearTimeout(positionTimer);
  if (status !== 'waiting') return;
  const q = new URLSearchParams({ token: creds.token, identity: creds.identity, topic: creds.topic });
  let info = null;
  try {
    const r = await fetch(`/queue/get-queue-position?${q}`, { cache: 'no-store' });
    if (r.ok) info = await r.json();
  } catch { info = null; }
  if (status !== 'waiting') return;
  const known = info && Number.isFinite(Number(info.position)) && info.position !== null;
  $('facts').hidden = !known;
  $('position-note').hidden = known;
  $('position-note').textContent = 'Your place in line is not available right now.';
  $('queue-note').hidden = !(known && info.queue);
  if (known) {
    $('queue-name').textContent = info.queue || '';
    $('position').textContent = info.position;
    $('ahead').textContent = info.ahead ?? Math.max(0, info.position - 1);
    const est = info.estimatedWaitSeconds;
    $('estimate').textContent = est === null || est === undefined ? 'unknown' : `≈ ${formatDuration(est)}`;
    $('estimate').setAttribute('aria-label', est === null || est === undefined ? 'unknown' : `about ${speakDuration(est)}`);
  }
  positionTimer = setTimeout(refreshPosition, 5000);
}

function render(data) {
  const card = $('status');
  const next = ['waiting', 'assigned', 'completed'].includes(data.status) ? data.status : 'waiting';
  card.classList.remove('waiting', 'assigned', 'completed');
  card.classList.add(next);
  const changed = next !== status;
  status = next;
  if (next === 'waiting') {
    $('status-text').textContent = 'You are in the queue.';
    $('status-detail').textContent = 'A teller will be with you soon. Please keep this page open.';
    if (changed) refreshPosition();
  } else if (next === 'assigned') {
    const name = data.worker?.name || 'a teller';
    $('status-text').textContent = `${name} is now helping you.`;
    $('status-detail').textContent = 'Your request has been assigned.';
  } else {
    $('status-text').textContent = 'Your request is complete.';
    $('status-detail').textContent = 'Thank you for waiting.';
  }
  if (next !== 'waiting') {
    clearTimeout(positionTimer);
    $('facts').hidden = true;
    $('position-note').hidden = true;
  }
  const when = Date.parse(data.updatedAt);
  $('updated').dateTime = Number.isFinite(when) ? new Date(when).toISOString() : '';
  $('updated').textContent = Number.isFinite(when) ? new Date(when).toLocaleTimeString() : '–';
}

function showSignin(c) {
  $('signin').hidden = false;
  $('status').hidden = true;
  $('switch').hidden = true;
  if (c.identity) $('identity').value = c.identity;
  if (c.topic) $('topic').value = c.topic;
}

function watch(c) {
  creds = { ...c, topic: c.topic || c.identity };
  status = null;
  $('signin').hidden = true;
  $('status').hidden = false;
  $('switch').hidden = false;
  stream?.stop();
  stream = new LiveDocument({
    document: creds.topic,
    credentials: creds,
    onState: setState,
    onDoc: (doc) => render(doc.data || {}),
  });
  stream.start();
}

function init() {
  const c = readCredentials(['topic']);
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = { identity: $('identity').value.trim(), token: $('token').value.trim(), topic: $('topic').value.trim() };
    if (!next.identity || !next.token) return;
    saveCredentials(next);
    $('token').value = '';
    watch(next);
  });
  $('switch').addEventListener('click', () => {
    stream?.stop();
    clearTimeout(positionTimer);
    forgetCredentials();
    setState('signedout');
    showSignin(creds || {});
    $('identity').focus();
  });
  if (c.token && c.identity) watch(c);
  else {
    setState('signedout');
    showSignin(c);
  }
}

init();

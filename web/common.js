// common.js - what both pages share: the caller's credentials, the sync grant, and a live
// document stream that reconnects by itself (EventSource cannot send headers, so the sync
// token travels as ?token=, and a resumed stream carries ?lastEventId=).

const STORE_KEY = 'tassa.credentials';

// Reads token and identity (and any extra names) from the URL, else from this tab's session
// storage. A token found in the URL is moved into session storage and removed from the
// address bar, so that it does not end up in bookmarks, screenshots or shared links.
export function readCredentials(extra = []) {
  const url = new URL(window.location.href);
  let saved = {};
  try { saved = JSON.parse(sessionStorage.getItem(STORE_KEY) || '{}'); } catch { saved = {}; }
  const out = {};
  for (const k of ['token', 'identity', ...extra]) out[k] = url.searchParams.get(k) || saved[k] || '';
  if (url.searchParams.has('token')) {
    saveCredentials(out);
    url.searchParams.delete('token');
    window.history.replaceState(null, '', url.pathname + url.search + url.hash);
  }
  return out;
}

export function saveCredentials(creds) {
  try { sessionStorage.setItem(STORE_KEY, JSON.stringify(creds)); } catch { /* private mode */ }
}

export function forgetCredentials() {
  try { sessionStorage.removeItem(STORE_KEY); } catch { /* private mode */ }
}

// POST /task/get-sync-grant: the caller's token and identity for a one-hour sync token.
// Rejects with an Error whose .status is the HTTP status (0 when the server is unreachable).
export async function getSyncGrant(token, identity) {
  let r;
  try {
    r = await fetch('/task/get-sync-grant', {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, identity }).toString(),
    });
  } catch (e) {
    throw Object.assign(new Error('The server cannot be reached.'), { status: 0 });
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok || !body.syncToken) {
    throw Object.assign(new Error(body.error || `The sign-in was refused (${r.status}).`), { status: r.status });
  }
  return body.syncToken;
}

// A live Sync document (or the service-wide stream). Calls onDoc(document, eventName) for
// every snapshot and update and onState(state, detail) when the connection changes:
//   'connecting' | 'live' | 'reconnecting' | 'waiting' (document does not exist yet) |
//   'denied' (the caller's token is refused: sign in again)
// The browser's own EventSource reconnection handles short cuts (it resends Last-Event-ID);
// when EventSource gives up (an error answer, or the server was down too long) this class
// retries with back-off, refreshing the sync grant when the server says 401. The server ends
// a stream with `token-expired` when the sync token runs out (a new grant, then resume) and
// with `access-changed` when the document's permissions change; a 403 means the token's
// identity may not read the document (yet: a customer's topic is shared when it is written).
export class LiveDocument {
  constructor({ service = 'default', document, credentials, onDoc, onState }) {
    this.path = `/v1/Services/${encodeURIComponent(service)}/Documents/${encodeURIComponent(document)}/Stream`;
    this.credentials = credentials;
    this.onDoc = onDoc;
    this.onState = onState;
    this.lastEventId = null;
    this.syncToken = null;
    this.es = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = false;
  }

  async start() {
    this.state('connecting');
    try {
      this.syncToken = await getSyncGrant(this.credentials.token, this.credentials.identity);
    } catch (e) {
      if (e.status === 400 || e.status === 401 || e.status === 403) {
        this.state('denied', e.message);
        return;
      }
      this.retry(e.message);
      return;
    }
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
  }

  state(s, detail) {
    this.current = s;
    this.onState?.(s, detail);
  }

  open() {
    if (this.stopped) return;
    const q = new URLSearchParams({ token: this.syncToken });
    if (this.lastEventId !== null) q.set('lastEventId', this.lastEventId);
    const es = new EventSource(`${this.path}?${q}`);
    this.es = es;
    const onEvent = (ev) => {
      if (ev.lastEventId) this.lastEventId = ev.lastEventId;
      let doc;
      try { doc = JSON.parse(ev.data); } catch { return; }
      if (this.current !== 'live') this.state('live');
      this.delay = 500;
      this.onDoc?.(doc, ev.type);
    };
    es.addEventListener('snapshot', onEvent);
    es.addEventListener('update', onEvent);
    es.addEventListener('deleted', (ev) => {
      this.lastEventId = null; // a re-created document starts its revisions over
      es.close();
      this.state('waiting', 'The document was deleted.');
      this.retry();
    });
    es.addEventListener('token-expired', () => {
      es.close();
      this.syncToken = null;
      this.start(); // a new grant, then the stream resumes from lastEventId
    });
    es.addEventListener('access-changed', () => {
      es.close();
      this.diagnose();
    });
    es.addEventListener('open', () => { this.delay = 500; this.state('live'); });
    es.addEventListener('error', () => {
      if (this.stopped || es !== this.es) return;
      if (es.readyState === EventSource.CONNECTING) {
        this.state('reconnecting'); // the browser retries by itself
        return;
      }
      es.close();
      this.diagnose();
    });
  }

  // EventSource gave up: find out why (it cannot see the status) and retry accordingly.
  async diagnose() {
    this.state('reconnecting');
    let status = 0;
    const ctl = new AbortController();
    try {
      const q = new URLSearchParams({ token: this.syncToken, lastEventId: this.lastEventId ?? '' });
      const r = await fetch(`${this.path}?${q}`, { signal: ctl.signal, cache: 'no-store' });
      status = r.status;
    } catch { status = 0; }
    ctl.abort();
    if (this.stopped) return;
    if (status === 401) {
      this.retry('The live-update pass expired; renewing it.', true);
    } else if (status === 403 || status === 404) {
      this.state('waiting');
      this.retry();
    } else {
      this.retry();
    }
  }

  retry(detail, regrant = false) {
    if (this.stopped) return;
    if (this.current !== 'waiting') this.state('reconnecting', detail);
    clearTimeout(this.timer);
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, 10000);
    this.timer = setTimeout(() => {
      if (regrant || !this.syncToken) this.start();
      else this.open();
    }, wait);
  }
}

// "1:05", "12:00", "1:02:03" for a number of seconds.
export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

// A spoken form for screen readers: "1 minute 5 seconds".
export function speakDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const m = Math.floor(s / 60);
  const r = s % 60;
  const parts = [];
  if (m) parts.push(`${m} minute${m === 1 ? '' : 's'}`);
  if (r || !m) parts.push(`${r} second${r === 1 ? '' : 's'}`);
  return parts.join(' ');
}

// Creates an element with attributes and children (strings become text nodes: never HTML).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// common.js - what the pages share: the caller's credentials, the sync grant, the server's
// configuration (/config.json), and a live Sync document on the official twilio-sync SDK
// that reconnects by itself.

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

// GET /config.json, once: which back end, and where the official SDKs connect (null URLs
// mean the SDKs' defaults, real Twilio). Rejects with an Error (.status 0) when unreachable.
let configPromise = null;
export function loadConfig() {
  if (!configPromise) {
    configPromise = fetch('/config.json', { cache: 'no-store' }).then(async (r) => {
      if (!r.ok) throw Object.assign(new Error(`The configuration is unavailable (${r.status}).`), { status: r.status });
      return r.json();
    }).catch((e) => {
      configPromise = null; // try again next time
      throw Object.assign(e instanceof Error ? e : new Error(String(e)), { status: e.status ?? 0 });
    });
  }
  return configPromise;
}

// The options of new Twilio.Sync.SyncClient for the configuration: tassa's twilsock endpoint
// and CDS URI, or none (Twilio's defaults). No offline_storage: descriptors are not cached in
// sessionStorage (docs/protocols/sdk-protocols.md 2.6), so every open asks the server.
export function syncOptions(config) {
  const opts = { logLevel: 'silent' };
  if (config?.sync?.twilsockUri) opts.twilsock = { uri: config.sync.twilsockUri };
  if (config?.sync?.cdsUri) opts.cdsUri = config.sync.cdsUri;
  return opts;
}

// A live Sync document through the official twilio-sync SDK (web/vendor/twilio-sync.min.js,
// window.Twilio.Sync). Calls onDoc({data}, eventName) for the first read and every update and
// onState(state, detail) when the connection changes:
//   'connecting' | 'live' | 'reconnecting' | 'waiting' (the document does not exist yet, or
//   may not be read yet: a customer's topic is shared when it is written) |
//   'denied' (the caller's token is refused: sign in again)
// twilsock reconnects by itself (and the SDK re-subscribes, replaying what was missed); this
// class renews the sync token before it expires, re-opens a removed or not-yet-readable
// document with back-off, and starts a new client when the old one is refused or fails.
export class LiveDocument {
  constructor({ document, credentials, onDoc, onState }) {
    this.name = document;
    this.credentials = credentials;
    this.onDoc = onDoc;
    this.onState = onState;
    this.client = null;
    this.doc = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = false;
    this.wasConnected = false;
  }

  async start() {
    if (this.stopped) return;
    this.state('connecting');
    let token;
    let config;
    try {
      config = await loadConfig();
      token = await getSyncGrant(this.credentials.token, this.credentials.identity);
    } catch (e) {
      if (e.status === 400 || e.status === 401 || e.status === 403) {
        this.state('denied', e.message);
        return;
      }
      this.retry(e.message, () => this.start());
      return;
    }
    if (this.stopped) return;
    const { SyncClient } = window.Twilio.Sync;
    const client = new SyncClient(token, syncOptions(config));
    this.client = client;
    client.on('connectionStateChanged', (s) => {
      if (this.stopped || client !== this.client) return;
      if (s === 'connected') {
        this.wasConnected = true;
        if (this.doc) this.state('live');
      } else if (s === 'connecting' && this.wasConnected) {
        this.state('reconnecting');
      } else if (s === 'denied' || s === 'error') {
        this.restart(); // a fresh grant: a refused client does not come back by itself
      }
    });
    const renew = async () => {
      try {
        await client.updateToken(await getSyncGrant(this.credentials.token, this.credentials.identity));
      } catch (e) {
        if (e.status === 401 || e.status === 403) this.state('denied', e.message);
        else this.restart();
      }
    };
    client.on('tokenAboutToExpire', renew);
    client.on('tokenExpired', () => this.restart());
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.doc?.close();
    this.client?.shutdown().catch(() => {});
    this.doc = null;
    this.client = null;
  }

  state(s, detail) {
    this.current = s;
    this.onState?.(s, detail);
  }

  // Opens the document (never creates it: the server's router writes it).
  async open() {
    const client = this.client;
    if (this.stopped || !client) return;
    let doc;
    try {
      doc = await client.document({ id: this.name, mode: 'open_existing' });
    } catch (e) {
      if (this.stopped || client !== this.client) return;
      if (e.status === 404 || e.status === 403) {
        this.state('waiting');
        this.retry(undefined, () => this.open(), true);
      } else if (e.status === 401) {
        this.restart();
      } else {
        this.retry(e.message, () => this.open());
      }
      return;
    }
    if (this.stopped || client !== this.client) {
      doc.close();
      return;
    }
    this.doc = doc;
    this.delay = 500;
    this.state(client.connectionState === 'connected' || !this.wasConnected ? 'live' : 'reconnecting');
    this.onDoc?.({ data: doc.data }, 'snapshot');
    doc.on('updated', (ev) => {
      if (doc !== this.doc) return;
      if (this.current !== 'live') this.state('live');
      this.onDoc?.({ data: ev.data }, 'update');
    });
    doc.on('removed', () => {
      if (doc !== this.doc) return;
      this.doc = null;
      doc.close();
      this.state('waiting', 'The document was deleted.');
      this.retry(undefined, () => this.open(), true);
    });
  }

  // Drops the client and starts over with a new sync grant.
  restart() {
    if (this.stopped) return;
    const old = this.client;
    this.client = null;
    this.doc = null;
    old?.removeAllListeners();
    old?.shutdown().catch(() => {});
    this.retry(undefined, () => this.start());
  }

  retry(detail, fn, quiet = false) {
    if (this.stopped) return;
    if (!quiet && this.current !== 'waiting') this.state('reconnecting', detail);
    clearTimeout(this.timer);
    const wait = this.delay;
    this.delay = Math.min(this.delay * 2, quiet ? 2000 : 10000);
    this.timer = setTimeout(fn, wait);
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

#!/usr/bin/env bash
# soak.sh - holds 1,000 keep-alive connections and 1,000 live document streams on one tassa
# for a bounded time (loopback only; not a test, never run by CI) and prints machine-readable
# lines: `soak phase=...` while it runs and one `soak result ...` line at the end with the
# server's RSS at start, after the ramp-up and at the end (from /proc/PID/status) and the
# error counts. Exits 1 when any error was counted.
#
#   ./bench/soak.sh                        (after make build; 10 minutes)
#   SOAK_SECONDS=180 ./bench/soak.sh       (shorter)
#
# Settings (environment): SOAK_SECONDS (600), SOAK_CONNS keep-alive connections (1000), each
# sending GET /healthz every SOAK_KA_INTERVAL_MS (1000) on its own connection; SOAK_STREAMS
# stream clients (1000) over SOAK_DOCS documents (10), SOAK_IDENTITIES callers (100; the server
# allows 20 streams per identity by default); SOAK_UPDATES_PER_S document
# updates per second in all (50), round-robin over the documents. Sync tokens live one hour:
# past SOAK_SECONDS=3600 streams end at their token's expiry and count as disconnects.
#
# Errors: a keep-alive request that failed or did not answer 200; a keep-alive connection
# that had to be opened again; a stream that ended or failed before the end; a revision a
# stream never received (a gap in the `update` ids, or a stream behind the document's last
# revision once the writer stopped); a duplicate revision; a failed update. A `snapshot`
# after a reconnect is the protocol's explicit answer to an overflow and is counted apart.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TASSA_BIN:-./build/tassa}
export SOAK_SECONDS=${SOAK_SECONDS:-600}
export SOAK_CONNS=${SOAK_CONNS:-1000}
export SOAK_KA_INTERVAL_MS=${SOAK_KA_INTERVAL_MS:-1000}
export SOAK_STREAMS=${SOAK_STREAMS:-1000}
export SOAK_DOCS=${SOAK_DOCS:-10}
export SOAK_IDENTITIES=${SOAK_IDENTITIES:-100}
export SOAK_UPDATES_PER_S=${SOAK_UPDATES_PER_S:-50}
# Every connection is a descriptor on both sides (the server and this node client).
want=$(( (SOAK_CONNS + SOAK_STREAMS) * 2 + 1024 ))
ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge $(( SOAK_CONNS + SOAK_STREAMS + 256 )) ] ||
  { echo "soak: ulimit -n is $(ulimit -n); need $want" >&2; exit 2; }

DIR=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
$BIN serve --port 0 --bind 127.0.0.1 --data "$DIR/soak.db" --quiet 2>"$DIR/log" &
PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*event=listening url=http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$DIR/log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "soak: tassa did not start" >&2; cat "$DIR/log" >&2; exit 2; }
eval "$($BIN credentials --data "$DIR/soak.db")"
export API_KEY API_SECRET
export BASE="http://127.0.0.1:$PORT" PID
for i in $(seq 0 $(( SOAK_IDENTITIES - 1 ))); do
  echo "soak-$i $($BIN user-token "soak-$i" --data "$DIR/soak.db")"
done >"$DIR/tokens"
export TOKENS="$DIR/tokens"

cat >"$DIR/soak.mjs" <<'EOF'
// The clients of the soak, in one process: keep-alive loaders, stream readers, one writer.
import http from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';

const E = process.env;
const N = (k) => Number(E[k]);
const SECONDS = N('SOAK_SECONDS'), CONNS = N('SOAK_CONNS'), KA_MS = N('SOAK_KA_INTERVAL_MS');
const STREAMS = N('SOAK_STREAMS'), DOCS = N('SOAK_DOCS'), UPS = N('SOAK_UPDATES_PER_S');
const BASE = E.BASE;
const basic = 'Basic ' + Buffer.from(`${E.API_KEY}:${E.API_SECRET}`).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const c = {
  requests: 0, request_errors: 0, reconnects: 0, stream_events: 0, stream_disconnects: 0,
  missed_revisions: 0, duplicate_revisions: 0, snapshots_after_start: 0, streams_behind: 0,
  updates: 0, update_errors: 0, setup_errors: 0,
};
let running = true;

function rss() {
  const s = readFileSync(`/proc/${E.PID}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? -1);
  const fds = readdirSync(`/proc/${E.PID}/fd`).length;
  return { rss_kb: kb('VmRSS'), hwm_kb: kb('VmHWM'), threads: kb('Threads'), fds };
}
const line = (o) => console.log('soak ' + Object.entries(o).map(([k, v]) => `${k}=${v}`).join(' '));

// One request; resolves { status, body } (body text), rejects on a socket error.
function request(method, path, { headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${BASE}${path}`, { method, headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}
const form = (o) => new URLSearchParams(o).toString();
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

// ---- set-up: documents, sync tokens, read permissions where the server has them --------
const docs = Array.from({ length: DOCS }, (_, d) => `soak-${d}`);
const last = new Map(); // doc -> last revision the writer was told
for (const d of docs) {
  const r = await request('POST', '/v1/Services/default/Documents',
    { headers: { Authorization: basic, ...FORM }, body: form({ UniqueName: d, Data: '{"n":0}' }) });
  if (r.status !== 201) throw new Error(`create ${d}: ${r.status} ${r.body}`);
  last.set(d, Number(JSON.parse(r.body).revision));
}
const callers = readFileSync(E.TOKENS, 'utf8').trim().split('\n').map((l) => l.split(' '));
const syncTokens = [];
for (const [identity, token] of callers) {
  const r = await request('POST', '/task/get-sync-grant', { headers: FORM, body: form({ identity, token }) });
  if (r.status !== 200) throw new Error(`grant ${identity}: ${r.status} ${r.body}`);
  syncTokens.push({ identity, token: JSON.parse(r.body).syncToken });
}
// Stream i reads document i % DOCS as identity i % IDENTITIES.
const pairs = new Set(Array.from({ length: STREAMS }, (_, i) => `${i % DOCS} ${i % syncTokens.length}`));
for (const p of pairs) {
  const [d, k] = p.split(' ').map(Number);
  const r = await request('POST', `/v1/Services/default/Documents/${docs[d]}/Permissions/${syncTokens[k].identity}`,
    { headers: { Authorization: basic, ...FORM }, body: form({ Read: 'true', Write: 'false', Manage: 'false' }) });
  if (r.status === 404) break; // no Document Permissions in this build: nothing to grant
  if (r.status !== 200 && r.status !== 201) { c.setup_errors++; break; }
}
const start = rss();
line({ phase: 'start', seconds: SECONDS, conns: CONNS, streams: STREAMS, docs: DOCS,
  identities: callers.length, updates_per_s: UPS, ...start });

// ---- keep-alive loaders: one connection each ------------------------------------------
async function loader() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sockets = 0;
  await sleep(Math.random() * KA_MS);
  while (running) {
    try {
      const r = await new Promise((resolve, reject) => {
        const req = http.get(`${BASE}/healthz`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.on('socket', (s) => { if (!s.soakSeen) { s.soakSeen = true; sockets++; } });
        req.on('error', reject);
        req.setTimeout(30000, () => req.destroy(new Error('timeout')));
      });
      c.requests++;
      if (r !== 200) c.request_errors++;
    } catch {
      c.requests++;
      c.request_errors++;
    }
    await sleep(KA_MS * (0.5 + Math.random()));
  }
  c.reconnects += Math.max(0, sockets - 1);
  agent.destroy();
}

// ---- stream readers --------------------------------------------------------------------
const streams = [];
function openStream(s) {
  const headers = { Authorization: `Bearer ${s.token}`, Accept: 'text/event-stream' };
  if (s.last !== null) headers['Last-Event-ID'] = String(s.last);
  const req = http.get(`${BASE}/v1/Services/default/Documents/${s.doc}/Stream`, { headers, agent: false }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return ended(s, `status ${res.statusCode}`);
    }
    s.open = true;
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buf += chunk;
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, k);
        buf = buf.slice(k + 2);
        onEvent(s, ev);
      }
    });
    res.on('end', () => ended(s, 'end'));
    res.on('error', () => ended(s, 'error'));
  });
  req.on('error', () => ended(s, 'error'));
  s.req = req;
}
function onEvent(s, text) {
  let id = null, type = 'message';
  for (const l of text.split('\n')) {
    if (l.startsWith('id: ')) id = Number(l.slice(4));
    else if (l.startsWith('event: ')) type = l.slice(7);
  }
  if (id === null) return; // a heartbeat
  c.stream_events++;
  if (type === 'snapshot') {
    if (s.last !== null) c.snapshots_after_start++;
    s.last = s.last === null ? id : Math.max(s.last, id);
  } else if (type === 'update') {
    if (s.last !== null && id <= s.last) c.duplicate_revisions++;
    else {
      if (s.last !== null && id > s.last + 1) c.missed_revisions += id - s.last - 1;
      s.last = id;
    }
  }
}
function ended(s, why) {
  if (s.closing) return;
  s.open = false;
  if (!running) return;
  c.stream_disconnects++;
  if (c.stream_disconnects <= 5) line({ phase: 'disconnect', doc: s.doc, why: JSON.stringify(why) });
  setTimeout(() => running && openStream(s), 200);
}
for (let i = 0; i < STREAMS; i++) {
  const s = { doc: docs[i % DOCS], token: syncTokens[i % syncTokens.length].token, last: null, open: false };
  streams.push(s);
  openStream(s);
  if (i % 50 === 49) await sleep(20); // a gentle ramp
}

// ---- the writer ------------------------------------------------------------------------
async function writer() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const period = 1000 / UPS;
  let next = Date.now(), n = 0;
  while (running) {
    const d = docs[n % DOCS];
    n++;
    try {
      const r = await request('POST', `/v1/Services/default/Documents/${d}`,
        { headers: { Authorization: basic, ...FORM }, body: form({ Data: JSON.stringify({ n, at: Date.now() }) }), agent });
      c.updates++;
      if (r.status === 200) last.set(d, Math.max(last.get(d), Number(JSON.parse(r.body).revision)));
      else c.update_errors++;
    } catch {
      c.update_errors++;
    }
    next += period;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
    else if (wait < -1000) next = Date.now(); // fell behind: do not burst
  }
  agent.destroy();
}

for (let i = 0; i < 100 && streams.some((s) => !s.open); i++) await sleep(100);
const ramped = rss();
line({ phase: 'ramped', open_streams: streams.filter((s) => s.open).length, ...ramped });
const loaders = Array.from({ length: CONNS }, loader);
const w = writer();
const t0 = Date.now();
while (Date.now() - t0 < SECONDS * 1000) {
  await sleep(Math.min(60000, SECONDS * 1000 - (Date.now() - t0)));
  line({ phase: 'progress', t: Math.round((Date.now() - t0) / 1000), ...rss(), ...c });
}
running = false;
await w;
await Promise.all(loaders);
await sleep(3000); // the last revisions reach the streams
for (const s of streams) {
  if (s.last === null || s.last < last.get(s.doc)) c.streams_behind++;
  s.closing = true;
  s.req?.destroy();
}
const end = rss();
const errors = c.request_errors + c.reconnects + c.stream_disconnects + c.missed_revisions +
  c.duplicate_revisions + c.streams_behind + c.update_errors + c.setup_errors;
line({ result: 'done', seconds: SECONDS, conns: CONNS, streams: STREAMS, updates_per_s: UPS,
  rss_start_kb: start.rss_kb, rss_ramped_kb: ramped.rss_kb, rss_end_kb: end.rss_kb,
  hwm_kb: end.hwm_kb, ...c, errors });
process.exit(errors ? 1 : 0);
EOF
rc=0
node "$DIR/soak.mjs" || rc=$?
kill -TERM "$PID"
wait "$PID" || { echo "soak: tassa exited with $?" >&2; rc=1; }
PID=
exit "$rc"

// fault_proxy.mjs - an HTTP proxy in front of a stand-in for Twilio that injects faults.
//
// The twilio back end is tested against a second tassa (embedded) standing in for Twilio's
// REST API; this proxy sits between them and, for requests matching a rule, answers as a
// struggling Twilio would: a 429 with Retry-After, a 500, a 404, an answer too slow for the
// client's timeout, a concurrent write just before an If-Match update (a 412 race), or a
// canned answer (for resources the stand-in lacks). Everything else is forwarded unchanged,
// Host header included, so that the stand-in's links (next_page_url, url) point back here.
// It counts requests per "METHOD /path" and keeps a journal of what it did.
//
//   const proxy = await startFaultProxy(standIn.url);
//   proxy.inject({ method: 'GET', path: /\/Documents\/my-topic$/, fault: '429' });
//   ... proxy.count('GET', /my-topic/) ... proxy.clear(); await proxy.close();
import http from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Twilio's error body.
export function twilioError(status, code, message) {
  return { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
}

// Starts the proxy on a free port of 127.0.0.1 in front of target (a base URL).
export async function startFaultProxy(target) {
  const upstream = new URL(target);
  const rules = [];
  const counts = new Map();
  const journal = [];

  // Sends a JSON answer unless the client already went away.
  function reply(res, status, body, headers = {}) {
    if (res.destroyed || res.writableEnded) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
    res.end(text);
  }

  // Forwards the request to the stand-in; resolves to { status, headers, body } (a Buffer).
  function forward(req, body, extraHeaders = {}) {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, ...extraHeaders };
      delete headers['content-length'];
      if (body.length) headers['content-length'] = String(body.length);
      const up = http.request({
        host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers,
      }, (r) => {
        const chunks = [];
        r.on('data', (c) => chunks.push(c));
        r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks) }));
        r.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  function relay(res, answer) {
    if (res.destroyed || res.writableEnded) return;
    const headers = { ...answer.headers };
    delete headers['transfer-encoding'];
    delete headers.connection;
    headers['content-length'] = String(answer.body.length);
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }

  async function handle(req, res) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const path = req.url.split('?')[0];
    const key = `${req.method} ${path}`;
    counts.set(key, (counts.get(key) || 0) + 1);
    let clientGone = false;
    res.on('close', () => { if (!res.writableEnded) clientGone = true; });
    const rule = rules.find((r) => r.remaining > 0 && (!r.method || r.method === req.method)
      && r.path.test(req.url));
    const info = { method: req.method, url: req.url, path, headers: req.headers, body: body.toString() };
    const entry = { method: req.method, url: req.url, fault: rule?.fault || null, status: null };
    journal.push(entry);
    if (rule) { rule.remaining--; rule.hits++; }
    try {
      switch (rule?.fault) {
        case '429':
          entry.status = 429;
          return reply(res, 429, twilioError(429, 20429, 'Too Many Requests'),
            { 'Retry-After': String(rule.retryAfter ?? 0) });
        case '500':
        case '502':
        case '503': {
          const status = Number(rule.fault);
          entry.status = status;
          return reply(res, status, twilioError(status, 20500, rule.message || 'Internal Server Error'));
        }
        case '404':
          entry.status = 404;
          return reply(res, 404, twilioError(404, 20404, `The requested resource ${path} was not found`));
        case 'delay': {
          // Holds the request past the client's timeout; forwards it only if the client is
          // still there (so the write did not land).
          await sleep(rule.delayMs ?? 1500);
          if (clientGone || res.destroyed) { entry.status = 'dropped'; return undefined; }
          break;
        }
        case 'delay-after': {
          // The request lands on the stand-in, but its answer comes too late: the client has
          // timed out and will retry a write that already happened.
          const answer = await forward(req, body);
          entry.status = answer.status;
          entry.landed = true;
          await sleep(rule.delayMs ?? 1500);
          return relay(res, answer);
        }
        case 'race':
          // Another writer gets in first (e.g. a concurrent update of the same document).
          await rule.before(info);
          break;
        case 'respond': {
          const out = typeof rule.body === 'function' ? await rule.body(info) : rule.body;
          entry.status = rule.status ?? 200;
          return reply(res, rule.status ?? 200, out, rule.headers || {});
        }
        default:
          break;
      }
      const answer = await forward(req, body);
      entry.status = answer.status;
      return relay(res, answer);
    } catch (e) {
      entry.status = 'proxy-error';
      entry.error = String(e);
      return reply(res, 502, twilioError(502, 20500, `fault proxy: ${e.message}`));
    }
  }

  let connections = 0;
  const server = http.createServer((req, res) => { handle(req, res); });
  server.on('connection', () => { connections++; });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    journal,
    // TCP connections accepted so far (to check that clients reuse theirs).
    get connections() { return connections; },
    // Adds a rule: { method?, path: RegExp (tested against path + query), fault, times = 1,
    //   retryAfter?, delayMs?, before?(req) (for 'race'), status?, body?, headers? (for
    //   'respond') }. The first matching rule with turns left wins. Returns the rule, whose
    //   `hits` says how often it fired.
    inject(rule) {
      const r = { times: 1, ...rule, hits: 0 };
      r.remaining = r.times;
      rules.push(r);
      return r;
    },
    // Removes every rule.
    clear() { rules.length = 0; },
    // Requests seen whose method matches and whose path (without query) matches re.
    count(method, re) {
      let n = 0;
      for (const [k, v] of counts) {
        const [m, p] = k.split(' ');
        if ((!method || m === method) && re.test(p)) n += v;
      }
      return n;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

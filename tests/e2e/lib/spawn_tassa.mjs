// spawn_tassa.mjs - starts any tassa binary (an installed or copied one) and waits until it
// listens; for tests of the binary as an operator runs it, outside the build tree.
import { spawn } from 'node:child_process';

// The environment without the caller's tassa settings (as server.mjs does).
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(PORT|TASSA_|ACCOUNT_SID|API_KEY|API_SECRET|AUTH_TOKEN|JWT_SECRET|SYNC_SERVICE_SID|WORKSPACE_SID|TWILIO_|CORS_|PUBLIC_URL)/.test(k)) continue;
    env[k] = v;
  }
  env.ASAN_OPTIONS = env.ASAN_OPTIONS || 'detect_leaks=1:abort_on_error=0';
  return { ...env, ...extra };
}

// Starts `bin serve --port 0 ...args` in cwd; resolves { child, url, port, log(), exited }.
export async function spawnTassa(bin, { args = [], env = {}, cwd } = {}) {
  const child = spawn(bin, ['serve', '--port', '0', ...args], { env: cleanEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  child.stdout.on('data', (c) => { log += c; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tassa did not start:\n${log}`)), 15000);
    child.stderr.on('data', (c) => {
      log += c;
      const m = /event=listening url=http:\/\/[^:]+:(\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`tassa exited ${code}:\n${log}`)); });
  });
  return {
    child, port, url: `http://127.0.0.1:${port}`, exited, log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

// The scripts and styles a page loads (src= and href= of same-origin files).
export function assetsOf(html) {
  return [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)="([^":?#]+)"/g)].map((m) => m[1].replace(/^\//, ''));
}

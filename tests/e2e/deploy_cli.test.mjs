// deploy_cli.test.mjs - the command explains itself: help for every command, one settings
// table behind help, man page, tassa.env and README, --version, and typo suggestions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './lib/server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const run = (...args) => spawnSync(BIN, args, { encoding: 'utf8', env: { PATH: process.env.PATH } });

// Every setting the code knows, as `tassa serve --help` lists them (NAME on its own line).
function helpSettings() {
  const out = run('serve', '--help').stdout;
  const part = out.slice(out.indexOf('\nsettings'));
  return [...part.matchAll(/^ {2}([A-Z][A-Z0-9_]+)(?: \(--[a-z-]+[^)]*\))?$/gm)].map((m) => m[1]);
}

test('every command answers --help with its flags, defaults and an example, exit 0', () => {
  for (const cmd of ['serve', 'user-token', 'worker-token', 'event', 'credentials', 'backup', 'settings']) {
    const r = run(cmd, '--help');
    assert.equal(r.status, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: tassa ${cmd}`), cmd);
    assert.match(r.stdout, /\nflags:\n/);
    assert.match(r.stdout, /\nexample:\n {2}tassa /);
  }
  const ut = run('user-token', '--help').stdout;
  assert.match(ut, /--ttl SECONDS\n.*\n {6}default: 3600; example: --ttl 600/);
  const top = run('--help');
  assert.equal(top.status, 0);
  for (const cmd of ['serve', 'user-token', 'worker-token', 'event', 'credentials', 'backup', 'settings']) assert.match(top.stdout, new RegExp(`tassa ${cmd} `));
  assert.match(top.stdout, /PORT \(--port N\)\n.*\n {6}default: 3000; example: PORT=8080/);
});

test('serve --help lists every setting with a default and an example', () => {
  const names = helpSettings();
  assert.ok(names.length >= 30, `found ${names.length} settings`);
  for (const n of ['PORT', 'TASSA_DATA', 'TASSA_METRICS_TOKEN', 'TASSA_HEADER_TIMEOUT_MS', 'TASSA_SYNC_ACL', 'TASSA_QUEUE_STATUS_READERS']) {
    assert.ok(names.includes(n), n);
  }
  const out = run('serve', '--help').stdout;
  for (const n of names) assert.match(out, new RegExp(`\\n {2}${n}\\b[^\\n]*\\n[^\\n]+\\n {6}default: [^;]+; example: ${n}=`), n);
});

test('the man page, tassa.env and the README table agree with the settings table', () => {
  const names = helpSettings();
  const man = readFileSync(join(dirname(BIN), 'tassa.1'), 'utf8');
  const env = readFileSync(join(dirname(BIN), 'tassa.env'), 'utf8');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const table = /<!-- settings-table-begin[^\n]*-->\n([\s\S]*?)<!-- settings-table-end -->/.exec(readme);
  assert.ok(table, 'README has the generated settings table');
  assert.equal(table[1], run('settings', '--markdown').stdout, 'README table is `tassa settings --markdown`');
  const readmeNames = [...table[1].matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((m) => m[1]);
  assert.deepEqual(readmeNames, names);
  const manNames = [...man.matchAll(/^\.B ([A-Z][A-Z0-9_]+)/gm)].map((m) => m[1]);
  assert.deepEqual(manNames, names);
  const envNames = [...env.matchAll(/^#([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
  assert.deepEqual(envNames, names);
  // Each default in tassa.env is the one help states.
  const help = run('serve', '--help').stdout;
  for (const [, name, value] of env.matchAll(/^(?<!e\.g\.\n)#([A-Z][A-Z0-9_]+)=(.*)$/gm)) {
    const def = new RegExp(`\\n {2}${name}\\b[^\\n]*\\n[^\\n]+\\n {6}default: ([^;]+);`).exec(help)[1];
    if (def !== 'unset') assert.equal(value, def, name);
  }
  assert.equal(env, run('settings', '--env').stdout);
  assert.equal(man, run('settings', '--man').stdout);
});

test('every setting in tassa.env, uncommented, is accepted by the server', () => {
  // the file's defaults are valid values: uncommented they must load (checked by `credentials`,
  // which parses all settings, on a fresh data file)
  const env = readFileSync(join(dirname(BIN), 'tassa.env'), 'utf8');
  const vars = { PATH: process.env.PATH };
  // defaults only: a line after "(unset by default) e.g." is an example
  for (const [, name, value] of env.matchAll(/^(?<!e\.g\.\n)#([A-Z][A-Z0-9_]+)=(.+)$/gm)) vars[name] = value;
  vars.TASSA_DATA = join(spawnSync('mktemp', ['-d']).stdout.toString().trim(), 'x.db');
  const r = spawnSync(BIN, ['credentials'], { encoding: 'utf8', env: vars });
  assert.equal(r.status, 0, r.stderr);
  const bad = spawnSync(BIN, ['credentials'], { encoding: 'utf8', env: { ...vars, TASSA_DRAIN_TIMEOUT_MS: 'soon' } });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /TASSA_DRAIN_TIMEOUT_MS must be a number/);
});

test('an unknown flag or command names what was probably meant and exits non-zero', () => {
  let r = run('serve', '--prot', '8080');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown flag --prot; did you mean --port\?/);
  r = run('user-token', 'alice', '--tll', '5');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /did you mean --ttl\?/);
  r = run('serv');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command serv; did you mean serve\?/);
  r = run('credentails');
  assert.match(r.stderr, /did you mean credentials\?/);
  r = run('frobnicate');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command frobnicate \(see tassa --help\)/);
  r = run('serve', '--zzzzzzzz');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown flag --zzzzzzzz \(see tassa serve --help\)/);
});

test('--version prints the version and the libraries', () => {
  const r = run('--version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^tassa \d+\.\d+\.\d+\n/);
  for (const lib of ['libmicrohttpd', 'jansson', 'libjwt', 'sqlite', 'libcurl', 'OpenSSL']) {
    assert.match(r.stdout, new RegExp(`^${lib} (\\(built with )?\\d+\\.\\d+`, 'm'), lib);
    assert.match(r.stdout, new RegExp(`^${lib} .*built with (OpenSSL )?\\d+\\.\\d+`, 'm'), lib);
  }
});

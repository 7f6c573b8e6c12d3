// deploy_install.test.mjs - `make install` (cmake --install with DESTDIR) gives a binary that,
// started from an unrelated folder with a temporary store (data file or database), serves /healthz, the pages and
// every script and style they load; the man page, tassa.env and the hardened unit come along.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BIN, STORE_KIND, storeOf, removeDataDir } from './lib/server.mjs';
import { spawnTassa, assetsOf } from './lib/spawn_tassa.mjs';

const build = dirname(BIN);
const cache = readFileSync(join(build, 'CMakeCache.txt'), 'utf8');
const prefix = /^CMAKE_INSTALL_PREFIX:PATH=(.*)$/m.exec(cache)[1];
const sysconf = /^TASSA_SYSCONFDIR:PATH=(.*)$/m.exec(cache)[1];

function install(destdir) {
  return execFileSync('cmake', ['--install', build], { env: { ...process.env, DESTDIR: destdir }, encoding: 'utf8' });
}

test('installed into a DESTDIR, tassa runs from anywhere and serves every page', async () => {
  const dest = mkdtempSync(join(tmpdir(), 'tassa-destdir-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'tassa-unrelated-'));
  try {
    install(dest);
    const bin = join(dest, prefix, 'bin/tassa');
    assert.ok(existsSync(bin), bin);
    const man = join(dest, prefix, 'share/man/man1/tassa.1');
    assert.match(readFileSync(man, 'utf8'), /^\.TH TASSA 1/);
    const env = join(dest, sysconf, 'tassa/tassa.env');
    assert.equal(readFileSync(env, 'utf8'), execFileSync(bin, ['settings', '--env'], { encoding: 'utf8' }));
    assert.ok(existsSync(join(dest, prefix, 'lib/systemd/system/tassa.service')));

    const srv = await spawnTassa(bin, { args: ['--data', storeOf(elsewhere), '--quiet'], cwd: elsewhere });
    try {
      const h = await fetch(`${srv.url}/healthz`);
      assert.equal(h.status, 200);
      assert.equal((await h.json()).status, 'ok');
      const assets = new Set();
      for (const page of ['/', '/customer.html']) {
        const r = await fetch(srv.url + page);
        assert.equal(r.status, 200, page);
        assert.match(r.headers.get('content-type'), /^text\/html/);
        for (const a of assetsOf(await r.text())) assets.add(a);
      }
      assert.ok([...assets].some((a) => a.endsWith('.js')) && [...assets].some((a) => a.endsWith('.css')), [...assets].join());
      for (const a of assets) {
        const r = await fetch(`${srv.url}/${a}`);
        assert.equal(r.status, 200, a);
        assert.match(r.headers.get('content-type'), a.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, a);
      }
    } finally {
      const { code } = await srv.stop();
      assert.equal(code, 0, srv.log());
    }
    if (STORE_KIND === 'sqlite') assert.ok(existsSync(storeOf(elsewhere)));
  } finally {
    rmSync(dest, { recursive: true, force: true });
    removeDataDir(elsewhere);
  }
});

test('a reinstall keeps an edited tassa.env', () => {
  const dest = mkdtempSync(join(tmpdir(), 'tassa-destdir-'));
  try {
    install(dest);
    const env = join(dest, sysconf, 'tassa/tassa.env');
    appendFileSync(env, 'PORT=8443\n');
    const out = install(dest);
    assert.match(out, /Keeping: .*tassa\.env/);
    assert.match(readFileSync(env, 'utf8'), /\nPORT=8443\n$/);
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});

test('the unit is hardened, reads tassa.env, and passes systemd-analyze verify', (t) => {
  const unit = readFileSync(join(build, 'tassa.service'), 'utf8');
  for (const line of ['DynamicUser=yes', 'StateDirectory=tassa', 'Restart=on-failure', 'KillSignal=SIGTERM',
    'ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'ProtectHome=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'PrivateDevices=yes', 'CapabilityBoundingSet=',
    'SystemCallFilter=@system-service', `EnvironmentFile=-${sysconf}/tassa/tassa.env`,
    `ExecStart=${prefix}/bin/tassa serve`]) {
    assert.ok(unit.split('\n').includes(line), line);
  }
  if (spawnSync('systemd-analyze', ['--version']).status !== 0) {
    t.skip('systemd-analyze is not installed');
    return;
  }
  // verify checks that ExecStart exists: point it at the built binary
  const dir = mkdtempSync(join(tmpdir(), 'tassa-unit-'));
  try {
    const file = join(dir, 'tassa.service');
    writeFileSync(file, unit.replace(`ExecStart=${prefix}/bin/tassa`, `ExecStart=${BIN}`));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warning (an unknown key is only a warning)');
    writeFileSync(file, unit.replace('ProtectSystem=strict', 'ProtectSystm=strict').replace(`ExecStart=${prefix}/bin/tassa`, `ExecStart=${BIN}`));
    const bad = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    assert.match(bad.stderr, /Unknown key/, 'the check can fail');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

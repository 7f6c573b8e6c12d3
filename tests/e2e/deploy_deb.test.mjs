// deploy_deb.test.mjs - the Debian package: built from the tree with Debian's tools
// (packaging/build-deb.sh, as `make deb` runs it), it holds the binary, the unit, the man page
// and the configuration file, declares its library dependencies and marks tassa.env as a
// conffile so that an upgrade keeps it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './lib/server.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

test('the .deb lists the binary, the unit and the configuration file, with its dependencies', (t) => {
  if (!have('dpkg-deb') || !have('dpkg-shlibdeps')) {
    t.skip('dpkg-dev is not installed (make test-deps installs it)');
    return;
  }
  const out = mkdtempSync(join(tmpdir(), 'tassa-deb-'));
  try {
    const deb = execFileSync(join(root, 'packaging/build-deb.sh'), [dirname(BIN), out], { encoding: 'utf8', env: { ...process.env, TASSA_DEB_NO_BUILD: '1' } }).trim();
    assert.match(deb, /tassa_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);
    const contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' });
    const files = contents.split('\n').filter(Boolean).map((l) => l.split(/\s+/).pop());
    for (const f of ['./usr/bin/tassa', './usr/lib/systemd/system/tassa.service', './etc/tassa/tassa.env',
      './usr/share/man/man1/tassa.1.gz', './usr/share/doc/tassa/copyright']) {
      assert.ok(files.includes(f), `${f} in\n${contents}`);
    }
    assert.match(contents, /-rwxr-xr-x root\/root .* \.\/usr\/bin\/tassa\n/);
    const depends = execFileSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' });
    for (const lib of ['libmicrohttpd12', 'libjansson4', 'libjwt', 'libsqlite3-0', 'libcurl', 'libssl3', 'libc6']) {
      assert.match(depends, new RegExp(`(^|, )${lib}[a-z0-9-]* \\(>= `), lib);
    }
    assert.equal(execFileSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }), '/etc/tassa/tassa.env\n');
    // the unit in the package names the packaged binary and the packaged configuration
    const x = join(out, 'x');
    execFileSync('dpkg-deb', ['-x', deb, x]);
    const unit = execFileSync('cat', [join(x, 'usr/lib/systemd/system/tassa.service')], { encoding: 'utf8' });
    assert.match(unit, /^ExecStart=\/usr\/bin\/tassa serve$/m);
    assert.match(unit, /^EnvironmentFile=-\/etc\/tassa\/tassa\.env$/m);
    const env = execFileSync('cat', [join(x, 'etc/tassa/tassa.env')], { encoding: 'utf8' });
    assert.equal(env, execFileSync(BIN, ['settings', '--env'], { encoding: 'utf8' }));
    for (const s of ['postinst', 'prerm', 'postrm']) {
      assert.equal(spawnSync('dpkg-deb', ['-I', deb, s]).status, 0, s);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

// deploy_pages.test.mjs - the pages are compiled into the binary: a copy of it alone in a
// folder serves every page, script and style with its content type and an ETag, and
// TASSA_WEB_DIR still overrides them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, storeOf, removeDataDir } from './lib/server.mjs';
import { spawnTassa, assetsOf } from './lib/spawn_tassa.mjs';

const TYPES = { html: 'text/html; charset=utf-8', css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8' };

test('a copied binary with nothing beside it serves the pages, typed and tagged', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tassa-copy-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'tassa-cwd-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin', 'tassa'));
  chmodSync(join(dir, 'bin', 'tassa'), 0o755);
  const srv = await spawnTassa(join(dir, 'bin', 'tassa'), { args: ['--data', storeOf(elsewhere), '--quiet'], cwd: elsewhere });
  try {
    const seen = new Set();
    for (const page of ['', 'customer.html', 'teller.html']) {
      const r = await fetch(`${srv.url}/${page}`);
      assert.equal(r.status, 200, page);
      assert.equal(r.headers.get('content-type'), TYPES.html);
      const html = await r.text();
      assert.match(html, /<html/i);
      const assets = assetsOf(html);
      assert.ok(assets.length >= 2, `${page} loads scripts and styles: ${assets}`);
      for (const a of assets) seen.add(a);
    }
    for (const a of seen) {
      const r = await fetch(`${srv.url}/${a}`);
      assert.equal(r.status, 200, a);
      assert.equal(r.headers.get('content-type'), TYPES[a.split('.').pop()], a);
      const etag = r.headers.get('etag');
      assert.match(etag, /^"[0-9a-f]{24}"$/, a);
      assert.ok((await r.text()).length > 0);
      const again = await fetch(`${srv.url}/${a}`, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, a);
      const changed = await fetch(`${srv.url}/${a}`, { headers: { 'If-None-Match': '"other"' } });
      assert.equal(changed.status, 200, a);
    }
    // The vendored SDKs come with their licences and versions, and point at no source map.
    for (const sdk of ['twilio-sync', 'twilio-taskrouter']) {
      assert.ok(seen.has(`vendor/${sdk}.min.js`), `a page loads vendor/${sdk}.min.js`);
      const js = await (await fetch(`${srv.url}/vendor/${sdk}.min.js`)).text();
      assert.doesNotMatch(js, /sourceMappingURL/, sdk);
      const lic = await fetch(`${srv.url}/vendor/${sdk}.LICENSE.txt`);
      assert.equal(lic.status, 200, sdk);
      assert.equal(lic.headers.get('content-type'), 'text/plain; charset=utf-8');
      assert.match(await lic.text(), /Copyright \(c\) 201\d, Twilio, inc\./);
    }
    assert.match(await (await fetch(`${srv.url}/vendor/VERSIONS`)).text(),
      /^twilio-sync 4\.\d+\.\d+$[\s\S]*^twilio-taskrouter 2\.\d+\.\d+$/m);
    const head = await fetch(`${srv.url}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    for (const bad of ['/missing.js', '/..%2Fetc%2Fpasswd', '/.hidden', '/a/b']) {
      const r = await fetch(`${srv.url}${bad}`);
      assert.equal(r.status, 404, bad);
    }
  } finally {
    const { code } = await srv.stop();
    assert.equal(code, 0, srv.log());
    rmSync(dir, { recursive: true, force: true });
    removeDataDir(elsewhere);
  }
});

test('TASSA_WEB_DIR overrides the built-in pages', async () => {
  const web = mkdtempSync(join(tmpdir(), 'tassa-web-'));
  writeFileSync(join(web, 'index.html'), '<html>under development</html>');
  const srv = await spawnTassa(BIN, { args: ['--data', storeOf(web), '--quiet'], env: { TASSA_WEB_DIR: web }, cwd: web });
  try {
    const r = await fetch(`${srv.url}/`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), '<html>under development</html>');
    assert.equal((await fetch(`${srv.url}/customer.html`)).status, 404);
  } finally {
    await srv.stop();
    removeDataDir(web);
  }
});

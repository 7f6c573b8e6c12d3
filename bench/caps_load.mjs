// caps_load.mjs - the HTTP client of bench/caps.sh (Node 20, no packages): keep-alive
// requests at a fixed concurrency, sequential latency samples, and a poll of queue-status.
//   node caps_load.mjs create  URL AUTH N CONC BODY     (BODY: form text, {i} = request number)
//   node caps_load.mjs latency URL AUTH R [BODY]         (R sequential requests; POST if BODY)
//   node caps_load.mjs first   URL AUTH SID TIMEOUT_MS   (ms until pendingTasks[0].sid == SID)
// Prints one machine-readable line (key=value) and exits 1 when a request failed.
const [mode, url, auth, a, b, c] = process.argv.slice(2);
const headers = {
  Authorization: 'Basic ' + Buffer.from(auth).toString('base64'),
  'Content-Type': 'application/x-www-form-urlencoded',
};
const post = (body) => fetch(url, { method: 'POST', headers, body });

if (mode === 'create') {
  const n = Number(a), conc = Number(b);
  let next = 0, failed = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const r = await post(c.replaceAll('{i}', String(i)));
      if (r.status !== 201 && r.status !== 200) failed++;
      await r.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: conc }, lane));
  const s = (performance.now() - t0) / 1000;
  console.log(`n=${n} seconds=${s.toFixed(2)} rps=${(n / s).toFixed(0)} failed=${failed}`);
  process.exit(failed ? 1 : 0);
} else if (mode === 'latency') {
  const r = Number(a), ms = [];
  for (let i = 0; i < r + 3; i++) {
    const t0 = performance.now();
    const res = b ? await post(b) : await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status !== 200) { console.log(`failed status=${res.status}`); process.exit(1); }
    if (i >= 3) ms.push(performance.now() - t0); // three warm-up requests
  }
  ms.sort((x, y) => x - y);
  const mean = ms.reduce((x, y) => x + y, 0) / ms.length;
  console.log(`mean_ms=${mean.toFixed(2)} p50_ms=${ms[ms.length >> 1].toFixed(2)} max_ms=${ms[ms.length - 1].toFixed(2)}`);
} else if (mode === 'first') {
  const t0 = performance.now();
  for (;;) {
    const res = await fetch(url, { headers });
    const doc = res.status === 200 ? await res.json() : null;
    if (doc?.data?.pendingTasks?.[0]?.sid === a) break;
    if (performance.now() - t0 > Number(b)) { console.log('first_ms=timeout'); process.exit(1); }
    await new Promise((r) => setTimeout(r, 20));
  }
  console.log(`first_ms=${(performance.now() - t0).toFixed(0)}`);
}

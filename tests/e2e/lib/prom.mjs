// prom.mjs - a strict parser of the Prometheus text exposition format 0.0.4, for tests.
//
// It throws on anything promtool would reject: a sample before its # TYPE, a family typed
// twice, a malformed name, label or value, a duplicate series, histogram buckets that are not
// cumulative or whose +Inf bucket differs from _count, or a missing final newline.
const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseLabels(s, where) {
  const labels = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without '='`);
    const name = s.slice(i, eq);
    if (!LABEL.test(name)) throw new Error(`${where}: bad label name ${name}`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let j = eq + 2, v = '';
    for (; j < s.length && s[j] !== '"'; j++) {
      if (s[j] === '\\') {
        const n = s[++j];
        if (n === 'n') v += '\n'; else if (n === '\\' || n === '"') v += n;
        else throw new Error(`${where}: bad escape \\${n}`);
      } else v += s[j];
    }
    if (s[j] !== '"') throw new Error(`${where}: unterminated label value`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    labels[name] = v;
    i = j + 1;
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`${where}: expected ',' after a label`);
      i++;
    }
  }
  return labels;
}

function parseValue(s, where) {
  if (/^[+-]?Inf$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (s === 'NaN') return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) throw new Error(`${where}: bad value ${s}`);
  return Number(s);
}

// Returns { families: Map(name -> {type, help, samples: [{name, labels, value}]}) } and a
// get(name, labels) helper that sums matching samples (labels a subset).
export function parseProm(text) {
  if (text.length && !text.endsWith('\n')) throw new Error('no final newline');
  const families = new Map();
  const seen = new Set();
  const familyOf = (sample) => {
    if (families.has(sample)) return families.get(sample);
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (sample.endsWith(suffix)) {
        const f = families.get(sample.slice(0, -suffix.length));
        if (f && f.type === 'histogram') return f;
      }
    }
    return null;
  };
  text.split('\n').slice(0, -1).forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      if (!NAME.test(m[2])) throw new Error(`${where}: bad name ${m[2]}`);
      const f = families.get(m[2]) || { type: null, help: null, samples: [] };
      if (m[1] === 'TYPE') {
        if (f.type) throw new Error(`${where}: ${m[2]} typed twice`);
        if (f.samples.length) throw new Error(`${where}: TYPE after samples`);
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3])) throw new Error(`${where}: bad type ${m[3]}`);
        f.type = m[3];
      } else {
        if (f.help !== null) throw new Error(`${where}: ${m[2]} has two HELP lines`);
        f.help = m[3];
      }
      families.set(m[2], f);
      return;
    }
    if (!line.trim()) throw new Error(`${where}: empty line`);
    const m = /^([^\s{]+)(?:\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (!m) throw new Error(`${where}: malformed sample: ${line}`);
    if (!NAME.test(m[1])) throw new Error(`${where}: bad metric name ${m[1]}`);
    const labels = parseLabels(m[2] || '', where);
    const value = parseValue(m[3], where);
    const f = familyOf(m[1]);
    if (!f || !f.type) throw new Error(`${where}: ${m[1]} has no # TYPE before it`);
    const key = m[1] + JSON.stringify(Object.entries(labels).sort());
    if (seen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seen.add(key);
    if (f.type === 'counter' && !(value >= 0)) throw new Error(`${where}: negative counter`);
    f.samples.push({ name: m[1], labels, value });
  });
  for (const [name, f] of families) {
    if (f.type !== 'histogram') continue;
    const series = new Map();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const k = JSON.stringify(Object.entries(rest).sort());
      const e = series.get(k) || { buckets: [], count: null, sum: null };
      if (s.name === `${name}_bucket`) {
        if (le === undefined) throw new Error(`${name}: bucket without le`);
        e.buckets.push([parseValue(le, name), s.value]);
      } else if (s.name === `${name}_count`) e.count = s.value;
      else if (s.name === `${name}_sum`) e.sum = s.value;
      series.set(k, e);
    }
    for (const [k, e] of series) {
      let last = -Infinity, prev = 0;
      for (const [le, v] of e.buckets) {
        if (!(le > last)) throw new Error(`${name}${k}: le not increasing`);
        if (v < prev) throw new Error(`${name}${k}: buckets not cumulative`);
        last = le; prev = v;
      }
      if (last !== Infinity) throw new Error(`${name}${k}: no +Inf bucket`);
      if (e.count !== prev) throw new Error(`${name}${k}: +Inf bucket ${prev} != _count ${e.count}`);
      if (e.sum === null) throw new Error(`${name}${k}: no _sum`);
    }
  }
  const get = (name, want = {}) => {
    const f = familyOf(name);
    if (!f) return undefined;
    let total = 0;
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(want).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  };
  return { families, get };
}

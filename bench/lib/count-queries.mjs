// Preload (node --import): counts queries sent by pg clients, by text, and prints them on SIGWINCH.
import pg from 'pg';
const counts = new Map();
const orig = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, cb) {
  const text = typeof config === 'string' ? config : config?.text ?? config?.name ?? '?';
  const key = String(text).replace(/\s+/g, ' ').slice(0, 140);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return orig.call(this, config, values, cb);
};
process.on('SIGWINCH', () => {
  const rows = [...counts].sort((a, b) => b[1] - a[1]);
  process.stderr.write('QUERYCOUNTS ' + JSON.stringify(rows) + '\n');
  counts.clear();
});
